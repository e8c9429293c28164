"""What every downstream connection of one worker shares: settings, router, balancers, pools."""

from __future__ import annotations

import asyncio
from typing import Protocol

from discovery.snapshot import EndpointInfo
from ingress.outbox import Outbox
from ingress.pool import PoolSet
from ingress.request import KnownRequest, RequestState
from ingress.settings import HttpSettings
from ingress.stats import RequestStats
from proxy.balancer import RoundRobin

ROUTE_CACHE_SIZE = 4096
KNOWN_REQUESTS_SIZE = 1024  # request heads remembered (cleared when full)
KNOWN_REQUEST_BYTES = 4096  # longer heads are not remembered


class RouteLike(Protocol):
    """The part of ingress.router.Route the proxy reads."""

    @property
    def status(self) -> int: ...

    @property
    def endpoints(self) -> tuple[EndpointInfo, ...]: ...

    @property
    def key(self) -> str: ...


class RouterLike(Protocol):
    def route(self, host: str, path: str) -> RouteLike: ...


class ProxyContext:
    """Swapped in place on a config change: new requests see the new router at once."""

    __slots__ = (
        "_routes",
        "balancers",
        "connections",
        "known_requests",
        "loop",
        "outbox",
        "pools",
        "router",
        "settings",
        "stats",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        settings: HttpSettings,
        router: RouterLike,
        pools: PoolSet | None = None,
        outbox: Outbox | None = None,
        stats: RequestStats | None = None,
    ) -> None:
        self.loop = loop
        self.settings = settings
        self.router = router
        self.stats = RequestStats() if stats is None else stats  # this worker's counters
        self.pools = pools or PoolSet(loop, settings.pool_max_idle, settings.pool_idle_timeout)
        self.outbox = Outbox(loop.call_soon) if outbox is None else outbox
        self.balancers: dict[str, RoundRobin] = {}
        self.connections: set[asyncio.Protocol] = set()
        # (Host, target) -> Route: most traffic repeats a few of them. Cleared on a new
        # router and when full, so it stays small whatever the clients send.
        self._routes: dict[tuple[bytes | None, bytes], RouteLike] = {}
        # Reads that were exactly one plain request head -> its parse (RequestState.known).
        # Per context, because the limits that head passed are this context's settings.
        self.known_requests: dict[bytes, KnownRequest] = {}

    def remember_request(self, head: bytes, known: KnownRequest) -> None:
        if len(head) > KNOWN_REQUEST_BYTES:
            return
        if len(self.known_requests) >= KNOWN_REQUESTS_SIZE:
            self.known_requests.clear()
        self.known_requests[head] = known

    def route(self, req: RequestState) -> RouteLike:
        key = (req.host, req.url)
        route = self._routes.get(key)
        if route is None:
            host = req.host.decode("latin-1") if req.host is not None else ""
            route = self.router.route(host, req.path())
            if len(self._routes) >= ROUTE_CACHE_SIZE:
                self._routes.clear()
            self._routes[key] = route
        return route

    def balancer(self, route: RouteLike) -> RoundRobin:
        """The round-robin state of the route's backend; endpoints refreshed if they changed."""
        eps = route.endpoints
        bal = self.balancers.get(route.key)
        if bal is None:
            bal = self.balancers[route.key] = RoundRobin(eps)
        else:
            current = bal.endpoints
            if current is not eps and current != eps:
                bal.update(eps)
        return bal

    def set_router(self, router: RouterLike) -> None:
        self.router = router
        self._routes = {}
