"""What an Ingress's ingress-nginx annotations ask for, typed and validated.

`discovery.nginx_annotations.parse_ingress_annotations` builds an `IngressAnnotations`
from `metadata.annotations`; the L7 translator compiles it into the route model. These
objects only say what was asked, exactly as ingress-nginx would have read it (its Go
parsers under internal/ingress/annotations/, its nginx template and its Lua balancer);
where a value is "not set", the ConfigMap (`NginxGlobalSettings`) or seaway's own default
decides, and each field says which.

ingress-nginx behaviours a migrating user may not expect, kept on purpose:

- `use-regex: "true"` or a `rewrite-target` on ANY Ingress of a host makes EVERY path of
  that host (from every Ingress) a case-insensitive regular expression anchored at the
  start only (nginx `location ~* "^/path"`), paths tried longest first, first match wins.
- The HTTPS redirect (`ssl-redirect`, on by default for hosts with TLS) answers 308, not
  301 (ConfigMap `http-redirect-code`), although ingress-nginx's own ConfigMap page says
  301; `/.well-known/acme-challenge` is never redirected.
- `canary-by-header-value` (and `-pattern`) turn off the `always`/`never` keywords of
  `canary-by-header`; a header that does not match falls through to the cookie, then the
  weight. `canary-weight-total` below 100 is ignored (100 is used).
- A canary Ingress takes only its canary-*, load-balance, upstream-hash-by and affinity
  annotations; everything else comes from the main Ingress of the same host and path.
- `ssl-passthrough` turns the host into a TCP relay: every other annotation is moot.
- An invalid value has one of three outcomes (`Effect`), each copied from the parser of
  that annotation: the Ingress is rejected, its paths answer 503, or the default applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_PREFIX = "nginx.ingress.kubernetes.io"

# -- problems -------------------------------------------------------------------------------

Effect = Literal["refused", "denied", "default"]

EFFECT_TEXT: dict[Effect, str] = {
    "refused": "ingress-nginx rejects the whole Ingress, so seaway does not serve it",
    "denied": "ingress-nginx answers 503 on every path of the Ingress, so does seaway",
    "default": "ingress-nginx ignores the value and uses the default, so does seaway",
}


@dataclass(frozen=True, slots=True)
class AnnotationProblem:
    """An invalid annotation value. `str()` is the line `seaway check` prints:
    `default/web: metadata.annotations[nginx.ingress.kubernetes.io/proxy-body-size]:
    invalid size "10x"`; `hint` says what is accepted, `effect` what happens now."""

    ingress: str  # "namespace/name"
    annotation: str  # the full key, prefix included
    message: str
    effect: Effect
    hint: str = ""

    def __str__(self) -> str:
        return f"{self.ingress}: metadata.annotations[{self.annotation}]: {self.message}"


@dataclass(frozen=True, slots=True)
class Ignored:
    """An annotation (full key) or ConfigMap key that has no effect in seaway, and why."""

    key: str
    reason: str


# -- the groups, one per ingress-nginx parser ------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathRewrite:
    """`use-regex`, `rewrite-target`, `app-root`, `x-forwarded-prefix`,
    `preserve-trailing-slash` (parsers rewrite/ and xforwardedprefix/).

    `rewrite_target` replaces the matched path; `$1..$n` are the captures of the path
    regex, and the query string is kept (nginx `rewrite ... break`). `app_root` redirects
    requests for exactly `/` (302) to that path. `x_forwarded_prefix` is sent upstream as
    the X-Forwarded-Prefix header (it may use `$1..$n` too)."""

    use_regex: bool = False
    rewrite_target: str = ""  # "" = no rewrite
    app_root: str = ""  # "" = none; always a path starting with "/"
    x_forwarded_prefix: str = ""
    # None: not set here; ingress-nginx's default is false (keep "/" off the redirect).
    preserve_trailing_slash: bool | None = None

    @property
    def regex_paths(self) -> bool:
        """Whether this Ingress turns its host's paths into regular expressions."""
        return self.use_regex or bool(self.rewrite_target)


