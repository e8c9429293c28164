"""Filters of the route model: what happens to a request on its way (ingress/routes.py).

A Route (and a Backend) carries a tuple of filters, in the order they apply. The matcher
hands them to the hot path as they are (``RouteResult.filters``); a route without filters
has ``()`` and costs nothing. Each filter is plain data a translator fills in: the
ingress-nginx annotation translator and the Gateway API HTTPRoute translator map onto the
same types (the mapping each type was made for is named in its docstring). Durations are
seconds, sizes bytes, statuses HTTP status codes.

The proxy runs them at request time in ingress/filters/ (what each does there is in
its package docstring and the README's "Actions and filters at request time"); the
pure helpers both it and `seaway trace` use are ingress/route_actions.py's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ingress.routes import Backend, Compact, PathRewrite, SecretKey


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
    """Edits of the request head sent to the backend. ``copy``: (name, source), applied
    after the others: ``name`` is set to the value of the request's header ``source``
    when it has one (ingress-nginx's default backend gets X-Format from Accept)."""

    copy: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ResponseHeaders(HeaderEdits):
    """Edits of the response head sent to the client. ``https_only``: only on answers to
    requests that arrived over TLS (ingress-nginx's HSTS header)."""

    https_only: bool = False


@dataclass(frozen=True, slots=True)
class Rewrite(Compact):
    """What the backend is asked for instead of what the client asked.

    ``path``: ReplaceFullPath, ReplacePrefix or RegexReplace (ingress/routes.py; the query
    is kept). ``hostname``: the Host header sent to the backend (Gateway API URLRewrite
    hostname; ingress-nginx upstream-vhost: this is seaway's one upstream Host override).
    ``forwarded_prefix``: the X-Forwarded-Prefix header sent upstream, its ``$1``..``$n``
    taken from the captures of the path's RegexReplace (ingress-nginx x-forwarded-prefix,
    which acts only together with a rewrite-target).
    """

    path: PathRewrite | None = None
    hostname: str | None = None
    forwarded_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class HttpsRedirect(Compact):
    """A request that arrived over plain HTTP is answered ``status`` with the same URL in
    https (``port`` None: none written, i.e. 443); HTTPS requests pass. ingress-nginx
    ssl-redirect / force-ssl-redirect (308 by default), whose Location drops the Host's
    port and, unless preserve-trailing-slash, one "/" ending the request URI
    (``strip_trailing_slash``: "http://a.b/" -> "https://a.b")."""

    status: int = 308
    port: int | None = None
    strip_trailing_slash: bool = False


@dataclass(frozen=True, slots=True)
class BasicAuth(Compact):
    """HTTP Basic authentication (401 with ``WWW-Authenticate: Basic realm=...`` when
    missing or wrong). ``users``: (user, htpasswd hash: apr1 ``$apr1$``, bcrypt ``$2y$``,
    sha1 ``{SHA}``, ... as discovery/htpasswd.py lists), filled by the translator from the
    ``secret`` (an auth-file Secret: an htpasswd file in key ``auth``; auth-map: one key per
    user, the hash as value); check credentials with ingress/htpasswd.py ``verify_basic``.
    No users (none usable in the Secret): every request is refused (401), never let
    through; a missing or unusable Secret makes the route a 503 instead (the translator
    does not emit this filter then). The Authorization header is not forwarded.
    ingress-nginx auth-type basic."""

    realm: str = ""
    users: tuple[tuple[str, str], ...] = ()
    secret: SecretKey | None = None
    secret_type: Literal["auth-file", "auth-map"] = "auth-file"


@dataclass(frozen=True, slots=True)
class ExternalAuth(Compact):
    """Ask ``url`` (with ``method``) before forwarding: 2xx lets the request through and
    copies ``response_headers`` from that answer onto the request; 401/403 are returned
    to the client (401 redirected to ``signin`` when set, the original URL in query
    parameter ``signin_redirect_param``); anything else is 500. The auth request carries
    the original headers plus X-Original-URL, X-Original-Method and
    X-Auth-Request-Redirect (``request_redirect``, else the request URI); ``url`` and
    ``signin`` may hold nginx variables ($host, $escaped_request_uri, ...) expanded per
    request. ``always_set_cookie``: the auth answer's Set-Cookie is passed to the client
    on every answer, not only 2xx. ingress-nginx auth-url, auth-method, auth-signin,
    auth-signin-redirect-param, auth-response-headers, auth-request-redirect,
    auth-always-set-cookie."""

    url: str
    method: str = "GET"
    signin: str = ""
    response_headers: tuple[str, ...] = ()
    request_headers: tuple[str, ...] = ()  # request headers copied to the auth request
    signin_redirect_param: str = "rd"
    request_redirect: str = ""
    always_set_cookie: bool = False


@dataclass(frozen=True, slots=True)
class Cors(Compact):
    """CORS: preflight OPTIONS answered 204 by the proxy, and the Access-Control-* response
    headers added. Defaults are ingress-nginx's enable-cors defaults; its exact rules are
    ingress/filter_headers.py's ``cors_origin`` and ``cors_headers``."""

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
    concurrent connections; over a rate: ``status``, over the connections:
    ``connection_status``. Addresses in ``exempt`` (CIDRs) are not limited. ingress-nginx
    limit-rps, limit-rpm, limit-connections, limit-burst-multiplier, limit-whitelist
    (ConfigMap limit-req-status-code and limit-conn-status-code, 503 by default)."""

    rps: int = 0
    rpm: int = 0
    connections: int = 0
    burst_multiplier: int = 5
    exempt: tuple[str, ...] = ()
    status: int = 503
    connection_status: int = 503


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
    "persistent" never moves a client. ``path`` is the cookie's Path (the translator
    fills in the Ingress path when the annotation gives none, as ingress-nginx does);
    ``domain``, ``max_age``/``expires`` (seconds), ``samesite``, ``secure`` are written
    when set; ``conditional_samesite_none`` omits SameSite=None for browsers that reject
    it; ``change_on_failure`` re-pins to another endpoint after a failed attempt.
    ingress-nginx affinity: cookie, session-cookie-*, affinity-mode."""

    name: str = "INGRESSCOOKIE"
    path: str | None = None
    max_age: int | None = None
    expires: int | None = None
    samesite: str | None = None
    secure: bool = False
    mode: Literal["balanced", "persistent"] = "balanced"
    domain: str | None = None
    conditional_samesite_none: bool = False
    change_on_failure: bool = False


@dataclass(frozen=True, slots=True)
class HashBy(Compact):
    """Pick the endpoint by a consistent hash of ``key``, an nginx-style expression of
    request values ("$request_uri", "$remote_addr", "$http_x_user", "$cookie_id").
    ``subset_size`` > 0: the hash picks a subset of that many endpoints, then one of them
    at random. ingress-nginx upstream-hash-by (+ -subset, -subset-size)."""

    key: str
    subset_size: int = 0


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


NEXT_UPSTREAM_CONDITIONS = ("error", "timeout", "invalid_header")
RETRY_STATUSES = (500, 502, 503, 504, 403, 404, 429)  # nginx's http_NNN conditions


@dataclass(frozen=True, slots=True)
class Retry(Compact):
    """When a failed attempt goes to another endpoint (ingress-nginx proxy-next-upstream,
    -tries, -timeout; nginx's proxy_next_upstream*): ``tries`` attempts in all (0: no
    limit); ``on`` the failures that count (``error``: connect error, or the connection
    failed before the response head; ``timeout``: connecting or waiting for the response
    head took too long; ``invalid_header``: the response head was bad); ``statuses``:
    response statuses retried too (http_500...); ``non_idempotent``: POST, PATCH and
    other non-idempotent requests may be sent again once they reached a backend;
    ``timeout``: seconds after the request began past which no new attempt starts (0:
    none). ``on=()`` with no statuses is nginx's ``off``: no second attempt at all."""

    tries: int = 3
    on: tuple[str, ...] = ("error", "timeout")
    statuses: tuple[int, ...] = ()
    non_idempotent: bool = False
    timeout: float = 0.0


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
    """An answer whose status is in ``codes`` (from the backend, or seaway's own) is
    replaced by the answer of ``backend`` to the same method on path "/", asked with the
    headers of ingress/filter_headers.py ``error_page_headers`` (X-Code, X-Format,
    X-Original-URI, X-Namespace, X-Ingress-Name, X-Service-Name, X-Service-Port), as
    ingress-nginx's custom-http-errors does. ``backend`` None: seaway answers that status
    with its own page (ingress-nginx would ask its --default-backend-service, which seaway
    does not have). ``namespace``..``service_port`` name the route's Ingress and Service.
    """

    codes: tuple[int, ...]
    backend: Backend | None = None
    namespace: str = ""
    ingress: str = ""
    service: str = ""
    service_port: str = ""


@dataclass(frozen=True, slots=True)
class UpstreamProtocol(Compact):
    """How to talk to the backend: "HTTPS" opens TLS to the endpoint, "AUTO" uses the
    client's scheme (ingress-nginx AUTO_HTTP). The certificate is checked only with
    ``verify``: against ``ca_pem`` (the ca.crt of ``secret``, PEM; never empty when
    ``verify``), up to ``verify_depth``, for the name ``server_name`` (None: the Service's
    upstream name, as nginx's $proxy_host). ``sni`` sends ``server_name`` as SNI (nginx
    sends none by default). ``cert_pem``/``key_pem``: a client certificate to present
    (tls.crt, tls.key of ``secret``; ingress-nginx proxy_ssl_certificate), b"" for none.
    ingress-nginx backend-protocol and proxy-ssl-secret, -verify, -verify-depth, -name,
    -server-name."""

    protocol: Literal["HTTP", "HTTPS", "AUTO"] = "HTTP"
    verify: bool = False
    server_name: str | None = None
    sni: bool = False
    secret: SecretKey | None = None
    verify_depth: int = 1
    ca_pem: bytes = field(default=b"", repr=False)
    cert_pem: bytes = field(default=b"", repr=False)
    key_pem: bytes = field(default=b"", repr=False)


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
    | Timeouts
    | Retry
    | BodyLimit
    | Mirror
    | ErrorPages
    | UpstreamProtocol
)
