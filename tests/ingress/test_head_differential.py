"""Differential test of the request-head fast path against a field-by-field reference.

The proxy cuts a head at its blank line, lets llhttp validate that slice and pulls the
fields it acts on with one pattern (ingress/request.py, ingress/http1.py). `reference`
below parses the same bytes the slow, obvious way: line by line, by the RFC 9112/9110
grammar, with the proxy's own rules written out. For a corpus of valid and invalid heads
(every smuggling case of test_http_strict.py plus seeded random mutations of valid heads)
both must agree on accept/reject, on the status of a rejection, and on every field
extracted, including the exact lines forwarded to the backend.
"""

from __future__ import annotations

import importlib.util
import random
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from ingress.context import ProxyContext
from ingress.http1 import HttpProtocol
from ingress.outbox import Outbox
from ingress.request import RequestState
from ingress.route_match import RouteResult
from ingress.settings import HttpSettings
from tests.ingress.test_http_strict import BAD_400, BAD_OTHER
from tests.ingress.test_http_timeouts import NOT_FOUND, FakeLoop, FakeTransport

SETTINGS = HttpSettings(max_request_line=1024, max_header_bytes=4096, max_headers=20)
TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
METHODS = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"PATCH"})
DROPPED = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-real-ip",
    }
)


@dataclass
class Parsed:
    """What a parser made of one head: a status (0: accepted) and the fields."""

    status: int = 0
    method: bytes = b""
    url: bytes = b""
    host: bytes | None = None
    content_length: int = 0
    chunked: bool = False
    keep_alive: bool = True
    expect_continue: bool = False
    upgrade: bytes | None = None
    xff: bytes | None = None
    forwarded: list[bytes] = field(default_factory=list)  # header lines sent upstream