@dataclass(frozen=True, slots=True)
class Redirect:
    """A redirect answered instead of proxying (`permanent-redirect`, `temporal-redirect`;
    when both are set the temporal one wins, as in ingress-nginx's redirect parser)."""

    url: str
    code: int  # 301 by default for permanent (300-308 allowed), 302 for temporal (300-307)


@dataclass(frozen=True, slots=True)
class Redirects:
    """`ssl-redirect`, `force-ssl-redirect`, `permanent-redirect` (+`-code`),
    `temporal-redirect` (+`-code`), `from-to-www-redirect`, `relative-redirects`.

    ssl_redirect / force_ssl_redirect None: not set here, the ConfigMap decides
    (ingress-nginx: ssl-redirect true for hosts with TLS, force-ssl-redirect false).
    from_to_www: requests for `www.<host>` redirect to `<host>` (or the reverse when the
    rule's host starts with www.), 308 by default (ConfigMap http-redirect-code)."""

    ssl_redirect: bool | None = None
    force_ssl_redirect: bool | None = None
    redirect: Redirect | None = None
    from_to_www: bool = False
    relative: bool = False  # Location of redirects seaway makes itself: path only


@dataclass(frozen=True, slots=True)
class ProxyLimits:
    """`proxy-body-size`, `proxy-connect-timeout`, `proxy-read-timeout`,
    `proxy-send-timeout`, `proxy-next-upstream`, `-tries`, `-timeout` (parser
    proxy/). None: not set here,
    the ConfigMap (or seaway's own default) decides.

    Body size in bytes (k/m/g are 1024 based), 0 = unlimited; a larger body gets 413.
    Timeouts in whole seconds, between two reads or two writes (nginx semantics, not
    for the whole exchange); a read timeout answers 504."""

    body_size: int | None = None
    connect_timeout: int | None = None
    read_timeout: int | None = None
    send_timeout: int | None = None
    next_upstream_tries: int | None = None  # ingress-nginx default 3; 0 = no limit
    # When a failed attempt goes to the next endpoint ("error timeout http_502..."; off)
    next_upstream: str | None = None
    next_upstream_timeout: int | None = None  # seconds; 0 = no limit


BackendProtocol = Literal["HTTP", "HTTPS", "AUTO_HTTP", "GRPC", "GRPCS", "FCGI"]


@dataclass(frozen=True, slots=True)
class ProxySSL:
    """`proxy-ssl-secret` and what goes with it (parser proxyssl/). Without a secret
    ingress-nginx reads none of the proxy-ssl-* annotations: TLS to the pod is then
    never verified."""

    secret_namespace: str
    secret_name: str  # holds ca.crt (to verify) and optionally tls.crt/tls.key (client)
    verify: bool = False  # proxy-ssl-verify "on"
    verify_depth: int = 1
    name: str = ""  # proxy-ssl-name: the name verified (and sent as SNI)
    server_name: bool = False  # proxy-ssl-server-name "on": send SNI


@dataclass(frozen=True, slots=True)
class Backends:
    """`backend-protocol`, `upstream-vhost`, `service-upstream`, `default-backend`,
    `server-alias`, `custom-http-errors`, `proxy-ssl-*`.

    protocol: HTTP, HTTPS (TLS to the pod), AUTO_HTTP (the client's scheme); GRPC, GRPCS
    and FCGI refuse the Ingress in seaway (they need HTTP/2 or FastCGI to the pod).
    upstream_vhost: the Host header sent upstream instead of the request's.
    service_upstream: proxy to the Service's cluster IP instead of its endpoints (None:
    the ConfigMap's service-upstream, false by default).
    default_backend: a Service of the Ingress's namespace (its first port) that answers
    when the rule's Service has no endpoints, and the custom errors below.
    server_aliases: extra host names served like the Ingress's hosts (a name that is
    another rule's host is ignored, as in ingress-nginx).
    custom_http_errors: upstream answers with these codes are replaced by the default
    backend's answer to the same request (headers X-Code, X-Format, ...); None: not set,
    the ConfigMap's custom-http-errors apply."""

    protocol: BackendProtocol = "HTTP"
    upstream_vhost: str = ""
    service_upstream: bool | None = None
    default_backend: str = ""
    server_aliases: tuple[str, ...] = ()
    custom_http_errors: tuple[int, ...] | None = None
    proxy_ssl: ProxySSL | None = None


