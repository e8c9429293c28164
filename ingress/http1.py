"""Downstream HTTP/1.1: one asyncio.Protocol per client connection (uvicorn-style).

bytes -> httptools (llhttp, strict) callbacks -> RequestState -> an upstream exchange.
Per-connection state lives on the protocol, per-request state on RequestState. Requests
pipelined behind one in flight are queued (reading paused) and answered in order. Bodies
stream both ways; ReadFlow pauses the client while the upstream cannot take more, and a
slow client pauses the upstream (pause_writing below). Timeouts use the injected loop's
clock with one lazy timer per connection: header-read (408) and keep-alive idle.

Known heads: a read that is exactly one plain request head (HTTP/1.1 keep-alive, no body,
no Expect/Upgrade/Connection) is remembered per ProxyContext with its parse; the same
bytes arriving again at a message start get the same parse without llhttp (the parser
would end back at a message start, as it is now). Clients repeat such heads (polling API
clients, health checks, load generators): measured +33% requests/s on bench/http.py.
Writes go through the context's Outbox (ingress/outbox.py): sent together at the end of
the loop iteration; `_close` flushes first.

Picking an endpoint, the upstream connection and the retry rule are in ingress/exchange.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import cast

import httptools

from ingress.context import ProxyContext, RouteLike, RouterLike
from ingress.errors import PeerError, error_response
from ingress.exchange import UpstreamSide
from ingress.request import SPECIAL_HEADERS, KnownRequest, RequestState
from proxy.flow import CONNECTING, PIPELINE, UPGRADE, ReadFlow

log = logging.getLogger(__name__)

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HttpProtocol(UpstreamSide, asyncio.Protocol):
    __slots__ = (
        "_interval",
        "_memo",
        "_memo_head",
        "_memo_route",
        "_memo_router",
        "_recyclable",
        "_seen",
        "_since",
        "_spare",
        "_ticks",
        "_timer",
        "active",
        "bytes_in",
        "client_ip",
        "closing",
        "ctx",
        "deferred",
        "draining",
        "flow",
        "loop",
        "parser",
        "queue",
        "req",
        "scheme",
        "settings",
        "stopped",
        "transport",
        "write_paused",
    )

    def __init__(self, ctx: ProxyContext, scheme: bytes = b"http") -> None:
        super().__init__()
        self.ctx = ctx
        self.scheme = scheme
        self.loop = ctx.loop
        self.settings = ctx.settings
        self.transport: asyncio.Transport | None = None
        self.flow = cast(ReadFlow, None)  # set in connection_made
        self.parser = httptools.HttpRequestParser(self)
        self.client_ip = b""
        self.req: RequestState | None = None  # the request being parsed
        self.active: RequestState | None = None  # the request whose exchange runs
        self.queue: deque[RequestState] = deque()
        self.closing = False
        self.draining = False  # shutting down: finish what is in flight, take nothing new
        self.deferred = False
        self.bytes_in = 0  # read since the request metrics last took them (ingress/stats.py)
        self.stopped = False  # parsing stopped (bad request or closing): ignore input
        self.write_paused = False
        s = self.settings
        self._interval = min(s.header_timeout, s.keepalive_timeout) / 2
        self._ticks = 0  # bumped when a request begins or ends; the timer watches it
        self._seen = 0
        self._since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._memo: KnownRequest | None = None  # the last known head and its upstream head
        self._memo_head = b""
        self._memo_route: RouteLike | None = None  # the memo's route under _memo_router
        self._memo_router: RouterLike | None = None
        # A finished known request reused for the next one (see _known_request).
        self._recyclable: RequestState | None = None
        self._spare: RequestState | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tr = cast(asyncio.Transport, transport)
        self.transport = tr
        self.flow = ReadFlow(tr)
        tr.set_write_buffer_limits(self.settings.high_water, self.settings.low_water)
        peer = tr.get_extra_info("peername")
        self.client_ip = str(peer[0]).encode() if peer else b""
        self.ctx.connections.add(self)
        self._since = self.loop.time()
        self._timer = self.loop.call_later(self._interval, self._on_timer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = self.stopped = True
        if self.flow is not None:
            self.flow.closed = True
        self.ctx.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.active is not None:  # answered and closed, cut, or the client went away
            self.ctx.stats.request_done(self, self.active)
        conn, self.upstream = self.upstream, None
        if conn is not None:
            conn.abandon(self)
        self.active = None
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if self.tunnel:
            assert self.upstream is not None
            self.upstream.tunnel(data)
            return
        if self.stopped:
            return
        fresh = self.req is None and self.active is None  # the read starts a message
        if fresh:
            known = self.ctx.known_requests.get(data)
            if known is not None:
                self._known_request(known)
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._on_upgrade(data[int(exc.args[0]) :] if exc.args else b"")
        except httptools.HttpParserCallbackError as exc:
            err = exc.__context__
            if isinstance(err, PeerError):
                if err.status:
                    log.debug("client %s: %s", self.client_ip, err)
                    self._bad(err.status)
            else:
                log.error("bug handling a request", exc_info=err)
                self._bad(500)
        except httptools.HttpParserError as exc:
            log.debug("client %s: bad request: %s", self.client_ip, exc)
            self._bad(400)
        else:
            req = self.req
            if req is not None and not req.head_done:
                req.head_bytes += len(data)  # bytes llhttp holds for a head not finished yet
                s = self.settings
                if req.head_bytes > s.max_header_bytes + s.max_request_line:
                    self._bad(431 if req.url else 414)
        if self.deferred and not self.closing:
            # The request head was complete in this read: it goes upstream only now, so
            # a framing error later in the same read stops it before any byte is sent,
            # and a small body goes out with the head in one write.
            self.deferred = False
            req = self.active
            assert req is not None
            if fresh and self.req is None and not self.queue:
                known = req.known()  # the read was exactly this request: remember it
                if known is not None:
                    self.ctx.remember_request(data, known)
            self._start(req)

    def eof_received(self) -> bool | None:
        return False

    def pause_writing(self) -> None:
        self.write_paused = True
        conn = self.upstream
        if conn is not None and conn.client is self:  # not while it waits its turn
            conn.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        conn = self.upstream
        if conn is not None and conn.client is self:
            conn.resume_reading()

    def _known_request(self, known: KnownRequest) -> None:
        """The read is a plain request head parsed before: same result, no parser."""
        req = self._spare
        if req is not None:
            self._spare = None
            req.renew_known(known)
        else:
            req = RequestState.from_known(known)
        self._ticks += 2  # begun and complete
        ctx = self.ctx
        if known is self._memo and ctx.router is self._memo_router:
            req.route = self._memo_route  # same head, same router: same route
            req.upstream_head = self._memo_head
        else:
            route = req.route = ctx.route(req)
            if route.status:
                req.local = route.status
            else:
                self._memo = known
                self._memo_router = ctx.router
                self._memo_route = route
                self._memo_head = req.upstream_head = req.build_upstream_head(
                    self.client_ip, self.scheme
                )
        self.active = req
        if req.local:
            self._answer(req.local, close=False)
        else:
            self._dispatch(req, fresh=False)
            if self.upstream is not None:
                # Bound to a pooled connection at once: no connect task holds `req`, so
                # once finished without a retry it can serve the next known request.
                self._recyclable = req

    # -- httptools callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.closing or self.draining:
            raise PeerError(0, "connection closing")  # stop parsing what follows
        self.req = RequestState()
        self._ticks += 1

    def on_url(self, url: bytes) -> None:
        req = self.req
        assert req is not None
        if req.url or len(url) > self.settings.max_request_line:
            req.add_url(url, self.settings)
        else:
            req.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        req = self.req
        assert req is not None
        if req.head_done:
            return  # a chunked trailer: dropped (we do not forward trailers)
        s = self.settings
        req.nheaders += 1
        req.head_bytes += len(name) + len(value) + 4
        if req.nheaders > s.max_headers or req.head_bytes > s.max_header_bytes:
            raise PeerError(431, "request headers too large")
        code = SPECIAL_HEADERS.get(name.lower())
        if code is None:
            req.fwd.append(b"%s: %s\r\n" % (name, value))
        else:
            req.special_header(code, name, value, s)

    def on_headers_complete(self) -> None:
        req = self.req
        assert req is not None
        parser = self.parser
        method = parser.get_method()
        if method == b"CONNECT":
            raise PeerError(405, "CONNECT is not supported")
        req.finish_head(method, parser.get_http_version(), parser.should_keep_alive())
        if req.version != "1.1" or req.upgrade is not None or self.draining:
            req.keep_alive = False
        route = req.route = self.ctx.route(req)
        if route.status:
            req.local = route.status
        else:
            req.upstream_head = req.build_upstream_head(self.client_ip, self.scheme)
        if self.active is None:
            self.active = req
            self.deferred = True  # started once this read is parsed (see data_received)
        else:
            self.queue.append(req)
            self.flow.pause(PIPELINE)

    def on_body(self, body: bytes) -> None:
        req = self.req
        assert req is not None
        req.body_received += len(body)
        limit = self.settings.max_body_size
        if limit and req.body_received > limit:
            raise PeerError(413, "request body too large")
        if req is self.active and self.upstream is not None:
            self.upstream.send_body(body, req.chunked)
        elif not req.local:
            if req.pending is None:
                req.pending = []
            req.pending.append(body)
            if req is self.active:
                self.flow.pause(CONNECTING)

    def on_message_complete(self) -> None:
        req = self.req
        assert req is not None
        req.complete = True
        self.req = None
        if req is self.active:
            if self.upstream is not None and req.chunked:
                self.upstream.end_body(True)
            if req.response_done:
                self._finish()

    # -- exchange ------------------------------------------------------------------------
    def _start(self, req: RequestState) -> None:
        self.active = req
        if req.error:
            self._answer(req.error, close=True)
            return
        if req.local:
            self._answer(req.local, close=req.expect_continue and req.has_body())
            return
        if req.expect_continue and not req.complete:
            self._write(CONTINUE)
        self._dispatch(req, fresh=False)

    def _finish(self) -> None:
        req = self.active
        assert req is not None
        self.ctx.stats.request_done(self, req)
        self.active = None
        self._ticks += 1
        if req is self._recyclable:
            self._recyclable = None
            if not req.retries and not req.local:
                self._spare = req
        conn, self.upstream = self.upstream, None
        if conn is not None:
            if conn.client is self:
                conn.release()
            else:
                conn.abandon(self)  # finished before its turn (an answer of our own)
        if not req.keep_alive:
            self._close()
            return
        if self.queue:
            nxt = self.queue.popleft()
            if not self.queue:
                self.flow.resume(PIPELINE)
            self._start(nxt)
        elif self.flow.reasons:
            self.flow.resume(PIPELINE)

    def _answer(self, status: int, close: bool) -> None:
        """A response the proxy makes itself, in order, for the active request."""
        req = self.active
        assert req is not None
        req.local = status
        req.response_started = req.response_done = True
        close = close or not req.keep_alive
        self._write(error_response(status, close))
        if close:
            req.keep_alive = False
            self._close()
        elif req.complete:
            self._finish()

    def _bad(self, status: int) -> None:
        """The client broke the protocol or a limit: answer `status` in turn, then close."""
        self.stopped = True
        req = self.req
        if req is not None and req is self.active and self.deferred:
            self.deferred = False  # the bad request itself was about to start: never does
        self.flow.pause(PIPELINE)
        if self.active is None and not self.queue:
            self.active = req or RequestState()
            self._answer(status, close=True)
        elif req is not None and req is self.active:
            conn, self.upstream = self.upstream, None
            if conn is not None:
                conn.abandon(self)
            if req.response_started:
                self._close()
            else:
                self._answer(status, close=True)
        elif req is not None and req in self.queue:
            req.error = status
        else:
            marker = RequestState()
            marker.error = status
            self.queue.append(marker)

    def _on_upgrade(self, rest: bytes) -> None:
        self.tunnel_buf = rest
        self.flow.pause(UPGRADE)

    # -- shutdown --------------------------------------------------------------------------
    def drain(self) -> None:
        """Graceful shutdown: an idle connection closes now; otherwise the requests in
        flight finish, the last response says `Connection: close` (when its head has not
        gone out yet) and the connection closes after it; no new request is read."""
        self.draining = True
        if self.closing:
            return
        if self.active is None and self.req is None and not self.queue:
            self._close()
            return
        if self.req is not None and not self.req.head_done:
            return  # its head is not complete: on_headers_complete will see `draining`
        last = self.queue[-1] if self.queue else self.active
        if last is None:
            return
        last.keep_alive = False
        conn = self.upstream
        if last is self.active and conn is not None and conn.client is self:
            conn.close_after_response()

    # -- helpers -------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.ctx.outbox.write(self.transport, data)

    def _close(self) -> None:
        if not self.closing:
            self.closing = self.stopped = True
            if self.transport is not None:
                self.ctx.outbox.flush()  # what is queued for this client goes out first
                self.transport.close()

    def _on_timer(self) -> None:
        """Every interval: 408 a head that takes too long, close an idle connection.

        Activity is seen through `_ticks` (no clock read per request), so a timeout
        fires between its value and its value plus one interval.
        """
        self._timer = None
        if self.closing:
            return
        now = self.loop.time()
        if self._ticks != self._seen:
            self._seen = self._ticks
            self._since = now
        elif self.active is None and not self.queue:
            req = self.req
            s = self.settings
            if req is not None:
                if not req.head_done and now - self._since >= s.header_timeout:
                    self._bad(408)
                    return
            else:
                limit = s.keepalive_timeout if self._ticks else s.header_timeout
                if now - self._since >= limit:
                    self._close()  # idle keep-alive connection, or nothing ever sent
                    return
        self._timer = self.loop.call_later(self._interval, self._on_timer)
