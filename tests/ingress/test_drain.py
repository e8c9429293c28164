"""Graceful drain of one worker (WorkerServer.drain, HttpProtocol.drain) on loopback:
what is in flight on each connection finishes, the last response says `Connection: close`
and the connection closes after it; an idle connection closes at once; the drain ends when
the last connection is gone."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from ingress.settings import HttpSettings
from tests.ingress.l7kit import HOST, Backend, LoopThread, Proxy, one_backend, parse_responses
from tests.support import wait_until

GRACE = 10.0


@pytest.fixture
def proxy(lt: LoopThread) -> Iterator[tuple[Proxy, Backend]]:
    with one_backend(lt, HttpSettings()) as pair:
        yield pair


def start_drain(lt: LoopThread, p: Proxy) -> Future[None]:
    assert p.server is not None
    return asyncio.run_coroutine_threadsafe(p.server.drain(GRACE), lt.loop)


def read_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def connect(p: Proxy) -> socket.socket:
    return socket.create_connection((HOST, p.port), timeout=5)


def test_pipelined_requests_finish_and_the_last_says_close(
    lt: LoopThread, proxy: tuple[Proxy, Backend]
) -> None:
    p, backend = proxy
    with connect(p) as s:
        s.sendall(
            b"GET /slow HTTP/1.1\r\nHost: web.test\r\n\r\n"
            b"GET /after HTTP/1.1\r\nHost: web.test\r\n\r\n"
        )
        wait_until(lambda: len(backend.stats.requests) == 1, what="the slow one upstream")
        drained = start_drain(lt, p)
        wait_until(lambda: p.server is not None and p.server.http is None, what="not listening")
        upstream = backend.stats.transports[-1]
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow"
        lt.loop.call_soon_threadsafe(upstream.write, answer)  # type: ignore[attr-defined]
        responses = parse_responses(read_all(s))
    assert [r.status for r in responses] == [200, 200]
    assert bytes(responses[0].body) == b"slow"
    assert b"/after" in responses[1].body
    assert responses[1].headers.get("connection") == "close"
    drained.result(GRACE)


def test_idle_closes_at_once_and_a_head_on_its_way_is_answered(
    lt: LoopThread, proxy: tuple[Proxy, Backend]
) -> None:
    p, _ = proxy
    with connect(p) as idle, connect(p) as partial, connect(p) as body:
        partial.sendall(b"GET /late HTTP/1.1\r\nHost: web.test\r\n")
        body.sendall(
            b"POST /echo-body HTTP/1.1\r\nHost: web.test\r\nContent-Length: 10\r\n\r\n01234"
        )
        assert p.server is not None
        wait_until(lambda: len(p.server.ctx.connections) == 3, what="three connections")
        drained = start_drain(lt, p)
        assert idle.recv(65536) == b""  # idle keep-alive: closed by the drain
        partial.sendall(b"\r\n")
        body.sendall(b"56789")
        late = parse_responses(read_all(partial))
        echoed = parse_responses(read_all(body))
    assert [r.status for r in late] == [200]
    assert late[0].headers.get("connection") == "close"
    assert [(r.status, bytes(r.body)) for r in echoed] == [(200, b"0123456789")]
    assert echoed[0].headers.get("connection") == "close"
    drained.result(GRACE)
