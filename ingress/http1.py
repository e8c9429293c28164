"""Downstream HTTP/1.1: one asyncio.Protocol per client connection (uvicorn-style).

bytes -> heads cut at their blank line and validated by llhttp -> RequestState
(ingress/request.py) -> an Exchange with a backend (ingress/exchange.py). This class holds
per-connection state only: the transport, llhttp's parser, where the byte stream is (in a
head, in a body), the request whose response is being sent (`active`) and the requests
pipelined behind it (`queue`, reading paused meanwhile, answered in order).

llhttp (strict) sees every byte, with no Python callback per header: a head is fed as
one slice ending at its first blank line and is trusted only if llhttp reports it
complete there (see ingress/request.py for why that cut is exact). A body is fed as the
slice its framing gives (Content-Length, or ingress/framing.py's ChunkedBody for chunked),
and llhttp must end the message exactly there; any disagreement is a 400. A read that is
exactly one head on an idle connection (what keep-alive clients send) takes one direct
path (`_one`); anything else in it goes on through `_headed` like any other head.

Bodies stream both ways; ReadFlow pauses the client while the upstream cannot take more,
and a slow client pauses the upstream (pause_writing). Timeouts use the injected loop's
clock with one lazy timer per connection: header-read (408) and keep-alive idle. Writes go
through the context's Outbox (ingress/outbox.py): sent together at the end of the loop
iteration; `close` flushes first.

`finish` is the one place where a request ends, with its status, the response's size
(the exchange's `received`) and its start time known: the request metrics and the access
log (ingress/stats.py) hear of it there, or in `connection_lost` for a request cut short
(the client went away: 499) or a tunnel. `drain` is the graceful shutdown of one
connection (ingress/server.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Final, cast

import httptools

from ingress import headscan
from ingress.context import ProxyContext
from ingress.errors import PeerError, error_response
from ingress.exchange import Exchange
from ingress.framing import ChunkedBody
from ingress.linger import linger
from ingress.request import ForwardedLines, RequestState, parse_request
from ingress.route_match import RouteResult
from ingress.upstream import UpstreamConnection
from proxy.flow import CONNECTING, PIPELINE, UPGRADE, ReadFlow, unbound_flow

# (compiled, a Final is read from a C static: an imported name costs a dict lookup per call)
_HEAD_END: Final[Callable[[bytes, int], int]] = headscan.head_end
_CLOCK: Final[Callable[[], float]] = time.perf_counter

log = logging.getLogger(__name__)

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_STOPPED = (httptools.HttpParserError, httptools.HttpParserUpgrade)  # llhttp stopped early


class HttpProtocol(asyncio.Protocol):
    __slots__ = (
        "_body_left",
        "_chunks",
        "_head_done",
        "_interval",
        "_memo",
        "_memo_router",
        "_message_done",
        "_seen",
        "_since",
        "_ticks",
        "_timer",
        "_upgrade",
        "active",
        "buf",
        "client_ip",
        "closing",
        "ctx",
        "deferred",
        "draining",
        "exchange",
        "flow",
        "lines",
        "loop",
        "parser",
        "queue",
        "reading",
        "scheme",
        "settings",
        "stopped",
        "transport",
        "tunnel",
        "tunnel_buf",
        "write_paused",
    )

    def __init__(self, ctx: ProxyContext, scheme: bytes = b"http") -> None:
        self.ctx = ctx
        self.scheme = scheme
        self.loop = ctx.loop
        self.settings = ctx.settings
        self.transport: asyncio.Transport | None = None
        self.flow = unbound_flow()  # replaced in connection_made
        # Callbacks: on_headers_complete, on_body, on_message_complete only.
        self.parser = httptools.HttpRequestParser(self)
        self.client_ip = b""
        self.lines = ForwardedLines(b"", scheme)
        self.buf = b""  # the start of a head not complete yet (llhttp has seen it)
        self.reading: RequestState | None = None  # the request whose body is being read
        self._body_left = 0  # of a Content-Length body being read
        self._chunks: ChunkedBody | None = None  # of a chunked body being read
        self._head_done = self._message_done = self._upgrade = False  # from llhttp
        self.active: RequestState | None = None  # the request whose response is under way
        self.exchange: Exchange | None = None  # the active request's exchange, if forwarded
        self.queue: deque[RequestState] = deque()
        self.closing = False
        self.draining = False  # shutting down: finish what is in flight, take nothing new
        self.deferred = False  # the active request starts once the current read is parsed
        self.stopped = False  # parsing stopped (bad request or closing): ignore input
        self.write_paused = False
        self.tunnel: UpstreamConnection | None = None  # after a 101: bytes go both ways
        self.tunnel_buf = b""  # client bytes after an Upgrade request, until the 101
        s = self.settings
        self._interval = min(s.header_timeout, s.keepalive_timeout) / 2
        self._ticks = 0  # bumped when a request begins or ends; the timer watches it
        self._seen = 0
        self._since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        # The last read that was exactly one plain request (see _repeat), or None.
        self._memo: RequestState | None = None
        self._memo_router: object = None  # the router that routed it

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tr = cast(asyncio.Transport, transport)
        self.transport = tr
        self.flow = ReadFlow(tr)
        tr.set_write_buffer_limits(self.settings.high_water, self.settings.low_water)
        peer = tr.get_extra_info("peername")
        self.client_ip = str(peer[0]).encode() if peer else b""
        self.lines = ForwardedLines(self.client_ip, self.scheme)
        self.ctx.connections.add(self)
        self._since = self.loop.time()
        self._timer = self.loop.call_later(self._interval, self._on_timer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = self.stopped = True
        self.flow.closed = True
        self.ctx.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ex, self.exchange = self.exchange, None
        req = self.active
        if req is not None:  # cut short (the client went away), or a tunnel that ended
            self.ctx.stats.request_done(self, req, ex)
        if ex is not None:
            ex.end()
            if ex.conn is not None:
                ex.conn.abandon(ex)
        req = self.active
        if req is not None and req.plan is not None:
            req.plan.finished()
        self.active = None
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.tunnel(data)
            return
        if self.stopped:
            return
        if self.active is None and not self.buf and self.reading is None:
            memo = self._memo
            if memo is not None:
                if data == memo.head:
                    self._repeat(memo)
                    return
                self.ctx.memo_misses += 1
            if _HEAD_END(data, 0) == len(data) - 4:
                try:
                    self._one(data)
                except PeerError as err:
                    log.debug("client %s: %s", self.client_ip, err)
                    self._bad(err.status)
                return
        try:
            self._read(data)
        except PeerError as err:
            log.debug("client %s: %s", self.client_ip, err)
            self._bad(err.status)
        if self.deferred and not self.closing:
            # The request head was complete in this read: it goes upstream only now, so
            # a framing error later in the same read stops it before any byte is sent,
            # and a small body goes out with the head in one write.
            self.deferred = False
            self._start(self.active)  # type: ignore[arg-type]  # set by _route

    def eof_received(self) -> bool | None:
        return False

    def pause_writing(self) -> None:
        self.write_paused = True
        ex = self.exchange
        if ex is not None and ex.conn is not None and ex.conn.exchange is ex:
            ex.conn.pause_reading()  # (not while it waits its turn on a pipelined one)

    def resume_writing(self) -> None:
        self.write_paused = False
        ex = self.exchange
        if ex is not None and ex.conn is not None and ex.conn.exchange is ex:
            ex.conn.resume_reading()

    # -- llhttp callbacks (no per-header callback: see the module docstring) --------------
    def on_headers_complete(self) -> None:
        self._head_done = True

    def on_message_complete(self) -> None:
        self._message_done = True

    def on_body(self, body: bytes) -> None:
        req = self.reading
        if req is None:
            return  # (an upgrade request's bytes: they go to the tunnel)
        req.body_received += len(body)
        limit = self.settings.max_body_size
        if limit and req.body_received > limit:
            raise PeerError(413, "request body too large")
        if req.plan is not None:
            req.plan.body_received(req.body_received)  # the route's own limit
        ex = self.exchange
        if req is self.active and ex is not None and ex.conn is not None:
            ex.conn.send_body(body, req.chunked)
        elif not req.local:
            if req.pending is None:
                req.pending = []
            req.pending.append(body)
            if req is self.active:
                self.flow.pause(CONNECTING)

    # -- reading -------------------------------------------------------------------------
    def _read(self, data: bytes) -> None:
        fed = len(self.buf)  # bytes at the start llhttp has seen already
        if fed:
            data = self.buf + data
            self.buf = b""
        pos = 0
        n = len(data)
        while pos < n and not self.stopped:
            reading = self.reading is not None
            pos = self._body(data, pos) if reading else self._head(data, pos, fed)

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except _STOPPED as exc:
            self._refused(exc)

    def _refused(self, exc: Exception) -> None:
        """llhttp stopped: an upgrade (the rest of the read is for the tunnel, see _head),
        an error raised by our callback, or bad input (PeerError)."""
        if isinstance(exc, httptools.HttpParserUpgrade):
            self._upgrade = True
            return
        if isinstance(exc, httptools.HttpParserCallbackError):
            err = exc.__context__
            if isinstance(err, PeerError):
                raise err from None
            log.error("bug handling a request", exc_info=err)
            raise PeerError(500, "internal error") from None
        raise PeerError(400, f"bad request: {exc}") from None

    def _head(self, data: bytes, pos: int, fed: int) -> int:
        """Read the head starting at `pos`; the offset after it (len(data): not complete)."""
        if fed < pos:
            fed = pos
        blank = _HEAD_END(data, fed - 3 if fed > pos + 3 else pos)
        if blank < 0:
            if fed < len(data):
                self._feed(data[fed:])
            rest = data[pos:]
            s = self.settings
            if len(rest) > s.max_header_bytes + s.max_request_line:
                raise PeerError(431 if b"\r\n" in rest else 414, "request head too large")
            if fed == pos:
                self._ticks += 1  # a request begins (bytes that trickle in do not count)
            self.buf = rest
            return len(data)
        end = blank + 4
        whole = pos == 0 and end == len(data)
        self._head_done = self._message_done = self._upgrade = False
        if fed < end:
            self._feed(data if whole and not fed else data[fed:end])
        if not self._head_done:
            raise PeerError(400, "request head not where its blank line is")
        req = parse_request(data if whole else data[pos:end], self.settings)
        return self._headed(req, data, end, whole)

    def _headed(self, req: RequestState, data: bytes, end: int, whole: bool) -> int:
        """A head read whole and parsed (ending at `end` in `data`; `whole`: it is all of
        the read): its framing, route and place in line; the offset after it."""
        req.start = _CLOCK()
        self._ticks += 1
        if self.draining:
            req.keep_alive = False  # the last one on this connection (see drain)
        if not (req.chunked or req.content_length or req.upgrade is not None or self._upgrade):
            if not self._message_done:
                raise PeerError(400, "request body framing unclear")
            req.complete = True  # (_complete, inlined for the common request)
            if not req.keep_alive:
                self.stopped = True
        elif self._upgrade or req.upgrade is not None:
            if not (self._upgrade and req.upgrade is not None):
                raise PeerError(400, "upgrade request unclear")
            req.complete = True
            self.stopped = True  # what follows is for the tunnel, once the backend agrees
            self.tunnel_buf = data[end:]
            self.flow.pause(UPGRADE)
            end = len(data)
        else:  # a body follows
            if self._message_done:
                raise PeerError(400, "request body framing unclear")
            self.reading = req
            if req.chunked:
                self._chunks = ChunkedBody()
            else:
                self._body_left = req.content_length
        self._route(req)
        if whole:
            route = req.route
            memo = req.keep_alive and not req.expect_continue
            self._memo = req if memo and (route is None or route.repeatable) else None
            self._memo_router = self.ctx.router
        return end

    def _one(self, data: bytes) -> None:
        """The read is exactly one head on an idle connection (the common request on a
        keep-alive connection): _head, _route and _start without what only a read with
        more in it needs. Anything but a plain request takes the general path from the
        head on (llhttp has seen the bytes: _head does not feed them again)."""
        self._head_done = self._message_done = self._upgrade = False
        try:
            self.parser.feed_data(data)
        except _STOPPED as exc:
            self._refused(exc)
        if not self._head_done:
            raise PeerError(400, "request head not where its blank line is")
        req = parse_request(data, self.settings)
        if (
            req.chunked
            or req.content_length
            or req.upgrade is not None
            or self._upgrade
            or not self._message_done
            or req.expect_continue
        ):
            self._headed(req, data, len(data), True)
            if self.deferred and not self.closing:
                self.deferred = False
                self._start(self.active)  # type: ignore[arg-type]  # set by _route
            return
        req.start = _CLOCK()
        self._ticks += 1
        req.complete = True
        if self.draining:
            req.keep_alive = False  # the last one on this connection (see drain)
        if not req.keep_alive:
            self.stopped = True
        route = req.route = self.ctx.route(req)  # (answered here too: metrics label it)
        self._memo_router = self.ctx.router
        self._memo = req if req.keep_alive and route.repeatable else None
        plan = route.plan
        if plan is None:
            if not route.status:  # the common request: straight upstream
                req.upstream_head = req.upstream_head_with(self.lines)
                self.active = req
                ex = self.exchange = Exchange(self, req)
                ex.start()
                return
            req.local = route.status
        else:
            plan.admit(self, req, route)  # (_admit, inline)
        self._start(req)

    def _repeat(self, memo: RequestState) -> None:
        """The read is exactly the bytes of the last plain request read whole on this
        connection (HTTP/1.1, keep-alive, no body, no Expect or Upgrade): the same head
        parses the same way, and llhttp would end back where it is now, at a message
        start. Repeated clients (health checks, pollers, load generators) skip parsing
        and routing; on other traffic the miss costs one bytes comparison. Hits and
        misses are counted on the context (`memo_hits`, `memo_misses`)."""
        ctx = self.ctx
        ctx.memo_hits += 1
        req = memo.repeat()
        req.start = _CLOCK()
        self._ticks += 1
        if ctx.router is not self._memo_router:
            self._route(req)  # a new configuration: route it again
            self._memo = req
            self._memo_router = ctx.router
            self.deferred = False
        else:
            self.active = req
        self._start(req)

    def _body(self, data: bytes, pos: int) -> int:
        """Read body bytes from `pos`; the offset after them."""
        req: RequestState = self.reading  # type: ignore[assignment]  # (reading a body)
        n = len(data)
        chunks = self._chunks
        if chunks is None:
            end = min(n, pos + self._body_left)
            self._body_left -= end - pos
            ended = not self._body_left
        else:
            end = chunks.feed(data, pos)
            ended = chunks.ended
        self._message_done = False
        self._feed(data if pos == 0 and end == n else data[pos:end])
        if self._message_done != ended:
            raise PeerError(400, "request body framing unclear")
        if ended:
            self.reading = None
            self._chunks = None
            self._complete(req)
            if req is self.active:
                ex = self.exchange
                if ex is not None and ex.conn is not None and req.chunked:
                    ex.conn.end_body(True)
                if req.response_done:
                    self.finish()
        return end

    def _complete(self, req: RequestState) -> None:
        """The whole request is read."""
        req.complete = True
        if not req.keep_alive:
            self.stopped = True  # nothing after it is read

    def _route(self, req: RequestState) -> None:
        route = req.route = self.ctx.route(req)  # (answered here too: metrics label it)
        self._admit(req, route)
        if self.active is None:
            self.active = req
            self.deferred = True  # started once this read is parsed (see data_received)
        else:
            self.queue.append(req)
            self.flow.pause(PIPELINE)

    def _admit(self, req: RequestState, route: RouteResult) -> None:
        """What routing decided, set on the request: a route with filters admits it
        (ingress/filters/), a route that answers itself sets `local`, any other gets the
        head to send upstream."""
        plan = route.plan
        if plan is not None:
            plan.admit(self, req, route)
        elif route.status:
            req.local = route.status
        else:
            req.upstream_head = req.upstream_head_with(self.lines)

    # -- the active request ----------------------------------------------------------------
    def _start(self, req: RequestState) -> None:
        self.active = req
        if req.error:
            self.answer(req.error, close=True)
            return
        if req.local:
            self.answer(req.local, close=req.expect_continue and req.has_body)
            return
        if req.expect_continue and not req.complete:
            self._write(CONTINUE)
        if req.plan is not None:
            req.plan.begin(self)  # its FilteredExchange (ingress/filters/)
            return
        ex = self.exchange = Exchange(self, req)
        ex.start()

    def finish(self) -> None:
        """The active request is over (read whole and answered, or failed): the one place
        where a request ends, with `req.status`, the exchange's `received` bytes and
        `req.start` known. Then the next pipelined request, if any, starts."""
        req: RequestState = self.active  # type: ignore[assignment]  # (one is active)
        self.active = None
        self._ticks += 1
        if req.plan is not None:
            req.plan.finished()
        ex = self.exchange
        self.ctx.stats.request_done(self, req, ex)
        if ex is not None:
            self.exchange = None
            lease = ex.lease
            if lease is not None:  # ex.end() inlined: this runs once per request
                ex.lease = None
                lease.end(self.loop.time() if lease.timed else None)
            if ex.budget is not None:  # (a retry held a place in the retry budget)
                ex.end()
            conn = ex.conn
            if conn is not None:
                if conn.exchange is ex:
                    conn.release()
                else:
                    conn.abandon(ex)  # finished before its turn (an answer of our own)
        if not req.keep_alive:
            self.close()
            return
        # CONNECTING too: a body that came before any upstream (answered by us) is over.
        if self.queue:
            nxt = self.queue.popleft()
            if not self.queue:
                self.flow.resume(PIPELINE | CONNECTING)
            self._start(nxt)
            waited = self.exchange
            if waited is not None:  # it waited its turn: its exchange begins now
                waited.began = _CLOCK()
        elif self.flow.reasons:
            self.flow.resume(PIPELINE | CONNECTING)

    def answer(self, status: int, close: bool) -> None:
        """A response the proxy makes itself, in order, for the active request."""
        req: RequestState = self.active  # type: ignore[assignment]  # (one is active)
        if req is self._memo and status != req.local:
            # A failure's answer (502...): the next identical request must be tried again,
            # not answered from memory: the memo becomes a copy as it was routed.
            self._memo = req.repeat()
        req.local = req.status = status
        req.response_started = req.response_done = True
        close = close or not req.keep_alive
        plan = req.plan
        self._write(error_response(status, close) if plan is None else plan.reply(status, close))
        if close:
            req.keep_alive = False
            self.finish()
        elif req.complete:
            self.finish()

    def _bad(self, status: int) -> None:
        """The client broke the protocol or a limit: answer `status` in turn, then close."""
        self.stopped = True
        self.buf = b""
        req = self.reading
        if req is not None and req is self.active and self.deferred:
            self.deferred = False  # the bad request itself was about to start: never does
        self.flow.pause(PIPELINE)
        if self.active is None and not self.queue:
            self.active = req or RequestState()
            self.answer(status, close=True)
        elif req is not None and req is self.active:
            ex, self.exchange = self.exchange, None
            if ex is not None:
                ex.end()
                if ex.conn is not None:
                    ex.conn.abandon(ex)
            if req.response_started:
                self.close()
            else:
                self.answer(status, close=True)
        elif req is not None and req in self.queue:
            req.error = status
        else:
            marker = RequestState()
            marker.error = status
            self.queue.append(marker)

    def start_tunnel(self, conn: UpstreamConnection) -> None:
        """The backend agreed to the upgrade: bytes go both ways unparsed from now on."""
        self.tunnel = conn
        if self.tunnel_buf:
            conn.tunnel(self.tunnel_buf)
            self.tunnel_buf = b""
        self.flow.resume_all()

    # -- shutdown --------------------------------------------------------------------------
    def drain(self) -> None:
        """Graceful shutdown: an idle connection closes now; otherwise the requests in
        flight finish, the last one's response says `Connection: close` (if its head has
        not gone out yet: a request that is not keep-alive gets it, see ingress/upstream.py)
        and the connection closes after it; nothing after it is read."""
        self.draining = True
        if self.closing:
            return
        last = self.queue[-1] if self.queue else self.active
        if last is None:
            if self.reading is None and not self.buf:
                self.close()  # idle keep-alive (a head on its way: _head sees `draining`)
            return
        last.keep_alive = False
        ex = self.exchange
        if last is self.active and ex is not None and ex.conn is not None:
            ex.conn.client_closing()  # its head may already be upstream
        if last.complete:
            self.stopped = True  # nothing after it is read (as _complete does)

    # -- helpers -------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.ctx.outbox.write(self.transport, data)

    def close(self) -> None:
        if not self.closing:
            self.closing = self.stopped = True
            if self.transport is not None:
                self.ctx.outbox.flush()  # what is queued for this client goes out first
                req = self.reading
                if req is not None and not req.complete and (req.content_length or req.chunked):
                    linger(self.transport, self, self.loop)  # its body may still be coming
                else:
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
        elif self.active is None and not self.queue and self.reading is None:
            s = self.settings
            if self.buf:
                if now - self._since >= s.header_timeout:
                    self._bad(408)
                    return
            else:
                limit = s.keepalive_timeout if self._ticks else s.header_timeout
                if now - self._since >= limit:
                    self.close()  # idle keep-alive connection, or nothing ever sent
                    return
        self._timer = self.loop.call_later(self._interval, self._on_timer)
