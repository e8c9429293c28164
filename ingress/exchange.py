"""One request's trip to a backend: endpoint, connection, retry, and what came back.

An `Exchange` is made per forwarded request by the downstream connection
(ingress/http1.py). It picks an endpoint with the route's balancer, takes a pooled
keep-alive connection or opens one, writes the request, and is the `ResponseSink` the
upstream connection reports to (ingress/upstream.py): the response's status and size are
recorded here, and the downstream hears when it started, ended or failed.

Retries: an attempt that fails before any response byte reached the client goes to
another endpoint when the retry rule of ingress/retry.py allows it (the worker's
defaults, ingress-nginx's proxy-next-upstream "error timeout" with 3 tries, or the
route's Retry filter): `retry` is the one place that decides, for a failed connect
(`_connect`), a connection that failed, timed out or answered badly (`failed`), and,
on routes with filters, an attempt timeout or a status to retry. Everything else gets
502 (504 on timeout). With pipelining on, only GETs without body are pipelined, and a
request waiting behind one that broke is retried as a stale connection's.

The endpoint is a Lease from the route's balancer (proxy/balancers/base.py: the
Service's policy, per-endpoint caps): counted in flight from the pick until `end`, which
the downstream calls wherever the exchange ends or is dropped (finish, connection lost,
a bad request); a retry ends its lease before taking the next. Every endpoint at its cap
gets 503, none left to try 502. Per-worker state of a route (its balancer) is resolved
on the first request that uses the route object and kept on it (`route.cache`), so a
request does no lookup by name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Final, cast

from discovery.snapshot import EndpointInfo
from ingress.context import RouteState
from ingress.hashkey import request_key
from ingress.pipelining import PipelinedConnection, pick_connection
from ingress.pool import EndpointPool
from ingress.request import RequestState
from ingress.retry import (
    CONNECT_ERROR,
    CONNECT_TIMEOUT,
    ERROR,
    IDEMPOTENT,
    RESEND_MAX,
    SENT,
    STALE,
    TIMEOUT,
    RetryBudget,
    RetryPolicy,
    resendable,
)
from ingress.upstream import ResponseSink, UpstreamConnection
from proxy.acceptor import COUNTERS
from proxy.balancer import Lease
from proxy.flow import CONNECTING, UPSTREAM
from proxy.outlier import CONNECT_FAILED

# (compiled, a Final is read from a C static: an imported name costs a dict lookup per call)
_CLOCK: Final[Callable[[], float]] = time.perf_counter

if TYPE_CHECKING:
    from ingress.http1 import HttpProtocol

log = logging.getLogger(__name__)

__all__ = ["IDEMPOTENT", "Exchange"]

# Connect failures are logged once per endpoint per interval (with how many were not),
# so a dead backend under load does not flood the log.
CONNECT_LOG_INTERVAL: Final = 10.0
_connect_failures: dict[tuple[str, int], list[float]] = {}  # key -> [last logged, suppressed]


def _log_connect_failure(key: tuple[str, int], exc: BaseException, now: float) -> None:
    seen = _connect_failures.get(key)
    if seen is not None and now - seen[0] < CONNECT_LOG_INTERVAL:
        seen[1] += 1
        return
    suppressed = int(seen[1]) if seen is not None else 0
    if len(_connect_failures) > 1024:
        _connect_failures.clear()
    _connect_failures[key] = [now, 0]
    more = f" ({suppressed} more since the last report)" if suppressed else ""
    log.warning("upstream %s:%d: connect failed: %r%s", key[0], key[1], exc, more)


class Exchange(ResponseSink):
    __slots__ = ("began", "budget", "client", "conn", "lease", "retries", "tried")

    def __init__(self, client: HttpProtocol, req: RequestState) -> None:
        # (the client's transport: set while it is connected, and a request needs that)
        ResponseSink.__init__(self, req, cast(asyncio.Transport, client.transport))
        self.client = client
        self.conn: UpstreamConnection | None = None
        self.lease: Lease | None = None  # the endpoint pick, held until `end`
        self.tried: list[EndpointInfo] | None = None  # endpoints whose attempt failed
        self.retries = 0  # attempts sent again (ingress/retry.py)
        self.budget: RetryBudget | None = None  # the retry budget it holds a place in
        # When it began (perf_counter): with the request's head, unless it waited behind
        # pipelined ones (HttpProtocol.finish); the request metrics' upstream time.
        self.began = req.start

    # -- going upstream ------------------------------------------------------------------
    def start(self, fresh: bool = False) -> None:
        """Pick an endpoint and a connection (`fresh`: a new one, for a retry)."""
        client = self.client
        ctx = client.ctx
        route = self.req.route
        assert route is not None  # (routed before it starts)
        state: RouteState | None = route.cache
        if state is None or state.owner is not ctx:
            state = route.cache = ctx.route_state(route)
        bal = state.balancer
        if self.lease is not None:  # a retry: the failed try ends first
            self.end_lease()
        key = None
        if bal.needs_key:
            key = request_key(route.balancing.hash_by, client.client_ip, self.req.header)
        now = ctx.loop.time() if bal.observes else 0.0  # only EWMA learns latencies
        lease = self.lease = bal.lease(key, self.tried or (), now)
        if lease is None:  # every endpoint tried (502) or each at its cap (503)
            if bal.saturated:
                COUNTERS.endpoint_overflows += 1
            client.answer(503 if bal.saturated else 502, close=not self.req.complete)
            return
        ep = lease.endpoint
        pool = state.pool_of(lease)
        if not fresh and not ctx.pipelining:  # (send_to's common case, inlined)
            conn = pool.acquire()
            if conn is not None:
                self.bind(conn, True)
                return
            fresh = True  # none idle: a new one (acquire counted the miss)
        self.send_to(ep, pool, len(bal.endpoints), fresh)

    def send_to(self, ep: EndpointInfo, pool: EndpointPool, n: int, fresh: bool) -> None:
        """Send the request to `ep` (one of `n` endpoints) on a connection of `pool`: an
        idle one unless `fresh`, else a new one."""
        ctx = self.client.ctx
        if not fresh:
            if ctx.pipelining:
                depth = ctx.settings.upstream_pipelining
                conn, pipeline = pick_connection(pool, self.req, depth, ctx.outbox.generation)
                if conn is not None:
                    self.bind(conn, True, pipeline)
                    return
            else:
                idle = pool.acquire()
                if idle is not None:
                    self.bind(idle, True)
                    return
        lease = self.lease
        if lease is not None:
            lease.begin_connect()
        ctx.loop.create_task(self._connect(ep, pool, n))

    async def _connect(self, ep: EndpointInfo, pool: EndpointPool, n: int) -> None:
        client = self.client
        ctx = client.ctx
        s = ctx.settings
        loop = ctx.loop
        factory = partial(ctx.connection_class, loop, pool, s.upstream_timeout, ctx.outbox)
        began = _CLOCK()
        lease = self.lease  # this attempt's (a retry, after an attempt timeout, has another)
        try:
            _, conn = await self.open_connection(factory, ep)
        except (TimeoutError, OSError) as exc:
            ctx.stats.connect_failed(pool.key)
            if lease is not None:
                lease.failed(CONNECT_FAILED)  # (endpoint health: proxy/outlier.py)
            if client.closing or client.exchange is not self or self.lease is not lease:
                return
            _log_connect_failure(pool.key, exc, loop.time())
            timeout = isinstance(exc, TimeoutError)
            if not self.retry(CONNECT_TIMEOUT if timeout else CONNECT_ERROR, 0, ep):
                client.answer(504 if timeout else 502, close=not self.req.complete)
            return
        ctx.stats.connected(pool.key, _CLOCK() - began)
        if client.closing or client.exchange is not self or self.lease is not lease:
            conn.keep_alive = True
            conn.release()  # nobody waits for it any more: keep it for the next request
            return
        if lease is not None:
            lease.connected()
        self.bind(conn, False)

    def end(self) -> None:
        """The exchange is over (the request ended, failed or was dropped): the balancer
        counts it no more, and a place it held in the retry budget is freed. Again is
        harmless."""
        self.end_lease()
        budget = self.budget
        if budget is not None:
            self.budget = None
            budget.release()

    def end_lease(self) -> None:
        """The endpoint pick is over (the exchange ended, or is retried elsewhere)."""
        lease = self.lease
        if lease is not None:
            self.lease = None
            lease.end(self.client.ctx.loop.time() if lease.timed else None)

    # -- retries (the rule: ingress/retry.py) ---------------------------------------------
    def retry_policy(self) -> RetryPolicy:
        """The worker's defaults (a route with a Retry filter has its own: see
        ingress/filters/exchange.py)."""
        return self.client.ctx.retry_policy()

    def may_retry(self, kind: int, status: int, ep: EndpointInfo | None) -> bool:
        """Whether the attempt that failed with `kind` (on `ep`, its endpoint) may be
        followed by another: the rule of ingress/retry.py. When it may, `ep` is marked
        tried and a place in the retry budget is taken if the request reached a backend;
        the caller then calls `start(fresh=True)` (see `retry`)."""
        req = self.req
        if self.sent or req.response_started:
            return False
        policy = self.retry_policy()
        if kind == STALE:  # once, counted against neither tries nor budget
            if self.retries or not policy.allows(STALE, req.method, self._resendable()):
                kind = ERROR  # then it is what it looks like: a failed attempt
            else:
                return True
        if ep is not None:
            if self.tried is None:
                self.tried = []
            self.tried.append(ep)
        if not policy.covers(kind, status):
            return False
        sent = kind >= SENT
        if sent and not policy.allows(kind, req.method, self._resendable()):
            return False
        tried = len(self.tried or ())
        if policy.tries and tried >= policy.tries:
            return False
        route = req.route
        assert route is not None and route.cache is not None  # (routed, and started)
        bal = route.cache.balancer
        if tried >= len(bal.endpoints):
            return False  # every endpoint had its try
        if policy.window and _CLOCK() - req.start >= policy.window:
            return False
        if sent and self.budget is None:
            budget = self.client.ctx.retry_budget(route.key)
            if not budget.acquire(sum(bal.active)):
                return False
            self.budget = budget
        return True

    def retry(self, kind: int, status: int, ep: EndpointInfo | None) -> bool:
        """Send the request again after a failed attempt, if `may_retry`; True if it went."""
        if not self.may_retry(kind, status, ep):
            return False
        self.retries += 1
        self.conn = None
        self.start(fresh=True)
        return True

    def _resendable(self) -> bool:
        req = self.req
        return resendable(req.has_body, req.complete, req.body_received, req.pending)

    def _failed_kind(self, status: int, retryable: bool, kind: int) -> int:
        if retryable:
            return STALE
        if status == 504:
            return TIMEOUT
        return kind

    def open_connection(
        self, factory: Callable[[], UpstreamConnection], ep: EndpointInfo
    ) -> Awaitable[tuple[asyncio.BaseTransport, UpstreamConnection]]:
        """A new connection to `ep` (ingress/filters/exchange.py adds TLS and per-route
        connect timeouts)."""
        ctx = self.client.ctx
        connect = ctx.loop.create_connection(factory, ep.ip, ep.port)
        return asyncio.wait_for(connect, ctx.settings.connect_timeout)

    def bind(self, conn: UpstreamConnection, reused: bool, pipeline: bool = False) -> None:
        """Send the request on `conn` (head and the body so far in one write)."""
        client = self.client
        req = self.req
        self.conn = conn
        self.reused = reused
        pending = req.pending
        if pending is None:  # the common request: nothing read beyond its head yet
            if pipeline:
                cast(PipelinedConnection, conn).attach(self, req.upstream_head, pipeline)
            else:
                conn.attach(self, req.upstream_head)
            if client.write_paused:
                conn.pause_reading()
            if req.chunked and req.complete:
                conn.end_body(True)
            if client.flow.reasons:
                client.flow.resume(CONNECTING)
            return
        head = req.upstream_head
        chunked = req.chunked
        if pending and not chunked:
            head = b"".join((head, *pending))
        if pipeline:
            cast(PipelinedConnection, conn).attach(self, head, pipeline)
        else:
            conn.attach(self, head)
        if client.write_paused:
            conn.pause_reading()
        if pending and chunked:
            for chunk in pending:
                conn.send_body(chunk, True)
        if req.complete:
            if chunked:
                conn.end_body(True)
            if req.body_received > RESEND_MAX:
                req.pending = None
            # else the whole body stays in `pending`: a retry sends it again
        else:
            req.pending = None  # the rest streams as it comes (never sent again)
        if client.flow.reasons:
            client.flow.resume(CONNECTING)

    # -- ResponseSink: called by the upstream connection ---------------------------------
    def response_started(self, close: bool) -> None:
        req = self.req
        req.response_started = True
        if close:
            req.keep_alive = False
        lease = self.lease
        if lease is not None:
            lease.answered(self.status)  # (endpoint health: a no-op unless it must look)

    def response_done(self) -> None:
        client = self.client
        if client.exchange is not self:
            if self.conn is not None:
                self.conn.close()
            return
        req = self.req
        req.response_done = True
        req.status = self.status
        if req.complete:
            client.finish()

    def failed(self, status: int, retryable: bool, kind: int = ERROR) -> None:
        client = self.client
        if client.exchange is not self or client.closing:
            return
        self.conn = None
        ep = self.lease.endpoint if self.lease is not None else None
        if self.retry(self._failed_kind(status, retryable, kind), status, ep):
            return
        client.answer(status, close=not self.req.complete)

    def upgraded(self) -> None:
        assert self.conn is not None
        self.client.start_tunnel(self.conn)

    def abort(self) -> None:
        self.client.close()

    def client_paused(self) -> bool:
        return self.client.write_paused

    def pause_client_reads(self) -> None:
        self.client.flow.pause(UPSTREAM)

    def resume_client_reads(self) -> None:
        self.client.flow.resume(UPSTREAM)
