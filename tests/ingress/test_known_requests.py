"""Reads that are exactly one plain request head parsed before skip the parser."""

from __future__ import annotations

import pytest

from ingress.http1 import HttpProtocol
from tests.ingress.test_http_timeouts import FakeTransport, connect

PLAIN = (
    b"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n"
)


class NoParser:
    """Fails the test if the request parser is used."""

    def feed_data(self, data: bytes) -> None:
        raise AssertionError("parser used for a known request head")


def test_known_head_skips_the_parser_and_gets_the_same_parse() -> None:
    _, t, p = connect()
    p.data_received(PLAIN)
    first = bytes(t.out)
    assert first.startswith(b"HTTP/1.1 404 ")  # answered (Router404), kept alive
    known = p.ctx.known_requests[PLAIN]
    assert known == (
        b"GET",
        b"/a?b=1",
        b"example.com",
        b"Host: example.com\r\nAccept: */*\r\n",
        b"1.2.3.4",
    )
    real_parser, p.parser = p.parser, NoParser()  # type: ignore[assignment]
    p.data_received(PLAIN)
    assert bytes(t.out) == first * 2 and not t.closed
    p.parser = real_parser
    p.data_received(PLAIN[:20])  # a partial head goes to the parser as always
    p.data_received(PLAIN[20:])
    assert bytes(t.out) == first * 3


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",  # two requests
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",  # bad: 400
    ],
)
def test_only_plain_single_heads_are_remembered(head: bytes) -> None:
    _, _, p = connect()
    p.data_received(head)
    assert not p.ctx.known_requests


class NoEndpoints:
    status = 0
    endpoints = ()
    key = "empty"
    split = None


class RouterNoEndpoints:
    uses_headers = False

    def match(self, host: object, target: bytes, method: bytes, header: object) -> NoEndpoints:
        return NoEndpoints()


def test_known_head_is_per_context_and_upstream_head_per_client() -> None:
    _, t1, p1 = connect()
    p1.ctx.set_router(RouterNoEndpoints())  # routed (no endpoints: 502), so heads are built
    p1.data_received(PLAIN)
    assert t1.out.startswith(b"HTTP/1.1 502 ")
    p2 = HttpProtocol(p1.ctx, scheme=b"https")
    t2 = FakeTransport()
    t2.get_extra_info = lambda name: ("198.51.100.7", 1) if name == "peername" else None  # type: ignore[method-assign]
    p2.connection_made(t2)  # type: ignore[arg-type]
    p2.parser = NoParser()  # type: ignore[assignment]
    p2.data_received(PLAIN)
    assert t2.out.startswith(b"HTTP/1.1 502 ")
    assert p2._memo_head.endswith(
        b"X-Forwarded-For: 1.2.3.4, 198.51.100.7\r\nX-Forwarded-Proto: https\r\n"
        b"X-Forwarded-Host: example.com\r\nX-Real-IP: 198.51.100.7\r\n\r\n"
    )
    assert p2._memo_head.startswith(b"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n")
    _, _, other = connect()  # another context (other settings could apply): not shared
    assert not other.ctx.known_requests
