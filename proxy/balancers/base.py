"""What every balancer shares: the endpoints and their weights, per-endpoint counts of
active picks and of connects in progress, per-endpoint caps (circuit breaking), and the
call protocol, through a Lease (one per connection at L4, per request at L7):

    lease = bal.lease(key, tried, now)   # an endpoint, counted active; None: none
    lease.begin_connect()                # a new upstream connection is being opened
    lease.connected(now)                 # ... and it is up (L4 reports connect time)
    lease.end(now)                       # the request or connection ended (once; again
                                         # is harmless); a connect still open ends too

A request that reuses a pooled connection calls neither connect method. Given `now`, the
time since the lease began feeds the latency-aware balancer (EWMA); the others ignore it,
and `lease.timed` says whether a clock read is worth it. `pick`/`done` are the same
without a Lease (tests, simple callers). An endpoint that left the list meanwhile is
ignored when its lease ends.

Weights: endpoints come with optional weights (canary and HTTPRoute backend weights
spread over a backend's endpoints). A weight of 0 takes the endpoint out; equal weights
are the unweighted case (each algorithm has a faster path for it). Counts are kept per
address (ip, port), so an endpoint whose conditions change keeps its counts.

Caps: with `max_active` (connections at L4, requests in flight at L7) or
`max_connecting` (connects in progress) set, an endpoint at its cap is passed over as if
already tried; when every endpoint is, `pick` returns None, sets `saturated` and counts
an overflow (the caller answers 503 or refuses the connection), as Envoy's circuit
breakers do.

Health: a balancer with a `health` (proxy/outlier.py ServiceHealth, attached by the
proxy) skips the endpoints it excludes (ejected by outlier detection, failing active
checks) as if already tried, unless more than half would be (then it spreads over all,
Envoy's panic threshold). A hashed or pinned choice that is excluded falls to the next
choice. The proxy reports what happened through the Lease: `failed(kind)` where a
connect, a response or a connection failed, `answered(status)` where a response head
came in (one call, which only looks further while some endpoint is on a failure streak).
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, ClassVar, Final

from discovery.snapshot import EndpointInfo

if TYPE_CHECKING:
    from proxy.outlier import ServiceHealth

Address = tuple[str, int]
NO_SKIP: frozenset[int] = frozenset()
_NO_CAP: Final = sys.maxsize  # a cap of 0 ("none") as a number no count reaches
_RNG: Final = random.Random()


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

    __slots__ = (
        "_cap_active",
        "_cap_connecting",
        "_endpoints",
        "_index",
        "_index_by_id",
        "_weights",
        "active",
        "connecting",
        "generation",
        "health",
        "max_active",
        "max_connecting",
        "needs_key",
        "observes",
        "out",
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
        # Instance fields, not class attributes: compiled, the per-request reads are
        # struct reads. A subclass sets them after this __init__.
        self.needs_key = False  # True: pick() hashes its key (maglev)
        self.observes = False  # True: latencies matter (`_observe`)
        self.rng = rng or _RNG
        self.max_active = max_active  # 0: no cap (both are set once, here)
        self.max_connecting = max_connecting
        self._cap_active = max_active or _NO_CAP
        self._cap_connecting = max_connecting or _NO_CAP
        self.overflows = 0
        self.saturated = False  # the last pick found every endpoint at its cap
        self._endpoints: tuple[EndpointInfo, ...] = ()
        self._weights: tuple[float, ...] | None = None
        self._index: dict[Address, int] = {}
        # The same by the endpoint object's identity: a caller that holds one of these
        # very objects (a sticky cookie's) finds it without hashing an address.
        self._index_by_id: dict[int, int] = {}
        self.active: list[int] = []
        self.connecting: list[int] = []
        self.generation = 0  # bumped by update: indexes of older picks may be stale
        self.health: ServiceHealth | None = None
        self.out: frozenset[int] = NO_SKIP  # indexes skipped for their health
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
        self._index_by_id = {id(ep): i for i, ep in enumerate(eps)}
        self.active, self.connecting = active, connecting
        self.generation += 1
        self._rebuild(old_eps, old_index)
        if self.health is not None:
            self.health.endpoints_changed(eps)  # (sets `out` for the new indexes)
        elif self.out:
            self.out = NO_SKIP

    def avoiding(self, tried: Collection[EndpointInfo]) -> Collection[EndpointInfo]:
        """`tried` plus the endpoints skipped for their health, for a caller that chooses
        by itself (a sticky cookie, a hash ring) and then `hold`s its choice."""
        out = self.out
        if not out:
            return tried
        eps = self._endpoints
        return (*tried, *(eps[i] for i in out))

    def set_excluded(self, addresses: Collection[Address]) -> None:
        """Skip these endpoints from now on, unless they are more than half (panic)."""
        index = self._index
        out = frozenset(i for a in addresses if (i := index.get(a)) is not None)
        self.out = out if len(out) * 2 <= len(self._endpoints) else NO_SKIP

    # -- the protocol ------------------------------------------------------------------------
    def pick(
        self, key: bytes | str | None = None, tried: Collection[EndpointInfo] = ()
    ) -> EndpointInfo | None:
        """An endpoint for a new connection or request (counted active until `done`), or
        None when there is none, every one was tried, or every one is at its cap."""
        i = self._pick(key, tried)
        return self._endpoints[i] if i >= 0 else None

    def lease(
        self, key: bytes | str | None, tried: Collection[EndpointInfo], now: float
    ) -> Lease | None:
        """`pick`, held in a Lease that ends it (None when pick gives None). Round robin
        and least request override it with their common case inlined (L7 calls this once
        per request), falling back here for the rest."""
        i = self._pick(key, tried)
        if i < 0:
            return None
        return held(self, i, now)

    def hold(self, ep: EndpointInfo, now: float) -> Lease | None:
        """A Lease of this very endpoint, chosen by the caller (session affinity, a sticky
        cookie, a hash of its own): None when it is not in the list, or is at its cap
        (then `saturated` is set; the caller decides whether that is an overflow)."""
        i = self._index_by_id.get(id(ep))
        if i is None or self._endpoints[i] is not ep:  # another object: by its address
            i = self._index.get((ep.ip, ep.port))
        if i is None:
            self.saturated = False
            return None
        return self.hold_at(i, now)

    def hold_at(self, i: int, now: float) -> Lease | None:
        """`hold` of ``endpoints[i]``, for a caller that knows its index (a sticky cookie
        remembers the index its value names)."""
        if self.out and i in self.out:  # (excluded for its health: the caller goes on)
            self.saturated = False
            return None
        if self._full(i):
            self.saturated = True
            return None
        self.saturated = False
        active = self.active
        active[i] = active[i] + 1  # (not +=: compiled, that adds generically)
        return held(self, i, now)

    def choose_index(self, tried: Collection[EndpointInfo] = ()) -> int:
        """The index in ``endpoints`` of the endpoint `pick` would take (-1: none), not
        counted: for a caller that makes its own choice from it and then holds that
        (`hold_at`: a sticky cookie's first pick)."""
        i = self._pick(None, tried)
        if i >= 0:
            active = self.active
            active[i] = active[i] - 1
        return i

    def pick_this(self, ep: EndpointInfo) -> bool:
        """Count a pick of this very endpoint (until `done`); False when it is not in the
        list or at its cap."""
        return self.hold(ep, 0.0) is not None

    def pick_excluding(
        self, tried: Collection[EndpointInfo], key: bytes | str | None = None
    ) -> EndpointInfo | None:
        return self.pick(key, tried)

    def done(self, ep: EndpointInfo, latency: float | None = None) -> None:
        """A pick made with `pick` ended (after `latency` seconds, if known)."""
        i = self._index.get((ep.ip, ep.port))
        if i is not None:
            if self.active[i] > 0:
                self.active[i] -= 1
            if latency is not None and self.observes:
                self._observe(i, latency)

    def _pick(self, key: bytes | str | None, tried: Collection[EndpointInfo]) -> int:
        # Once per request at L7: every attribute read and call here shows in req/s.
        skip: Collection[int]
        out = self.out
        if tried:
            index = self._index
            skip = {i for e in tried if (i := index.get((e.ip, e.port))) is not None}
            if out:
                skip |= out
            if len(skip) >= len(self._endpoints):
                return -1
        elif out:
            skip = out
        elif self._endpoints:
            skip = NO_SKIP
        else:
            return -1
        i = self._choose(key, skip)
        if i < 0:
            return -1
        active = self.active
        if active[i] >= self._cap_active or self.connecting[i] >= self._cap_connecting:
            i = self._choose_under_caps(key, skip, i)
            if i < 0:
                self.saturated = True
                self.overflows += 1
                return -1
        self.saturated = False
        active[i] += 1
        return i

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
        return self.active[i] >= self._cap_active or self.connecting[i] >= self._cap_connecting

    def _choose_under_caps(self, key: bytes | str | None, skip: Collection[int], i: int) -> int:
        passed = set(skip)
        n = len(self._endpoints)
        while i >= 0 and self._full(i):
            passed.add(i)
            if len(passed) >= n:
                return -1
            i = self._choose(key, passed)
        return i


PICKED: Final = 0
CONNECTING: Final = 1
CONNECTED: Final = 2


class Lease:
    """One pick held by a connection (L4) or a request (L7) until it ends (see the
    module docstring). Made by `Balancer.lease` it knows the endpoint's index, valid
    while the balancer's `generation` is unchanged; made by hand it looks the endpoint
    up by address."""

    __slots__ = ("balancer", "endpoint", "generation", "index", "phase", "started", "timed")

    def __init__(self, balancer: Balancer, endpoint: EndpointInfo, started: float) -> None:
        self.balancer: Balancer | None = balancer
        self.endpoint = endpoint
        self.started = started
        self.index = -1
        self.generation = -1
        self.timed = balancer.observes
        self.phase = PICKED

    def _slot(self, b: Balancer) -> int | None:
        if self.generation == b.generation:
            return self.index
        return b._index.get((self.endpoint.ip, self.endpoint.port))

    def begin_connect(self) -> None:
        b = self.balancer
        if b is not None and self.phase == PICKED:
            self.phase = CONNECTING
            i = self._slot(b)
            if i is not None:
                b.connecting[i] += 1

    def connected(self, now: float | None = None) -> None:
        b = self.balancer
        if b is None or self.phase != CONNECTING:
            return
        self.phase = CONNECTED
        i = self._slot(b)
        if i is not None:
            if b.connecting[i] > 0:
                b.connecting[i] -= 1
            if now is not None and self.timed:
                b._observe(i, now - self.started)

    def failed(self, kind: int) -> None:
        """The endpoint failed this pick: a connect, the response's timeout, or a reset
        before any response byte (proxy.outlier CONNECT_FAILED, TIMED_OUT, RESET)."""
        b = self.balancer
        if b is not None:
            h = b.health
            if h is not None:
                h.failure(self.endpoint, kind)

    def answered(self, status: int) -> None:
        """A response head of `status` came from the endpoint (L4: the connect succeeded)."""
        b = self.balancer
        if b is not None:
            h = b.health
            if h is not None and (h.watching or status >= 500):
                h.answered(self.endpoint, status)

    def end(self, now: float | None = None) -> None:
        b = self.balancer
        if b is None:
            return
        self.balancer = None
        if self.generation == b.generation:  # _slot inlined: this runs once per request
            i = self.index
        else:
            found = b._index.get((self.endpoint.ip, self.endpoint.port))
            if found is None:
                return
            i = found
        active = b.active
        if active[i] > 0:
            active[i] -= 1
        if self.phase == CONNECTING and b.connecting[i] > 0:
            b.connecting[i] -= 1
        if now is not None and self.timed:
            b._observe(i, now - self.started)


def held(balancer: Balancer, i: int, now: float) -> Lease:
    """A Lease of endpoint i, already counted active (once per request)."""
    lease = Lease(balancer, balancer._endpoints[i], now)
    lease.index = i
    lease.generation = balancer.generation
    return lease
