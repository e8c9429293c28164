"""One keep-alive connection to a backend endpoint: per-connection state only.

`UpstreamConnection` is an asyncio.Protocol. It serves one exchange at a time (the
`ResponseSink` below, an ingress/exchange.py Exchange in the proxy, a fake in tests), which
holds everything about that request and its response (status, bytes, whether the client
has seen any of it). The connection holds the socket, llhttp's response parser and where
it is in the byte stream: reading a head, or a body.

A response head is cut at its first blank line. Strict llhttp accepts only CRLF line ends
and no obs-fold, so in any response it accepts the first blank line is where the head
ends; one scan (headscan.must_go) says whether any field must go. The common
response (a final head for an HTTP/1.1 client kept alive, not a HEAD, nothing to drop)
is fed to llhttp with whatever body came in the same read, in one call (`_whole`), and
goes to the client exactly as received (or with its head edited by a route's filters:
`_edited`); a second response in that read fails the feed (on_message_begin). Any other
head is fed to llhttp alone and trusted only when llhttp reports it complete within
exactly those bytes. Framing and keep-alive come from llhttp:
it sees every body byte (without Python callbacks) and says where the response ends;
bytes after it fail the exchange (502, or a cut if the client has seen some of it).

Large responses: after a response of BIG_RESPONSE bytes or more, the connection reads
through its `UpstreamReader` (an asyncio.BufferedProtocol: uvloop reads into the loop's one
read buffer, ingress/outbox.py, instead of copying every read into a new bytes object),
until a smaller response ends. A read of the body of a plain response (`_plain`, the
`_whole` case and the body reads after it) is fed to llhttp and written to the client
from a view of that buffer; its head is copied out. Every other read is copied to bytes
and takes data_received's path. Measured on bench/http.py's 64k scenario: README,
"Where a 64 KiB response's time goes".

Pipelining (`--upstream-pipelining N`) is ingress/pipelining.py, a subclass: with the
default of 1, none of its bookkeeping runs (and it never reads through the buffer).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Final, cast

import httptools
from mypy_extensions import mypyc_attr

from ingress import headscan
from ingress.outbox import Outbox
from ingress.pool import EndpointPool
from ingress.request import RequestState
from ingress.response import (
    CHUNKED,
    CONTENT_LENGTH,
    REBUILD,
    rebuild_head,
    scan_head,
)
from ingress.retry import ERROR, INVALID
from proxy.outlier import RESET, TIMED_OUT

# (compiled, a Final is read from a C static: an imported name costs a dict lookup per call)
_HEAD_END: Final[Callable[[bytes, int], int]] = headscan.head_end
_MUST_GO: Final[Callable[[bytes], bool]] = headscan.must_go

log = logging.getLogger(__name__)

MAX_RESPONSE_HEAD: Final = 64 * 1024
# bytes, head included: pipelining only behind responses this small
SMALL_RESPONSE: Final = 16 * 1024
# bytes, head included: after a response this large the connection reads into the loop's
# read buffer (UpstreamReader), until a response smaller than that ends
BIG_RESPONSE: Final = 32 * 1024
# bytes: a head must end within this much of a buffered read to be read from it; the
# first look copies out less (a small object; most response heads are a few hundred bytes)
HEAD_PEEK: Final = 4096
FIRST_PEEK: Final = 512
# bytes: a buffered read smaller than this is copied and read as bytes (ingress/outbox.py
# writes no smaller piece at once either: its DIRECT)
VIEW_MIN: Final = 16 * 1024
_CRLF: Final = b"\r\n"
_LAST_CHUNK: Final = b"0\r\n\r\n"
# In the current response: its head, its body (llhttp), or the body of a repeated head
# (counted, see _repeated).
HEAD: Final = 0
BODY: Final = 1
COUNT: Final = 2
_CONTENT_LENGTH: Final = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]+)", re.IGNORECASE)


# Subclassed by ingress/filters/subrequest.py (interpreted) and the tests' fakes.
@mypyc_attr(allow_interpreted_subclasses=True)
class ResponseSink:
    """The exchange a connection serves: where its response goes and who hears about it
    (ingress/exchange.py's Exchange in the proxy). A base class, not a Protocol: compiled,
    the connection reads these fields from the object's struct and calls its methods
    through the class's table, not by name."""

    __slots__ = ("edits_response", "out", "received", "req", "reused", "sent", "status")

    def __init__(self, req: RequestState, out: asyncio.Transport) -> None:
        self.req = req  # the request (keep-alive, version, method)
        self.out = out  # the client's transport
        self.reused = False  # the connection came from the pool (no byte yet: retry)
        self.received = 0  # response bytes from the backend so far
        self.sent = False  # some of the response went to the client (too late for a 502)
        self.status = 0  # the final response status, once its head is in
        # Routes with filters (ingress/filters/exchange.py): when set, a final response
        # head whose status the exchange `intercepts` is not sent (the connection closes
        # and the exchange is told), and the head sent is `response_head`'s.
        self.edits_response = False

    def response_started(self, close: bool) -> None:
        raise NotImplementedError

    def response_done(self) -> None:
        raise NotImplementedError

    def failed(self, status: int, retryable: bool, kind: int = ERROR) -> None:
        """No response byte reached the client: 502 (504: timed out) unless it is tried
        again. `retryable`: a pooled connection closed before any byte (STALE); `kind`
        (ingress/retry.py): ERROR, or INVALID for a malformed response."""
        raise NotImplementedError

    def upgraded(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def client_paused(self) -> bool:
        return False

    def pause_client_reads(self) -> None:
        pass

    def resume_client_reads(self) -> None:
        pass

    def intercepts(self, status: int) -> bool:
        return False

    def intercepted(self) -> None:
        pass

    def response_head(self, data: bytes, end: int) -> bytes:
        """`data` (a response head ending at `end`, then maybe body bytes) with that head
        as the client gets it (asked only when `edits_response` is set)."""
        return data


def blame(ex: ResponseSink, kind: int) -> None:
    """The endpoint failed this exchange before its response began (a reset, a bad head,
    the read timeout): its health hears it (proxy/outlier.py), through the exchange's
    Lease when it has one (sub-requests do not)."""
    lease = getattr(ex, "lease", None)
    if lease is not None:
        lease.failed(kind)


class _Decoding:
    """Parser callbacks for a connection whose client speaks HTTP/1.0: the body pieces of a
    chunked response are collected (decoded) for it. Only such connections pay for body
    callbacks."""

    __slots__ = ("conn",)

    def __init__(self, conn: UpstreamConnection) -> None:
        self.conn = conn

    def on_message_begin(self) -> None:
        self.conn.on_message_begin()

    def on_headers_complete(self) -> None:
        self.conn.on_headers_complete()

    def on_message_complete(self) -> None:
        self.conn.on_message_complete()

    def on_body(self, body: bytes) -> None:
        pieces = self.conn._decoded
        if pieces is not None:
            pieces.append(body)


class UpstreamReader(asyncio.BufferedProtocol):
    """The protocol of a connection that reads large responses (see the module docstring):
    uvloop reads into the loop's read buffer and tells this object how much came. A
    separate object because uvloop takes an asyncio.Protocol's reads as bytes."""

    __slots__ = ("conn", "view")

    def __init__(self, conn: UpstreamConnection) -> None:
        self.conn = conn
        self.view = conn.outbox.read_buffer()

    def get_buffer(self, sizehint: int) -> memoryview:
        view = self.view = self.conn.outbox.read_buffer()  # (a new one if the last was kept)
        return view

    def buffer_updated(self, nbytes: int) -> None:
        self.conn.view_received(self.view[:nbytes])

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self.conn.eof_received()

    def pause_writing(self) -> None:
        self.conn.pause_writing()

    def resume_writing(self) -> None:
        self.conn.resume_writing()


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "_busy_ticks",
        "_close_delimited",
        "_completed",
        "_decoded",
        "_decoding",
        "_hbuf",
        "_head_done",
        "_keep",
        "_last_head",
        "_last_length",
        "_last_status",
        "_left",
        "_message_done",
        "_plain",
        "_quiet",
        "_reader",
        "_state",
        "_ticks",
        "_timer",
        "bufferable",
        "closed",
        "exchange",
        "keep_alive",
        "loop",
        "outbox",
        "parser",
        "paused",
        "pool",
        "read_timeout",
        "send_timeout",
        "small",
        "timeout",
        "transport",
        "upgraded",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: EndpointPool,
        timeout: float,
        outbox: Outbox | None = None,
    ) -> None:
        self.loop = loop
        self.outbox = Outbox(None) if outbox is None else outbox  # None: at once (tests)
        self.pool = pool
        self.timeout = timeout  # the idle timer's period (see _on_timer)
        # nginx's proxy_send_timeout apart from proxy_read_timeout (set_timeouts); 0: the
        # period is the one timeout, whether the request is still going out or not.
        self.send_timeout = 0.0
        self.read_timeout = 0.0
        self._quiet = 0.0  # quiet time counted towards them
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self._decoding = False  # the parser collects body pieces (see _Decoding)
        self._plain = False  # the exchange's client is HTTP/1.1, kept alive, not a HEAD
        self.exchange: ResponseSink | None = None
        self.keep_alive = False  # the last response left the connection reusable
        self.closed = False
        self.paused = False
        self.upgraded = False
        self.small = False  # the last response was small (ingress/pipelining.py)
        self._state = HEAD
        self._hbuf = b""  # the start of a head that has not ended yet (already fed)
        self._head_done = False  # llhttp callbacks of the last feed
        self._message_done = False
        self._keep = False  # llhttp: the response leaves the connection open
        self._close_delimited = False  # the body ends when the connection does
        self._decoded: list[bytes] | None = None  # decoded body pieces (HTTP/1.0 client)
        self._completed = 0  # responses finished on this connection
        # The last head passed through unchanged and its Content-Length (-1: not read
        # yet), status, and the body bytes still to count after a repeat (see _repeated).
        self._last_head = b""
        self._last_length = -1
        self._last_status = 0
        self._left = 0
        self._ticks = 0
        self._busy_ticks = -1
        self._timer: asyncio.TimerHandle | None = None
        self._reader: UpstreamReader | None = None  # set: reading into the read buffer
        self.bufferable = True  # may read through an UpstreamReader (not when pipelining)

    @property
    def key(self) -> tuple[str, int]:
        return self.pool.key

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.pool.opened += 1  # (the request metrics' open upstream connections)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.closed += 1
        ex = self.exchange
        if ex is None:
            self.pool.discard(self)
            return
        self.exchange = None
        if self.upgraded:
            ex.abort()
        elif self._state == HEAD:
            retryable = ex.reused and not ex.received  # (a pooled connection's race)
            if not retryable:
                blame(ex, RESET)
            ex.failed(502, retryable)
        elif self._close_delimited:
            self.keep_alive = False
            ex.response_done()
        else:
            ex.abort()  # response cut short: the client must see a broken connection

    def eof_received(self) -> bool | None:
        self.closed = True  # never reused; connection_lost finishes the exchange
        return False

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.pause_client_reads()

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.resume_client_reads()

    def data_received(self, data: bytes) -> None:
        ex = self.exchange
        if ex is None:
            self.close()  # bytes nobody asked for: never reuse this connection
            return
        if self.upgraded:
            self.outbox.write(ex.out, data)
            return
        self._ticks += 1
        if self._plain and self._state == HEAD and not self._hbuf:
            last = self._last_head
            if last:
                if data.startswith(last):
                    if self._repeated(data, ex):
                        ex.received += len(data)  # (when it returns False, _whole counts)
                        return
                else:  # (the common miss, counted here: no call)
                    self.pool.memo_misses += 1
            blank = _HEAD_END(data, 0)
            if blank > 0 and data[9:10] != b"1":  # a final head (llhttp checks the digits)
                self._whole(data, blank + 4, ex)
                return
            ex.received += len(data)
            self._read_head(data, ex, False)
            return
        self._received(data, ex)

    def view_received(self, view: memoryview) -> None:
        """A read through the UpstreamReader: `view` is in the loop's read buffer, which
        is read into again once this returns. A plain response's head with body, or a
        body read, goes out from the view (ingress/outbox.py write_view); anything else is
        copied and takes data_received's path."""
        ex = self.exchange
        n = len(view)
        if ex is None or self.upgraded or n < VIEW_MIN or self._decoded is not None:
            self.data_received(bytes(view))
            return
        state = self._state
        if state == HEAD:
            peek = bytes(view[:FIRST_PEEK])
            blank = _HEAD_END(peek, 0)
            if blank < 0:
                peek = bytes(view[:HEAD_PEEK])
                blank = _HEAD_END(peek, FIRST_PEEK - 3)
            if not self._plain or self._hbuf or blank <= 0 or peek[9:10] == b"1":
                self.data_received(bytes(view))  # (a 1xx head, or one not in the peek)
                return
            self._ticks += 1
            self._whole_view(view, peek[: blank + 4], ex)
            return
        self._ticks += 1
        ex.received += n
        if state == COUNT:
            left = self._left - n
            if left < 0:
                log.info("upstream %s:%d: bytes after the response", *self.pool.key)
                self._fail(ex)
                return
            self._left = left
            self.outbox.write_view(ex.out, view)
            if not left:
                self._done(ex)
            return
        if not self._feed(view, ex):
            return
        self.outbox.write_view(ex.out, view)
        if self._message_done:
            self._done(ex)

    def _read_buffered(self, on: bool) -> None:
        """Read through an UpstreamReader (on) or as bytes again (see BIG_RESPONSE)."""
        transport = self.transport
        if transport is None or self.closed or not self.bufferable:
            return
        if on:
            reader = self._reader = UpstreamReader(self)
            transport.set_protocol(reader)
        else:
            self._reader = None
            transport.set_protocol(self)

    # -- llhttp callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self._message_done:
            raise ValueError("upstream sent more than one response")

    def on_headers_complete(self) -> None:
        self._head_done = True
        self._keep = self.parser.should_keep_alive()

    def on_message_complete(self) -> None:
        self._message_done = True

    # -- reading a response ----------------------------------------------------------------
    def _received(self, data: bytes, ex: ResponseSink) -> None:
        """Bytes of the current exchange's response."""
        ex.received += len(data)
        state = self._state
        if state == HEAD:
            self._read_head(data, ex)
            return
        if state == COUNT:
            left = self._left - len(data)
            if left < 0:
                log.info("upstream %s:%d: bytes after the response", *self.pool.key)
                self._fail(ex)
                return
            self.outbox.write(ex.out, data)
            self._left = left
            if not left:
                self._done(ex)
            return
        if not self._feed(data, ex):
            return
        pieces = self._decoded
        if pieces is None:
            self.outbox.write(ex.out, data)
        elif pieces:
            self.outbox.writelines(ex.out, pieces)
            pieces.clear()
        if self._message_done:
            self._done(ex)

    def _feed(self, data: bytes | memoryview, ex: ResponseSink) -> bool:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            log.info("upstream %s:%d: bad response: %s", *self.pool.key, exc)
            self._fail(ex)
            return False
        return True

    def _repeated(self, data: bytes, ex: ResponseSink) -> bool:
        """Whether `data`, which starts with the head this connection passed through
        unchanged last time (the caller checked), was handled as such: the same bytes
        parse the same way, so the response goes out as received and its body is
        counted, without llhttp (which stays where it is, at a message start). Backends
        repeat their heads for repeated requests; varied responses (an id, a cookie) miss
        after one bytes comparison. Counted per endpoint (`memo_hits`, `memo_misses` of
        the pool)."""
        last = self._last_head
        req = ex.req
        if not req.keep_alive or req.method == b"HEAD" or ex.edits_response:
            self.pool.memo_misses += 1
            return False
        length = self._last_length
        if length < 0:  # seen twice: read its length once
            m = _CONTENT_LENGTH.search(last)
            length = self._last_length = int(m.group(1)) if m is not None else 0
            if m is None:  # not Content-Length framing: never repeated
                self._last_head = b""
                return False
        body = len(data) - len(last)
        if body > length:
            return False  # more than one response: llhttp refuses it below
        self.pool.memo_hits += 1
        ex.status = self._last_status
        self._keep = True
        self._close_delimited = False
        self._decoded = None
        ex.response_started(False)
        ex.sent = True
        self.outbox.write(ex.out, data)
        if body == length:
            self._done(ex)
        else:
            self._state = COUNT
            self._left = length - body
        return True

    def _whole(self, data: bytes, end: int, ex: ResponseSink) -> None:
        """The common response: a final head ending at `end`, for an HTTP/1.1 client kept
        alive that did not ask HEAD, and whatever body came with it. When no field must
        go, llhttp takes the whole read in one feed (a second response in it fails the
        feed: on_message_begin) and the bytes go to the client as received (for an
        exchange that edits its response head, with that head edited: _edited)."""
        ex.received += len(data)
        head = data[:end] if end < len(data) else data
        if _MUST_GO(head):
            self._read_head(data, ex, False)
            return
        if self._began(data, head, ex):
            self.outbox.write(ex.out, data)
            if self._message_done:
                self._done(ex)

    def _whole_view(self, view: memoryview, head: bytes, ex: ResponseSink) -> None:
        """_whole for a read in the read buffer (`head`: its head, copied out)."""
        ex.received += len(view)
        if _MUST_GO(head):
            self._read_head(bytes(view), ex, False)
            return
        if self._began(view, head, ex):
            self.outbox.write_view(ex.out, view)
            if self._message_done:
                self._done(ex)

    def _began(self, data: bytes | memoryview, head: bytes, ex: ResponseSink) -> bool:
        """Whether the response starting `data` (with `head`, in which no field must go)
        goes to the client as received, which the caller then does; False when it was
        dealt with here (refused, not kept alive, or edited)."""
        self._head_done = self._message_done = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            log.info("upstream %s:%d: bad response: %s", *self.pool.key, exc)
            self._fail(ex)
            return False
        if not self._head_done:
            self._fail(ex)  # llhttp did not end the head at its blank line: never guess
            return False
        status = self.parser.get_status_code()
        if not self._keep:
            whole = data if isinstance(data, bytes) else bytes(data)
            self._final_head(whole, 0, len(head), status, ex, [], True)
            return False
        ex.status = status
        self._close_delimited = False
        self._decoded = None
        if ex.edits_response:
            self._edited(data if isinstance(data, bytes) else bytes(data), len(head), ex)
            return False
        if status != 204 and status != 304 and head != self._last_head:
            self._last_head = head  # a candidate for _repeated
            self._last_length = -1
            self._last_status = status
        self._state = BODY
        ex.response_started(False)
        ex.sent = True
        return True

    def _edited(self, data: bytes, end: int, ex: ResponseSink) -> None:
        """_whole for an exchange that edits its response head (ingress/filters/): the
        head as the exchange makes it, then the body as received (one splice when it only
        adds fields). Only a status of 300 or more may be replaced (nginx's
        proxy_intercept_errors)."""
        if ex.status >= 300 and ex.intercepts(ex.status):
            self.close()  # this answer is replaced by another the exchange asks for
            ex.intercepted()
            return
        self._state = BODY
        ex.response_started(False)
        ex.sent = True
        self.outbox.write(ex.out, ex.response_head(data, end))
        if self._message_done:
            self._done(ex)

    def _read_head(self, data: bytes, ex: ResponseSink, memo: bool = True) -> None:
        fed = len(self._hbuf)  # bytes llhttp has seen already
        last = self._last_head
        if memo and not fed and last:
            if data.startswith(last):
                if self._repeated(data, ex):
                    return
            else:
                self.pool.memo_misses += 1
        if fed:
            data = self._hbuf + data
            self._hbuf = b""
        pos = 0
        interim: list[bytes] = []  # 1xx heads for the client, before the final one
        while True:
            blank = _HEAD_END(data, max(pos, fed - 3))
            if blank < 0:  # the head goes on in the next read
                if fed < len(data) and not self._feed(data[fed:], ex):
                    return
                self._hbuf = data[pos:]
                if len(self._hbuf) > MAX_RESPONSE_HEAD:
                    self._fail(ex)
                elif interim:
                    self._send(ex, interim)
                return
            end = blank + 4
            self._head_done = self._message_done = False
            try:
                if fed < end:
                    self.parser.feed_data(data[fed:end] if fed or end < len(data) else data)
            except httptools.HttpParserUpgrade:
                self._upgraded(ex, [*interim, data[pos:end], data[end:]])
                return
            except httptools.HttpParserError as exc:
                log.info("upstream %s:%d: bad response head: %s", *self.pool.key, exc)
                self._fail(ex)
                return
            if not self._head_done:
                self._fail(ex)  # llhttp did not end the head at its blank line: never guess
                return
            fed = end
            status = self.parser.get_status_code()
            if status >= 200:
                break
            self._message_done = False  # the 1xx message; the final one follows
            # An interim response; the final one follows. A proxy must forward 1xx (RFC
            # 9110 15.2), so 103 Early Hints reach HTTP/1.1 clients; 100 does not: seaway
            # answers the client's Expect itself; HTTP/1.0 clients get none.
            if status != 100 and ex.req.v11:
                head = data[pos:end]
                interim.append(rebuild_head(head, False, False) if _MUST_GO(head) else head)
            pos = end
            if pos == len(data):
                if interim:
                    self._send(ex, interim)
                return
        self._final_head(data, pos, end, status, ex, interim)

    def _final_head(
        self,
        data: bytes,
        pos: int,
        end: int,
        status: int,
        ex: ResponseSink,
        interim: list[bytes],
        fed: bool = False,  # llhttp has seen the body bytes too (see _whole)
    ) -> None:
        ex.status = status
        if ex.edits_response and ex.intercepts(status):
            self.close()  # this answer is replaced by another the exchange asks for
            ex.intercepted()
            return
        req = ex.req
        head_request = req.method == b"HEAD"
        head = data[pos:end] if pos or end < len(data) else data
        if self._keep and req.keep_alive and not head_request and not _MUST_GO(head):
            close = self._close_delimited = False  # the common case: nothing changes
            self._decoded = None
            new_head = None
            if status != 204 and status != 304 and head != self._last_head:
                self._last_head = head  # a candidate for _repeated
                self._last_length = -1
                self._last_status = status
        else:
            flags = scan_head(head)
            no_body = head_request or status == 204 or status == 304
            chunked = not no_body and bool(flags & CHUNKED)
            self._close_delimited = not no_body and not flags & (CHUNKED | CONTENT_LENGTH)
            close = not req.keep_alive or self._close_delimited
            decode = chunked and not req.v11
            self._decoded = [] if decode else None
            rebuild = flags & REBUILD or close or decode
            new_head = rebuild_head(head, close, decode) if rebuild else None
        self._state = BODY
        ex.response_started(close)
        body = data[end:]
        if head_request:
            if body:
                self._fail(ex)  # a response to HEAD has no body: these bytes are a second one
                return
            self._message_done = True  # llhttp would wait for the announced body: start anew
            self.parser = self._new_parser()
        elif body and not fed and not self._feed(body, ex):
            return
        if ex.edits_response:
            edited = head if new_head is None else new_head
            edited = ex.response_head(edited, len(edited))
            if edited is not head:
                new_head = edited
        pieces = interim
        if new_head is None:
            pieces.append(data[pos:] if pos else data)
        else:
            pieces.append(new_head)
            decoded = self._decoded
            if decoded is not None:
                pieces += decoded
                decoded.clear()
            elif body:
                pieces.append(body)
        self._send(ex, pieces)
        if self._message_done:
            self._done(ex)

    def _send(self, ex: ResponseSink, pieces: list[bytes]) -> None:
        ex.sent = True
        if len(pieces) == 1:
            self.outbox.write(ex.out, pieces[0])
        else:
            self.outbox.writelines(ex.out, pieces)

    def _done(self, ex: ResponseSink) -> None:
        """The current response ended: the exchange hears it; the connection is ready for
        the next response (release() decides whether there is one)."""
        self._state = HEAD
        self._message_done = False
        self.keep_alive = self._keep and not self._close_delimited
        self._completed += 1
        received = ex.received
        self.small = received <= SMALL_RESPONSE
        if received >= BIG_RESPONSE:
            if self._reader is None:
                self._read_buffered(True)
        elif self._reader is not None:
            self._read_buffered(False)
        ex.response_done()

    def _new_parser(self) -> httptools.HttpResponseParser:
        return httptools.HttpResponseParser(_Decoding(self) if self._decoding else self)

    # -- used by the exchange ------------------------------------------------------------
    def attach(self, ex: ResponseSink, head: bytes) -> None:
        """Start an exchange: write the request head; the body follows with send_body.
        (_begin and _arm, inlined: this runs for every forwarded request.)"""
        self.exchange = ex
        self._ticks += 1
        req = ex.req
        v11 = req.v11
        if v11 == self._decoding:  # the parser kind follows the client's version
            self._decoding = not v11
            self.parser = self._new_parser()
        self._plain = v11 and req.keep_alive and req.method != b"HEAD"
        self.outbox.write(self.transport, head)  # type: ignore[arg-type]  # connected
        if self._timer is None:
            self._busy_ticks = -1
            self._timer = self.loop.call_later(self.timeout, self._on_timer)

    def client_closing(self) -> None:
        """The client's request stopped being keep-alive after it went out (a graceful
        drain): its response head must be rebuilt with `Connection: close`, so the
        pass-through path for plain keep-alive exchanges is off for it."""
        self._plain = False

    def _begin(self, ex: ResponseSink) -> None:
        self.exchange = ex
        self._ticks += 1
        req = ex.req
        if req.v11 == self._decoding:  # the parser kind follows the client's version
            self._decoding = not req.v11
            self.parser = self._new_parser()
        self._plain = req.v11 and req.keep_alive and req.method != b"HEAD"

    def _arm(self) -> None:
        if self._timer is None:
            self._busy_ticks = -1
            self._timer = self.loop.call_later(self.timeout, self._on_timer)

    def send_body(self, data: bytes, chunked: bool) -> None:
        assert self.transport is not None
        self._ticks += 1
        if chunked:
            self.outbox.writelines(self.transport, [b"%x\r\n" % len(data), data, _CRLF])
        else:
            self.outbox.write(self.transport, data)

    def end_body(self, chunked: bool) -> None:
        if chunked:
            assert self.transport is not None
            self.outbox.write(self.transport, _LAST_CHUNK)

    def tunnel(self, data: bytes) -> None:
        assert self.transport is not None
        self.outbox.write(self.transport, data)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def release(self) -> None:
        """The current exchange is over: back to the pool if its response left the
        connection reusable, else closed."""
        self.exchange = None
        if self.keep_alive and not self.closed:
            if self.paused:
                self.resume_reading()
            self.pool.release(self)
        else:
            self.close()

    def abandon(self, ex: ResponseSink) -> None:
        """`ex` goes away (its client closed, or answered itself) before its response ended."""
        self.close()

    # -- pool protocol -----------------------------------------------------------------
    def reusable(self) -> bool:
        return not self.closed and self.exchange is None

    def close(self) -> None:
        self.exchange = None
        self.keep_alive = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None and not self.closed:
            self.closed = True
            self.outbox.flush()  # what is queued for it (a tunnel's last bytes) goes first
            self.transport.close()

    # -- failures and upgrades -------------------------------------------------------------
    def _fail(self, ex: ResponseSink) -> None:
        started = ex.sent  # some of the response went out already: too late for a 502
        self.close()
        if started:
            ex.abort()
        else:
            blame(ex, RESET)
            ex.failed(502, False, INVALID)

    def _upgraded(self, ex: ResponseSink, pieces: list[bytes]) -> None:
        if self.parser.get_status_code() != 101:
            self._fail(ex)
            return
        self.upgraded = True
        ex.status = 101
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ex.response_started(False)
        self._send(ex, [p for p in pieces if p])
        ex.upgraded()

    def set_timeouts(self, read: float, send: float = 0.0, rearm: bool = True) -> None:
        """The idle timeouts of the exchange about to be attached: `read` once its
        request is all read from the client, `send` before (0: `read` throughout). With
        `rearm`, a timer armed for the last exchange is dropped, so attach arms one with
        these (a pooled connection's last route may have waited longer)."""
        if send and send != read:
            self.read_timeout = read
            self.send_timeout = send
            self.timeout = min(read, send)  # the timer ticks at the shorter, counting
            self._quiet = 0.0
        else:
            self.send_timeout = 0.0
            self.timeout = read
        if rearm and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        ex = self.exchange
        if ex is None or self.upgraded:
            return
        if self._ticks != self._busy_ticks:
            self._busy_ticks = self._ticks  # activity since the last look: wait again
            self._quiet = 0.0
            self._timer = self.loop.call_later(self.timeout, self._on_timer)
            return
        if self.send_timeout:  # a quiet period: is it past the timeout that applies?
            self._quiet += self.timeout
            limit = self.read_timeout if ex.req.complete else self.send_timeout
            if self._quiet < limit:
                self._timer = self.loop.call_later(self.timeout, self._on_timer)
                return
        started = ex.sent
        self.close()
        if started:
            ex.abort()
        else:
            blame(ex, TIMED_OUT)
            ex.failed(504, False)
