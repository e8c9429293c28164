"""Per-request state of a downstream HTTP/1.1 request, and the checks llhttp leaves to us.

llhttp (strict, no lenient flag) already rejects: Content-Length with Transfer-Encoding,
duplicate or malformed Content-Length (signs, underscores, hex, lists), Transfer-Encoding
whose last coding is not chunked, bad chunk sizes, bare LF or CR, obs-fold, NUL and
control characters in values, invalid header names (spaces before the colon), unknown
methods, versions other than 1.x, and bad characters in the target. What it accepts and
we refuse here: Transfer-Encoding other than exactly `chunked` (e.g. "gzip, chunked"),
Transfer-Encoding on HTTP/1.0, HTTP/0.9 and HTTP/2.0 request lines, missing or duplicate
Host on HTTP/1.1, `*` as the target of anything but OPTIONS, and our size limits.
"""

from __future__ import annotations

from time import perf_counter

from discovery.snapshot import EndpointInfo
from ingress.errors import PeerError
from ingress.settings import HttpSettings

# Hop-by-hop headers (RFC 9110 7.6.1) plus the ones we re-derive or set ourselves.
HOP_BY_HOP = frozenset(
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
_HOST, _TE, _CL, _CONN, _EXPECT, _UPGRADE, _XFF, _DROP = range(8)
SPECIAL_HEADERS: dict[bytes, int] = {
    b"host": _HOST,
    b"transfer-encoding": _TE,
    b"content-length": _CL,
    b"connection": _CONN,
    b"expect": _EXPECT,
    b"upgrade": _UPGRADE,
    b"x-forwarded-for": _XFF,
    b"x-forwarded-proto": _DROP,
    b"x-forwarded-host": _DROP,
    b"x-real-ip": _DROP,
}
for _name in HOP_BY_HOP:
    SPECIAL_HEADERS.setdefault(_name, _DROP)
_PLAIN_TOKENS = frozenset({b"keep-alive", b"close", b"upgrade", b""})

# What an identical later head needs: method, target, Host, forwarded lines, X-Forwarded-For.
KnownRequest = tuple[bytes, bytes, "bytes | None", bytes, "bytes | None"]

_new = object.__new__


class RequestState:
    """One request: its head as parsed, its framing, and where it is in its exchange.

    Header lines to forward are kept as they will be written (`fwd`), so building the
    upstream head is one join; the few headers that matter are dispatched by name.
    """

    __slots__ = (
        "body_received",
        "chunked",
        "complete",
        "connection_tokens",
        "content_length",
        "error",
        "expect_continue",
        "fwd",
        "head_bytes",
        "head_done",
        "host",
        "keep_alive",
        "local",
        "method",
        "nheaders",
        "pending",
        "response_done",
        "response_started",
        "retries",
        "route",
        "started",
        "tried",
        "upgrade",
        "upstream_at",
        "upstream_head",
        "url",
        "version",
        "xff",
    )

    def __init__(self) -> None:
        self.method = b""
        self.url = b""
        self.version = "1.1"
        self.fwd: list[bytes] = []
        self.nheaders = 0
        self.head_bytes = 0
        self.host: bytes | None = None
        self.xff: bytes | None = None
        self.content_length: int | None = None
        self.chunked = False
        self.keep_alive = True
        self.expect_continue = False
        self.upgrade: bytes | None = None
        self.connection_tokens: frozenset[bytes] | None = None
        self.head_done = False
        self.complete = False
        self.body_received = 0
        self.pending: list[bytes] | None = None  # body received before an upstream is bound
        self.upstream_head = b""
        self.error = 0  # a status to answer instead of forwarding (pipelined bad request)
        self.local = 0  # a status the proxy answers itself (404, 503, ...)
        self.response_started = False
        self.response_done = False
        self.route: object = None
        self.tried: list[EndpointInfo] | None = None
        self.retries = 0
        # perf_counter() at the request's first byte and when it was first sent upstream
        # (0: never), for the request metrics and the access log (ingress/stats.py).
        self.started = perf_counter()
        self.upstream_at = 0.0

    @classmethod
    def from_known(cls, known: KnownRequest) -> RequestState:
        """A complete request from a head seen before (see known())."""
        # Every slot set once, without __init__ (this runs once per repeated request).
        req = _new(cls)
        req.method, req.url, req.host, fwd, req.xff = known
        req.fwd = [fwd]
        req.version = "1.1"
        req.nheaders = req.head_bytes = req.body_received = 0
        req.content_length = req.upgrade = req.connection_tokens = None
        req.pending = req.route = req.tried = None
        req.chunked = req.expect_continue = False
        req.response_started = req.response_done = False
        req.keep_alive = req.head_done = req.complete = True
        req.upstream_head = b""
        req.error = req.local = req.retries = 0
        req.started = perf_counter()
        req.upstream_at = 0.0
        return req

    def renew_known(self, known: KnownRequest) -> None:
        """Make this request, built by from_known and finished cleanly on a pooled
        connection (no retry, no local answer), a new one from `known`: only the fields
        such an exchange changes are reset (HttpProtocol recycles it; see _spare)."""
        self.method, self.url, self.host, fwd, self.xff = known
        self.fwd[0] = fwd
        self.route = None
        self.upstream_head = b""
        self.response_started = self.response_done = False
        self.keep_alive = True
        self.started = perf_counter()
        self.upstream_at = 0.0

    def known(self) -> KnownRequest | None:
        """This request's parse, to reuse for identical head bytes: only for the plain case
        (HTTP/1.1 keep-alive, no body, no Expect, Upgrade or Connection header), where the
        parser ends back at a message start, exactly as if it had parsed them again."""
        if (
            not self.keep_alive
            or self.version != "1.1"
            or self.chunked
            or self.content_length is not None
            or self.expect_continue
            or self.upgrade is not None
            or self.connection_tokens is not None
            or self.error
        ):
            return None
        return (self.method, self.url, self.host, b"".join(self.fwd), self.xff)

    def add_url(self, url: bytes, settings: HttpSettings) -> None:
        self.url = self.url + url if self.url else url
        if len(self.url) > settings.max_request_line:
            raise PeerError(414, "request target too long")

    def add_header(self, name: bytes, value: bytes, settings: HttpSettings) -> None:
        """Record one header field (HttpProtocol.on_header inlines the common case)."""
        if self.head_done:
            return  # a chunked trailer: dropped (we do not forward trailers)
        self.nheaders += 1
        self.head_bytes += len(name) + len(value) + 4
        if self.nheaders > settings.max_headers or self.head_bytes > settings.max_header_bytes:
            raise PeerError(431, "request headers too large")
        code = SPECIAL_HEADERS.get(name.lower())
        if code is None:
            self.fwd.append(b"%s: %s\r\n" % (name, value))
        else:
            self.special_header(code, name, value, settings)

    def special_header(self, code: int, name: bytes, value: bytes, settings: HttpSettings) -> None:
        if code == _HOST:
            if self.host is not None:
                raise PeerError(400, "duplicate Host header")
            self.host = value
            self.fwd.append(b"%s: %s\r\n" % (name, value))
        elif code == _CL:
            self.content_length = int(value)  # llhttp checked the digits
            if settings.max_body_size and self.content_length > settings.max_body_size:
                raise PeerError(413, "request body too large")
            self.fwd.append(b"%s: %s\r\n" % (name, value))
        elif code == _TE:
            if self.chunked or value.lower() != b"chunked":
                raise PeerError(400, "Transfer-Encoding other than chunked")
            self.chunked = True
        elif code == _CONN:
            tokens = frozenset(t.strip().lower() for t in value.split(b","))
            old = self.connection_tokens
            self.connection_tokens = tokens if old is None else old | tokens
        elif code == _EXPECT:
            if value.lower() == b"100-continue":
                self.expect_continue = True  # we answer 100 ourselves
            else:
                self.fwd.append(b"%s: %s\r\n" % (name, value))
        elif code == _UPGRADE:
            self.upgrade = value
        elif code == _XFF:
            self.xff = value if self.xff is None else self.xff + b", " + value

    def finish_head(self, method: bytes, version: str, keep_alive: bool) -> None:
        """Checks that need the whole head; raises PeerError."""
        self.head_done = True
        self.method = method
        self.version = version
        self.keep_alive = keep_alive
        if version == "1.1":
            if self.host is None:
                raise PeerError(400, "missing Host header")
        elif version != "1.0":
            raise PeerError(400, f"unsupported HTTP version {version}")
        elif self.chunked:
            raise PeerError(400, "Transfer-Encoding on HTTP/1.0")
        if self.url == b"*" and method != b"OPTIONS":
            raise PeerError(400, "asterisk target on a method other than OPTIONS")
        tokens = self.connection_tokens
        if self.upgrade is not None and (tokens is None or b"upgrade" not in tokens):
            self.upgrade = None

    def path(self) -> str:
        """The target's path for routing (absolute-form reduced to its path)."""
        url = self.url
        q = url.find(b"?")
        if q >= 0:
            url = url[:q]
        if url[:1] != b"/":
            scheme = url.find(b"://")
            if scheme > 0:
                slash = url.find(b"/", scheme + 3)
                url = url[slash:] if slash > 0 else b"/"
        return url.decode("latin-1")

    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def build_upstream_head(self, client_ip: bytes, scheme: bytes) -> bytes:
        """The request head for the backend: same target and Host, hop-by-hop removed."""
        fwd = self.fwd
        tokens = self.connection_tokens
        if tokens is not None and not tokens <= _PLAIN_TOKENS:
            fwd = [line for line in fwd if line.partition(b":")[0].lower() not in tokens]
        framing = b"Transfer-Encoding: chunked\r\n" if self.chunked else b""
        if self.upgrade is not None:
            framing += b"Connection: upgrade\r\nUpgrade: %s\r\n" % self.upgrade
        xff = client_ip if self.xff is None else self.xff + b", " + client_ip
        host = self.host if self.host is not None else b""
        return (
            b"%s %s HTTP/1.1\r\n%s%sX-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\n"
            b"X-Forwarded-Host: %s\r\nX-Real-IP: %s\r\n\r\n"
            % (self.method, self.url, b"".join(fwd), framing, xff, scheme, host, client_ip)
        )
