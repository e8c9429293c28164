"""Upstream side without sockets: the keep-alive pool, response heads, and the response
parser driven byte by byte with a fake client."""

from __future__ import annotations

from typing import Any, cast

import pytest

from ingress.headscan import must_go
from ingress.pool import PoolSet
from ingress.request import RequestState
from ingress.response import (
    CHUNKED,
    CONTENT_LENGTH,
    REBUILD,
    rebuild_head,
    scan_head,
)
from ingress.upstream import ResponseSink, UpstreamConnection
from tests.ingress.test_http_timeouts import FakeLoop, FakeTransport


def idle_conn(pools: PoolSet, key: tuple[str, int] = ("10.0.0.1", 80)) -> UpstreamConnection:
    """A connected upstream connection of the pool for `key` (a fake transport), between
    exchanges: what the pool holds."""
    conn = UpstreamConnection(FakeLoop(), pools.get(key), 30.0)  # type: ignore[arg-type]
    conn.connection_made(FakeTransport())  # type: ignore[arg-type]
    return conn


def test_pool_is_fifo_and_drops_stale_on_checkout() -> None:
    loop = FakeLoop()
    pools = PoolSet(loop, max_idle=2, idle_timeout=10.0)  # type: ignore[arg-type]
    pool = pools.get(("10.0.0.1", 80))
    a, b, c = idle_conn(pools), idle_conn(pools), idle_conn(pools)
    pool.release(a)
    pool.release(b)
    pool.release(c)  # over max_idle: closed, not kept
    assert c.closed and len(pool) == 2
    a.closed = True  # the peer closed it while idle (before connection_lost came)
    assert pool.acquire() is b
    assert a.closed and not b.closed
    assert pool.acquire() is None


def test_pool_idle_timeout_uses_one_lazy_timer() -> None:
    loop = FakeLoop()
    pools = PoolSet(loop, max_idle=8, idle_timeout=10.0)  # type: ignore[arg-type]
    old, new = idle_conn(pools), idle_conn(pools, ("10.0.0.2", 80))
    pools.get(("10.0.0.1", 80)).release(old)
    loop.advance(6.0)
    pools.get(("10.0.0.2", 80)).release(new)
    loop.advance(6.0)
    assert not old.closed  # idle 12 s but its epoch is not two ticks old yet
    loop.advance(5.0)
    assert old.closed and not new.closed
    loop.advance(10.0)
    assert new.closed
    assert pools.timer is None  # nothing idle: the timer is not re-armed
    loop.advance(100.0)
    assert pools.idle_count() == 0


@pytest.mark.parametrize(
    ("head", "flags"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n", CONTENT_LENGTH),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", CHUNKED),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n\r\n",
            CONTENT_LENGTH | REBUILD,
        ),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", REBUILD),
        (b"HTTP/1.1 200 OK\r\nX-Te: 1\r\nTested: yes\r\n\r\n", 0),
        (
            b"HTTP/1.1 200 OK\r\nProxy-Authenticate: x\r\nContent-Length: 0\r\n\r\n",
            REBUILD | CONTENT_LENGTH,
        ),
    ],
)
def test_scan_head_and_the_one_search_agree(head: bytes, flags: int) -> None:
    assert scan_head(head) == flags
    # The fast path's single search finds a field to remove exactly when the scan does.
    assert must_go(head) == bool(flags & REBUILD)


def test_rebuild_head_drops_hop_by_hop_and_named_headers() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nConnection: X-Private, keep-alive\r\nX-Private: 1\r\n"
        b"Keep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nX-Kept: 2\r\n\r\n"
    )
    assert rebuild_head(head, close=True, drop_chunked=False) == (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Kept: 2\r\nConnection: close\r\n\r\n"
    )
    assert rebuild_head(head, close=True, drop_chunked=True) == (
        b"HTTP/1.1 200 OK\r\nX-Kept: 2\r\nConnection: close\r\n\r\n"
    )


def request(method: bytes = b"GET", keep_alive: bool = True, v11: bool = True) -> RequestState:
    req = RequestState(method, b"/")
    req.keep_alive = keep_alive
    req.v11 = v11
    return req


class FakeExchange(ResponseSink):
    """The ResponseSink an UpstreamConnection reports to; records what it hears."""

    def __init__(self, req: RequestState | None = None) -> None:
        super().__init__(req or request(), cast(Any, FakeTransport()))
        self.paused = False
        self.events: list[Any] = []
        self.conn: UpstreamConnection | None = None

    def response_started(self, close: bool) -> None:
        self.events.append(("started", close))

    def response_done(self) -> None:
        assert self.conn is not None
        self.events.append(("done", self.conn.keep_alive))
        self.conn.exchange = None  # done with it (the proxy's client would release it)

    def failed(self, status: int, retryable: bool, kind: int = 0) -> None:
        self.events.append(("failed", status, retryable))

    def upgraded(self) -> None:
        self.events.append("upgraded")

    def abort(self) -> None:
        self.events.append("abort")

    def client_paused(self) -> bool:
        return self.paused

    def pause_client_reads(self) -> None:
        pass

    def resume_client_reads(self) -> None:
        pass


