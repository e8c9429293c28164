"""Per-worker state of the filters, and where plans get attached to a new route table.

One FilterRuntime per ProxyContext (``ctx.filters``). It outlives route tables: rate-limit
zones are kept by the route and the limit they serve, so a configuration change that
leaves a route's RateLimit as it was does not reset its counts (ingress-nginx keeps its
nginx zones across reloads the same way). It holds the pools of connections the filters
open themselves (TLS to pods, subrequests), the consistent hash rings of hashed backends
and the clocks (injectable for tests).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from discovery.snapshot import EndpointInfo
from ingress.filters.hashring import HashRing
from ingress.filters.plan import RoutePlan, compile_plan
from ingress.filters.ratelimit import ConcurrencyZone, RateZone
from ingress.filters.subrequest import Resolver
from ingress.pool import PoolSet

if TYPE_CHECKING:
    from ingress.context import ProxyContext

Clock = Callable[[], float]
ZONES_KEPT = 4096  # zones of routes no table uses any more are dropped beyond this


class FilterRuntime:
    __slots__ = (
        "_rings",
        "_tls_pools",
        "_zones",
        "auth_tls",
        "clock",
        "ctx",
        "resolver",
        "subrequest_pools",
        "wall",
    )

    def __init__(self, ctx: ProxyContext, clock: Clock | None = None) -> None:
        self.ctx = ctx
        loop = ctx.loop
        self.clock: Clock = clock or loop.time  # rate limits
        self.wall: Clock = time.time  # cookie Expires
        s = ctx.settings
        self._tls_pools: dict[int, PoolSet] = {}  # per TLS context (id)
        self.subrequest_pools = PoolSet(loop, s.pool_max_idle, s.pool_idle_timeout)
        self.resolver = Resolver(loop)
        # https auth URLs: SNI sent, certificate not checked (nginx's proxy_ssl defaults).
        self.auth_tls = ssl.create_default_context()
        self.auth_tls.check_hostname = False
        self.auth_tls.verify_mode = ssl.CERT_NONE
        self._zones: dict[tuple[Any, ...], RateZone | ConcurrencyZone] = {}
        self._rings: dict[str, HashRing] = {}

    def rate_zone(self, key: tuple[Any, ...], rate: float, burst: float) -> RateZone:
        """The zone kept under `key` (the route and its limit), made on first use."""
        zone = self._zones.get(key)
        if not isinstance(zone, RateZone):
            self._trim()
            zone = self._zones[key] = RateZone(rate, burst, lambda: self.clock())
        return zone

    def concurrency_zone(self, key: tuple[Any, ...], limit: int) -> ConcurrencyZone:
        zone = self._zones.get(key)
        if not isinstance(zone, ConcurrencyZone):
            self._trim()
            zone = self._zones[key] = ConcurrencyZone(limit)
        return zone

    def _trim(self) -> None:
        if len(self._zones) >= ZONES_KEPT:
            for key in list(self._zones)[: ZONES_KEPT // 2]:
                del self._zones[key]

    def ring(self, key: str, endpoints: Sequence[EndpointInfo]) -> HashRing:
        """The hash ring of backend `key` over its current endpoints."""
        ring = self._rings.get(key)
        if ring is None or ring.endpoints != tuple(endpoints):
            if len(self._rings) > 1024:
                self._rings.clear()
            ring = self._rings[key] = HashRing(endpoints)
        return ring

    def tls_pools(self, context: ssl.SSLContext) -> PoolSet:
        """The pools of connections made with `context` (a connection opened without
        checking the certificate must never serve a route that checks it)."""
        pools = self._tls_pools.get(id(context))
        if pools is None:
            s = self.ctx.settings
            pools = self._tls_pools[id(context)] = PoolSet(
                self.ctx.loop, s.pool_max_idle, s.pool_idle_timeout
            )
        return pools

    def close(self) -> None:
        for pools in self._tls_pools.values():
            pools.close()
        self.subrequest_pools.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.ctx.loop


def attach_plans(router: object, ctx: ProxyContext) -> int:
    """Give every RouteResult of `router` (a CompiledTable) that needs one its RoutePlan;
    returns how many got one. Results without filters keep ``plan`` None."""
    if not isinstance(router, Iterable):
        return 0
    runtime = ctx.filters
    if runtime is None:
        runtime = ctx.filters = FilterRuntime(ctx)
    made = 0
    for result in router:
        plan: RoutePlan | None = compile_plan(result, runtime)
        result.plan = plan
        if plan is not None:
            made += 1
            if not plan.repeatable:
                result.repeatable = False  # the exact-bytes memo must route it again
    return made
