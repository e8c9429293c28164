"""The upstream half of HttpProtocol: pick an endpoint, get a connection, follow it.

A mixin so ingress/http1.py stays readable; it holds no state of its own (the slots are
HttpProtocol's). The methods under "called by UpstreamConnection" are the `Client`
protocol of ingress/upstream.py.

Retry rule: a request whose pooled upstream connection closes before any response byte
is retried once on a fresh connection only if its method is idempotent (GET, HEAD,
OPTIONS, TRACE, PUT, DELETE) and it has no body; a failed connect is retried on the next
endpoint for every method (nothing was sent). Everything else gets 502 (504 on timeout).
With pipelining on, only GETs without body are pipelined, so every exchange waiting on a
connection that fails before its response began is retried under that same rule.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from time import perf_counter

from discovery.snapshot import EndpointInfo
from ingress.context import ProxyContext, RouteLike
from ingress.request import RequestState
from ingress.settings import HttpSettings
from ingress.upstream import UpstreamConnection
from proxy.flow import CONNECTING, UPSTREAM, ReadFlow

# Connect failures are logged once per endpoint per interval (with how many were not),
# so a dead backend under load does not flood the log.
CONNECT_LOG_INTERVAL = 10.0
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

log = logging.getLogger("ingress.http1")

IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


class UpstreamSide:
    __slots__ = ("tunnel", "tunnel_buf", "upstream")  # the rest are HttpProtocol's

    # State owned by HttpProtocol (declared here for the type checker).
    ctx: ProxyContext
    loop: asyncio.AbstractEventLoop
    settings: HttpSettings
    transport: asyncio.Transport | None
    flow: ReadFlow
    active: RequestState | None
    closing: bool
    write_paused: bool

    def __init__(self) -> None:
        self.upstream: UpstreamConnection | None = None
        self.tunnel = False  # bytes go both ways unparsed (after a 101)
        self.tunnel_buf = b""  # client bytes after an Upgrade request, until the 101

    def _answer(self, status: int, close: bool) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def _dispatch(self, req: RequestState, fresh: bool) -> None:
        route: RouteLike = req.route  # type: ignore[assignment]  # set when routed
        if not req.upstream_at:
            req.upstream_at = perf_counter()
        bal = self.ctx.balancer(route)
        ep = bal.pick_excluding(req.tried) if req.tried else bal.pick()
        if ep is None:
            self._answer(502, close=not req.complete)
            return
        key = (ep.ip, ep.port)
        if not fresh:
            pool = self.ctx.pools.get(key)
            depth = self.settings.upstream_pipelining
            pipeline = (
                depth > 1 and req.method == b"GET" and req.upgrade is None and not req.has_body()
            )
            if pipeline and pool.pipeline_pause:
                pool.pipeline_pause -= 1  # a batch broke here lately (see upstream.py)
                pipeline = False
            if pipeline:
                joined = pool.pipelining
                if joined is not None and joined.can_pipeline(self.ctx.outbox.generation, depth):
                    self._bind(joined, reused=True, pipeline=True)  # type: ignore[arg-type]
                    return
            conn = pool.acquire()
            if conn is not None:
                if pipeline and conn.small:  # type: ignore[attr-defined]  # the pool holds ours
                    pool.pipelining = conn  # type: ignore[assignment]
                self._bind(conn, reused=True, pipeline=pipeline)  # type: ignore[arg-type]
                return
        self.loop.create_task(self._connect(req, ep, key, len(bal.endpoints)))

    async def _connect(
        self, req: RequestState, ep: EndpointInfo, key: tuple[str, int], n: int
    ) -> None:
        s = self.settings
        ctx = self.ctx
        factory = partial(
            UpstreamConnection, self.loop, ctx.pools, key, s.upstream_timeout, ctx.outbox
        )
        began = perf_counter()
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(factory, key[0], key[1]), s.connect_timeout
            )
        except (TimeoutError, OSError) as exc:
            ctx.stats.connect_failed(key)
            if self.closing or req is not self.active:
                return
            _log_connect_failure(key, exc, self.loop.time())
            if req.tried is None:
                req.tried = []
            req.tried.append(ep)
            if len(req.tried) < n:
                self._dispatch(req, fresh=True)
            else:
                status = 504 if isinstance(exc, asyncio.TimeoutError) else 502
                self._answer(status, close=not req.complete)
            return
        ctx.stats.connected(key, perf_counter() - began)
        if self.closing or req is not self.active:
            conn.keep_alive = True
            conn.release()  # nobody waits for it any more: keep it for the next request
            return
        self._bind(conn, reused=False)

    def _bind(self, conn: UpstreamConnection, reused: bool, pipeline: bool = False) -> None:
        req = self.active
        assert req is not None and self.transport is not None
        self.upstream = conn
        head = req.upstream_head
        if req.pending and not req.chunked:
            head = b"".join((head, *req.pending))  # head and body so far in one write
            req.pending = None
        conn.attach(
            self,
            self.transport,
            head,
            req.method == b"HEAD",
            req.keep_alive,
            req.version == "1.0",
            reused,
            pipeline,
        )
        if self.write_paused:
            conn.pause_reading()
        if req.pending:
            for chunk in req.pending:
                conn.send_body(chunk, req.chunked)
            req.pending = None
        if req.complete and req.chunked:
            conn.end_body(True)
        if self.flow.reasons:
            self.flow.resume(CONNECTING)

    # -- called by UpstreamConnection ------------------------------------------------------
    def response_started(self, close: bool) -> None:
        req = self.active
        if req is not None:
            req.response_started = True
            if close:
                req.keep_alive = False

    def response_done(self, conn: UpstreamConnection) -> None:
        req = self.active
        if req is None or conn is not self.upstream:
            conn.close()
            return
        req.response_done = True
        if req.complete:
            self._finish()

    def upstream_failed(self, conn: UpstreamConnection, status: int, retryable: bool) -> None:
        req = self.active
        if req is None or conn is not self.upstream or self.closing:
            return
        self.upstream = None
        if retryable and not req.retries and req.method in IDEMPOTENT and not req.has_body():
            req.retries += 1
            self._dispatch(req, fresh=True)
            return
        self._answer(status, close=not req.complete)

    def upstream_upgraded(self, conn: UpstreamConnection) -> None:
        self.tunnel = True
        if self.tunnel_buf:
            conn.tunnel(self.tunnel_buf)
            self.tunnel_buf = b""
        self.flow.resume_all()

    def abort(self) -> None:
        self._close()

    def pause_reading_for_upstream(self) -> None:
        self.flow.pause(UPSTREAM)

    def resume_reading_for_upstream(self) -> None:
        self.flow.resume(UPSTREAM)
