"""What every downstream connection of one worker shares: settings, routes, balancers, pools."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from random import random
from typing import TYPE_CHECKING, Any, Protocol

from mypy_extensions import mypyc_attr, trait

from ingress.outbox import Outbox
from ingress.pipelining import PipelinedConnection
from ingress.pool import EndpointPool, PoolSet
from ingress.request import RequestState
from ingress.retry import RetryBudget, RetryPolicy
from ingress.route_conditions import no_header
from ingress.route_match import CompiledTable, ListenerMatcher, RouteResult
from ingress.settings import HttpSettings
from ingress.stats import RequestStats
from ingress.upstream import UpstreamConnection
from proxy.balancer import Balancer, EndpointLimits, Lease, new_balancer
from proxy.health_runner import HealthRunner
from proxy.outlier import HealthRegistry, Labels

if TYPE_CHECKING:
    from ingress.filters.runtime import FilterRuntime



@trait
class RoutePlanLike:
    """A route's compiled filters (ingress/filters/plan.py RoutePlan). A trait, not a
    Protocol: compiled, the connection calls ``admit`` through the trait's table."""

    __slots__ = ()

    def admit(self, client: Any, req: RequestState, route: Any) -> None:
        raise NotImplementedError


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
    ) -> RouteResult: ...


def listener_matcher(router: RouterLike) -> ListenerMatcher | None:
    """The ListenerMatcher that answers for `router` (a compiled table's main listener,
    or a Gateway listener's own), so compiled code calls it directly; None for another
    kind of router (the tests' stand-ins)."""
    if isinstance(router, CompiledTable):
        return router.main()
    if isinstance(router, ListenerMatcher):
        return router
    return None


def key_labels(key: str) -> Labels:
    """A backend key "namespace/service:port" as (namespace, service, port)."""
    namespace, _, rest = key.partition("/")
    service, _, port = rest.rpartition(":")
    return namespace, service, port


class RouteState:
    """Per-worker state of one route object, resolved on its first request and kept on
    the route (`route.cache`): a request then does no lookup by name. `owner` is the
    context it belongs to (a route object shared by two contexts gets its own per context).
    """

    __slots__ = ("_pools", "_pools_generation", "balancer", "owner")

    def __init__(self, owner: ProxyContext, balancer: Balancer) -> None:
        self.owner = owner
        self.balancer = balancer
        # The connection pool of each of the balancer's endpoints, by index, for its
        # endpoints of `_pools_generation` (a pool, once made, stays: ingress/pool.py).
        self._pools: list[EndpointPool | None] = []
        self._pools_generation = -1

    def pool_of(self, lease: Lease) -> EndpointPool:
        """The pool of the leased endpoint: by the lease's index while the balancer's
        endpoints are the ones it was made for (no (ip, port) lookup per request)."""
        generation = self.balancer.generation
        i = lease.index
        if lease.generation != generation or i < 0:
            ep = lease.endpoint
            return self.owner.pools.get((ep.ip, ep.port))
        pools = self._pools
        if self._pools_generation != generation:
            pools = self._pools = [None] * len(self.balancer.endpoints)
            self._pools_generation = generation
        pool = pools[i]
        if pool is None:
            ep = lease.endpoint
            pool = pools[i] = self.owner.pools.get((ep.ip, ep.port))
        return pool


