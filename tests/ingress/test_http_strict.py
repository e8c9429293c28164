"""Strict HTTP/1.1 parsing and limits, through a real listener and a counting backend.

Every bad request gets its status, the connection is closed, and the backend never sees
it; a request pipelined behind a bad one is never processed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ingress.settings import HttpSettings
from tests.ingress.l7kit import (
    Backend,
    LoopThread,
    Proxy,
    exchange,
    one_backend,
    parse_responses,
)

LIMITS = HttpSettings(
    max_request_line=1024, max_header_bytes=4096, max_headers=20, max_body_size=1000
)


@pytest.fixture(scope="module")
def env(lt: LoopThread) -> Iterator[tuple[Proxy, Backend]]:
    with one_backend(lt, LIMITS) as site:
        yield site


H = b"Host: web.test\r\n"
BAD_400 = {
    "content-length with transfer-encoding": b"POST / HTTP/1.1\r\n"
    + H
    + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "differing content-length": b"POST / HTTP/1.1\r\n"
    + H
    + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "duplicate content-length": b"POST / HTTP/1.1\r\n"
    + H
    + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "content-length list": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3, 3\r\n\r\nabc",
    "content-length plus sign": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +3\r\n\r\nabc",
    "content-length minus sign": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -3\r\n\r\nabc",
    "content-length underscore": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1_0\r\n\r\nabc",
    "content-length hex": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x3\r\n\r\nabc",
    "transfer-encoding gzip": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n",
    "transfer-encoding gzip, chunked": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "transfer-encoding twice": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "transfer-encoding on HTTP/1.0": b"POST / HTTP/1.0\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bad chunk size": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "hex-prefixed chunk size": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
    "chunk size overflow": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    "bare LF after chunk size": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
    "bare LF request line": b"GET / HTTP/1.1\nHost: web.test\n\n",
    "bare LF in headers": b"GET / HTTP/1.1\r\nHost: web.test\nX: y\r\n\r\n",
    "bare CR in headers": b"GET / HTTP/1.1\r\nHost: web.test\rX: y\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\n" + H + b"X: y\r\n z\r\n\r\n",
    "NUL in value": b"GET / HTTP/1.1\r\n" + H + b"X: y\x00z\r\n\r\n",
    "control char in value": b"GET / HTTP/1.1\r\n" + H + b"X: y\x01z\r\n\r\n",
    "space before colon": b"GET / HTTP/1.1\r\n" + H + b"X : y\r\n\r\n",
    "invalid header name": b"GET / HTTP/1.1\r\n" + H + b"X(y: y\r\n\r\n",
    "empty header name": b"GET / HTTP/1.1\r\n" + H + b": y\r\n\r\n",
    "missing host": b"GET / HTTP/1.1\r\nX: y\r\n\r\n",
    "duplicate host": b"GET / HTTP/1.1\r\n" + H + H + b"\r\n",
    "target without slash": b"GET abc HTTP/1.1\r\n" + H + b"\r\n",
    "control char in target": b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n",
    "space in target": b"GET /a b HTTP/1.1\r\n" + H + b"\r\n",
    "asterisk target on GET": b"GET * HTTP/1.1\r\n" + H + b"\r\n",
    "bad method": b"G@T / HTTP/1.1\r\n" + H + b"\r\n",
    "unknown method": b"FOO / HTTP/1.1\r\n" + H + b"\r\n",
    "leading space": b" GET / HTTP/1.1\r\n" + H + b"\r\n",
    "HTTP/1.2": b"GET / HTTP/1.2\r\n" + H + b"\r\n",
    "HTTP/2.0 request line": b"GET / HTTP/2.0\r\n" + H + b"\r\n",
    "HTTP/0.9 request": b"GET /\r\n\r\n",
    "bad protocol name": b"GET / HTTX/1.1\r\n" + H + b"\r\n",
}
BAD_OTHER = {
    "request target too long": (414, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n" + H + b"\r\n"),
    "too many headers": (
        431,
        b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: 1\r\n" % i for i in range(30)) + b"\r\n",
    ),
    "header bytes": (431, b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"v" * 5000 + b"\r\n\r\n"),
    "unfinished huge header": (431, b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"v" * 9000),
    "content-length over the limit": (
        413,
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5000\r\n\r\n" + b"x" * 5000,
    ),
    "chunked body over the limit": (
        413,
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + b"3e8\r\n"
        + b"x" * 1000
        + b"\r\n10\r\n"
        + b"y" * 16
        + b"\r\n0\r\n\r\n",
    ),
    "CONNECT": (405, b"CONNECT web.test:443 HTTP/1.1\r\nHost: web.test:443\r\n\r\n"),
}
CASES = [(name, 400, raw) for name, raw in BAD_400.items()] + [
    (name, status, raw) for name, (status, raw) in BAD_OTHER.items()
]


@pytest.mark.parametrize(("name", "status", "raw"), CASES, ids=[c[0] for c in CASES])
def test_bad_request_rejected_and_never_forwarded(
    env: tuple[Proxy, Backend], name: str, status: int, raw: bytes
) -> None:
    proxy, backend = env
    before = len(backend.stats.requests)
    # A good request pipelined behind the bad one must never be processed.
    out = exchange(proxy.port, raw + b"GET /after HTTP/1.1\r\n" + H + b"\r\n")
    assert out.startswith(b"HTTP/1.1 %d " % status), (name, out[:200])
    assert b"Connection: close" in out
    responses = parse_responses(out)
    assert [r.status for r in responses] == [status]
    assert len(backend.stats.requests) == before, backend.stats.requests[before:]


def test_good_requests_before_a_bad_one_are_answered_in_order(env: tuple[Proxy, Backend]) -> None:
    proxy, backend = env
    before = len(backend.stats.requests)
    raw = (
        b"GET /first HTTP/1.1\r\n" + H + b"\r\n"
        b"GET /second HTTP/1.1\r\n"
        + H
        + b"\r\n"
        + BAD_400["obs-fold"]
        + b"GET /never HTTP/1.1\r\n"
        + H
        + b"\r\n"
    )
    responses = parse_responses(exchange(proxy.port, raw))
    assert [r.status for r in responses] == [200, 200, 400]
    assert b'"/first"' in responses[0].body and b'"/second"' in responses[1].body
    paths = [r["path"] for r in backend.stats.requests[before:]]
    assert paths == ["/first", "/second"]


def test_strict_cases_that_llhttp_accepts_are_valid_when_fixed(env: tuple[Proxy, Backend]) -> None:
    """Control: the same shapes, made valid, do reach the backend (the checks are not
    rejecting everything)."""
    proxy, backend = env
    ok = [
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n\r\nabc",
        b"GET / HTTP/1.0\r\n" + H + b"\r\n",
        b"GET / HTTP/1.1\r\n" + H + b"X: caf\xc3\xa9\r\n\r\n",
    ]
    for raw in ok:
        before = len(backend.stats.requests)
        out = exchange(
            proxy.port,
            raw.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
            if b"HTTP/1.1" in raw
            else raw,
        )
        assert out.startswith(b"HTTP/1.1 200 "), (raw, out[:200])
        assert len(backend.stats.requests) == before + 1
    # OPTIONS * is valid HTTP and reaches the backend with its target unchanged.
    out = exchange(proxy.port, b"OPTIONS * HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ")
    assert backend.stats.requests[-1]["path"] == "*"