class Reject(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


def _value_ok(value: bytes) -> bool:
    return all(c == 9 or 32 <= c <= 126 or c >= 128 for c in value)


def reference(head: bytes, settings: HttpSettings = SETTINGS) -> Parsed:
    """Field by field, the slow and obvious way."""
    try:
        return _reference(head, settings)
    except Reject as r:
        return Parsed(status=r.status)


def _reference(head: bytes, s: HttpSettings) -> Parsed:
    assert head.endswith(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    line, fields = lines[0], lines[1:]
    parts = line.split(b" ")
    if len(parts) != 3 or not all(parts):
        raise Reject(400)
    method, url, version = parts
    if method not in METHODS and method != b"CONNECT":
        raise Reject(400)
    if any(c <= 32 or c >= 127 for c in url):
        raise Reject(400)
    if method != b"CONNECT" and not (url[:1] == b"/" or url[:7] == b"http://" or url == b"*"):
        raise Reject(400)  # (CONNECT's authority-form is refused with 405 below)
    if version not in (b"HTTP/1.0", b"HTTP/1.1"):
        raise Reject(400)
    pairs = []
    for f in fields:
        if b"\r" in f or b"\n" in f or f[:1] in (b" ", b"\t"):
            raise Reject(400)  # bare CR/LF, obs-fold
        name, colon, value = f.partition(b":")
        if not colon or not name or any(c not in TCHAR for c in name):
            raise Reject(400)
        value = value.strip(b" \t")
        if not _value_ok(value):
            raise Reject(400)
        pairs.append((name, name.lower(), value))
    lengths = [v for _, n, v in pairs if n == b"content-length"]
    codings = [v for _, n, v in pairs if n == b"transfer-encoding"]
    if lengths and codings:
        raise Reject(400)
    if len(lengths) > 1 or any(not v.isdigit() for v in lengths):
        raise Reject(400)
    if codings and codings[-1].lower().split(b",")[-1].strip() != b"chunked":
        raise Reject(400)  # (llhttp's rule; the proxy's stricter rule follows below)
    if len(url) > s.max_request_line:
        raise Reject(414)
    if len(head) - len(line) > s.max_header_bytes + 2 or len(fields) > s.max_headers:
        raise Reject(431)
    if method == b"CONNECT":
        raise Reject(405)
    if url == b"*" and method != b"OPTIONS":
        raise Reject(400)
    out = Parsed(method=method, url=url)
    hosts = [v for _, n, v in pairs if n == b"host"]
    if len(hosts) > 1:
        raise Reject(400)
    out.host = hosts[0] if hosts else None
    if codings:
        if len(codings) > 1 or codings[0].lower() != b"chunked":
            raise Reject(400)
        out.chunked = True
    if lengths:
        out.content_length = int(lengths[0])
    if version == b"HTTP/1.1" and out.host is None:
        raise Reject(400)
    if version == b"HTTP/1.0" and out.chunked:
        raise Reject(400)
    tokens = {
        t.strip(b" \t").lower() for _, n, v in pairs if n == b"connection" for t in v.split(b",")
    }
    upgrades = [v for _, n, v in pairs if n == b"upgrade"]
    if upgrades and b"upgrade" in tokens:
        out.upgrade = upgrades[-1]
    out.keep_alive = version == b"HTTP/1.1" and b"close" not in tokens and out.upgrade is None
    expects = [v.lower() for _, n, v in pairs if n == b"expect"]
    out.expect_continue = bool(expects) and expects[-1] == b"100-continue"
    xffs = [v for _, n, v in pairs if n == b"x-forwarded-for"]
    out.xff = b", ".join(xffs) if xffs else None
    for f, (_, n, v) in zip(fields, pairs, strict=True):
        if n in DROPPED or n.startswith(b"proxy-") or (n in tokens and n not in (b"close", b"")):
            continue
        if n == b"expect" and v.lower() == b"100-continue":
            continue
        out.forwarded.append(f)
    return out


class Capture(ProxyContext):
    """A context whose router records the request (and what was parsed, before the
    proxy's answer changes it) and answers 404."""

    seen: list[RequestState]
    parsed: list[Parsed]

    def route(self, req: RequestState) -> RouteResult:
        self.seen.append(req)
        self.parsed.append(
            Parsed(
                0,
                req.method,
                req.url,
                req.host,
                req.content_length,
                req.chunked,
                req.keep_alive,
                req.expect_continue,
                req.upgrade,
                req.xff,
                req.forward.split(b"\r\n")[1:-1],
            )
        )
        return NOT_FOUND


def fast(head: bytes, settings: HttpSettings = SETTINGS) -> Parsed | None:
    """What the proxy made of `head` (None: it is still waiting for the head to end)."""
    ctx = Capture(FakeLoop(), settings, None, outbox=Outbox(None))  # type: ignore[arg-type]
    ctx.seen, ctx.parsed = [], []
    proto = HttpProtocol(ctx)
    t = FakeTransport()
    proto.connection_made(t)  # type: ignore[arg-type]
    proto.data_received(head)
    if ctx.parsed:
        return ctx.parsed[0]
    if not t.out:
        return None
    assert t.closed, t.out
    return Parsed(status=int(t.out.split(b" ", 2)[1]))


VALID = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /item/42?page=3&q=x HTTP/1.1\r\nHost: shop.example.com:8080\r\nUser-Agent: "
    b"Mozilla/5.0 (X11)\r\nAccept: */*\r\nX-Request-Id: 1b2c-3\r\nCookie: a=1; b=2\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\n",
    b"PUT /x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: x\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
    b"GET /p HTTP/1.1\r\nHost: a\r\nConnection: close, X-Private\r\nX-Private: 1\r\n"
    b"Keep-Alive: 5\r\nTE: trailers\r\nProxy-Authorization: Basic eA==\r\n\r\n",
    b"GET http://a/b HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-for: "
    b"5.6.7.8\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n",
    b"DELETE /a HTTP/1.1\r\nHost:a\r\nX-Empty:\r\nX-Tab:\tv\t\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
]


def _head_of(raw: bytes) -> bytes:
    return raw[: raw.index(b"\r\n\r\n") + 4]


SMUGGLING = [_head_of(raw) for raw in BAD_400.values() if b"\r\n\r\n" in raw] + [
    _head_of(raw) for _, raw in BAD_OTHER.values() if b"\r\n\r\n" in raw
]

ALPHABET = [b" ", b"\t", b"\r", b"\n", b":", b"\x00", b"\x01", b"\x7f", b"\x80", b",", b"0", b"-"]
ALPHABET += [b"a", b"A", b"\r\n", b"\r\n ", b"Host: b\r\n", b"Content-Length: 3\r\n"]
ALPHABET += [b"Transfer-Encoding: chunked\r\n", b"Connection: close\r\n"]


def mutate(rng: random.Random, head: bytes) -> bytes:
    """A random edit after the request line (the target's own grammar is llhttp's)."""
    body = bytearray(head[:-2])  # the blank line's last CRLF is kept aside
    start = head.index(b"\r\n")
    for _ in range(rng.randint(1, 3)):
        at = rng.randint(start, len(body))
        op = rng.random()
        if op < 0.4:
            body[at:at] = rng.choice(ALPHABET)
        elif op < 0.7 and at < len(body):
            del body[at : at + rng.randint(1, 3)]
        elif op < 0.85 and at < len(body):
            body[at : at + 1] = rng.choice(ALPHABET)
        else:  # change the case of a name
            lines = bytes(body).split(b"\r\n")
            i = rng.randrange(1, max(2, len(lines)))
            if i < len(lines):
                lines[i] = lines[i].swapcase()
            body = bytearray(b"\r\n".join(lines))
    out = bytes(body) + b"\r\n"
    cut = out.find(b"\r\n\r\n")
    return out[: cut + 4] if cut >= 0 else out


def python_twin(module: ModuleType) -> ModuleType:
    """The Python twin of a module written in C (ingress/headscan, ingress/filters/
    fieldscan: its .py beside the extension), loaded from its source under another name."""
    source = Path(module.__file__ or "").with_name(module.__name__.rpartition(".")[2] + ".py")
    spec = importlib.util.spec_from_file_location(module.__name__ + "_twin", source)
    assert spec is not None and spec.loader is not None
    twin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(twin)
    return twin


def corpus() -> list[bytes]:
    rng = random.Random(20261123)
    heads = VALID + SMUGGLING
    heads += [mutate(rng, rng.choice(VALID)) for _ in range(3000)]
    return list(dict.fromkeys(heads))


def test_the_corpus_has_both_kinds() -> None:
    """Control: the corpus holds many accepted and many refused heads."""
    results = [reference(h).status for h in corpus() if h.endswith(b"\r\n\r\n")]
    assert sum(1 for s in results if s == 0) > 300
    assert sum(1 for s in results if s) > 300
    assert {400, 414, 431, 405} <= set(results)


def test_valid_heads_are_accepted() -> None:
    for head in VALID:
        assert reference(head).status == 0, head
        assert fast(head) == reference(head), head


@pytest.mark.parametrize("head", SMUGGLING, ids=list(range(len(SMUGGLING))))
def test_every_smuggling_case_agrees(head: bytes) -> None:
    """The heads of test_http_strict.py's cases (those whose fault is in the body, a bad
    chunk size, have a valid head: test_http_strict.py refuses them end to end)."""
    assert fast(head) == reference(head)


def test_most_smuggling_heads_are_refused() -> None:
    refused = [h for h in SMUGGLING if reference(h).status]
    assert len(refused) >= len(SMUGGLING) - 6  # the chunk-size and body-limit cases


def test_fast_path_agrees_with_the_reference_on_mutated_heads() -> None:
    disagreements = []
    checked = 0
    for head in corpus():
        got = fast(head)
        if not head.endswith(b"\r\n\r\n"):
            if got is not None and got.status == 0:
                disagreements.append((head, "accepted a head without its blank line", got))
            continue
        checked += 1
        ref = reference(head)
        if got != ref:
            disagreements.append((head, ref, got))
    assert checked > 2000
    assert disagreements == []


def test_header_is_found_lazily_in_the_raw_head() -> None:
    head = VALID[1]
    req = fast_request(head)
    assert req.header(b"x-request-id") == b"1b2c-3"
    assert req.header(b"cookie") == b"a=1; b=2"
    assert req.header(b"user-agent") == b"Mozilla/5.0 (X11)"
    assert req.header(b"x-missing") is None
    assert req.header(b"get") is None  # the request line is not a field
    tabbed = fast_request(VALID[-1])
    assert tabbed.header(b"x-tab") == b"v" and tabbed.header(b"x-empty") == b""


def fast_request(head: bytes) -> RequestState:
    ctx = Capture(FakeLoop(), SETTINGS, None, outbox=Outbox(None))  # type: ignore[arg-type]
    ctx.seen, ctx.parsed = [], []
    proto = HttpProtocol(ctx)
    proto.connection_made(FakeTransport())  # type: ignore[arg-type]
    proto.data_received(head)
    return ctx.seen[0]


def test_header_lookup_agrees_with_a_field_by_field_parse() -> None:
    """RequestState.header searches the lower-cased head: whatever the case of the field
    or of the name asked for, it finds what a line-by-line reading finds first (values
    trimmed of spaces and tabs), never a name inside another field's value."""
    head = (
        b"GET /x HTTP/1.1\r\nHost: a\r\nX-Note: cookie: not-this\r\n"
        b"COOKIE: \t sid=1; x=2 \t\r\ncookie: second\r\nOrigin: https://o.test\r\n\r\n"
    )
    req = fast_request(head)

    def by_lines(name: bytes) -> bytes | None:
        for line in head.split(b"\r\n")[1:]:
            field, sep, value = line.partition(b":")
            if sep and field.lower() == name.lower():
                return value.strip(b" \t")
        return None

    for name in (b"cookie", b"Cookie", b"ORIGIN", b"x-note", b"host", b"x-absent", b"note"):
        assert req.header(name) == by_lines(name), name
    assert req.header(b"cookie") == b"sid=1; x=2"
    bare = RequestState(b"GET", b"/", b"GET / HTTP/1.1\r\nX-A: 1")  # no blank line (tests)
    assert bare.header(b"x-a") == b"1"
