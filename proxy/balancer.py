"""Load balancing as the L4 and L7 proxies use it: a balancer per service port (chosen by
the Service's seaway.dev/load-balancer annotation), held picks (`Lease`), and ClientIP
session affinity on top (`Picker`). The algorithms are in proxy/balancers/.

Pure logic: no sockets, no asyncio. Clocks and random sources are injected.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Container, Sequence
from dataclasses import dataclass
from typing import Final

from discovery.model import DEFAULT_LOAD_BALANCER
from discovery.snapshot import EndpointInfo
from proxy.balancers.base import Balancer, Lease
from proxy.balancers.least_request import Ewma, LeastRequest
from proxy.balancers.maglev import Maglev
from proxy.balancers.round_robin import RoundRobin

__all__ = [
    "NO_LIMITS",
    "Balancer",
    "ClientIPAffinity",
    "EndpointLimits",
    "Ewma",
    "Lease",
    "LeastRequest",
    "Maglev",
    "Picker",
    "RoundRobin",
    "new_balancer",
    "spread_weights",
]


@dataclass(frozen=True, slots=True)
class EndpointLimits:
    """Per-endpoint caps (circuit breaking); 0 = none. `max_active`: connections at L4,
    requests in flight at L7; `max_connecting`: connects in progress."""

    max_active: int = 0
    max_connecting: int = 0


NO_LIMITS: Final = EndpointLimits()


def new_balancer(
    policy: str = DEFAULT_LOAD_BALANCER,
    endpoints: Sequence[EndpointInfo] = (),
    weights: Sequence[float] | None = None,
    *,
    clock: Callable[[], float],
    rng: random.Random | None = None,
    limits: EndpointLimits = NO_LIMITS,
) -> Balancer:
    """The balancer for a policy name (discovery.model.LOAD_BALANCER_POLICIES)."""
    caps = {"max_active": limits.max_active, "max_connecting": limits.max_connecting}
    if policy == "round-robin":
        return RoundRobin(endpoints, weights, rng=rng, **caps)
    if policy == "least-request":
        return LeastRequest(endpoints, weights, rng=rng, **caps)
    if policy == "ewma":
        return Ewma(endpoints, weights, rng=rng, clock=clock, **caps)
    if policy == "maglev":
        return Maglev(endpoints, weights, rng=rng, **caps)
    raise ValueError(f"unknown load balancer {policy!r}")


def spread_weights(
    backends: Sequence[tuple[float, Sequence[EndpointInfo]]],
) -> tuple[tuple[EndpointInfo, ...], tuple[float, ...]]:
    """Backend weights (HTTPRoute backendRefs, canary) -> per-endpoint weights: a
    backend's weight is shared evenly by its endpoints, so backend A of weight 90 with
    three endpoints and backend B of weight 10 with one get 90% / 10% of the picks."""
    endpoints: list[EndpointInfo] = []
    weights: list[float] = []
    for weight, eps in backends:
        if eps:
            share = weight / len(eps)
            endpoints.extend(eps)
            weights.extend([share] * len(eps))
    return tuple(endpoints), tuple(weights)


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
    """A service port's balancer plus optional ClientIP affinity: what its proxy asks.

    `pick(client_ip, tried)` returns the affine endpoint when there is one (not already
    tried, not at its cap), else what the balancer picks (hashing the client IP when it
    hashes), and records the choice for affinity. `lease` holds the pick in a Lease that
    ends it; `pick` leaves it counted until `balancer.done`.
    """

    __slots__ = ("_members", "affinity", "balancer")

    def __init__(
        self,
        balancer: Balancer,
        affinity_timeout: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.balancer = balancer
        self._members = frozenset(balancer.endpoints)
        self.affinity: ClientIPAffinity | None = None
        self.set_affinity(affinity_timeout, clock)

    @property
    def endpoints(self) -> tuple[EndpointInfo, ...]:
        return self.balancer.endpoints

    def set_affinity(self, timeout: float | None, clock: Callable[[], float] | None = None) -> None:
        if timeout is None:
            self.affinity = None
        elif self.affinity is None:
            if clock is None:
                raise ValueError("session affinity needs a clock")
            self.affinity = ClientIPAffinity(timeout, clock)
        else:
            self.affinity.timeout = timeout

    def set_balancer(self, balancer: Balancer) -> None:
        """Another policy: open picks end on the balancer they came from."""
        self.balancer = balancer
        self._members = frozenset(balancer.endpoints)

    def update(
        self, endpoints: Sequence[EndpointInfo], weights: Sequence[float] | None = None
    ) -> None:
        self.balancer.update(endpoints, weights)
        self._members = frozenset(self.balancer.endpoints)

    def lease(
        self, client_ip: str, tried: Collection[EndpointInfo], now: float
    ) -> Lease | None:
        """The affine endpoint when there is one (not tried, not at its cap), else the
        balancer's pick (hashing the client IP when it hashes), in a Lease."""
        bal = self.balancer
        key = client_ip if bal.needs_key else None
        aff = self.affinity
        if aff is None:
            return bal.lease(key, tried, now)
        ep = aff.lookup(client_ip, self._members)
        if ep is not None and ep not in tried:
            held = bal.hold(ep, now)
            if held is not None:
                aff.record(client_ip, ep)
                return held
            tried = (*tried, ep)  # at its cap: this connection goes elsewhere
        lease = bal.lease(key, tried, now)
        if lease is not None:
            aff.record(client_ip, lease.endpoint)
        else:
            aff.forget(client_ip)
        return lease

    def pick(self, client_ip: str, tried: Collection[EndpointInfo] = ()) -> EndpointInfo | None:
        """`lease` without the Lease (the pick stays counted until `balancer.done`)."""
        lease = self.lease(client_ip, tried, 0.0)
        return lease.endpoint if lease is not None else None
