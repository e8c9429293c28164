"""What every balancer shares: the endpoints and their weights, per-endpoint counts of
active and connecting picks, per-endpoint caps (circuit breaking), and the call protocol.

    ep = bal.pick(key, tried)   # one more active (and connecting) pick on ep; None: none
    bal.connected(ep[, latency])  # the connection to ep is up (or was taken from a pool)
    bal.done(ep[, latency], up)   # that request or connection ended: once per pick

A latency passed to either (connect time at L4, response time at L7) feeds the
latency-aware balancers (EWMA).

`done(..., up=False)` (the connect failed) releases the connecting count as well. An
endpoint that left the list in between is ignored. `proxy.balancer.Lease` holds one pick
and makes ending it twice harmless; callers should use it.

Weights: endpoints come with optional weights (canary and HTTPRoute backend weights
spread over a backend's endpoints). A weight of 0 takes the endpoint out; equal weights
are the unweighted case (each algorithm has a faster path for it). Counts are kept per
address (ip, port), so an endpoint whose conditions change keeps its counts.

Caps: with `max_active` (connections at L4, requests in flight at L7) or
`max_connecting` (connects in progress) set, an endpoint at its cap is passed over as if
already tried; when every endpoint is, `pick` returns None, sets `saturated` and counts
an overflow (the caller answers 503 or refuses the connection), as Envoy's circuit
breakers do.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Sequence
from typing import ClassVar

from discovery.snapshot import EndpointInfo

Address = tuple[str, int]
NO_SKIP: frozenset[int] = frozenset()
_RNG = random.Random()


def usable(
    endpoints: Sequence[EndpointInfo], weights: Sequence[float] | None
) -> tuple[tuple[EndpointInfo, ...], tuple[float, ...] | None]:
    """Endpoints and weights with zero weights dropped and repeats merged (weights
    summed); weights None when they are all equal."""
    if weights is None:
        eps = tuple(endpoints)
        if len({(e.ip, e.port) for e in eps}) == len(eps):
            return eps, None
        weights = [1.0] * len(eps)
    if len(weights) != len(endpoints):
        raise ValueError(f"{len(endpoints)} endpoints but {len(weights)} weights")
    firsts: dict[Address, EndpointInfo] = {}
    totals: dict[Address, float] = {}
    for ep, w in zip(endpoints, weights, strict=True):
        if w == 0:
            continue
        if not 0 < w < math.inf:  # also refuses NaN
            raise ValueError(f"weight of {ep.address} must be finite and >= 0, got {w}")
        addr = (ep.ip, ep.port)
        if addr in totals:
            totals[addr] += w
        else:
            firsts[addr] = ep
            totals[addr] = float(w)
    eps = tuple(firsts.values())
    ws = tuple(totals.values())
    if len(set(ws)) <= 1:
        return eps, None
    return eps, ws


class Balancer:
    """Base of every algorithm; subclasses implement `_choose` and may hook `_rebuild`
    (endpoints changed) and `_observe` (a latency came in)."""

    policy: ClassVar[str] = ""
    needs_key: ClassVar[bool] = False  # True: pick() hashes its key (maglev)
    observes: ClassVar[bool] = False  # True: latencies matter (`_observe`)

    __slots__ = (
        "_endpoints",
        "_index",
                "_weights",
        "active",
        "connecting",
        "generation",
        "last_index",
        "max_active",
        "max_connecting",
        "overflows",
        "rng",
        "saturated",
    )

    def __init__(
        self,
        endpoints: Sequence[EndpointInfo] = (),
        weights: Sequence[float] | None = None,
        *,
        rng: random.Random | None = None,
        max_active: int = 0,
        max_connecting: int = 0,
    ) -> None:
        self.rng = rng or _RNG
        self.max_active = max_active  # 0: no cap
        self.max_connecting = max_connecting
        self.overflows = 0
        self.saturated = False  # the last pick found every endpoint at its cap
        self._endpoints: tuple[EndpointInfo, ...] = ()
        self._weights: tuple[float, ...] | None = None
        self._index: dict[Address, int] = {}
        self.active: list[int] = []
        self.connecting: list[int] = []
        self.generation = 0  # bumped by update: indexes of older picks may be stale
        self.last_index = -1  # the index of the last pick
        self._setup()
        self.update(endpoints, weights)

    @property
    def endpoints(self) -> tuple[EndpointInfo, ...]:
        return self._endpoints

    @property
    def weights(self) -> tuple[float, ...] | None:
        """Per-endpoint weights, or None when all are equal."""
        return self._weights

    def update(
        self, endpoints: Sequence[EndpointInfo], weights: Sequence[float] | None = None
    ) -> None:
        """New endpoint list; counts of endpoints that stay are kept."""
        eps, ws = usable(endpoints, weights)
        old_eps, old_index = self._endpoints, self._index
        old_active, old_connecting = self.active, self.connecting
        index = {(ep.ip, ep.port): i for i, ep in enumerate(eps)}
        active = [0] * len(eps)
        connecting = [0] * len(eps)
        for addr, i in index.items():
            j = old_index.get(addr)
            if j is not None:
                active[i] = old_active[j]
                connecting[i] = old_connecting[j]
        self._endpoints, self._weights, self._index = eps, ws, index
        self.active, self.connecting = active, connecting
        self.generation += 1
        self._rebuild(old_eps, old_index)

    # -- the protocol ------------------------------------------------------------------------
    def pick(
        self, key: bytes | str | None = None, tried: Collection[EndpointInfo] = ()
    ) -> EndpointInfo | None:
        """An endpoint for a new connection or request (counted active until `done`), or
        None when there is none, every one was tried, or every one is at its cap."""
        n = len(self._endpoints)
        if not n:
            return None
        skip: Collection[int] = NO_SKIP
        if tried:
            index = self._index
            skip = {i for e in tried if (i := index.get((e.ip, e.port))) is not None}
            if len(skip) >= n:
                return None
        i = self._choose(key, skip)
        if i < 0:
            return None
        active, connecting = self.active, self.connecting
        cap_a, cap_c = self.max_active, self.max_connecting
        if (cap_a and active[i] >= cap_a) or (cap_c and connecting[i] >= cap_c):
            i = self._choose_under_caps(key, skip, i)
            if i < 0:
                self.saturated = True
                self.overflows += 1
                return None
        self.saturated = False
        active[i] += 1
        connecting[i] += 1
        self.last_index = i
        return self._endpoints[i]

    def lease(
        self, key: bytes | str | None, tried: Collection[EndpointInfo], now: float
    ) -> Lease | None:
        """`pick`, held in a Lease that ends it (None when pick gives None)."""
        ep = self.pick(key, tried)
        if ep is None:
            return None
        return Lease(self, ep, now, self.last_index)

    def pick_this(self, ep: EndpointInfo) -> bool:
        """Count a pick of this very endpoint (session affinity); False when it is not in
        the list or at its cap."""
        i = self._index.get((ep.ip, ep.port))
        if i is None or ((self.max_active or self.max_connecting) and self._full(i)):
            return False
        self.active[i] += 1
        self.connecting[i] += 1
        self.last_index = i
        return True

    def pick_excluding(
        self, tried: Collection[EndpointInfo], key: bytes | str | None = None
    ) -> EndpointInfo | None:
        return self.pick(key, tried)

    def connected(self, ep: EndpointInfo, latency: float | None = None) -> None:
        i = self._index.get((ep.ip, ep.port))
        if i is not None:
            self._connected(i, latency)

    def done(self, ep: EndpointInfo, latency: float | None = None, up: bool = True) -> None:
        i = self._index.get((ep.ip, ep.port))
        if i is not None:
            self._done(i, latency, up)

    def _connected(self, i: int, latency: float | None) -> None:
        if self.connecting[i] > 0:
            self.connecting[i] -= 1
        if latency is not None and self.observes:
            self._observe(i, latency)

    def _done(self, i: int, latency: float | None, up: bool) -> None:
        if self.active[i] > 0:
            self.active[i] -= 1
        if not up and self.connecting[i] > 0:
            self.connecting[i] -= 1
        if latency is not None and self.observes:
            self._observe(i, latency)

    # -- for subclasses ----------------------------------------------------------------------
    def _setup(self) -> None:
        """Initialise the subclass's own state (before the first `_rebuild`)."""

    def _choose(self, key: bytes | str | None, skip: Collection[int]) -> int:
        """The index of the endpoint to use, not in `skip`; -1 when all are skipped."""
        raise NotImplementedError

    def _rebuild(self, old: tuple[EndpointInfo, ...], old_index: dict[Address, int]) -> None:
        """Endpoints or weights changed (self._endpoints, _weights, _index are new)."""

    def _observe(self, i: int, latency: float) -> None:
        """A pick of endpoint i ended after `latency` seconds."""

    # -- caps --------------------------------------------------------------------------------
    def _full(self, i: int) -> bool:
        return bool(
            (self.max_active and self.active[i] >= self.max_active)
            or (self.max_connecting and self.connecting[i] >= self.max_connecting)
        )

    def _choose_under_caps(self, key: bytes | str | None, skip: Collection[int], i: int) -> int:
        passed = set(skip)
        n = len(self._endpoints)
        while i >= 0 and self._full(i):
            passed.add(i)
            if len(passed) >= n:
                return -1
            i = self._choose(key, passed)
        return i