def upstream(
    head_request: bool = False, client_ka: bool = True, client_10: bool = False
) -> tuple[UpstreamConnection, FakeTransport, FakeTransport, FakeExchange]:
    loop = FakeLoop()
    pools = PoolSet(loop, 8, 60.0)  # type: ignore[arg-type]
    conn = UpstreamConnection(loop, pools.get(("10.0.0.1", 80)), 30.0)  # type: ignore[arg-type]
    up = FakeTransport()
    ex = FakeExchange(request(b"HEAD" if head_request else b"GET", client_ka, not client_10))
    ex.conn = conn
    conn.connection_made(up)  # type: ignore[arg-type]
    conn.attach(ex, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    return conn, up, ex.out, ex


def feed(conn: UpstreamConnection, data: bytes, step: int) -> None:
    for i in range(0, len(data), step):
        conn.data_received(data[i : i + step])


RESP = b"HTTP/1.1 200 OK\r\nServer: t\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"
CHUNKED_RESP = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\n\r\n"


@pytest.mark.parametrize("step", [1, 7, 1000])
def test_response_passed_through_as_received(step: int) -> None:
    conn, up, down, client = upstream()
    assert up.out == b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    feed(conn, RESP, step)
    assert bytes(down.out) == RESP
    assert client.events == [("started", False), ("done", True)]
    assert client.status == 200 and client.received == len(RESP) and client.sent


BIG_BODY = bytes(range(256)) * 256  # 64 KiB
BIG_RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n" + BIG_BODY


@pytest.mark.parametrize("step", [333, 4096, 16385, len(BIG_RESP)])
def test_a_64k_body_in_any_reads_passes_through_unchanged(step: int) -> None:
    """Whatever the reads, the bytes go out in order and the response ends at its last
    body byte (llhttp frames it); then the connection serves the next exchange."""
    conn, _, down, client = upstream()
    feed(conn, BIG_RESP, step)
    assert bytes(down.out) == BIG_RESP
    assert client.events == [("started", False), ("done", True)]
    assert client.received == len(BIG_RESP)
    nxt = FakeExchange()
    nxt.conn = conn
    conn.attach(nxt, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.data_received(RESP)
    assert bytes(nxt.out.out) == RESP


@pytest.mark.parametrize("step", [1000, len(BIG_RESP) - 1])
def test_a_content_length_body_cut_short_aborts_the_client(step: int) -> None:
    """The backend closes before the last body byte: the client must see a broken
    connection (abort), never a complete-looking response."""
    conn, _, down, client = upstream()
    conn.data_received(BIG_RESP[:step])
    conn.connection_lost(None)
    assert client.events == [("started", False), "abort"]
    assert bytes(down.out) == BIG_RESP[:step]


@pytest.mark.parametrize("step", [1, 5, 1000])
def test_chunked_response_bytes_unchanged(step: int) -> None:
    conn, _, down, client = upstream()
    feed(conn, CHUNKED_RESP, step)
    assert bytes(down.out) == CHUNKED_RESP
    assert client.events[-1] == ("done", True)


@pytest.mark.parametrize("step", [1, 1000])
def test_chunked_response_decoded_for_http10_client(step: int) -> None:
    conn, _, down, client = upstream(client_ka=False, client_10=True)
    feed(conn, CHUNKED_RESP, step)
    assert bytes(down.out) == b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello"
    assert client.events[0] == ("started", True)


def test_the_parser_follows_the_clients_version() -> None:
    """One connection, an HTTP/1.0 client (chunked decoded), then an HTTP/1.1 one (bytes
    passed through): body callbacks only where a body is decoded."""
    conn, _, down, _ = upstream(client_ka=False, client_10=True)
    conn.data_received(CHUNKED_RESP)
    assert bytes(down.out).endswith(b"\r\n\r\nhello")
    nxt = FakeExchange()
    nxt.conn = conn
    conn.attach(nxt, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.data_received(CHUNKED_RESP)
    assert bytes(nxt.out.out) == CHUNKED_RESP


def test_interim_responses_dropped_and_hop_by_hop_rebuilt() -> None:
    conn, _, down, _ = upstream()
    feed(
        conn,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nKeep-Alive: timeout=3\r\n"
        b"Content-Length: 2\r\n\r\nok",
        1000,
    )
    assert bytes(down.out) == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.mark.parametrize("step", [1, 1000])
def test_early_hints_are_forwarded_to_http11_clients_only(step: int) -> None:
    hints = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
    final = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    conn, _, down, client = upstream()
    feed(conn, hints + final, step)
    assert bytes(down.out) == hints + final
    assert client.events[-1] == ("done", True)
    conn, _, down, _ = upstream(client_10=True)
    feed(conn, hints + final, step)
    assert bytes(down.out).startswith(b"HTTP/1.1 200 OK")  # no 1xx for HTTP/1.0 clients


def test_head_response_completes_without_body() -> None:
    conn, _, down, client = upstream(head_request=True)
    feed(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", 1000)
    assert bytes(down.out) == b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    assert client.events[-1] == ("done", True)
    nxt = FakeExchange()
    nxt.conn = conn
    conn.attach(nxt, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.data_received(RESP)  # the connection reads the next response from its start
    assert bytes(nxt.out.out) == RESP


@pytest.mark.parametrize(
    "bad",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 1\r\n\r\nx",
    ],
)
def test_bad_upstream_framing_gives_502(bad: bytes) -> None:
    conn, _, down, client = upstream()
    conn.data_received(bad)
    assert client.events[-1] == ("failed", 502, False)
    assert not down.out  # nothing of the bad response reached the client
    assert conn.closed
    conn, _, down, client = upstream()
    feed(conn, bad, 1)  # byte by byte: refused as soon as llhttp sees it
    assert conn.closed


def test_bytes_after_the_response_fail() -> None:
    head = b"HTTP/1.1 200 OK\r\nServer: extra\r\nContent-Length: 4\r\n\r\n"
    conn, _, down, client = upstream()
    conn.data_received(head + b"ab")
    conn.data_received(b"cdHTTP/1.1 200 OK\r\n")  # a second response nobody asked for
    assert client.events[-1] == "abort"  # the head went out already: the client sees a cut
    assert conn.closed and bytes(down.out) == head + b"ab"
    conn, _, down, client = upstream()
    conn.data_received(head + b"abcdX")  # in the same read: nothing sent yet, 502
    assert client.events[-1] == ("failed", 502, False)
    assert not down.out and conn.closed
    conn, _, down, client = upstream(head_request=True)
    conn.data_received(head + b"abcd")  # a response to HEAD has no body
    assert client.events[-1] == ("failed", 502, False)


def test_body_bytes_that_look_like_a_head_are_body() -> None:
    head = b"HTTP/1.1 200 OK\r\nServer: inner\r\nContent-Length: 2\r\n\r\n"
    conn, _, down, client = upstream()
    outer = b"HTTP/1.1 200 OK\r\nContent-Type: message/http\r\nContent-Length: %d\r\n\r\n"
    inner = head + b"ok"
    conn.data_received(outer % len(inner))
    conn.data_received(inner)  # the whole body, starting with what looks like a head
    assert bytes(down.out) == (outer % len(inner)) + inner
    assert client.events == [("started", False), ("done", True)]
    conn, _, down, client = upstream()
    conn.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    conn.data_received(head)  # not a chunk size line: a framing error
    assert client.events[-1] == "abort"


def test_close_delimited_response_closes_the_client() -> None:
    conn, _, down, client = upstream()
    conn.data_received(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nsome")
    conn.data_received(b" body")
    conn.connection_lost(None)
    assert bytes(down.out) == b"HTTP/1.1 200 OK\r\nServer: x\r\nConnection: close\r\n\r\nsome body"
    assert client.events == [("started", True), ("done", False)]


@pytest.mark.parametrize("step", [3, 1000])
def test_a_response_that_closes_its_connection_leaves_the_client_open(step: int) -> None:
    """An HTTP/1.0 answer (llhttp: not kept alive) with its length: it reaches the HTTP/1.1
    client unchanged and the client stays; the upstream connection is not reused. In one
    read this goes through the one-feed path (UpstreamConnection._whole)."""
    resp = b"HTTP/1.0 200 OK\r\nServer: old\r\nContent-Length: 2\r\n\r\nok"
    conn, _, down, client = upstream()
    feed(conn, resp, step)
    assert bytes(down.out) == resp
    assert client.events == [("started", False), ("done", False)]
    assert not conn.keep_alive


def test_a_pooled_connection_that_closes_before_a_byte_is_retryable() -> None:
    conn, _, _, client = upstream()
    client.reused = True
    conn.connection_lost(None)
    assert client.events == [("failed", 502, True)]
    conn, _, _, client = upstream()
    client.reused = True
    conn.data_received(b"HTTP/1.1 200 OK\r\n")
    conn.connection_lost(None)
    assert client.events == [("failed", 502, False)]  # a byte came: it may have been served


def test_connect_failures_are_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    from ingress import exchange

    exchange._connect_failures.clear()
    key = ("10.0.0.9", 80)
    with caplog.at_level("WARNING", logger="ingress.exchange"):
        for i in range(5):
            exchange._log_connect_failure(key, ConnectionRefusedError(111), 100.0 + i)
        exchange._log_connect_failure(key, ConnectionRefusedError(111), 111.0)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "connect failed" in lines[0] and "more since" not in lines[0]
    assert "(4 more since the last report)" in lines[1]
