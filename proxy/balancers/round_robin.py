"""Round robin; weighted round robin by earliest deadline first (Envoy's scheduler)."""

from __future__ import annotations

import heapq
from collections.abc import Collection

from discovery.snapshot import EndpointInfo
from proxy.balancers.base import Address, Balancer, Lease, held


class RoundRobin(Balancer):
    """Each endpoint in turn. `update` keeps the rotation position (modulo the new
    length), so a config change does not send the next picks all to the first endpoint.

    Weighted: every endpoint has a deadline that advances by 1/weight each time it is
    picked, and the earliest deadline goes next (ties by position). Over any stretch the
    picks follow the weights within one pick per endpoint, interleaved, never in bursts.
    Endpoints that stay across an update keep their deadlines.
    """

    policy = "round-robin"

    __slots__ = ("_heap", "_next", "_now")

    def _setup(self) -> None:
        self._next = 0
        self._now = 0.0  # the deadline of the last weighted pick
        self._heap: list[tuple[float, int]] = []

    def _rebuild(self, old: tuple[EndpointInfo, ...], old_index: dict[Address, int]) -> None:
        n = len(self._endpoints)
        self._next = self._next % n if n else 0
        ws = self._weights
        if ws is None:
            self._heap = []
            return
        kept = {i: d for d, i in self._heap}
        heap: list[tuple[float, int]] = []
        now = self._now
        for i, ep in enumerate(self._endpoints):
            j = old_index.get((ep.ip, ep.port))
            deadline = kept.get(j) if j is not None else None
            heap.append((now + 1.0 / ws[i] if deadline is None else deadline, i))
        heapq.heapify(heap)
        self._heap = heap

    def lease(
        self, key: bytes | str | None, tried: Collection[EndpointInfo], now: float
    ) -> Lease | None:
        # The common case inlined: unweighted, nothing tried, the next one under its caps.
        n = len(self._endpoints)
        i = self._next
        if i >= n:
            i = 0
        active = self.active
        if (
            tried
            or self.out
            or not n
            or self._weights is not None
            or active[i] >= self._cap_active
            or self.connecting[i] >= self._cap_connecting
        ):
            return Balancer.lease(self, key, tried, now)
        self._next = i + 1
        self.saturated = False
        active[i] += 1
        return held(self, i, now)

    def _choose(self, key: bytes | str | None, skip: Collection[int]) -> int:
        if self._weights is not None:
            return self._choose_weighted(skip)
        n = len(self._endpoints)
        i = self._next
        if i >= n:
            i = 0
        if skip:
            for _ in range(n):
                if i not in skip:
                    break
                i = i + 1 if i + 1 < n else 0
            else:
                return -1
        self._next = i + 1
        return i

    def _choose_weighted(self, skip: Collection[int]) -> int:
        heap = self._heap
        ws = self._weights
        assert ws is not None
        if not skip:
            deadline, i = heap[0]
            heapq.heapreplace(heap, (deadline + 1.0 / ws[i], i))
            self._now = deadline
            return i
        passed: list[tuple[float, int]] = []
        chosen = -1
        while heap:
            deadline, i = heapq.heappop(heap)
            if i in skip:
                passed.append((deadline, i))
                continue
            heapq.heappush(heap, (deadline + 1.0 / ws[i], i))
            self._now = deadline
            chosen = i
            break
        for entry in passed:
            heapq.heappush(heap, entry)
        return chosen
