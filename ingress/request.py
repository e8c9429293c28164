"""One downstream request: its head, read in one pass, and where it is in its exchange.

The head is validated by llhttp (strict, no lenient flag) before it gets here: the caller
cuts it at the first blank line and trusts the cut only when llhttp reported the head
complete inside exactly those bytes (ingress/http1.py). Strict llhttp accepts CRLF only
and rejects obs-fold, bare CR/LF, NUL and control characters, bad names, spaces before a
colon, Content-Length with Transfer-Encoding, duplicate or malformed Content-Length and a
Transfer-Encoding whose last coding is not chunked, so every line break in an accepted
head is real and every field is on one line.

`parse_request` then pulls the fields the proxy acts on with one compiled pattern (Host,
Content-Length, Transfer-Encoding, Connection, Upgrade, Expect, the hop-by-hop fields and
the X-Forwarded-* ones it replaces) and refuses what llhttp accepts but a proxy must not:
a request line with other than single spaces, versions other than HTTP/1.0 and 1.1,
Transfer-Encoding other than exactly `chunked` or on HTTP/1.0, missing or duplicate Host
on HTTP/1.1, `*` as the target of anything but OPTIONS, CONNECT, and the size limits.
Everything else in the head is forwarded as it came, in one slice, followed by the
X-Forwarded-* lines. No work is done per header line in Python.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from mypy_extensions import trait

from ingress import headscan
from ingress.errors import PeerError
from ingress.settings import HttpSettings

# (compiled, a Final is read from a C static: an imported name costs a dict lookup per call)
_COMMON_HOST: Final[Callable[[bytes, int], bytes | None]] = headscan.common_host
_FIELD: Final[Callable[[bytes, bytes], bytes | None]] = headscan.field
_REQUEST_LINE: Final[Callable[[bytes], tuple[bytes, bytes, bool] | None]] = headscan.request_line

if TYPE_CHECKING:
    from ingress.route_match import RouteResult

# Hop-by-hop fields (RFC 9110 7.6.1): never forwarded.
HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Every field the proxy acts on, found in one pass over the lower-cased head (measured
# faster than a case-insensitive pattern); raw values are sliced from the head itself.
_FIELDS: Final = re.compile(
    rb"\r\n(host|content-length|transfer-encoding|connection|upgrade|expect|te|trailer"
    rb"|keep-alive|proxy-[^:\r]*|x-forwarded-for|x-forwarded-proto|x-forwarded-host"
    rb"|x-forwarded-port|x-real-ip):[ \t]*([^\r]*)"
)
_HOST: Final = 1
_CL: Final = 2
_TE: Final = 3
_CONN: Final = 4
_UPGRADE: Final = 5
_EXPECT: Final = 6
_XFF: Final = 7
_DROP: Final = 0  # hop-by-hop, or a field the proxy sets itself
_KINDS: Final = {
    b"host": _HOST,
    b"content-length": _CL,
    b"transfer-encoding": _TE,
    b"connection": _CONN,
    b"upgrade": _UPGRADE,
    b"expect": _EXPECT,
    b"x-forwarded-for": _XFF,
}
_KEPT: Final = frozenset({_HOST, _CL})  # found by the pattern and forwarded unchanged
_OWS: Final = b" \t"
_PLAIN_TOKENS: Final = frozenset({b"keep-alive", b"close", b"upgrade", b""})



@trait
class RequestPlan:
    """What the downstream connection asks of a request whose route has filters
    (ingress/filters/admission.py). A trait, not a Protocol: compiled, the connection
    calls these through the trait's table, not by name."""

    __slots__ = ()

    def begin(self, client: Any) -> None:
        raise NotImplementedError

    def reply(self, status: int, close: bool) -> bytes:
        raise NotImplementedError

    def body_received(self, received: int) -> None:
        raise NotImplementedError

    def finished(self) -> None:
        raise NotImplementedError


