"""The upstream side of an exchange: one keep-alive connection to a backend endpoint.

`UpstreamConnection` is an asyncio.Protocol: bytes from the backend -> httptools'
strict response parser -> the response head passed through as received (or rebuilt when
something in it must change), body bytes written straight to the client transport.
It knows its client only through the `Client` protocol below, so it is tested with a fake.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, cast

import httptools

from ingress.pool import PoolSet
from ingress.response import HeadInfo, rebuild_head

log = logging.getLogger(__name__)

MAX_RESPONSE_HEAD = 64 * 1024
_CRLF = b"\r\n"
_LAST_CHUNK = b"0\r\n\r\n"


class Client(Protocol):
    """What an upstream connection calls back on the downstream side."""

    def response_started(self, close: bool) -> None: ...

    def response_done(self, conn: UpstreamConnection) -> None: ...

    def upstream_failed(self, conn: UpstreamConnection, status: int, retryable: bool) -> None: ...

    def upstream_upgraded(self, conn: UpstreamConnection) -> None: ...

    def abort(self) -> None: ...

    def pause_reading_for_upstream(self) -> None: ...

    def resume_reading_for_upstream(self) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "_busy_ticks",
        "_chunked",
        "_close_delimited",
        "_data",
        "_decode",
        "_head_buf",
        "_head_done",
        "_head_request",
        "_in_head",
        "_interim",
        "_pos",
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
        "parser",
        "pools",
        "reused",
        "timeout",
        "transport",
        "upgraded",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, pools: PoolSet, key: tuple[str, int], timeout: float
    ) -> None:
        self.loop = loop
        self.pools = pools
        self.key = key
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.client: Client | None = None
        self.out: asyncio.Transport | None = None
        self.client_ka = True
        self.client_10 = False
        self.closed = False
        self.reused = False
        self.upgraded = False
        self.got_byte = False
        self.keep_alive = False
        self._head_buf = bytearray()
        self._data = b""
        self._pos = 0
        self._in_head = False
        self._head_done = False
        self._interim = False
        self._status = 0
        self._head_request = False
        self._chunked = False
        self._decode = False
        self._close_delimited = False
        self._ticks = 0
        self._busy_ticks = -1
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        client = self.client
        if client is None:
            self.pools.get(self.key).discard(self)
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
        return False  # close our side too; connection_lost finishes the exchange

    def pause_writing(self) -> None:
        if self.client is not None:
            self.client.pause_reading_for_upstream()

    def resume_writing(self) -> None:
        if self.client is not None:
            self.client.resume_reading_for_upstream()

    def data_received(self, data: bytes) -> None:
        if self.upgraded:
            assert self.out is not None
            self.out.write(data)
            return
        if self.client is None:
            self.close()  # bytes nobody asked for: never reuse this connection
            return
        self.got_byte = True
        self._ticks += 1
        self._data = data
        self._pos = 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgraded(data[int(exc.args[0]) :] if exc.args else b"")
            return
        except httptools.HttpParserError as exc:
            log.info("upstream %s:%d: bad response: %s", self.key[0], self.key[1], exc)
            self._fail()
            return
        if self._in_head:
            self._head_buf += data[self._pos :]
            if len(self._head_buf) > MAX_RESPONSE_HEAD:
                self._fail()
        elif self._head_request and self._head_done and self.client is not None:
            self.parser = httptools.HttpResponseParser(self)
            self._finish(True)

    # -- httptools callbacks -------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        head = self._take_head()
        status = self.parser.get_status_code()
        self._status = status
        if 100 <= status < 200 and status != 101:
            self._interim = True  # 100/102/103: dropped, the final response follows
            return
        out = self.out
        client = self.client
        assert out is not None and client is not None
        self._head_done = True
        if status == 101:
            out.write(head)
            client.response_started(False)
            return
        info = HeadInfo(head)
        no_body = self._head_request or status in (204, 304)
        self._chunked = info.chunked and not no_body
        self._close_delimited = not no_body and not info.chunked and not info.content_length
        close = not self.client_ka or self._close_delimited
        self._decode = self._chunked and self.client_10
        if info.passthrough_ok and not close:
            out.write(head)
        else:
            out.write(rebuild_head(head, close, self._decode))
        client.response_started(close)

    def on_body(self, body: bytes) -> None:
        out = self.out
        assert out is not None
        if self._chunked and not self._decode:
            out.writelines((b"%x\r\n" % len(body), body, _CRLF))
        else:
            out.write(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self._status == 101 or self._head_request:
            return
        if self._chunked and not self._decode:
            assert self.out is not None
            self.out.write(_LAST_CHUNK)
        self._finish(self.parser.should_keep_alive())

    # -- used by the downstream side -------------------------------------------------------
    def attach(
        self, client: Client, out: asyncio.Transport, head: bytes, head_request: bool,
        client_ka: bool, client_10: bool, reused: bool,
    ) -> None:
        """Start an exchange: write the request head; the body follows with send_body."""
        self.client = client
        self.out = out
        self.client_ka = client_ka
        self.client_10 = client_10
        self.reused = reused
        self.got_byte = False
        self.keep_alive = False
        self._head_done = False
        self._head_request = head_request
        self._head_buf.clear()
        self._ticks += 1
        assert self.transport is not None
        self.transport.write(head)
        if self._timer is None:
            self._busy_ticks = -1
            self._timer = self.loop.call_later(self.timeout, self._on_timer)

    def send_body(self, data: bytes, chunked: bool) -> None:
        assert self.transport is not None
        self._ticks += 1
        if chunked:
            self.transport.writelines((b"%x\r\n" % len(data), data, _CRLF))
        else:
            self.transport.write(data)

    def end_body(self, chunked: bool) -> None:
        if chunked:
            assert self.transport is not None
            self.transport.write(_LAST_CHUNK)

    def tunnel(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def release(self) -> None:
        """Back to the pool if the exchange left it reusable, else closed."""
        self.client = None
        self.out = None
        if self.keep_alive and not self.closed:
            self.resume_reading()
            self.pools.get(self.key).release(self)
        else:
            self.close()

    # -- pool protocol -----------------------------------------------------------------
    def reusable(self) -> bool:
        return (
            not self.closed
            and self.client is None
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def close(self) -> None:
        self.client = None
        self.keep_alive = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    # -- internals ---------------------------------------------------------------------
    def _take_head(self) -> bytes:
        data, pos = self._data, self._pos
        if self._head_buf:
            held = len(self._head_buf)
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
        if client is not None:
            client.response_done(self)

    def _fail(self) -> None:
        client = self.client
        started = self._head_done
        self.close()
        if client is not None:
            if started:
                client.abort()
            else:
                client.upstream_failed(self, 502, False)

    def _upgraded(self, rest: bytes) -> None:
        if self._status != 101 or self.client is None:
            self._fail()
            return
        self.upgraded = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if rest:
            assert self.out is not None
            self.out.write(rest)
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
        started = self._head_done
        self.close()
        if started:
            client.abort()
        else:
            client.upstream_failed(self, 504, False)
