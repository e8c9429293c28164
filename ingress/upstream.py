"""The upstream side of an exchange: one keep-alive connection to a backend endpoint.

`UpstreamConnection` is an asyncio.Protocol: bytes from the backend -> httptools'
strict response parser -> the response head passed through as received (or rebuilt when
something in it must change), body bytes written straight to the client transport.
A response that starts with a head llhttp already accepted and passed through unchanged
(exact bytes, Content-Length: response.KNOWN_HEADS) skips the parser: its body is counted,
and bytes beyond it fail the exchange as the parser would (502, or a cut if started).
It knows its client only through the `Client` protocol below, so it is tested with a fake.

Pipelining (`--upstream-pipelining N`, off by default): a GET without body that finds the
connection a GET went to earlier in the same loop iteration, its head still queued in
the Outbox, joins it (up to N exchanges): the heads go out in one write, and the
backend's answers often come back in one read. Only a connection whose last response was
small (SMALL_RESPONSE) takes them: with large responses the bytes cost more than the
packets, and pipelining would only add copies and waits; and after a batch broke, the
endpoint gets its next PAUSE_AFTER_BREAK requests one per connection. Later exchanges
wait in `_queue`; when a response ends, the next exchange takes the connection
(`release`). While exchanges wait, each read is cut where the current response ends
(ingress/framing.py), so every client gets only its own response's bytes. If the
connection closes, times out or fails, or a response asks to close it, the waiting
exchanges get a retryable failure: they are GETs whose response has not begun, retried
once on a fresh connection (ingress/exchange.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol, cast

import httptools

from ingress.framing import ResponseFramer
from ingress.outbox import Outbox
from ingress.pool import PoolSet
from ingress.response import (
    CHUNKED,
    CONTENT_LENGTH,
    KNOWN_HEADS,
    REBUILD,
    head_flags,
    rebuild_head,
    remember_head,
)

log = logging.getLogger(__name__)

MAX_RESPONSE_HEAD = 64 * 1024
SMALL_RESPONSE = 16 * 1024  # bytes, head included: pipelining only behind responses this small
# After a batch broke (the connection closed with requests waiting, which must be sent
# again), this many pipelinable requests to that endpoint go one per connection: a
# backend that closes connections often pays for every batch it breaks.
PAUSE_AFTER_BREAK = 256
_CRLF = b"\r\n"
_LAST_CHUNK = b"0\r\n\r\n"


class Client(Protocol):
    """What an upstream connection calls back on the downstream side."""

    write_paused: bool  # the client cannot take more bytes now: do not read for it

    def response_started(self, close: bool) -> None: ...

    def response_done(self, conn: UpstreamConnection) -> None: ...

    def upstream_failed(self, conn: UpstreamConnection, status: int, retryable: bool) -> None: ...

    def upstream_upgraded(self, conn: UpstreamConnection) -> None: ...

    def abort(self) -> None: ...

    def pause_reading_for_upstream(self) -> None: ...

    def resume_reading_for_upstream(self) -> None: ...


# An exchange waiting on a pipelined connection: client, its transport, client keep-alive,
# client HTTP/1.0 (client None: it went away; its turn closes the connection).
Waiting = tuple["Client | None", "asyncio.Transport | None", bool, bool]


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "_batch",
        "_busy_ticks",
        "_chunked",
        "_close_delimited",
        "_completed",
        "_data",
        "_decode",
        "_done",
        "_emit",
        "_fast",
        "_framer",
        "_got",
        "_head_buf",
        "_head_done",
        "_head_request",
        "_held",
        "_in_head",
        "_interim",
        "_keep",
        "_pieces",
        "_pipe_generation",
        "_pos",
        "_queue",
        "_remaining",
        "_sent",
        "_status",
        "_ticks",
        "_timer",
        "client",
        "client_10",
        "client_ka",
        "closed",
        "got_byte",
        "keep_alive",
        "key",
        "loop",
        "out",
        "outbox",
        "parser",
        "paused",
        "pool",
        "pools",
        "reused",
        "small",
        "timeout",
        "transport",
        "upgraded",
    )
    # Set per exchange in _start (declared here, where mypy looks first).
    _remaining: int
    _done: bool

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pools: PoolSet,
        key: tuple[str, int],
        timeout: float,
        outbox: Outbox | None = None,
    ) -> None:
        self.loop = loop
        self.outbox = Outbox(None) if outbox is None else outbox  # None: at once (tests)
        self.pools = pools
        self.pool = pools.get(key)
        self.key = key
        self.paused = False
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.client: Client | None = None
        self.out: asyncio.Transport | None = None
        self.closed = False
        self.upgraded = False
        self._head_buf = bytearray()
        self._start(True, False, False)  # the per-exchange state (client_ka ... _got)
        self._data = b""
        self._pos = 0
        self._interim = False
        self._status = 0
        self._emit = -1
        self._held = 0
        self._keep = False
        self._pieces: list[bytes] = []
        self._ticks = 0
        self._busy_ticks = -1
        self._timer: asyncio.TimerHandle | None = None
        self._completed = 0  # responses finished on this connection
        # The last response was small: the connection may take pipelined requests (for
        # large responses pipelining saves nothing and costs copies and head-of-line waits).
        self.small = False
        # Pipelining: exchanges waiting for their turn, the Outbox list holding this
        # iteration's request heads, the Outbox generation that list belongs to (-1: the
        # current exchange may not be pipelined behind), the cutter of responses.
        self._queue: deque[Waiting] = deque()
        self._batch: list[bytes] | None = None
        self._pipe_generation = -1
        self._framer = ResponseFramer()

    # -- read by the request metrics and the access log (ingress/stats.py) ---------------
    @property
    def status(self) -> int:
        """Status of the current exchange's response (0 before its head)."""
        return self._status

    @property
    def response_bytes(self) -> int:
        """Bytes of the current exchange's response received so far, head included."""
        return self._got

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.pools.opened += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pools.closed += 1
        if self._queue:
            self._fail_waiting()
        client = self.client
        if client is None:
            self.pool.discard(self)
            return
        self.client = None
        if self.upgraded:
            client.abort()
        elif not self._head_done:
            retryable = self.reused and not self.got_byte
            client.upstream_failed(self, 502, retryable)
        elif self._close_delimited:
            self.keep_alive = False
            client.response_done(self)
        else:
            client.abort()  # response cut short: the client must see a broken connection

    def eof_received(self) -> bool | None:
        self.closed = True  # never reused; connection_lost finishes the exchange
        return False

    def pause_writing(self) -> None:
        if self.client is not None:
            self.client.pause_reading_for_upstream()

    def resume_writing(self) -> None:
        if self.client is not None:
            self.client.resume_reading_for_upstream()

    def data_received(self, data: bytes) -> None:
        out = self.out
        if self.upgraded:
            assert out is not None
            self.outbox.write(out, data)
            return
        if self.client is None or out is None:
            self.close()  # bytes nobody asked for: never reuse this connection
            return
        if self._queue:
            self._pipelined(data)
            return
        self._received(data, out)

    def _received(self, data: bytes, out: asyncio.Transport) -> None:
        """Bytes of the current exchange's response (all of them, when pipelining)."""
        self.got_byte = True
        self._ticks += 1
        self._got += len(data)
        if self._remaining:
            self._count_body(data, out)
            return
        if self._fast and self._in_head and not self._head_buf:  # at a response start
            end = data.find(b"\r\n\r\n") + 4
            if end > 3:
                known = KNOWN_HEADS.get(data[:end])
                if known is not None:
                    length, keep, status = known
                    body = len(data) - end
                    if body <= length:
                        self._known_head(data, out, body, length, keep, status)
                        return
        self._data = data
        self._pos = 0
        # Body bytes are forwarded as received (chunked framing included): from offset
        # _emit of this chunk, after whatever the callbacks queued in _pieces (a head).
        self._emit = 0 if self._head_done and not self._decode else -1
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgraded(data[int(exc.args[0]) :] if exc.args else b"")
            return
        except httptools.HttpParserError as exc:
            log.info("upstream %s:%d: bad response: %s", self.key[0], self.key[1], exc)
            self._fail()
            return
        pieces = self._pieces
        emit = self._emit
        if pieces:
            if emit >= 0 and emit < len(data):
                pieces.append(data[emit:] if emit else data)
            if len(pieces) > 1:
                self.outbox.writelines(out, pieces)
            else:
                self.outbox.write(out, pieces[0])
            pieces.clear()
        elif emit >= 0:
            self.outbox.write(out, data[emit:] if emit else data)
        self._sent = self._head_done
        if self._in_head:
            self._head_buf += data[self._pos :]
            if len(self._head_buf) > MAX_RESPONSE_HEAD:
                self._fail()
        elif self._done:
            if self._head_request:
                self.parser = httptools.HttpResponseParser(self)
            self._finish(self._keep)

    def _known_head(
        self, data: bytes, out: asyncio.Transport, body: int, length: int, keep: bool,
        status: int,
    ) -> None:
        """A response starting with a head parsed before: passed through, body counted."""
        self._in_head = False
        self._head_done = True
        self._status = status
        client = self.client
        assert client is not None
        client.response_started(False)
        self.outbox.write(out, data)
        self._sent = True
        self._keep = keep
        if body == length:
            self._done = True
            self.keep_alive = keep
            self._completed += 1
            self.small = self._got <= SMALL_RESPONSE
            client.response_done(self)
        else:
            self._remaining = length - body

    def _count_body(self, data: bytes, out: asyncio.Transport) -> None:
        left = self._remaining - len(data)
        if left < 0:
            log.info("upstream %s:%d: bytes after the response", self.key[0], self.key[1])
            self._fail()
            return
        self.outbox.write(out, data)
        self._remaining = left
        if not left:
            self._done = True
            self._finish(self._keep)

    # -- httptools callbacks -------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self._done or self._head_done:
            raise ValueError("upstream sent more than one response")
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        head = self._take_head()
        status = self.parser.get_status_code()
        self._status = status
        if 100 <= status < 200 and status != 101:
            # An interim response; the final one follows. A proxy must forward 1xx
            # (RFC 9110 15.2), so 103 Early Hints and others reach HTTP/1.1 clients; 100
            # does not: seaway answers the client's Expect itself; HTTP/1.0 gets none.
            self._interim = True
            if status != 100 and not self.client_10:
                if head_flags(head) & REBUILD:
                    head = rebuild_head(head, False, False)
                self._pieces.append(head)
            return
        client = self.client
        assert client is not None
        self._head_done = True
        if status == 101:
            self._pieces.append(head)
            client.response_started(False)
            return
        flags = head_flags(head)
        no_body = self._head_request or status == 204 or status == 304
        self._chunked = not no_body and bool(flags & CHUNKED)
        self._close_delimited = not no_body and not flags & (CHUNKED | CONTENT_LENGTH)
        close = not self.client_ka or self._close_delimited
        self._decode = self._chunked and self.client_10
        passthrough = not flags & REBUILD
        if passthrough and not close and not self._held and not no_body:
            self._emit = self._pos - len(head)  # the head goes out as received, with the body
            if flags == CONTENT_LENGTH and self._fast:
                remember_head(head, self.parser.should_keep_alive(), status)
        else:
            if not passthrough or close:
                head = rebuild_head(head, close, self._decode)
            self._pieces.append(head)
            self._emit = -1 if (self._decode or self._head_request) else self._pos
        if self._head_request:
            self._done = True
            self._keep = self.parser.should_keep_alive()
        client.response_started(close)

    def on_body(self, body: bytes) -> None:
        if self._decode:
            self._pieces.append(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            self._in_head = False
            return
        if self._status == 101:
            return
        self._done = True
        self._keep = self.parser.should_keep_alive()

    # -- used by the downstream side -------------------------------------------------------
    def attach(
        self, client: Client, out: asyncio.Transport, head: bytes, head_request: bool,
        client_ka: bool, client_10: bool, reused: bool, pipeline: bool = False,
    ) -> None:
        """Start an exchange: write the request head; the body follows with send_body.

        `pipeline`: a GET without body, which later GETs of this loop iteration may join.
        On a connection that `can_pipeline`, the exchange waits its turn instead.
        """
        self._ticks += 1
        if self.client is not None:
            assert self._batch is not None and pipeline
            self._batch.append(head)  # goes out in the same write as the others
            self._queue.append((client, out, client_ka, client_10))
            return
        self.client = client
        self.out = out
        self._start(client_ka, client_10, reused)
        self._head_request = head_request
        self._fast = client_ka and not head_request  # a known head may skip the parser
        assert self.transport is not None
        if pipeline:
            self._batch = self.outbox.batch(self.transport, head)
            self._pipe_generation = -1 if self._batch is None else self.outbox.generation
            self._framer.start()
        else:
            self._pipe_generation = -1
            self.outbox.write(self.transport, head)
        if self._timer is None:
            self._busy_ticks = -1
            self._timer = self.loop.call_later(self.timeout, self._on_timer)

    def close_after_response(self) -> None:
        """The client connection closes after this response (seaway shuts down): if its
        head has not arrived yet, it goes out with `Connection: close`."""
        if not self._head_done:
            self.client_ka = False
            self._fast = False

    def can_pipeline(self, generation: int, depth: int) -> bool:
        """Whether a GET may join this connection now: its current exchange is a GET whose
        head is still queued in this Outbox generation, with room for one more."""
        return (
            self._pipe_generation == generation
            and self.client is not None
            and not self.closed
            and len(self._queue) + 1 < depth
        )

    def _start(self, client_ka: bool, client_10: bool, reused: bool) -> None:
        """Per-exchange state, at its start."""
        self._got = 0  # bytes of the current response so far
        self.client_ka = client_ka
        self.client_10 = client_10
        self.reused = reused
        self.got_byte = False
        self.keep_alive = False
        self._head_done = False
        self._head_request = False
        self._fast = client_ka
        self._remaining = 0
        self._head_buf.clear()
        self._in_head = True
        self._done = False
        self._sent = False
        self._decode = False
        self._chunked = False
        self._close_delimited = False

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
        """The current exchange is over: the next waiting one takes the connection, or it
        goes back to the pool if the exchange left it reusable, else it is closed."""
        self.client = None
        self.out = None
        reusable = self.keep_alive and not self.closed
        if self._queue:
            if reusable and self._next():
                return
            self._fail_waiting()
        if reusable:
            if self.paused:
                self.resume_reading()
            self.pool.release(self)
        else:
            self.close()

    def abandon(self, client: Client) -> None:
        """`client` goes away (closed, or its request failed) before its response ended."""
        if client is self.client or not self._queue:
            self.close()
            return
        queue = self._queue
        for i, waiting in enumerate(queue):
            if waiting[0] is client:
                queue[i] = (None, None, False, False)  # its turn will close the connection
                return

    def _next(self) -> bool:
        """Hand the connection to the next waiting exchange (False: it left meanwhile)."""
        client, out, client_ka, client_10 = self._queue.popleft()
        if client is None or out is None:
            return False
        self.client = client
        self.out = out
        self._start(client_ka, client_10, True)
        self._framer.start()
        if self.paused:
            self.resume_reading()
        if client.write_paused:
            self.pause_reading()
        return True

    def _fail_waiting(self) -> None:
        """Every waiting exchange fails before its response began: retryable."""
        waiting = list(self._queue)
        self._queue.clear()
        self.pool.pipeline_pause = PAUSE_AFTER_BREAK
        for client, _, _, _ in waiting:
            if client is not None:
                client.upstream_failed(self, 502, True)

    def _pipelined(self, data: bytes) -> None:
        """A read while exchanges wait: cut it where each response ends."""
        framer = self._framer
        while True:
            if framer.at_start():
                n = self._whole_known(data)
                if n:  # a whole response with a known head: done, no framer, no parser
                    data = data[n:]
                    if not self._next_part(data):
                        return
                    continue
            n = framer.feed(data)
            if not (framer.ended or framer.interim):
                self._received(data, cast(asyncio.Transport, self.out))
                return
            part, data = data[:n], data[n:]
            if framer.interim:  # a 1xx head: the same exchange's final response follows
                framer.start()
                self._received(part, cast(asyncio.Transport, self.out))
                if not data or self.client is None:
                    return
                continue
            completed = self._completed
            self._received(part, cast(asyncio.Transport, self.out))
            if self._completed == completed:
                # llhttp did not end the response where the framer did: never guess.
                if not self.closed:
                    self._fail()
                return
            framer.start()
            if not self._next_part(data):
                return

    def _whole_known(self, data: bytes) -> int:
        """Bytes of `data` taken by a whole response starting with a known head (0: none)."""
        if not (self._fast and self._in_head and not self._head_buf):
            return 0
        end = data.find(b"\r\n\r\n") + 4
        if end < 4:
            return 0
        known = KNOWN_HEADS.get(data[:end])
        if known is None:
            return 0
        length, keep, status = known
        cut = end + length
        if cut > len(data):
            return 0
        self.got_byte = True
        self._ticks += 1
        self._got += cut
        self._known_head(
            data[:cut], cast(asyncio.Transport, self.out), length, length, keep, status
        )
        return cut

    def _next_part(self, rest: bytes) -> bool:
        """After a response ended inside a read: whether `rest` needs the framer (True);
        else it was handled here (nothing left, the last exchange's own bytes, or bytes
        nobody asked for)."""
        if not rest:
            return False
        out = self.out
        if self.client is None or out is None:
            self.close()  # bytes nobody asked for: never reuse this connection
            return False
        if not self._queue:
            self._received(rest, out)  # the last exchange of the batch: its own bytes
            return False
        return True

    # -- pool protocol -----------------------------------------------------------------
    def reusable(self) -> bool:
        return not self.closed and self.client is None

    def close(self) -> None:
        self.client = None
        self.keep_alive = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None and not self.closed:
            self.closed = True
            self.outbox.flush()  # what is queued for it (a tunnel's last bytes) goes first
            self.transport.close()

    # -- internals ---------------------------------------------------------------------
    def _take_head(self) -> bytes:
        data, pos = self._data, self._pos
        self._held = held = len(self._head_buf)
        if held:
            buf = bytes(self._head_buf) + data[pos:]
            self._head_buf.clear()
            end = buf.find(b"\r\n\r\n") + 4
            self._pos = pos + end - held
            return buf[:end]
        end = data.find(b"\r\n\r\n", pos) + 4
        self._pos = end
        return data[pos:end]

    def _finish(self, keep_alive: bool) -> None:
        client = self.client
        self.keep_alive = keep_alive and not self._close_delimited
        self._completed += 1
        self.small = self._got <= SMALL_RESPONSE
        if client is not None:
            client.response_done(self)

    def _fail(self) -> None:
        client = self.client
        started = self._sent  # a head already went out: too late for a 502
        self._pieces.clear()
        self.close()
        if client is not None:
            if started:
                client.abort()
            else:
                client.upstream_failed(self, 502, False)

    def _upgraded(self, rest: bytes) -> None:
        if self._status != 101 or self.client is None or self._queue:
            self._fail()  # (a 101 to a pipelined GET: the connection is no longer HTTP)
            return
        self.upgraded = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        assert self.out is not None
        pieces = self._pieces
        if rest:
            pieces.append(rest)
        if pieces:
            self.outbox.writelines(self.out, pieces)
            pieces.clear()
        self.client.upstream_upgraded(self)

    def _on_timer(self) -> None:
        self._timer = None
        client = self.client
        if client is None or self.upgraded:
            return
        if self._ticks != self._busy_ticks:
            self._busy_ticks = self._ticks  # activity since the last look: wait again
            self._timer = self.loop.call_later(self.timeout, self._on_timer)
            return
        started = self._sent
        self.close()
        if started:
            client.abort()
        else:
            client.upstream_failed(self, 504, False)
