"""Filters of the route model: what happens to a request on its way (ingress/routes.py).

A Route (and a Backend) carries a tuple of filters, in the order they apply. The matcher
hands them to the hot path as they are (``RouteResult.filters``); a route without filters
has ``()`` and costs nothing. Each filter is plain data a translator fills in: the
ingress-nginx annotation translator and the Gateway API HTTPRoute translator map onto the
same types (the mapping each type was made for is named in its docstring). Durations are
seconds, sizes bytes, statuses HTTP status codes.

Which filters the hot path runs today, and what it must do for the others, is listed in
the module docstring of ingress/route_actions.py (the pure helpers it uses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ingress.routes import Backend, Compact, PathRewrite


@dataclass(frozen=True, slots=True)
class HeaderEdits(Compact):
    """Header changes, applied in this order: ``remove`` the names, ``set`` (replace every
    field of that name, or add it), ``add`` (one more field, keeping existing ones). Names
    are case-insensitive. Gateway API RequestHeaderModifier/ResponseHeaderModifier;
    ingress-nginx x-forwarded-prefix is a request ``set``."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RequestHeaders(HeaderEdits):
    """Edits of the request head sent to the backend."""


@dataclass(frozen=True, slots=True)
class ResponseHeaders(HeaderEdits):
    """Edits of the response head sent to the client (also HSTS, CORS-like fixed headers)."""


@dataclass(frozen=True, slots=True)
class Rewrite(Compact):
    """What the backend is asked for instead of what the client asked.

    ``path``: ReplaceFullPath, ReplacePrefix or RegexReplace (ingress/routes.py; the query
    is kept). ``hostname``: the Host header sent to the backend (Gateway API URLRewrite
    hostname; ingress-nginx upstream-vhost: this is seaway's one upstream Host override).
    """

    path: PathRewrite | None = None
    hostname: str | None = None


@dataclass(frozen=True, slots=True)
class HttpsRedirect(Compact):
    """A request that arrived over plain HTTP is answered ``status`` with the same URL in
    https (``port`` None: none written, i.e. 443); HTTPS requests pass. ingress-nginx
    ssl-redirect / force-ssl-redirect (308 by default)."""

    status: int = 308
    port: int | None = None


@dataclass(frozen=True, slots=True)
class BasicAuth(Compact):
    """HTTP Basic authentication (401 with ``WWW-Authenticate: Basic realm=...`` when
    missing or wrong). ``users``: (user, htpasswd hash: apr1 ``$apr1$``, bcrypt ``$2y$``,
    sha1 ``{SHA}``), from an auth-file or auth-map Secret. The Authorization header is
    not forwarded. ingress-nginx auth-type basic."""

    realm: str = ""
    users: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ExternalAuth(Compact):
    """Ask ``url`` (with ``method``) before forwarding: 2xx lets the request through and
    copies ``response_headers`` from that answer onto the request; 401/403 are returned
    to the client (401 redirected to ``signin`` when set); anything else is 500.
    ingress-nginx auth-url, auth-method, auth-signin, auth-response-headers."""

    url: str
    method: str = "GET"
    signin: str = ""
    response_headers: tuple[str, ...] = ()
    request_headers: tuple[str, ...] = ()  # request headers copied to the auth request


@dataclass(frozen=True, slots=True)
class Cors(Compact):
    """CORS: preflight OPTIONS answered 204 by the proxy, and the Access-Control-* response
    headers added. Defaults are ingress-nginx's enable-cors defaults."""

    allow_origins: tuple[str, ...] = ("*",)
    allow_methods: tuple[str, ...] = ("GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS")
    allow_headers: tuple[str, ...] = (
        "DNT",
        "Keep-Alive",
        "User-Agent",
        "X-Requested-With",
        "If-Modified-Since",
        "Cache-Control",
        "Content-Type",
        "Range",
        "Authorization",
    )
    expose_headers: tuple[str, ...] = ()
    allow_credentials: bool = True
    max_age: int = 1728000