class RequestState:
    """One request: its head and framing, and where it is in its exchange.

    `head` is the raw head as received (request line to blank line). `upstream_head` is
    built only for requests that are forwarded.
    """

    __slots__ = (
        "body_received",
        "chunked",
        "complete",
        "content_length",
        "error",
        "expect_continue",
        "forward",
        "head",
        "host",
        "keep_alive",
        "local",
        "method",
        "pending",
        "plan",
        "response_done",
        "response_started",
        "route",
        "start",
        "status",
        "upgrade",
        "upstream_head",
        "url",
        "v11",
        "xff",
    )

    def __init__(self, method: bytes = b"", url: bytes = b"", head: bytes = b"") -> None:
        self.method = method
        self.url = url
        self.head = head
        self.v11 = True
        self.host: bytes | None = None
        self.xff: bytes | None = None
        self.content_length = 0
        self.chunked = False
        self.keep_alive = True
        self.expect_continue = False
        self.upgrade: bytes | None = None
        self.forward = b""  # the head minus its last CRLF and minus the fields dropped
        self.complete = False
        self.body_received = 0
        self.pending: list[bytes] | None = None  # body received before an upstream is bound
        self.upstream_head = b""
        self.error = 0  # a status to answer instead of forwarding (pipelined bad request)
        self.local = 0  # a status the proxy answers itself (404, 503, ...)
        self.status = 0  # the response status the client got (for logs and metrics)
        self.start = 0.0  # perf_counter() when the head was complete (metrics, access log)
        self.response_started = False
        self.response_done = False
        self.route: RouteResult | None = None
        self.plan: RequestPlan | None = None  # per-request filter state (ingress/filters/)

    def repeat(self) -> RequestState:
        """A new, complete request with this one's head, parse and route (the same bytes
        read again on the connection: see HttpProtocol._repeat)."""
        req = RequestState(self.method, self.url, self.head)
        req.host = self.host
        req.xff = self.xff
        req.forward = self.forward
        req.upstream_head = self.upstream_head
        req.route = self.route
        req.local = self.local
        req.complete = True
        return req

    @property
    def has_body(self) -> bool:
        return self.chunked or self.content_length > 0

    @property
    def version(self) -> str:
        return "1.1" if self.v11 else "1.0"

    def header(self, name: bytes) -> bytes | None:
        """The value of the first field called `name` (lower case), found in the raw head
        only when asked (routes that match on a header call this; others never do)."""
        return _FIELD(self.head, name)

    def build_upstream_head(self, client_ip: bytes, scheme: bytes) -> bytes:
        """The request head for the backend: the client's head as received (hop-by-hop
        fields removed), then the framing we send and the X-Forwarded-* lines."""
        return self.upstream_head_with(ForwardedLines(client_ip, scheme))

    def upstream_head_with(self, lines: ForwardedLines) -> bytes:
        """build_upstream_head with the connection's lines made once (HttpProtocol)."""
        host = self.host if self.host is not None else b""
        if self.xff is None and not self.chunked and self.upgrade is None:
            return b"".join((self.forward, lines.before_host, host, lines.end))
        framing = b"Transfer-Encoding: chunked\r\n" if self.chunked else b""
        if self.upgrade is not None:
            framing += b"Connection: upgrade\r\nUpgrade: %s\r\n" % self.upgrade
        xff = lines.client_ip
        incoming = self.xff
        if incoming is not None:
            if lines.appended is not None:
                xff = incoming + b", " + lines.appended
            if lines.original:
                framing += b"X-Original-Forwarded-For: %s\r\n" % incoming
        return b"%s%sX-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\nX-Forwarded-Host: %s%s" % (
            self.forward,
            framing,
            xff,
            lines.scheme,
            host,
            lines.end,
        )


class ForwardedLines:
    """The X-Forwarded-* lines of one client connection, made once: the part before the
    host (For, Proto) and the end (Port when given, Real-IP, the blank line).

    An incoming X-Forwarded-For gets ``appended`` added to it (by default the client
    address); with ``replace`` it is replaced by the client address (ingress-nginx without
    compute-full-forwarded-for). ``original``: the incoming value is also sent as
    X-Original-Forwarded-For (ingress-nginx). See ingress/client_address.py."""

    __slots__ = ("appended", "before_host", "client_ip", "end", "original", "scheme")

    def __init__(
        self,
        client_ip: bytes,
        scheme: bytes,
        port: bytes = b"",
        appended: bytes | None = None,
        replace: bool = False,
        original: bool = False,
    ) -> None:
        self.client_ip = client_ip
        self.scheme = scheme
        self.appended = None if replace else client_ip if appended is None else appended
        self.original = original
        self.before_host = b"X-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\nX-Forwarded-Host: " % (
            client_ip,
            scheme,
        )
        port_line = b"X-Forwarded-Port: %s\r\n" % port if port else b""
        self.end = b"\r\n%sX-Real-IP: %s\r\n\r\n" % (port_line, client_ip)


# The request line of a head llhttp accepted, in the one shape the proxy takes: single
# spaces, a non-empty target, HTTP/1.1 or HTTP/1.0 (anything else: _bad_line says why).
_LINE: Final = re.compile(rb"([^ \r]+) ([^ \r]+) HTTP/1\.([01])\r\n")
_HOST_KEY: Final = b"\r\nhost:"


def parse_request(head: bytes, settings: HttpSettings) -> RequestState:
    """A RequestState from a head llhttp accepted (request line through the blank line);
    raises PeerError for what llhttp lets through but the proxy refuses."""
    # The request line llhttp accepted, split at its first two spaces (in C, see
    # ingress/headscan.py); any other shape (runs of spaces, another version) takes _LINE.
    line = _REQUEST_LINE(head)
    if line is not None:
        method, url, v11 = line
        line_end = len(method) + len(url) + 10
    else:
        m = _LINE.match(head)
        if m is None:
            raise _bad_line(head)
        method, url, minor = m.groups()
        v11 = minor == b"1"
        line_end = m.end() - 2
    if len(url) >= settings.max_request_line:
        raise PeerError(414, "request target too long")
    if len(head) - line_end > settings.max_header_bytes + 2:
        raise PeerError(431, "request headers too large")
    # Each field takes at least 4 bytes ("a:" CRLF): count them only when there may be too many.
    if len(head) > 4 * settings.max_headers and head.count(b"\r\n") - 2 > settings.max_headers:
        raise PeerError(431, "too many request header fields")
    req = RequestState(method, url, head)
    if not v11:
        req.v11 = False
    if method == b"CONNECT":
        raise PeerError(405, "CONNECT is not supported")
    if url == b"*" and method != b"OPTIONS":
        raise PeerError(400, "asterisk target on a method other than OPTIONS")
    if req.v11:
        host = _COMMON_HOST(head, line_end)
        if host is not None:  # the common request: Host and fields passed through untouched
            req.host = host
            req.forward = head[:-2]
            return req
    low = head.lower()
    _fields(req, head, low, line_end, _FIELDS.findall(low, line_end), settings)
    return req