@dataclass(frozen=True, slots=True)
class Canary:
    """`canary` and its rules (parser canary/, Lua balancer route_to_alternative_balancer).

    Only meaningful with `enabled` (ingress-nginx ignores canary-* otherwise). For a
    request on the main Ingress's host and path, in this order:
    1. header `by_header` present: with `by_header_value`, equal -> canary; else with
       `by_header_pattern`, an unanchored PCRE match -> canary (a pattern that does not
       compile, kept as written: main); else the value `always` -> canary and `never`
       -> main. Any other case falls through.
    2. cookie `by_cookie`: `always` -> canary, `never` -> main, else falls through.
    3. weight: canary with probability weight / max(weight_total, 100).
    A request already pinned by session affinity keeps its side."""

    enabled: bool = False
    weight: int = 0
    weight_total: int = 100
    by_header: str = ""
    by_header_value: str = ""
    by_header_pattern: str = ""
    by_cookie: str = ""

    @property
    def effective_weight_total(self) -> int:
        """The Lua balancer uses the total only when it exceeds 100."""
        return max(self.weight_total, 100)


SameSite = Literal["", "None", "Lax", "Strict"]


@dataclass(frozen=True, slots=True)
class SessionCookie:
    """The affinity cookie (`session-cookie-*`). max_age/expires in seconds (None: a
    session cookie); path "" = the matched Ingress path (required when paths are regexes,
    which a cookie path cannot be); samesite as written, capitalised."""

    name: str = "INGRESSCOOKIE"
    path: str = ""
    domain: str = ""
    max_age: int | None = None
    expires: int | None = None
    samesite: SameSite = ""
    conditional_samesite_none: bool = False  # omit SameSite=None for browsers that break
    secure: bool = False
    change_on_failure: bool = False  # re-pin to another endpoint after a failed attempt


@dataclass(frozen=True, slots=True)
class Affinity:
    """`affinity: cookie` with `affinity-mode` (balanced: some sessions move when
    endpoints are added; persistent: never) and `affinity-canary-behavior` (sticky:
    canary users stay on the canary; legacy: affinity ignored for canaries)."""

    cookie_affinity: bool = False
    mode: Literal["balanced", "persistent"] = "balanced"
    canary_behavior: Literal["sticky", "legacy"] = "sticky"
    cookie: SessionCookie = SessionCookie()


@dataclass(frozen=True, slots=True)
class LoadBalancing:
    """`load-balance` and `upstream-hash-by` (+`-subset`, `-subset-size`).

    load_balance None: the ConfigMap's load-balance (round_robin). ewma is seaway's
    EWMA balancer (ingress/nginx_upstreams.py); round_robin leaves the Service's own
    balancer. upstream_hash_by, when set, wins: consistent hashing of that nginx
    expression ("$request_uri", "$binary_remote_addr", "$cookie_x${arg_y}")."""

    load_balance: str | None = None
    upstream_hash_by: str = ""
    hash_by_subset: bool = False
    hash_by_subset_size: int = 3


@dataclass(frozen=True, slots=True)
class SourceRanges:
    """`allowlist-source-range` (alias `whitelist-source-range`) and
    `denylist-source-range`: canonical CIDRs or addresses, sorted. A client outside the
    allow list, or inside the deny list, gets 403. None: not set here, the ConfigMap's
    lists apply. The client address is the connection's, or the PROXY protocol's, or
    X-Forwarded-For's when the ConfigMap trusts it (use-forwarded-headers)."""

    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """`auth-type: basic` with `auth-secret` ("name" or "namespace/name"; another
    namespace than the Ingress's is refused, as ingress-nginx's default
    allow-cross-namespace-resources false), `auth-secret-type` (auth-file: an htpasswd
    file in key `auth`; auth-map: user -> hash per key) and `auth-realm`. Hashes: apr1,
    bcrypt, sha1 ({SHA}). 401 with WWW-Authenticate when missing or wrong; the
    Authorization header is not forwarded upstream."""

    secret_namespace: str
    secret_name: str
    secret_type: Literal["auth-file", "auth-map"] = "auth-file"
    realm: str = ""


