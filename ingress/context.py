"""What every downstream connection of one worker shares: settings, routes, balancers, pools."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from random import random
from typing import Protocol

from discovery.snapshot import EndpointInfo
from ingress.outbox import Outbox
from ingress.pool import PoolSet
from ingress.request import KnownRequest, RequestState
from ingress.route_conditions import no_header
from ingress.settings import HttpSettings
from proxy.balancer import RoundRobin

KNOWN_REQUESTS_SIZE = 1024  # request heads remembered (cleared when full)
KNOWN_REQUEST_BYTES = 4096  # longer heads are not remembered


class RouteLike(Protocol):
    """The part of ingress.route_match.RouteResult the proxy reads (and ``cache``, a slot
    the hot path may use for its per-worker state of that route: balancer, pool...)."""

    cache: object

    @property
    def status(self) -> int: ...

    @property
    def endpoints(self) -> tuple[EndpointInfo, ...]: ...

    @property
    def key(self) -> str: ...

    @property
    def split(self) -> tuple[RouteLike, ...] | None: ...

    def pick(self, value: float) -> RouteLike: ...


class RouterLike(Protocol):
    """The part of ingress.route_match.CompiledTable the proxy uses."""

    @property
    def uses_headers(self) -> bool: ...

    def match(
        self,
        host: bytes | None,
        target: bytes,
        method: bytes,
        header: Callable[[bytes], bytes | None],
    ) -> RouteLike: ...


def header_in_lines(lines: list[bytes], name: bytes) -> bytes | None:
    """The first value of header `name` (lower case) in head lines b"Name: value\\r\\n"
    (several lines may share one element, as RequestState.fwd holds a known head). Until
    RequestState reads fields from the raw head itself, this is how route conditions see
    headers: the forwarded lines, so hop-by-hop and X-Forwarded-* fields are not seen."""
    for chunk in lines:
        for line in chunk.split(b"\r\n"):
            field, colon, value = line.partition(b":")
            if colon and field.strip().lower() == name:
                return value.strip()
    return None


class ProxyContext:
    """Swapped in place on a config change: new requests see the new router at once."""

    __slots__ = (
        "balancers",
        "connections",
        "known_requests",
        "loop",
        "outbox",
        "pools",
        "router",
        "settings",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        settings: HttpSettings,
        router: RouterLike,
        pools: PoolSet | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.loop = loop
        self.settings = settings
        self.router = router
        self.pools = pools or PoolSet(loop, settings.pool_max_idle, settings.pool_idle_timeout)
        self.outbox = Outbox(loop.call_soon) if outbox is None else outbox
        self.balancers: dict[str, RoundRobin] = {}
        self.connections: set[asyncio.Protocol] = set()
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
        """The route of a request, on its raw bytes (ingress/route_match.py); a weighted
        Forward's backend is picked here. Headers are read only when some route of the
        table matches on them."""
        router = self.router
        header = partial(header_in_lines, req.fwd) if router.uses_headers else no_header
        route = router.match(req.host, req.url, req.method, header)
        if route.split is not None:
            route = route.pick(random())
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
