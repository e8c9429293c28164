"""Header-read (408) and keep-alive idle timeouts, driven by a fake loop: no sleeping."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

from ingress.context import ProxyContext
from ingress.http1 import HttpProtocol
from ingress.outbox import Outbox
from ingress.route_match import RouteResult
from ingress.routes import FixedResponse
from ingress.settings import HttpSettings


class Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """time() and call_later() only; `advance` runs what falls due, in order."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._seq = itertools.count()
        self._queue: list[tuple[float, int, Handle, Callable[[], object]]] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, cb: Callable[[], object]) -> Handle:
        h = Handle()
        heapq.heappush(self._queue, (self.now + delay, next(self._seq), h, cb))
        return h

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self._queue and self._queue[0][0] <= end:
            when, _, h, cb = heapq.heappop(self._queue)
            self.now = when
            if not h.cancelled:
                cb()
        self.now = end


class FakeTransport:
    def __init__(self) -> None:
        self.out = bytearray()
        self.closed = False  # closed, or closed for writing (a lingering close: FIN sent)
        self.protocol: Any = None

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.closed = True

    def write(self, data: bytes) -> None:
        self.out += data

    def writelines(self, parts: list[bytes]) -> None:
        for part in parts:
            self.out += part

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def get_extra_info(self, name: str) -> Any:
        return ("192.0.2.1", 40000) if name == "peername" else None


NOT_FOUND = RouteResult(404, FixedResponse(404), "test: nothing matches")


class Router404:
    uses_headers = False

    def match(self, host: object, target: bytes, method: bytes, header: object) -> RouteResult:
        return NOT_FOUND


SETTINGS = HttpSettings(header_timeout=5.0, keepalive_timeout=20.0)


def connect() -> tuple[FakeLoop, FakeTransport, HttpProtocol]:
    loop = FakeLoop()
    ctx = ProxyContext(loop, SETTINGS, Router404(), outbox=Outbox(None))  # type: ignore[arg-type]
    proto = HttpProtocol(ctx)
    transport = FakeTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    return loop, transport, proto


def test_slow_head_gets_408() -> None:
    loop, t, p = connect()
    p.data_received(b"GET / HTTP/1.1\r\nHo")
    loop.advance(4.0)
    assert not t.closed and not t.out
    loop.advance(10.0)
    assert t.out.startswith(b"HTTP/1.1 408 ")
    assert t.closed


def test_trickling_head_still_gets_408() -> None:
    """Bytes that never finish a head do not extend the deadline (slowloris)."""
    loop, t, p = connect()
    p.data_received(b"GET / HTTP/1.1\r\n")
    for _ in range(30):
        if t.closed:
            break
        p.data_received(b"X")
        loop.advance(1.0)
    assert t.out.startswith(b"HTTP/1.1 408 ")
    assert t.closed


def test_silent_connection_closed_without_response() -> None:
    loop, t, _ = connect()
    loop.advance(4.0)
    assert not t.closed
    loop.advance(10.0)
    assert t.closed and not t.out


def test_idle_keepalive_connection_closed_after_keepalive_timeout() -> None:
    loop, t, p = connect()
    p.data_received(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert t.out.startswith(b"HTTP/1.1 404 ")  # answered by the proxy, kept alive
    assert not t.closed
    answered = len(t.out)
    loop.advance(15.0)  # longer than the header timeout, shorter than keep-alive
    assert not t.closed
    p.data_received(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")  # activity restarts the idle time
    loop.advance(15.0)
    assert not t.closed and len(t.out) == 2 * answered
    loop.advance(20.0)
    assert t.closed
    assert len(t.out) == 2 * answered  # nothing written on an idle close