class Lease:
    """One pick held by a connection (L4) or a request (L7) until it ends.

    `connected()` when the upstream connection is up, `end()` at the end (again is
    harmless), which releases the endpoint's counts. Given `now` (same clock as
    `started`), either reports the time since `started` to the balancer, which EWMA
    learns from: L4 reports connect time, L7 the time to the end of the response.
    Made by `Balancer.lease` it knows the endpoint's index (no lookup while the
    endpoints did not change); made by hand it looks the endpoint up by address.
    """

    __slots__ = ("balancer", "endpoint", "generation", "index", "started", "up")

    def __init__(
        self, balancer: Balancer, endpoint: EndpointInfo, started: float, index: int = -1
    ) -> None:
        self.balancer: Balancer | None = balancer
        self.endpoint = endpoint
        self.started = started
        self.index = index
        self.generation = balancer.generation if index >= 0 else -1
        self.up = False

    def _where(self, b: Balancer) -> int | None:
        if self.generation == b.generation:
            return self.index
        ep = self.endpoint
        return b._index.get((ep.ip, ep.port))

    def connected(self, now: float | None = None) -> None:
        b = self.balancer
        if not self.up and b is not None:
            self.up = True
            i = self._where(b)
            if i is not None:
                b._connected(i, None if now is None else now - self.started)

    def end(self, now: float | None = None) -> None:
        b = self.balancer
        if b is not None:
            self.balancer = None
            i = self._where(b)
            if i is not None:
                b._done(i, None if now is None else now - self.started, self.up)