@dataclass(frozen=True, slots=True)
class RateLimit(Compact):
    """Per client address: at most ``rps`` requests a second and ``rpm`` a minute (0: no
    limit) with bursts of ``burst_multiplier`` times the limit, and ``connections``
    concurrent connections; over the limit: ``status``. Addresses in ``exempt`` (CIDRs)
    are not limited. ingress-nginx limit-rps, limit-rpm, limit-connections,
    limit-burst-multiplier, limit-whitelist (503 as it answers)."""

    rps: int = 0
    rpm: int = 0
    connections: int = 0
    burst_multiplier: int = 5
    exempt: tuple[str, ...] = ()
    status: int = 503


@dataclass(frozen=True, slots=True)
class SourceRanges(Compact):
    """Client address filter (CIDRs): with ``allow``, only those; then ``deny`` refused;
    refused requests get ``status``. ingress-nginx whitelist/allowlist-source-range and
    denylist-source-range (403)."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    status: int = 403


@dataclass(frozen=True, slots=True)
class CookieAffinity(Compact):
    """Sticky sessions by cookie: the backend endpoint is remembered in cookie ``name``
    (set on the first response). ``mode`` "balanced" re-balances when endpoints scale,
    "persistent" never moves a client. ingress-nginx affinity: cookie, session-cookie-*,
    affinity-mode."""

    name: str = "INGRESSCOOKIE"
    path: str | None = None
    max_age: int | None = None
    expires: int | None = None
    samesite: str | None = None
    secure: bool = False
    mode: Literal["balanced", "persistent"] = "balanced"


@dataclass(frozen=True, slots=True)
class HashBy(Compact):
    """Pick the endpoint by a consistent hash of ``key``, an nginx-style expression of
    request values ("$request_uri", "$remote_addr", "$http_x_user", "$cookie_id").
    ingress-nginx upstream-hash-by."""

    key: str


@dataclass(frozen=True, slots=True)
class LoadBalancing(Compact):
    """The endpoint choice of the route's backends. ingress-nginx load-balance
    (round_robin; ewma maps to least_loaded)."""

    algorithm: Literal["round_robin", "least_loaded"] = "round_robin"


@dataclass(frozen=True, slots=True)
class Timeouts(Compact):
    """Per-route timeouts (None: the listener's settings). ``connect``, ``read`` (between
    two reads of the response), ``send`` (between two writes of the request) as
    ingress-nginx proxy-*-timeout (504 when they fire); ``request`` (whole exchange, from
    the request head to the end of the response) and ``backend_request`` (one attempt to a
    backend) as Gateway API HTTPRoute timeouts."""

    connect: float | None = None
    read: float | None = None
    send: float | None = None
    request: float | None = None
    backend_request: float | None = None


@dataclass(frozen=True, slots=True)
class Retry(Compact):
    """At most ``tries`` attempts on other endpoints when an attempt fails before any
    response byte. ingress-nginx proxy-next-upstream-tries."""

    tries: int


@dataclass(frozen=True, slots=True)
class BodyLimit(Compact):
    """A request body larger than ``max_bytes`` gets 413 (0: unlimited). ingress-nginx
    proxy-body-size."""

    max_bytes: int


@dataclass(frozen=True, slots=True)
class Mirror(Compact):
    """A copy of each request (``percent`` of them) is sent to ``backend``; its answer is
    dropped. Gateway API RequestMirror."""

    backend: Backend
    percent: float = 100.0


@dataclass(frozen=True, slots=True)
class ErrorPages(Compact):
    """A backend answer whose status is in ``codes`` is replaced by the answer of
    ``backend`` (asked with X-Code, X-Format, X-Original-URI... as ingress-nginx's
    custom-http-errors does with its default backend)."""

    codes: tuple[int, ...]
    backend: Backend


@dataclass(frozen=True, slots=True)
class UpstreamProtocol(Compact):
    """How to talk to the backend: "HTTPS" opens TLS to the endpoint (certificate checked
    only with ``verify``, against ``server_name`` if given). ingress-nginx backend-protocol
    and proxy-ssl-verify."""

    protocol: Literal["HTTP", "HTTPS"] = "HTTP"
    verify: bool = False
    server_name: str | None = None


Filter = (
    RequestHeaders
    | ResponseHeaders
    | Rewrite
    | HttpsRedirect
    | BasicAuth
    | ExternalAuth
    | Cors
    | RateLimit
    | SourceRanges
    | CookieAffinity
    | HashBy
    | LoadBalancing
    | Timeouts
    | Retry
    | BodyLimit
    | Mirror
    | ErrorPages
    | UpstreamProtocol
)