def _bad_line(head: bytes) -> PeerError:
    """Why a request line llhttp accepted is refused (the proxy is stricter)."""
    line_end = head.find(b"\r\n")
    sp = head.find(b" ")
    sp2 = head.find(b" ", sp + 1)
    if sp2 != line_end - 9 or sp2 == sp + 1:  # llhttp allows runs of spaces: we do not
        return PeerError(400, "request line: method, target and version, one space apart")
    return PeerError(400, "unsupported version")


def _fields(
    req: RequestState,
    head: bytes,
    low: bytes,
    line_end: int,
    fields: list[tuple[bytes, bytes]],
    settings: HttpSettings,
) -> None:
    """Every field the proxy acts on, one by one (any head but the common one)."""
    drop = False
    tokens: frozenset[bytes] | None = None
    method, url = req.method, req.url
    for name, value in fields:
        kind = _KINDS.get(name, _DROP)
        if kind == _HOST:
            if req.host is not None:
                raise PeerError(400, "duplicate Host header")
            req.host = _raw(head, low, line_end, _HOST_KEY)[0]
        elif kind == _CL:
            req.content_length = n = int(value)  # llhttp checked the digits
            if settings.max_body_size and n > settings.max_body_size:
                raise PeerError(413, "request body too large")
        else:
            drop = True
            if kind == _TE:
                if req.chunked or value.rstrip(_OWS) != b"chunked":
                    raise PeerError(400, "Transfer-Encoding other than chunked")
                req.chunked = True
            elif kind == _CONN:
                named = frozenset(t.strip(_OWS) for t in value.split(b","))
                tokens = named if tokens is None else tokens | named
            elif kind == _EXPECT:
                # 100-continue is answered by the proxy; any other expectation is
                # forwarded (_strip keeps its line)
                req.expect_continue = value.rstrip(_OWS) == b"100-continue"
            elif kind == _UPGRADE:
                req.upgrade = _raw(head, low, line_end, b"\r\nupgrade:")[-1]
            elif kind == _XFF and req.xff is None:
                req.xff = b", ".join(_raw(head, low, line_end, b"\r\nx-forwarded-for:"))
    if req.v11:
        if req.host is None:
            raise PeerError(400, "missing Host header")
    elif req.chunked:
        raise PeerError(400, "Transfer-Encoding on HTTP/1.0")
    if drop or not req.v11:
        if req.upgrade is not None and (tokens is None or b"upgrade" not in tokens):
            req.upgrade = None
        if not req.v11 or req.upgrade is not None or (tokens is not None and b"close" in tokens):
            req.keep_alive = False
        req.forward = _strip(head, low, line_end, method, url, tokens)
    else:
        req.forward = head[:-2]


def _raw(head: bytes, low: bytes, start: int, key: bytes) -> list[bytes]:
    """The raw values of every field starting with `key` ("\\r\\nname:", lower case)."""
    values = []
    i = low.find(key, start)
    while i >= 0:
        i += len(key)
        end = head.find(b"\r", i)
        values.append(head[i:end].strip(_OWS))
        i = low.find(key, end)
    return values


def _strip(
    head: bytes,
    low: bytes,
    line_end: int,
    method: bytes,
    url: bytes,
    tokens: frozenset[bytes] | None,
) -> bytes:
    """The head to forward when fields must go: an HTTP/1.1 request line, then every line
    but the hop-by-hop ones, those Connection names, and those the proxy sets itself."""
    parts = [b"%s %s HTTP/1.1" % (method, url)]
    pos = line_end
    for m in _FIELDS.finditer(low, line_end):
        kind = _KINDS.get(m.group(1), _DROP)
        if kind in _KEPT or (kind == _EXPECT and m.group(2).rstrip(_OWS) != b"100-continue"):
            continue
        parts.append(head[pos : m.start()])
        pos = m.end()
    parts.append(head[pos:-4])
    forward = b"".join(parts)
    if tokens is not None and not tokens <= _PLAIN_TOKENS:
        lines = forward.split(b"\r\n")
        kept = [lines[0]]
        kept += [ln for ln in lines[1:] if ln.partition(b":")[0].lower() not in tokens]
        forward = b"\r\n".join(kept)
    return forward + b"\r\n"
