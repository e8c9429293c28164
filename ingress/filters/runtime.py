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
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from discovery.snapshot import EndpointInfo
from ingress.filters.hashring import HashRing, SubsetRing
from ingress.filters.plan import RoutePlan, compile_plan
from ingress.filters.ratelimit import ConcurrencyZone, RateZone
from ingress.filters.subrequest import Resolver
from ingress.filters.upstream_tls import UpstreamTLS, tls_key, upstream_tls
from ingress.pool import PoolSet
from ingress.route_actions import find_filter
from ingress.route_filters import BodyLimit, Filter, Retry, Timeouts, UpstreamProtocol
from ingress.route_match import CompiledTable, RouteResult
from ingress.settings import HttpSettings

if TYPE_CHECKING:
    from ingress.context import ProxyContext

Clock = Callable[[], float]
ZONES_KEPT = 4096  # zones of routes no table uses any more are dropped beyond this


class FilterRuntime:
    __slots__ = (
        "_auth_tls",
        "_rings",
        "_subsets",
        "_tls",
        "_tls_pools",
        "_zones",
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
        self._tls: dict[tuple[object, ...], UpstreamTLS | None] = {}
        self.subrequest_pools = PoolSet(loop, s.pool_max_idle, s.pool_idle_timeout)
        self.resolver = Resolver(loop)
        self._auth_tls: ssl.SSLContext | None = None
        self._zones: dict[tuple[Any, ...], RateZone | ConcurrencyZone] = {}
        self._rings: dict[str, HashRing] = {}
        self._subsets: dict[tuple[str, int], SubsetRing] = {}

    @property
    def auth_tls(self) -> ssl.SSLContext:
        """For https auth URLs: SNI sent, the certificate not checked (nginx's proxy_ssl
        defaults). Made on first use (loading the trust store takes tens of ms)."""
        tls = self._auth_tls
        if tls is None:
            tls = self._auth_tls = ssl.create_default_context()
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
        return tls

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

    def ring(self, key: str, endpoints: tuple[EndpointInfo, ...]) -> HashRing:
        """The hash ring of backend `key` over its current endpoints (the balancer's
        tuple: the same object while they do not change)."""
        ring = self._rings.get(key)
        if ring is None or (ring.endpoints is not endpoints and ring.endpoints != endpoints):
            if len(self._rings) > 1024:
                self._rings.clear()
            ring = self._rings[key] = HashRing(endpoints)
        return ring

    def upstream_tls(self, protocol: UpstreamProtocol) -> UpstreamTLS | None:
        """The TLS settings of `protocol`, made once per distinct setting (so a new
        configuration keeps the pools of TLS connections already open)."""
        key = tls_key(protocol)
        found = self._tls.get(key)
        if found is None:
            if len(self._tls) > 256:
                self._tls.clear()
            found = self._tls[key] = upstream_tls(protocol)
        return found

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

    def subsets(self, key: str, endpoints: tuple[EndpointInfo, ...], size: int) -> SubsetRing:
        """The subset ring of backend `key` over its current endpoints."""
        found = self._subsets.get((key, size))
        if found is None or (found.endpoints is not endpoints and found.endpoints != endpoints):
            if len(self._subsets) > 1024:
                self._subsets.clear()
            found = self._subsets[(key, size)] = SubsetRing(endpoints, size)
        return found

    def close(self) -> None:
        for pools in self._tls_pools.values():
            pools.close()
        self.subrequest_pools.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.ctx.loop


def effective_filters(defaults: tuple[Filter, ...], own: tuple[Filter, ...]) -> tuple[Filter, ...]:
    """A route's filters over its listener's defaults: a filter of the route (or of its
    backend) replaces the listener's of the same type."""
    if not defaults:
        return own
    kinds = {type(f) for f in own}
    return tuple(f for f in defaults if type(f) not in kinds) + own


def fold_defaults(
    base: HttpSettings, defaults: tuple[Filter, ...], results: Iterable[RouteResult]
) -> tuple[HttpSettings, list[Filter]]:
    """The worker settings with the listener's defaults folded in, and which defaults
    they now carry (routes that inherit those need no plan for them): BodyLimit (unless
    some route allows more: the settings' limit is then the largest, and routes under
    it keep their check), Timeouts (connect; read is the upstream idle timer, which
    ``send`` shares: a send timeout other than the read one stays each route's, whose
    plan arms both), Retry (the worker's retry rule, ingress/retry.py, unless it
    retries on statuses: that needs each route's plan)."""
    changes: dict[str, object] = {}
    folded: list[Filter] = []
    body = find_filter(defaults, BodyLimit)
    if body is not None:
        cap = body.max_bytes
        for result in results:
            own = find_filter(result.filters, BodyLimit)
            if own is not None and cap:
                cap = 0 if not own.max_bytes else max(cap, own.max_bytes)
        changes["max_body_size"] = cap
        if cap == body.max_bytes:
            folded.append(body)
    timeouts = find_filter(defaults, Timeouts)
    if timeouts is not None and _foldable(timeouts):
        if timeouts.connect:
            changes["connect_timeout"] = timeouts.connect
        if timeouts.read:
            changes["upstream_timeout"] = timeouts.read
        folded.append(timeouts)
    retry = find_filter(defaults, Retry)
    if retry is not None and not retry.statuses:  # (statuses need the route's plan)
        extra = ("non_idempotent",) if retry.non_idempotent else ()
        changes["next_upstream"] = (*retry.on, *extra)
        changes["next_upstream_tries"] = retry.tries
        changes["next_upstream_timeout"] = retry.timeout
        folded.append(retry)
    return replace(base, **changes), folded  # type: ignore[arg-type]


def _foldable(t: Timeouts) -> bool:
    """Whether listener Timeouts fit the worker's settings: a connect timeout and one idle
    timer for the upstream exchange (the ConfigMap's defaults: proxy-read-timeout and
    proxy-send-timeout both 60 s). A different send timeout, or whole-request ones,
    need each route's plan (ingress/filters/exchange.py)."""
    if t.request or t.backend_request:
        return False
    return t.send is None or t.send == t.read


def attach_plans(
    router: object, ctx: ProxyContext, base: HttpSettings | None = None
) -> HttpSettings:
    """Give every RouteResult of `router` (a CompiledTable) that needs one its RoutePlan,
    over its listener's default filters; results without filters keep ``plan`` None.
    Returns the worker's settings for this table: `base` with the main listener's
    defaults folded in (``fold_defaults``)."""
    settings = base if base is not None else ctx.settings
    if not isinstance(router, CompiledTable):
        return settings
    runtime = ctx.filters
    if runtime is None:
        runtime = ctx.filters = FilterRuntime(ctx)
    main = router.main()
    for listener in router.table.listeners:
        matcher = router.listener(listener.name)
        if matcher is None:
            continue
        defaults = listener.filters
        folded: list[Filter] = []
        if matcher is main and defaults:
            settings, folded = fold_defaults(settings, defaults, matcher)
        for result in matcher:
            filters = result.filters
            if result.route is not None and defaults:
                inherited = effective_filters(defaults, filters)
                filters = tuple(f for f in inherited if not any(f is x for x in folded))
            _attach(result, compile_plan(result, runtime, filters))
    if not router.table.listeners:
        for result in router:
            _attach(result, compile_plan(result, runtime))
    return settings


def _attach(result: RouteResult, plan: RoutePlan | None) -> None:
    result.plan = plan
    if plan is not None and not plan.repeatable:
        result.repeatable = False  # the exact-bytes memo must route it again
