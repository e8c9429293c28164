"""Upstream pipelining (`--upstream-pipelining N`).

Without sockets: several exchanges on one UpstreamConnection, responses cut between their
clients however the reads split, and every way a batch can fail. With sockets: a burst of
GETs from many clients through the proxy to a Python backend and to nginx, each client
getting its own answer over fewer backend connections."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import cast

import pytest

from discovery.snapshot import EndpointInfo
from ingress.http1 import HttpProtocol
from ingress.outbox import Outbox
from ingress.pipelining import PipelinedConnection
from ingress.pool import PoolSet
from ingress.request import RequestState
from ingress.settings import HttpSettings
from tests.ingress.l7kit import (
    HOST,
    Backend,
    LoopThread,
    Proxy,
    access_log_lines,
    nginx_backend,
    one_backend,
    two_service_snapshot,
)
from tests.ingress.test_http_timeouts import FakeLoop, FakeTransport
from tests.ingress.test_upstream import FakeExchange, request
from tests.support import free_port


class CountingTransport(FakeTransport):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)

    def writelines(self, parts: list[bytes]) -> None:
        self.writes += 1
        super().writelines(parts)


class PipeClient(FakeExchange):
    """An exchange as the connection sees it; releases the connection when its response
    is done, as HttpProtocol.finish does."""

    def __init__(self, name: str, req: RequestState | None = None) -> None:
        super().__init__(req)
        self.name = name
        self.down = cast(FakeTransport, self.out)

    def response_done(self) -> None:
        assert self.conn is not None
        self.events.append(("done", self.conn.keep_alive))
        self.conn.release()


STARTED, DONE = ("started", False), ("done", True)


def head(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode()


class Batch:
    """One upstream connection with `n` pipelined GETs attached in one loop iteration."""

    def __init__(self, n: int, depth: int = 8) -> None:
        self.soon: list[Callable[[], object]] = []
        self.outbox = Outbox(self.soon.append)
        loop = FakeLoop()
        self.pools = PoolSet(loop, 8, 60.0)  # type: ignore[arg-type]
        self.conn = PipelinedConnection(
            loop,  # type: ignore[arg-type]
            self.pools.get(("10.0.0.1", 80)),
            30.0,
            self.outbox,
        )
        self.up = CountingTransport()
        self.conn.connection_made(self.up)  # type: ignore[arg-type]
        self.clients = [PipeClient(f"c{i}") for i in range(n)]
        for i, c in enumerate(self.clients):
            if i:
                assert self.conn.can_pipeline(self.outbox.generation, depth)
            c.conn = self.conn
            c.reused = True
            self.conn.attach(c, head(f"/{i}"), True)
        self.flush()

    def flush(self) -> None:
        while self.soon:
            self.soon.pop(0)()

    def feed(self, data: bytes, cuts: list[int]) -> None:
        points = [0, *cuts, len(data)]
        for a, b in itertools.pairwise(points):
            if b > a:
                self.conn.data_received(data[a:b])
        self.flush()


CL = b"HTTP/1.1 200 OK\r\nServer: pipe\r\nContent-Length: 4\r\n\r\n"
RESPONSES = [
    CL + b"zero",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n0\r\n\r\n",
    b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    CL + b"thr3",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
]


def delivered(c: PipeClient) -> bytes:
    return bytes(c.down.out)


def test_heads_go_out_in_one_write_and_the_depth_is_kept() -> None:
    b = Batch(3, depth=3)
    assert b.up.writes == 1
    assert bytes(b.up.out) == head("/0") + head("/1") + head("/2")
    assert not b.conn.can_pipeline(b.outbox.generation, 3)  # 3 in flight: full
    b2 = Batch(1)
    assert not b2.conn.can_pipeline(b2.outbox.generation, 8)  # its write went out already


def test_a_request_that_may_not_be_pipelined_is_never_joined() -> None:
    b = Batch(1)
    b.conn.release()  # pretend its exchange ended; the pool has it
    other = PipeClient("post", request(b"POST"))
    other.conn = b.conn
    b.conn.attach(other, b"POST / HTTP/1.1\r\n\r\n")
    assert not b.conn.can_pipeline(b.outbox.generation, 8)


@pytest.mark.parametrize("cut", [None, *range(1, 220, 3)])
def test_each_client_gets_exactly_its_own_response(cut: int | None) -> None:
    b = Batch(len(RESPONSES))
    stream = b"".join(RESPONSES)
    b.feed(stream, [] if cut is None else [min(cut, len(stream))])
    for c, resp in zip(b.clients, RESPONSES, strict=True):
        assert delivered(c) == resp, c.name  # a 103 included: forwarded
        assert c.events == [STARTED, DONE], c.name
    assert not b.conn.closed and b.conn.exchange is None  # back in the pool
    assert len(b.pools.get(("10.0.0.1", 80))) == 1


def test_a_response_that_closes_sends_the_waiting_requests_elsewhere() -> None:
    b = Batch(3)
    b.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", [])
    assert b.clients[0].events == [STARTED, ("done", False)]
    assert b.clients[1].events == [("failed", 502, True)]
    assert b.clients[2].events == [("failed", 502, True)]
    assert b.conn.closed
    assert b.pools.get(("10.0.0.1", 80)).pipeline_pause > 0  # the endpoint rests a while


def test_connection_lost_mid_batch() -> None:
    b = Batch(3)
    b.feed(RESPONSES[0] + CL + b"th", [])  # the second response is cut short
    b.conn.connection_lost(None)
    assert b.clients[0].events == [STARTED, DONE]
    assert b.clients[1].events == [STARTED, "abort"]  # its head went out: a cut
    assert b.clients[2].events == [("failed", 502, True)]  # never began: retryable


def test_a_waiting_client_that_leaves_closes_the_connection_at_its_turn() -> None:
    b = Batch(3)
    b.conn.abandon(b.clients[1])
    assert not b.conn.closed  # the first response is still coming
    b.feed(RESPONSES[0] + RESPONSES[0], [])
    assert b.clients[0].events == [STARTED, DONE]
    assert delivered(b.clients[1]) == b""
    assert b.clients[2].events == [("failed", 502, True)]
    assert b.conn.closed


def test_bytes_llhttp_rejects_fail_the_exchange_and_retry_the_rest() -> None:
    b = Batch(2)
    bad = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"
    b.feed(bad + RESPONSES[0], [])
    assert b.clients[0].events == [("failed", 502, False)]
    assert delivered(b.clients[0]) == b""
    b.conn.connection_lost(None)
    assert b.clients[1].events == [("failed", 502, True)]
    assert delivered(b.clients[1]) == b""


def test_a_101_in_a_batch_fails_it_rather_than_tunnel() -> None:
    b = Batch(2)
    b.feed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", [])
    assert b.clients[0].events == [("failed", 502, False)]
    assert delivered(b.clients[0]) == b""  # nothing of the 101 reached the client
    assert b.conn.closed and not b.conn.upgraded
    b.conn.connection_lost(None)
    assert b.clients[1].events == [("failed", 502, True)]


def test_the_current_client_alone_pauses_the_upstream() -> None:
    b = Batch(2)
    b.clients[1].paused = True
    b.feed(RESPONSES[0], [])  # client 1's turn begins while it cannot take bytes
    assert b.conn.paused
    b.conn.resume_reading()
    b.feed(RESPONSES[0], [])
    assert delivered(b.clients[1]) == RESPONSES[0]


# ---------------------------------------------------------------- with sockets

PIPELINING = HttpSettings(upstream_pipelining=8, upstream_timeout=5.0)


Solo = tuple[Proxy, Backend]


@pytest.fixture
def solo(lt: LoopThread) -> Iterator[Solo]:
    """The proxy with pipelining 8 in front of one Python backend."""
    with one_backend(lt, PIPELINING) as site:
        yield site


def accepted(proxy: Proxy) -> set[int]:
    """The client ports of the connections the proxy has accepted."""
    assert proxy.server is not None
    conns = cast(list[HttpProtocol], list(proxy.server.ctx.connections))
    return {c.transport.get_extra_info("peername")[1] for c in conns if c.transport}


def burst(lt: LoopThread, proxy: Proxy, paths: list[str], host: str = "web.test") -> list[bytes]:
    """Connect one client per path, then send every request while the proxy's loop is
    blocked, so they are all read in one loop iteration (a pipelining batch)."""
    socks = [socket.create_connection((HOST, proxy.port), timeout=10) for _ in paths]
    try:
        mine = {s.getsockname()[1] for s in socks}
        deadline = time.monotonic() + 10  # readiness polls, not timing assertions
        while not mine <= accepted(proxy):
            assert time.monotonic() < deadline, "the proxy did not accept every client"
            time.sleep(0.01)
        blocked = threading.Event()

        def block() -> None:
            blocked.set()
            time.sleep(0.3)  # the proxy's loop: every request arrives meanwhile

        lt.loop.call_soon_threadsafe(block)
        assert blocked.wait(10)
        for s, path in zip(socks, paths, strict=True):
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        out = []
        for s in socks:
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
            out.append(b"".join(chunks))
        return out
    finally:
        for s in socks:
            s.close()


def connections_used(backend: Backend, since: int) -> int:
    return len({r["conn"] for r in backend.stats.requests[since:]})


def test_burst_of_gets_shares_backend_connections(lt: LoopThread, solo: Solo) -> None:
    proxy, backend = solo
    # Only pooled connections take pipelined requests: the first burst fills the pool.
    assert len(burst(lt, proxy, [f"/warm/{i}" for i in range(24)])) == 24
    assert connections_used(backend, 0) == 24
    paths = [f"/{('plain', 'chunked')[i % 2]}/{i}" for i in range(24)]
    replies = burst(lt, proxy, paths)
    for path, raw in zip(paths, replies, strict=True):
        assert raw.startswith(b"HTTP/1.1 200 OK"), raw[:80]
        assert f'"path": "{path}"'.encode() in raw, (path, raw[-120:])
    assert len(backend.stats.requests) == 48
    # 24 GETs read in one loop iteration, up to 8 per connection: 3 connections.
    assert connections_used(backend, 24) == 3
    assert backend.stats.connections == 24  # no new ones


def test_a_closing_response_in_a_batch_retries_the_rest(lt: LoopThread, solo: Solo) -> None:
    proxy, backend = solo
    burst(lt, proxy, [f"/warm/{i}" for i in range(4)])
    paths = ["/close/0", "/a/1", "/a/2", "/a/3"]
    replies = burst(lt, proxy, paths)
    for path, raw in zip(paths, replies, strict=True):
        assert f'"path": "{path}"'.encode() in raw, (path, raw[-120:])
    # /close answered and closed: the three behind it were sent again, on fresh
    # connections, and answered there.
    sent = [r["path"] for r in backend.stats.requests[4:]]
    assert sorted(sent) == sorted(["/close/0", *(["/a/1", "/a/2", "/a/3"] * 2)])
    # A broken batch pauses pipelining to that endpoint: one connection per request.
    done = len(backend.stats.requests)
    burst(lt, proxy, [f"/b/{i}" for i in range(4)])
    assert connections_used(backend, done) == 4


def test_no_pipelining_behind_large_responses(lt: LoopThread, solo: Solo) -> None:
    proxy, backend = solo
    # Every pooled connection last carried 100 kB: none takes pipelined requests.
    big = burst(lt, proxy, [f"/big/{100_000 + i}" for i in range(6)])
    assert all(len(r) > 100_000 for r in big)
    replies = burst(lt, proxy, [f"/x/{i}" for i in range(6)])
    assert all(r.startswith(b"HTTP/1.1 200 OK") for r in replies)
    assert connections_used(backend, 6) == 6
    # Those answers were small: now the same connections are shared again.
    burst(lt, proxy, [f"/y/{i}" for i in range(6)])
    assert connections_used(backend, 12) == 1


def test_pipelining_off_by_default_one_connection_per_request(lt: LoopThread) -> None:
    with one_backend(lt, HttpSettings()) as (proxy, backend):
        for _ in range(2):
            replies = burst(lt, proxy, [f"/x/{i}" for i in range(6)])
            assert all(r.startswith(b"HTTP/1.1 200 OK") for r in replies)
        assert connections_used(backend, 6) == 6


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_burst_through_nginx_backend(lt: LoopThread) -> None:
    port = free_port()
    proxy = Proxy(lt, PIPELINING)
    try:
        with nginx_backend(port, "nginx $request_uri", "$connection $request_uri") as log:
            ep = EndpointInfo(HOST, port)
            proxy.apply(two_service_snapshot([ep], [ep]))
            burst(lt, proxy, [f"/warm/{i}" for i in range(16)])
            paths = [f"/n/{i}" for i in range(16)]
            replies = burst(lt, proxy, paths)
            for path, raw in zip(paths, replies, strict=True):
                assert raw.endswith(f"nginx {path}".encode()), raw[-60:]
            lines = access_log_lines(log, "/n/", len(paths))
            assert sorted(line.split()[1] for line in lines) == sorted(paths)
            assert len({line.split()[0] for line in lines}) == 2  # 16 GETs, 8 per connection
    finally:
        proxy.close()


def test_an_http10_client_in_a_batch_gets_its_chunked_answer_decoded() -> None:
    soon: list[Callable[[], object]] = []
    outbox = Outbox(soon.append)
    loop = FakeLoop()
    pools = PoolSet(loop, 8, 60.0)  # type: ignore[arg-type]
    key = ("10.0.0.1", 80)
    conn = PipelinedConnection(loop, pools.get(key), 30.0, outbox)  # type: ignore[arg-type]
    conn.connection_made(CountingTransport())  # type: ignore[arg-type]
    new, old = PipeClient("1.1"), PipeClient("1.0", request(keep_alive=False, v11=False))
    for c, path in ((new, "/a"), (old, "/b")):
        c.conn = conn
        conn.attach(c, head(path), True)
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n0\r\n\r\n"
    conn.data_received(RESPONSES[0] + chunked)
    while soon:
        soon.pop(0)()
    assert delivered(new) == RESPONSES[0]
    got = delivered(old)
    assert b"chunked" not in got.lower() and got.endswith(b"\r\n\r\none")
    assert b"Connection: close" in got
    assert old.events == [("started", True), DONE]


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_no_answer_reaches_another_client_under_concurrent_load(lt: LoopThread) -> None:
    """64 keep-alive clients, 40 GETs each, every body checked against its own path."""
    port = free_port()
    proxy = Proxy(lt, PIPELINING)

    async def client(cid: int) -> list[str]:
        reader, writer = await asyncio.open_connection(HOST, proxy.port)
        wrong = []
        for n in range(40):
            path = f"/c{cid}/{n}" + "/x" * (n % 4)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: web.test\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            if body != f"nginx {path}".encode():
                wrong.append(f"{path}: {body[:60]!r}")
        writer.close()
        return wrong

    async def clients() -> list[str]:
        results = await asyncio.gather(*(client(i) for i in range(64)))
        return [w for r in results for w in r]

    try:
        with nginx_backend(port, "nginx $request_uri", "$connection $request_uri") as log:
            ep = EndpointInfo(HOST, port)
            proxy.apply(two_service_snapshot([ep], [ep]))
            assert asyncio.run(clients()) == []
            assert len(access_log_lines(log, "/c", 64 * 40)) == 64 * 40
    finally:
        proxy.close()