@dataclass(frozen=True, slots=True)
class ExternalAuth:
    """`auth-url` and friends (parser authreq/): each request is first sent to `url`
    (an nginx subrequest: GET unless `method` is set, no body, the original headers plus
    X-Original-URL, X-Original-Method, X-Auth-Request-Redirect = `request_redirect` or
    the request URI, Host = the auth URL's host); 2xx lets it through with
    `response_headers` copied from the auth answer into the request; 401/403 are answered
    to the client (401 becomes a 302 to `signin` when set, the original URL in the
    `signin_redirect_param` query parameter, default "rd"); anything else is a 500.
    `url` and `signin` may use nginx variables ($host, $escaped_request_uri, ...)."""

    url: str
    method: str = ""
    signin: str = ""
    signin_redirect_param: str = ""
    response_headers: tuple[str, ...] = ()
    request_redirect: str = ""
    always_set_cookie: bool = False


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`limit-rps`, `limit-rpm`, `limit-connections` (per client address, per seaway
    process as per ingress-nginx replica), `limit-burst-multiplier` (burst = limit x
    multiplier, nodelay), `limit-allowlist` (alias `limit-whitelist`) exempt ranges.
    Over the limit: the ConfigMap's limit-req-status-code (503) for rates and
    limit-conn-status-code (503) for connections. 0 = no such limit."""

    rps: int = 0
    rpm: int = 0
    connections: int = 0
    burst_multiplier: int = 5
    allowlist: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.rps or self.rpm or self.connections)


DEFAULT_CORS_METHODS = "GET, PUT, POST, DELETE, PATCH, OPTIONS"
DEFAULT_CORS_HEADERS = (
    "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,"
    "Content-Type,Range,Authorization"
)
DEFAULT_CORS_MAX_AGE = 1728000


@dataclass(frozen=True, slots=True)
class Cors:
    """`enable-cors` with every `cors-*` setting, defaults as ingress-nginx's parser
    cors/. allow_origin: "*", or origins (`https://*.example.com:8443` allowed: one
    wildcard label); an Origin in the list is echoed back. A preflight (OPTIONS) is
    answered 204 by the proxy with Access-Control-Max-Age = max_age."""

    enabled: bool = False
    allow_origin: tuple[str, ...] = ("*",)
    allow_methods: str = DEFAULT_CORS_METHODS
    allow_headers: str = DEFAULT_CORS_HEADERS
    expose_headers: str = ""
    allow_credentials: bool = True
    max_age: int = DEFAULT_CORS_MAX_AGE


# -- the whole --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngressAnnotations:
    """Everything one Ingress's annotations ask for, plus what `seaway check` reports.

    `refusals` non-empty: the Ingress is not served (ingress-nginx would reject it: a
    snippet, an invalid value its parser refuses, or a backend protocol seaway cannot
    speak). `denied` non-empty: every path of the Ingress answers 503 (an unusable
    access rule, so nothing is served unprotected). `recognised` lists the annotations
    (full keys) that take effect; `ignored` those that do not, with the reason."""

    rewrite: PathRewrite = PathRewrite()
    redirects: Redirects = Redirects()
    limits: ProxyLimits = ProxyLimits()
    backends: Backends = Backends()
    canary: Canary = Canary()
    affinity: Affinity = Affinity()
    balancing: LoadBalancing = LoadBalancing()
    source_ranges: SourceRanges = SourceRanges()
    basic_auth: BasicAuth | None = None
    external_auth: ExternalAuth | None = None
    rate_limit: RateLimit = RateLimit()
    cors: Cors = Cors()
    ssl_passthrough: bool = False
    recognised: tuple[str, ...] = ()
    ignored: tuple[Ignored, ...] = ()
    problems: tuple[AnnotationProblem, ...] = ()
    refusals: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()

    @property
    def served(self) -> bool:
        return not self.refusals

    @property
    def has_findings(self) -> bool:
        """Anything `seaway check` would print for this Ingress."""
        return bool(self.recognised or self.ignored or self.problems or self.refusals)


NO_ANNOTATIONS = IngressAnnotations()  # shared by every Ingress without any
