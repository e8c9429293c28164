"""Least request by the power of two choices (Envoy's LEAST_REQUEST, its recommended
default), and EWMA latency (ingress-nginx's `load-balance: ewma`), which picks the same
way with another score.

Power of two choices: look at two endpoints, keep the one with the lower score. Looking
at two instead of all avoids the herd that "the least loaded of all" causes when many
pickers share stale counts, and costs O(1). Here the first of the two is the next in
(weighted) round-robin order and the second a random draw (by weight), and ties go to
the first: while nothing is in flight the picks are exactly round robin (a quiet service
is spread evenly, and six curls see each of three endpoints twice), and under load the
random second choice steers around the loaded endpoints as two random choices do.

Weighted: least request divides the active count by the weight, so under load the
active counts settle in proportion to the weights. EWMA compares latencies as they are
(a heavier endpoint is not faster): the weights set how often an endpoint is one of the
two compared, so endpoints of equal latency get picks in proportion to their weights.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Collection, Sequence
from itertools import accumulate
from typing import Final

from discovery.snapshot import EndpointInfo
from proxy.balancers.base import Address, Balancer, Lease, held
from proxy.balancers.round_robin import RoundRobin

DECAY_TIME: Final = 10.0  # seconds: ingress-nginx's EWMA decay time


def _decayed(ewma: float, idle: float) -> float:
    if not ewma:
        return 0.0
    return ewma * math.exp(-idle / DECAY_TIME) if idle > 0 else ewma


class PowerOfTwo(RoundRobin):
    """The choice; subclasses give the score (`_cost`). The round-robin state (rotation,
    weighted schedule) is RoundRobin's."""

    __slots__ = ("_cum",)

    def _setup(self) -> None:
        super()._setup()
        self._cum: list[float] = []

    def _rebuild(self, old: tuple[EndpointInfo, ...], old_index: dict[Address, int]) -> None:
        super()._rebuild(old, old_index)
        ws = self._weights
        self._cum = list(accumulate(ws)) if ws is not None else []

    def lease(
        self, key: bytes | str | None, tried: Collection[EndpointInfo], now: float
    ) -> Lease | None:
        return Balancer.lease(self, key, tried, now)  # not round robin's shortcut

    def _choose(self, key: bytes | str | None, skip: Collection[int]) -> int:
        a = super()._choose(key, skip)
        n = len(self._endpoints)
        if a < 0 or n - len(skip) <= 1:
            return a
        r = self.rng.random
        if self._weights is None:
            b = int(r() * (n - 1))
            if b >= a:
                b += 1
        else:
            cum = self._cum
            b = min(bisect.bisect_right(cum, r() * cum[-1]), n - 1)
        if b == a or b in skip:
            return a  # one candidate this time (skip is rare: retries, caps)
        return b if self._cost(b) < self._cost(a) else a

    def _cost(self, i: int) -> float:
        raise NotImplementedError


class LeastRequest(PowerOfTwo):
    """Fewer active requests (L7) or connections (L4) per unit of weight wins."""

    policy = "least-request"

    __slots__ = ()

    def lease(
        self, key: bytes | str | None, tried: Collection[EndpointInfo], now: float
    ) -> Lease | None:
        # The common case inlined: unweighted, nothing tried, the choice under its caps.
        n = len(self._endpoints)
        if tried or self.out or not n or self._weights is not None:
            return Balancer.lease(self, key, tried, now)
        a = self._next
        if a >= n:
            a = 0
        i = a
        active = self.active
        if n > 1:
            b = self.rng.getrandbits(32) % (n - 1)  # (int(random() * m) costs 3x more)
            if b >= a:
                b += 1
            if active[b] < active[a]:
                i = b
        if active[i] >= self._cap_active or self.connecting[i] >= self._cap_connecting:
            return Balancer.lease(self, key, tried, now)
        self._next = a + 1
        self.saturated = False
        active[i] += 1
        return held(self, i, now)

    def _choose(self, key: bytes | str | None, skip: Collection[int]) -> int:
        if skip or self._weights is not None:
            return super()._choose(key, skip)
        # the common case inlined: unweighted, nothing to skip (a pick is ~1 us of CPython)
        n = len(self._endpoints)
        a = self._next
        if a >= n:
            a = 0
        self._next = a + 1
        if n == 1:
            return a
        b = self.rng.getrandbits(32) % (n - 1)
        if b >= a:
            b += 1
        active = self.active
        return b if active[b] < active[a] else a

    def _cost(self, i: int) -> float:
        ws = self._weights
        return self.active[i] / ws[i] if ws is not None else self.active[i]


class Ewma(PowerOfTwo):
    """Lower expected latency wins: an exponentially weighted moving average of the
    latency `done` reports, decaying toward 0 with time (DECAY_TIME), times one plus the
    active requests (Finagle's peak EWMA load term, so a slow burst spreads). As in
    ingress-nginx, an endpoint's average decays while it is not used, so a once-slow
    endpoint gets tried again; endpoints added by an update start at the mean of the
    others. The clock is injected (seconds, monotonic).
    """

    policy = "ewma"

    __slots__ = ("_clock", "_ewma", "_touched")

    def __init__(
        self,
        endpoints: Sequence[EndpointInfo] = (),
        weights: Sequence[float] | None = None,
        *,
        clock: Callable[[], float],
        rng: random.Random | None = None,
        max_active: int = 0,
        max_connecting: int = 0,
    ) -> None:
        self._clock = clock
        super().__init__(
            endpoints, weights, rng=rng, max_active=max_active, max_connecting=max_connecting
        )
        self.observes = True

    def _setup(self) -> None:
        super()._setup()
        self._ewma: list[float] = []
        self._touched: list[float] = []

    def _rebuild(self, old: tuple[EndpointInfo, ...], old_index: dict[Address, int]) -> None:
        super()._rebuild(old, old_index)
        old_ewma, old_touched = self._ewma, self._touched
        now = self._clock()
        decayed = [_decayed(e, now - t) for e, t in zip(old_ewma, old_touched, strict=True)]
        mean = sum(decayed) / len(decayed) if decayed else 0.0
        ewma: list[float] = []
        touched: list[float] = []
        for ep in self._endpoints:
            j = old_index.get((ep.ip, ep.port))
            if j is not None:
                ewma.append(old_ewma[j])
                touched.append(old_touched[j])
            else:
                ewma.append(mean)
                touched.append(now if mean else -math.inf)
        self._ewma, self._touched = ewma, touched

    def latency(self, i: int) -> float:
        """Endpoint i's average latency as of now (decayed)."""
        return _decayed(self._ewma[i], self._clock() - self._touched[i])

    def _cost(self, i: int) -> float:
        return self.latency(i) * (self.active[i] + 1)

    def _observe(self, i: int, latency: float) -> None:
        now = self._clock()
        idle = now - self._touched[i]
        w = math.exp(-idle / DECAY_TIME) if idle > 0 else 1.0
        self._ewma[i] = self._ewma[i] * w + latency * (1.0 - w)
        self._touched[i] = now
