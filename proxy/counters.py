"""Request counters kept without locks where traffic runs, and summed where they are read.

Each dataplane worker counts into plain rows: a row is a list of numbers under a key of
label values (strings), in a named table. Every second (and when asked) a worker takes a
`Delta` (its rows since the last one, then zeroed) plus its gauges (absolute values, such
as open connections), and hands it to the main process, which adds the rows into
`Totals`. So the counters users see only ever grow: a worker that restarts loses at most
the delta it had not sent yet, and its gauges are dropped with it.

`Family` says how one Prometheus metric is read from a table: which key fields are its
labels, which column is its value (or which columns are its histogram). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

Key = tuple[str, ...]
Rows = dict[Key, list[float]]

# Seconds. Fine at the low end (a proxy answers in well under a millisecond); every bound
# of Prometheus' default buckets (ingress-nginx's) is among them, so those histograms are
# derived from these without a second count.
DURATION_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
NBUCKETS = len(DURATION_BUCKETS) + 1  # the last one is +Inf
# A value's (non-cumulative) bucket is bisect_left(bounds, value): the first bound >= it,
# which is Prometheus' `le`; len(bounds) is +Inf.


@dataclass(slots=True)
class Delta:
    """What a worker ships: counter rows to add, and gauge rows that replace its last ones."""

    tables: dict[str, Rows] = field(default_factory=dict)
    gauges: dict[str, Rows] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(self.tables.values()) or any(self.gauges.values())


def add_rows(into: Rows, rows: Rows) -> None:
    for key, values in rows.items():
        have = into.get(key)
        if have is None:
            into[key] = list(values)
        else:
            for i, v in enumerate(values):
                have[i] += v


class Totals:
    """The main process's sum of every worker's deltas, and the latest gauges per worker."""

    __slots__ = ("_gauges", "tables")

    def __init__(self) -> None:
        self.tables: dict[str, Rows] = {}
        self._gauges: dict[object, dict[str, Rows]] = {}

    def absorb(self, source: object, delta: Delta) -> None:
        for name, rows in delta.tables.items():
            add_rows(self.tables.setdefault(name, {}), rows)
        if delta.gauges:
            self._gauges[source] = delta.gauges

    def forget(self, source: object) -> None:
        """A worker is gone: its gauges (open connections...) went with it."""
        self._gauges.pop(source, None)

    def rows(self, name: str) -> Rows:
        return self.tables.get(name, {})

    def gauge_rows(self, name: str) -> Rows:
        out: Rows = {}
        for gauges in self._gauges.values():
            add_rows(out, gauges.get(name, {}))
        return out


@dataclass(frozen=True, slots=True)
class Family:
    """One Prometheus metric read from a table.

    `labels`: (label name, key index) pairs; rows whose projected keys are equal are summed.
    A counter or gauge reads `column`; a histogram reads `count`/`sum` columns and
    `len(source_bounds) + 1` bucket columns from `column`, exposed with `bounds` (each of
    them one of `source_bounds`, so buckets merge exactly).
    """

    name: str
    help: str
    kind: str  # "counter" | "gauge" | "histogram"
    table: str
    labels: tuple[tuple[str, int], ...]
    column: int
    count: int = -1
    sum: int = -1
    bounds: tuple[float, ...] = ()
    source_bounds: tuple[float, ...] = ()
    gauge: bool = False  # read from the gauge rows rather than the counter tables

    @property
    def label_names(self) -> list[str]:
        return [name for name, _ in self.labels]

    def project(self, rows: Rows) -> dict[Key, list[float]]:
        """Rows summed per label set; a histogram row is [count, sum, *cumulative buckets]."""
        out: dict[Key, list[float]] = {}
        idx = [i for _, i in self.labels]
        for key, values in rows.items():
            lkey = tuple(key[i] for i in idx)
            vec = self._histogram(values) if self.kind == "histogram" else [values[self.column]]
            have = out.get(lkey)
            if have is None:
                out[lkey] = vec
            else:
                for i, v in enumerate(vec):
                    have[i] += v
        return out

    def _histogram(self, values: list[float]) -> list[float]:
        src = self.source_bounds or self.bounds
        raw = values[self.column : self.column + len(src) + 1]
        cumulative: list[float] = []
        running = 0.0
        wanted = set(self.bounds)
        for bound, n in zip(src, raw, strict=False):
            running += n
            if bound in wanted:
                cumulative.append(running)
        cumulative.append(running + raw[-1])  # +Inf
        return [values[self.count], values[self.sum], *cumulative]


def quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """Prometheus' histogram_quantile over non-cumulative bucket counts (last = +Inf):
    linear interpolation inside the bucket; None without observations."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    running = 0.0
    lower = 0.0
    for i, n in enumerate(counts):
        if running + n >= rank and n > 0:
            if i >= len(bounds):
                return bounds[-1] if bounds else None  # in +Inf: the highest finite bound
            upper = bounds[i]
            return lower + (upper - lower) * (rank - running) / n
        running += n
        if i < len(bounds):
            lower = bounds[i]
    return bounds[-1] if bounds else None


def sum_columns(rows: Iterable[list[float]], start: int, width: int) -> list[float]:
    out = [0.0] * width
    for values in rows:
        for i in range(width):
            out[i] += values[start + i]
    return out


def group(rows: Rows, index: Sequence[int]) -> Iterator[tuple[Key, list[list[float]]]]:
    """Rows grouped by the key fields at `index` (for per-service views)."""
    groups: dict[Key, list[list[float]]] = {}
    for key, values in rows.items():
        groups.setdefault(tuple(key[i] for i in index), []).append(values)
    yield from groups.items()
