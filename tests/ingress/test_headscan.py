"""ingress/headscan.c against ingress/headscan.py, its reference in Python.

The C module is what the compiled build runs per request; the Python one is what the pure
build runs and what the C must agree with, answer for answer: on the request corpus of
test_head_differential.py (valid heads, every smuggling case, seeded mutations), on
response heads with every hop-by-hop field in any case and spacing, on their mutations,
and on random bytes (which also shows the C reads nothing outside the bytes object: a
wrong length would differ, or crash, somewhere in 20,000 of them).
"""

from __future__ import annotations

import random

import pytest

import ingress.headscan as loaded
from tests.ingress.test_head_differential import ALPHABET, corpus, mutate, python_twin

REF = python_twin(loaded)
native = pytest.mark.skipif(
    not loaded.NATIVE, reason="ingress/headscan.c is not built (SEAWAY_PURE, or no compiler)"
)

RESPONSE_FIELDS = [
    b"Connection: keep-alive",
    b"connection:Keep-Alive",
    b"Connection: keep-alive \t",
    b"Connection: close",
    b"Connection: keep-alive, close",
    b"Connection: keep-alivex",
    b"Connection:",
    b"Keep-Alive: timeout=5",
    b"Proxy-Connection: close",
    b"proxy-x:1",
    b"PROXY-",
    b"TE: trailers",
    b"te:",
    b"Tea: 1",
    b"Trailer: Expires",
    b"Upgrade: h2c",
    b"Transfer-Encoding: chunked",
    b"transfer-encoding:  CHUNKED\t",
    b"Transfer-Encoding: gzip, chunked",
    b"Transfer-Encoding: chunked, gzip",
    b"Content-Length: 5",
    b"Server: nginx/1.22.1",
    b"Set-Cookie: id=1; Path=/",
    b"X-Connection: close",
]


def response_heads() -> list[bytes]:
    rng = random.Random(20261203)
    heads = [b"HTTP/1.1 200 OK\r\n" + f + b"\r\n\r\n" for f in RESPONSE_FIELDS]
    for _ in range(1500):
        fields = rng.sample(RESPONSE_FIELDS, rng.randint(0, 5))
        head = b"HTTP/1.1 200 OK\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"
        heads.append(mutate(rng, head) if rng.random() < 0.5 else head)
    return heads


# Field names asked for in the comparisons (RequestState.header's callers ask in lower
# case; the match is case folded either way).
FIELD_NAMES = [b"host", b"HOST", b"cookie", b"origin", b"user-agent", b"te", b"x-empty", b"a", b""]


def random_bytes() -> list[bytes]:
    rng = random.Random(7)
    names = [b"host", b"content-length", b"transfer-encoding", b"connection", b"upgrade"]
    names += [b"expect", b"te", b"trailer", b"keep-alive", b"proxy-", b"proxy-x", b"tea"]
    names += [b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"]
    names += [b"x-forwarded-port", b"x-real-ip", b"x-real-ipx", b"hostx"]
    pieces = [*ALPHABET, b"\r", b" keep-alive", b" chunked", b"\r\nHOST: a", b"GET", b" /", b"?"]
    pieces += [b" HTTP/1.1\r\n", b" HTTP/1.0\r\n", b" HTTP/1.1", b"HTTP/1.", b" HTTP/1.2\r\n"]
    pieces += [b"\r\n" + n + b":" for n in names] + [b"\r\n" + n.upper() + b":" for n in names]
    return [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 14))) for _ in range(30000)]


def test_the_reference_finds_the_common_request_and_the_fields_that_go() -> None:
    """Control for the comparisons below: the reference itself answers as intended."""
    head = b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\n\r\n"
    assert REF.common_host(head, 14) == b"a"
    assert REF.common_host(head.replace(b"Host: a", b"Host: \tb.c:8 "), 14) == b"b.c:8"
    assert REF.common_host(head.replace(b"User-Agent", b"Connection"), 14) is None
    assert REF.common_host(head.replace(b"User-Agent: x", b"Host: b"), 14) is None
    assert REF.common_host(head.replace(b"Host: a\r\n", b""), 14) is None
    assert REF.head_end(head, 0) == len(head) - 4 and REF.head_end(head, len(head) - 3) == -1
    assert REF.request_line(head) == (b"GET", b"/", True)
    assert REF.request_line(head.replace(b"1.1", b"1.0", 1)) == (b"GET", b"/", False)
    assert REF.request_line(head.replace(b"GET ", b"GET  ", 1)) is None
    assert REF.request_line(head.replace(b"1.1", b"2.0", 1)) is None
    assert REF.before_query(b"/a?b?c") == b"/a" and REF.before_query(b"/a") == b"/a"
    assert REF.field(head, b"user-agent") == b"x" and REF.field(head, b"USER-AGENT") == b"x"
    assert REF.field(head.replace(b": x", b": \t x y \t"), b"user-agent") == b"x y"
    assert REF.field(head, b"user") is None and REF.field(head, b"accept") is None
    assert not REF.must_go(b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\n\r\n")
    assert REF.must_go(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")


@native
def test_requests_agree() -> None:
    heads = corpus() + random_bytes()
    disagreements = []
    for head in heads:
        line_end = head.find(b"\r\n")
        for start in {0, max(line_end, 0), len(head) - 1, len(head), len(head) + 3}:
            if loaded.common_host(head, start) != REF.common_host(head, start):
                disagreements.append((head, start, "common_host"))
        for start in range(-6, len(head) + 2):
            if loaded.head_end(head, start) != REF.head_end(head, start):
                disagreements.append((head, start, "head_end"))
        if loaded.request_line(head) != REF.request_line(head):
            disagreements.append((head, 0, "request_line"))
        if loaded.before_query(head) != REF.before_query(head):
            disagreements.append((head, 0, "before_query"))
        for name in FIELD_NAMES:
            if loaded.field(head, name) != REF.field(head, name):
                disagreements.append((head, name, "field"))
    assert sum(1 for h in heads if REF.common_host(h, h.find(b"\r\n")) is not None) > 500
    assert sum(1 for h in heads if REF.head_end(h, 0) >= 0) > 500
    assert sum(1 for h in heads if REF.request_line(h) is not None) > 500
    assert sum(1 for h in heads if REF.field(h, b"host") not in (None, b"")) > 500
    assert disagreements == []


@native
def test_responses_agree() -> None:
    heads = response_heads() + random_bytes()
    disagreements = [h for h in heads if loaded.must_go(h) != REF.must_go(h)]
    assert 300 < sum(1 for h in heads if REF.must_go(h)) < len(heads) - 300
    assert disagreements == []


@native
def test_wrong_types_are_refused() -> None:
    with pytest.raises(TypeError):
        loaded.must_go("HTTP/1.1 200 OK\r\n\r\n")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        loaded.common_host(bytearray(b"GET / HTTP/1.1\r\n\r\n"), 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        loaded.common_host(b"GET / HTTP/1.1\r\n\r\n")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        loaded.head_end(memoryview(b"\r\n\r\n"), 0)  # type: ignore[arg-type]
