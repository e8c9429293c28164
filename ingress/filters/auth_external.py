"""External authentication as ingress-nginx's auth-url does it (nginx.tmpl's auth location
and buildAuthSignURL), the pure parts: the auth request and what its answer means.

The auth request: ``method`` (GET by default) to the auth URL's path, with the client's
request headers (no body: ``Content-Length`` dropped) and Host the auth URL's host, plus
X-Original-URL (``scheme://Host/request-uri``), X-Original-Method, X-Original-URI,
X-Sent-From ``nginx-ingress-controller``, X-Real-IP and X-Forwarded-For (the client),
X-Auth-Request-Redirect (auth-request-redirect, else the request URI).

Its answer: 2xx lets the request through, the ``response_headers`` named copied from it
onto the upstream request (replacing the client's), its Set-Cookie passed to the client
(on 2xx/3xx answers, or always with auth-always-set-cookie); 401 (redirected with 302 to
the sign-in URL when there is one: ``signin?rd=scheme://host/escaped-request-uri``) and
403 go back to the client; anything else, or no answer, is 500.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ingress.filters.headers import field_lines, field_remover
from ingress.filters.variables import RequestView, Template
from ingress.route_filters import ExternalAuth

# Fields of the client's request not passed to the auth service (it gets its own Host
# and no body; X-Forwarded-For and X-Real-IP are set anew).
_NOT_PASSED = field_remover(
    ("host", "content-length", "transfer-encoding", "x-forwarded-for", "x-real-ip")
)


@dataclass(frozen=True, slots=True)
class AuthTarget:
    scheme: str
    host: str
    port: int
    path: bytes  # with its query
    host_header: bytes


def parse_url(url: bytes) -> AuthTarget | None:
    """Where an (expanded) auth URL points; None when it is not an http(s) URL."""
    parts = urlsplit(url.decode("latin-1"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    return AuthTarget(parts.scheme, parts.hostname, port, path.encode(), parts.netloc.encode())


def signin_location(signin: bytes, param: str, scheme: bytes, req: RequestView) -> bytes:
    """buildAuthSignURL: the sign-in URL with ``param=scheme://host/escaped-uri`` added,
    unless it already carries that parameter."""
    back = scheme + b"://" + (req.host or b"") + _escaped_uri(req)
    parts = urlsplit(signin.decode("latin-1"))
    if not parts.query:
        return signin + b"?" + param.encode() + b"=" + back
    if re.search(rf"(^|&){re.escape(param)}=[^&]", parts.query):
        return signin
    return signin + b"&" + param.encode() + b"=" + back


def _escaped_uri(req: RequestView) -> bytes:
    return Template("$escaped_request_uri").expand(req, b"", b"")


class ExternalAuthCheck:
    """One route's ExternalAuth, compiled."""

    __slots__ = ("copied", "method", "signin", "signin_param", "spec", "url")

    def __init__(self, spec: ExternalAuth) -> None:
        self.spec = spec
        self.url = Template(spec.url)
        self.signin = Template(spec.signin) if spec.signin else None
        self.signin_param = spec.signin_redirect_param or "rd"
        self.method = (spec.method or "GET").upper().encode()
        self.copied = tuple(n.encode() for n in spec.response_headers)

    def request_head(
        self, target: AuthTarget, req: RequestView, forward: bytes, client_ip: bytes, scheme: bytes
    ) -> bytes:
        """The auth request; `forward` is the client's head as forwarded (request line
        first, hop-by-hop fields gone, ending in CRLF)."""
        line_end = forward.find(b"\r\n")
        passed = forward[line_end:]
        if _NOT_PASSED is not None:
            passed = _NOT_PASSED.sub(b"", passed)
        redirect = self.spec.request_redirect
        fields = [
            (b"Host", target.host_header),
            (b"X-Original-URL", scheme + b"://" + (req.host or b"") + req.url),
            (b"X-Original-Method", req.method),
            (b"X-Original-URI", req.url),
            (b"X-Sent-From", b"nginx-ingress-controller"),
            (b"X-Real-IP", client_ip),
            (b"X-Forwarded-For", client_ip),
            (b"X-Auth-Request-Redirect", redirect.encode() if redirect else req.url),
        ]
        line = self.method + b" " + target.path + b" HTTP/1.1"
        return line + passed + field_lines(fields) + b"\r\n"