# tests/ingress/test_head_differential.py subclasses it.
@mypyc_attr(allow_interpreted_subclasses=True)
class ProxyContext:
    """Swapped in place on a config change: new requests see the new router at once."""

    __slots__ = (
        "_retry",
        "balancers",
        "budgets",
        "connection_class",
        "connections",
        "filters",
        "health",
        "health_runner",
        "limits",
        "loop",
        "matcher",
        "memo_hits",
        "memo_misses",
        "outbox",
        "pipelining",
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
        self.matcher = listener_matcher(router)
        self.stats = RequestStats() if stats is None else stats  # this worker's counters
        self.pools = pools or PoolSet(loop, settings.pool_max_idle, settings.pool_idle_timeout)
        self.outbox = Outbox(loop.call_soon) if outbox is None else outbox
        self.balancers: dict[str, Balancer] = {}
        # Endpoint health (proxy/outlier.py): this worker's passive outlier detection and
        # the daemon's active-check verdicts; balancers skip what it excludes.
        self.health = HealthRegistry(loop.time)
        self.health_runner = HealthRunner(loop, self.health)
        self.budgets: dict[str, RetryBudget] = {}  # per backend key, as balancers
        self._retry: tuple[HttpSettings, RetryPolicy] | None = None
        self.limits = EndpointLimits(
            settings.max_endpoint_requests, settings.max_endpoint_connecting
        )
        self.connections: set[asyncio.Protocol] = set()
        self.filters: FilterRuntime | None = None  # made when a table has filters
        # The repeated-request memo of ingress/http1.py (exact bytes): its hit rate.
        self.memo_hits = 0
        self.memo_misses = 0
        # Pipelining bookkeeping only when it is on (ingress/pipelining.py).
        self.pipelining = settings.upstream_pipelining > 1
        self.connection_class: type[UpstreamConnection] = (
            PipelinedConnection if self.pipelining else UpstreamConnection
        )

    def route(self, req: RequestState) -> RouteResult:
        """The route of a request, on its raw bytes (ingress/route_match.py); a weighted
        Forward's backend is picked here. Headers are read from the raw head only when
        some route of the table matches on them."""
        matcher = self.matcher
        if matcher is not None:  # a compiled table's: called directly, not by name
            header = req.header if matcher.uses_headers else no_header
            route = matcher.match(req.host, req.url, req.method, header)
        else:
            router = self.router
            header = req.header if router.uses_headers else no_header
            route = router.match(req.host, req.url, req.method, header)
        if route.split is not None:
            route = route.pick(random())
        return route

    def route_state(self, route: RouteResult) -> RouteState:
        return RouteState(self, self.balancer(route))

    def balancer(self, route: RouteResult) -> Balancer:
        """The balancer of the route's backend (its Service's policy); endpoints refreshed
        if they changed, a new balancer if the policy did."""
        eps = route.endpoints
        bal = self.balancers.get(route.key)
        policy = route.balancing.policy
        health = self.health.service(route.key, key_labels(route.key), route.balancing.health)
        if bal is None or bal.policy != policy:
            bal = self.balancers[route.key] = new_balancer(
                policy, eps, clock=self.loop.time, limits=self.limits
            )
            health.attach(bal)
        else:
            current = bal.endpoints
            if current is not eps and current != eps:
                bal.update(eps)
        return bal

    def retry_policy(self) -> RetryPolicy:
        """The retry rule of routes without their own (ingress/retry.py), from the
        settings (made again when they change)."""
        made = self._retry
        s = self.settings
        if made is None or made[0] is not s:
            policy = RetryPolicy(s.next_upstream, s.next_upstream_tries, (), False,
                                 s.next_upstream_timeout)
            made = self._retry = (s, policy)
        return made[1]

    def retry_budget(self, key: str) -> RetryBudget:
        """The retry budget of the backend `key` in this worker (asked on retries only)."""
        budget = self.budgets.get(key)
        if budget is None:
            budget = self.budgets[key] = RetryBudget()
        return budget

    def set_router(self, router: RouterLike) -> None:
        self.router = router
        self.matcher = listener_matcher(router)

    def sibling(self, router: RouterLike, settings: HttpSettings | None = None) -> ProxyContext:
        """A context for another listening socket of this worker (a Gateway listener's):
        it routes with `router` (and `settings`, when given) and shares everything else
        with this one (the same objects: pools, outbox, balancers, stats, filter runtime,
        the connection set), so a backend's connections and round-robin state are the
        worker's, whichever socket a request came in on."""
        twin = copy.copy(self)
        twin.set_router(router)
        if settings is not None:
            twin.settings = settings
        return twin
