"""Load-balancing algorithms shared by the L4 and L7 proxies.

Pure logic: no sockets, no asyncio. The clock used for session affinity is injected.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence

from discovery.snapshot import EndpointInfo


class RoundRobin:
    """Round robin over a list of endpoints that can be replaced in place.

    `update` keeps the rotation position (modulo the new length), so a config change
    does not send the next requests all to the first endpoint again.
    """

    __slots__ = ("_endpoints", "_next")

    def __init__(self, endpoints: Sequence[EndpointInfo] = ()) -> None:
        self._endpoints: tuple[EndpointInfo, ...] = tuple(endpoints)
        self._next = 0

    @property
    def endpoints(self) -> tuple[EndpointInfo, ...]:
        return self._endpoints

    def update(self, endpoints: Sequence[EndpointInfo]) -> None:
        self._endpoints = tuple(endpoints)
        if self._endpoints:
            self._next %= len(self._endpoints)
        else:
            self._next = 0

    def pick(self) -> EndpointInfo | None:
        eps = self._endpoints
        if not eps:
            return None
        i = self._next
        if i >= len(eps):
            i = 0
        self._next = i + 1
        return eps[i]

    def pick_excluding(self, tried: Container[EndpointInfo]) -> EndpointInfo | None:
        """The next endpoint in rotation that is not in `tried`, or None when all were."""
        eps = self._endpoints
        n = len(eps)
        for _ in range(n):
            ep = self.pick()
            if ep is not None and ep not in tried:
                return ep
        return None


class ClientIPAffinity:
    """ClientIP session affinity: a client keeps its endpoint while it stays in use.

    Like kube-proxy, the timeout is a sliding window: every `record` refreshes it. Stale
    entries are dropped lazily on lookup and by `expire`, which callers run now and then.
    """

    __slots__ = ("_clock", "_entries", "timeout")

    def __init__(self, timeout: float, clock: Callable[[], float]) -> None:
        self.timeout = timeout
        self._clock = clock
        self._entries: dict[str, tuple[EndpointInfo, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, client_ip: str, usable: Container[EndpointInfo]) -> EndpointInfo | None:
        """The endpoint this client is stuck to, if still usable and not expired."""
        entry = self._entries.get(client_ip)
        if entry is None:
            return None
        ep, last = entry
        if self._clock() - last > self.timeout or ep not in usable:
            del self._entries[client_ip]
            return None
        return ep

    def record(self, client_ip: str, endpoint: EndpointInfo) -> None:
        self._entries[client_ip] = (endpoint, self._clock())

    def forget(self, client_ip: str) -> None:
        self._entries.pop(client_ip, None)

    def expire(self) -> int:
        """Drop expired entries; returns how many were dropped."""
        deadline = self._clock() - self.timeout
        stale = [ip for ip, (_, last) in self._entries.items() if last < deadline]
        for ip in stale:
            del self._entries[ip]
        return len(stale)


class Picker:
    """Round robin plus optional ClientIP affinity: what a service port's proxy asks.

    `pick(client_ip, tried)` returns the affine endpoint when there is one (and it was not
    already tried), else the next round-robin endpoint not in `tried`, and records the
    choice for affinity.
    """

    __slots__ = ("_members", "affinity", "rr")

    def __init__(
        self,
        endpoints: Sequence[EndpointInfo] = (),
        affinity_timeout: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.rr = RoundRobin(endpoints)
        self._members = frozenset(self.rr.endpoints)
        self.affinity: ClientIPAffinity | None = None
        self.set_affinity(affinity_timeout, clock)

    @property
    def endpoints(self) -> tuple[EndpointInfo, ...]:
        return self.rr.endpoints

    def set_affinity(self, timeout: float | None, clock: Callable[[], float] | None = None) -> None:
        if timeout is None:
            self.affinity = None
        elif self.affinity is None:
            if clock is None:
                raise ValueError("session affinity needs a clock")
            self.affinity = ClientIPAffinity(timeout, clock)
        else:
            self.affinity.timeout = timeout

    def update(self, endpoints: Sequence[EndpointInfo]) -> None:
        self.rr.update(endpoints)
        self._members = frozenset(self.rr.endpoints)

    def pick(self, client_ip: str, tried: Container[EndpointInfo] = ()) -> EndpointInfo | None:
        aff = self.affinity
        if aff is None:
            return self.rr.pick_excluding(tried) if tried else self.rr.pick()
        ep = aff.lookup(client_ip, self._members)
        if ep is not None and ep not in tried:
            aff.record(client_ip, ep)
            return ep
        ep = self.rr.pick_excluding(tried)
        if ep is not None:
            aff.record(client_ip, ep)
        else:
            aff.forget(client_ip)
        return ep
