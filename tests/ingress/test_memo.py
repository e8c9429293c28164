"""The two exact-bytes memos kept for repeated clients: per connection, one comparison on
a miss, hits and misses counted; a hit must give exactly what parsing gives."""

from __future__ import annotations

from ingress.http1 import HttpProtocol
from ingress.route_match import RouteResult
from ingress.routes import Forward
from tests.ingress.test_http_timeouts import FakeTransport, connect
from tests.ingress.test_upstream import FakeExchange, upstream

PLAIN = b"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"


class NoParser:
    """Fails the test if llhttp is used."""

    def feed_data(self, data: bytes) -> None:
        raise AssertionError("parser used")


def test_a_repeated_request_skips_the_parser_and_is_counted() -> None:
    _, t, p = connect()
    p.data_received(PLAIN)
    first = bytes(t.out)
    assert first.startswith(b"HTTP/1.1 404 ")  # answered (Router404), kept alive
    real, p.parser = p.parser, NoParser()  # type: ignore[assignment]
    p.data_received(PLAIN)
    assert bytes(t.out) == first * 2 and not t.closed
    assert (p.ctx.memo_hits, p.ctx.memo_misses) == (1, 0)
    p.parser = real
    p.data_received(PLAIN.replace(b"/a", b"/b"))  # other bytes: parsed, a miss
    assert p.ctx.memo_misses == 1 and bytes(t.out) == first * 3


def test_only_plain_keep_alive_requests_are_remembered() -> None:
    for head in (
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",  # two requests
    ):
        _, _, p = connect()
        p.data_received(head)
        assert p._memo is None, head


def test_a_repeat_gets_its_own_upstream_head_per_client_and_a_new_router() -> None:
    class Router:
        calls = 0
        uses_headers = False

        def match(
            self, host: object, target: bytes, method: bytes, header: object
        ) -> RouteResult:
            Router.calls += 1
            return RouteResult(0, Forward(()), "test: no endpoints")  # answered 502

    _, t1, p1 = connect()
    p1.ctx.set_router(Router())  # routed (no endpoints: 502), so heads are built
    p1.data_received(PLAIN)
    p1.data_received(PLAIN)
    assert t1.out.count(b"HTTP/1.1 502 ") == 2 and Router.calls == 1
    p1.ctx.set_router(Router())
    p1.data_received(PLAIN)
    assert Router.calls == 2  # a new configuration: routed again
    p2 = HttpProtocol(p1.ctx, scheme=b"https")
    t2 = FakeTransport()
    t2.get_extra_info = lambda name: ("198.51.100.7", 1) if name == "peername" else None  # type: ignore[method-assign]
    p2.connection_made(t2)  # type: ignore[arg-type]
    p2.data_received(PLAIN)  # another connection: its own memo, its own X-Forwarded-*
    memo = p2._memo
    assert memo is not None and memo.upstream_head.endswith(
        b"X-Forwarded-For: 198.51.100.7\r\nX-Forwarded-Proto: https\r\n"
        b"X-Forwarded-Host: example.com\r\nX-Real-IP: 198.51.100.7\r\n\r\n"
    )


HEAD = b"HTTP/1.1 200 OK\r\nServer: memo\r\nContent-Length: 10\r\n\r\n"


def next_exchange(conn: object) -> FakeExchange:
    ex = FakeExchange()
    ex.conn = conn  # type: ignore[assignment]
    conn.attach(ex, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")  # type: ignore[attr-defined]
    return ex


def test_a_repeated_response_head_is_counted_without_the_parser() -> None:
    conn, _, _, _ = upstream()
    conn.data_received(HEAD + b"0123456789")  # parsed strictly, then remembered
    ex = next_exchange(conn)
    conn.parser = NoParser()  # type: ignore[assignment]
    conn.data_received(HEAD + b"0123")
    conn.data_received(b"456")
    conn.data_received(b"789")
    assert bytes(ex.out.out) == HEAD + b"0123456789"
    assert ex.events == [("started", False), ("done", True)] and ex.status == 200
    assert (conn.pool.memo_hits, conn.pool.memo_misses) == (1, 0)


def test_a_repeated_head_with_bytes_after_its_body_fails() -> None:
    conn, _, _, _ = upstream()
    conn.data_received(HEAD + b"0123456789")
    ex = next_exchange(conn)
    conn.data_received(HEAD + b"01234")
    conn.data_received(b"56789HTTP/1.1 200 OK\r\n")  # a second response nobody asked for
    assert ex.events[-1] == "abort" and conn.closed


def test_other_response_heads_miss_and_are_parsed() -> None:
    conn, _, _, _ = upstream()
    conn.data_received(HEAD + b"0123456789")
    ex = next_exchange(conn)
    other = HEAD.replace(b"memo", b"othr")
    conn.data_received(other + b"0123456789")
    assert bytes(ex.out.out) == other + b"0123456789"
    assert (conn.pool.memo_hits, conn.pool.memo_misses) == (0, 1)
    ex = next_exchange(conn)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok")
    assert ex.events[-1] == ("failed", 502, False)  # llhttp still sees every new head


def test_a_backend_picked_from_a_weighted_split_is_not_memoised() -> None:
    """A repeat must be routed again when its backend was drawn at random (canary
    weights, HTTPRoute backendRefs weights): otherwise one connection sticks to one side."""

    class Router:
        calls = 0
        uses_headers = False

        def match(
            self, host: object, target: bytes, method: bytes, header: object
        ) -> RouteResult:
            Router.calls += 1
            # a backend drawn from a weighted split: not repeatable
            return RouteResult(0, Forward(()), "test: v2", repeatable=False)

    _, _, p = connect()
    p.ctx.set_router(Router())  # type: ignore[arg-type]
    p.data_received(PLAIN)
    assert p._memo is None
    p.data_received(PLAIN)
    assert Router.calls == 2
