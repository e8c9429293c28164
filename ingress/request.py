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
_OURS = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-real-ip"})
_SKIP = HOP_BY_HOP | _OURS | {b"expect"}


class RequestState:
    """One request: its head as parsed, its framing, and where it is in its exchange."""

    __slots__ = (
        "body_received",
        "chunked",
        "complete",
        "connection_tokens",
        "content_length",
        "error",
        "expect_continue",
        "head_bytes",
        "head_done",
        "headers",
        "host",
        "keep_alive",
        "local",
        "method",
        "pending",
        "response_done",
        "response_started",
        "retries",
        "route_key",
        "tried",
        "upgrade",
        "upstream_head",
        "url",
        "version",
        "xff",
    )

    def __init__(self) -> None:
        self.method = b""
        self.url = b""
        self.version = "1.1"
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_bytes = 0
        self.host: bytes | None = None
        self.xff: bytes | None = None
        self.content_length: int | None = None
        self.chunked = False
        self.keep_alive = True
        self.expect_continue = False
        self.upgrade: bytes | None = None
        self.connection_tokens: frozenset[bytes] = frozenset()
        self.head_done = False
        self.complete = False
        self.body_received = 0
        self.pending: list[bytes] = []  # body received before an upstream is bound
        self.upstream_head = b""
        self.error = 0  # a status to answer instead of forwarding (pipelined bad request)
        self.local = 0  # a status the proxy answers itself (404, 503, ...)
        self.response_started = False
        self.response_done = False
        self.route_key = ""
        self.tried: list[EndpointInfo] = []
        self.retries = 0

    def add_url(self, url: bytes, settings: HttpSettings) -> None:
        self.url = self.url + url if self.url else url
        if len(self.url) > settings.max_request_line:
            raise PeerError(414, "request target too long")

    def add_header(self, name: bytes, value: bytes, settings: HttpSettings) -> None:
        if self.head_done:
            return  # a chunked trailer: dropped (we do not forward trailers)
        headers = self.headers
        headers.append((name, value))
        self.head_bytes += len(name) + len(value) + 4
        if len(headers) > settings.max_headers or self.head_bytes > settings.max_header_bytes:
            raise PeerError(431, "request headers too large")
        lname = name.lower()
        if lname == b"host":
            if self.host is not None:
                raise PeerError(400, "duplicate Host header")
            self.host = value
        elif lname == b"transfer-encoding":
            if self.chunked or value.lower() != b"chunked":
                raise PeerError(400, "Transfer-Encoding other than chunked")
            self.chunked = True
        elif lname == b"content-length":
            self.content_length = int(value)  # llhttp checked the digits
            if settings.max_body_size and self.content_length > settings.max_body_size:
                raise PeerError(413, "request body too large")
        elif lname == b"connection":
            tokens = {t.strip().lower() for t in value.split(b",")}
            self.connection_tokens = self.connection_tokens | tokens
        elif lname == b"expect":
            self.expect_continue = value.lower() == b"100-continue"
        elif lname == b"upgrade":
            self.upgrade = value
        elif lname == b"x-forwarded-for":
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
        if self.upgrade is not None and b"upgrade" not in self.connection_tokens:
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
        parts = [self.method, b" ", self.url, b" HTTP/1.1\r\n"]
        named = self.connection_tokens
        for name, value in self.headers:
            lname = name.lower()
            if lname in _SKIP or lname in named:
                if lname == b"expect" and not self.expect_continue:
                    parts += (name, b": ", value, b"\r\n")
                continue
            parts += (name, b": ", value, b"\r\n")
        if self.chunked:
            parts.append(b"Transfer-Encoding: chunked\r\n")
        if self.upgrade is not None:
            parts += (b"Connection: upgrade\r\nUpgrade: ", self.upgrade, b"\r\n")
        xff = client_ip if self.xff is None else self.xff + b", " + client_ip
        parts += (b"X-Forwarded-For: ", xff, b"\r\nX-Forwarded-Proto: ", scheme)
        if self.host is not None:
            parts += (b"\r\nX-Forwarded-Host: ", self.host)
        parts += (b"\r\nX-Real-IP: ", client_ip, b"\r\n\r\n")
        return b"".join(parts)
