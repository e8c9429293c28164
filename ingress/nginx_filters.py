"""ingress-nginx annotations and ConfigMap -> route model filters. Pure.

An annotation left unset takes the ConfigMap's value (`NginxGlobalSettings`, present in
ingress-nginx mode), else seaway's own default. The ConfigMap's values become the
listener's filters (`listener_filters`), and a route gets a filter only where its
Ingress's annotations make it differ: a route of an Ingress without annotations has no
filters at all.

A route's filters come in the order the hot path must run them, which is the order of
nginx's request phases in ingress-nginx's template (nginx.tmpl):

1. BodyLimit: checked on Content-Length as soon as the route is known (nginx's
   find-config phase), so even a redirect answers 413 first;
2. Cors: a preflight (OPTIONS from an allowed origin) is answered 204 here;
3. HttpsRedirect (the lua rewrite phase);
4. RateLimit (pre-access), then SourceRanges, BasicAuth, ExternalAuth (access);
5. Rewrite (path, Host, X-Forwarded-Prefix), RequestHeaders;
6. UpstreamProtocol, Timeouts, Retry (how to forward); ErrorPages (on the answer).

A Redirect route (permanent-redirect, temporal-redirect) keeps only BodyLimit and Cors:
nginx's `return` ends the request before the ssl redirect, limits and access checks.
Endpoint choice (CookieAffinity, HashBy, LoadBalancing) is per Service port, on the
Backend (ingress/nginx_upstreams.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from discovery.nginx_configmap import NginxGlobalSettings
from discovery.nginx_settings import IngressAnnotations
from ingress.nginx_secrets import NO_SECRETS, IngressSecrets
from ingress.route_filters import (
    NEXT_UPSTREAM_CONDITIONS,
    BasicAuth,
    BodyLimit,
    Cors,
    ErrorPages,
    ExternalAuth,
    Filter,
    HttpsRedirect,
    RateLimit,
    RequestHeaders,
    ResponseHeaders,
    Retry,
    Rewrite,
    SourceRanges,
    Timeouts,
    UpstreamProtocol,
)

NO_TLS_REDIRECT = ("/.well-known/acme-challenge",)  # ingress-nginx's default list
REDIRECT_CODE = 308  # ConfigMap http-redirect-code


def hsts_value(settings: NginxGlobalSettings) -> str:
    """The Strict-Transport-Security value of lua_ingress.lua's header()."""
    value = f"max-age={settings.hsts_max_age}"
    if settings.hsts_include_subdomains:
        value += "; includeSubDomains"
    if settings.hsts_preload:
        value += "; preload"
    return value


def listener_filters(settings: NginxGlobalSettings | None) -> tuple[Filter, ...]:
    """The ConfigMap's defaults, for every route (none outside ingress-nginx mode).

    HSTS goes on every HTTPS answer: ingress-nginx's header filter means to check that a
    certificate is configured for the host, but tests the function itself, which is
    always true. The global allow/deny lists replace block-cidrs where they are set, as
    a location's allow/deny directives replace the http block's in nginx."""
    if settings is None:
        return ()
    s = settings
    found: list[Filter] = [
        BodyLimit(s.proxy_body_size),
        Timeouts(
            float(s.proxy_connect_timeout), float(s.proxy_read_timeout), float(s.proxy_send_timeout)
        ),
        listener_retry(s),
    ]
    if s.whitelist_source_range or s.denylist_source_range:
        found.append(SourceRanges(s.whitelist_source_range, s.denylist_source_range))
    elif s.block_cidrs:
        found.append(SourceRanges(deny=s.block_cidrs))
    if s.custom_http_errors:
        found.append(ErrorPages(s.custom_http_errors))
    if s.hsts:
        sts = (("Strict-Transport-Security", hsts_value(s)),)
        found.append(ResponseHeaders(set=sts, https_only=True))
    return tuple(found)


@dataclass(frozen=True, slots=True)
class HttpsPolicy:
    """When an Ingress's routes redirect plain HTTP to HTTPS (lua_ingress.lua's
    redirect_to_https): always with force-ssl-redirect, with ssl-redirect only on hosts
    that have a certificate; never for paths under no-tls-redirect-locations."""

    ssl_redirect: bool = False
    force: bool = False
    strip_trailing_slash: bool = True
    code: int = REDIRECT_CODE
    spared: tuple[str, ...] = NO_TLS_REDIRECT

    @classmethod
    def of(cls, anns: IngressAnnotations, settings: NginxGlobalSettings | None) -> HttpsPolicy:
        r, s = anns.redirects, settings
        ssl = r.ssl_redirect if r.ssl_redirect is not None else bool(s and s.ssl_redirect)
        force = r.force_ssl_redirect
        if force is None:
            force = bool(s and s.force_ssl_redirect)
        keep = anns.rewrite.preserve_trailing_slash
        if keep is None:
            keep = bool(s and s.preserve_trailing_slash)
        code = s.http_redirect_code if s else REDIRECT_CODE
        spared = s.no_tls_redirect_locations if s else NO_TLS_REDIRECT
        return cls(ssl, force, not keep, code, spared)

    def filter_for(self, location: str, host_has_certificate: bool) -> HttpsRedirect | None:
        """The HttpsRedirect of a route for Ingress path `location`, or None."""
        if not (self.force or (self.ssl_redirect and host_has_certificate)):
            return None
        if any(location.startswith(p) for p in self.spared):
            return None
        return HttpsRedirect(self.code, strip_trailing_slash=self.strip_trailing_slash)


class IngressFilters:
    """The filters one Ingress's annotations give each of its routes, built once.

    ``front`` (BodyLimit, Cors) also goes on its Redirect routes; ``access`` (RateLimit,
    SourceRanges, BasicAuth, ExternalAuth) and ``back`` (UpstreamProtocol, Timeouts,
    Retry) only on forwarding routes, around what `route` adds per route. `secrets`: the
    users and CA its named Secrets give (ingress/nginx_secrets.py)."""

    __slots__ = ("access", "back", "front", "https", "upstream_vhost")

    def __init__(
        self,
        anns: IngressAnnotations,
        settings: NginxGlobalSettings | None,
        secrets: IngressSecrets = NO_SECRETS,
    ) -> None:
        self.front = _front(anns, settings)
        self.access = _access(anns, settings, secrets)
        self.back = _back(anns, settings, secrets)
        self.https = HttpsPolicy.of(anns, settings)
        self.upstream_vhost = anns.backends.upstream_vhost or None

    def route(
        self,
        https: HttpsRedirect | None = None,
        rewrite: Rewrite | None = None,
        headers: RequestHeaders | None = None,
        errors: ErrorPages | None = None,
    ) -> tuple[Filter, ...]:
        """A forwarding route's filters, in the hot path's order (module docstring)."""
        if self.upstream_vhost is not None:
            path = rewrite.path if rewrite is not None else None
            prefix = rewrite.forwarded_prefix if rewrite is not None else None
            rewrite = Rewrite(path, self.upstream_vhost, prefix)
        found: list[Filter] = [*self.front]
        if https is not None:
            found.append(https)
        found += self.access
        if rewrite is not None:
            found.append(rewrite)
        if headers is not None:
            found.append(headers)
        found += self.back
        if errors is not None:
            found.append(errors)
        return tuple(found)


def _front(anns: IngressAnnotations, settings: NginxGlobalSettings | None) -> tuple[Filter, ...]:
    found: list[Filter] = []
    size = anns.limits.body_size
    if size is not None and (settings is None or size != settings.proxy_body_size):
        found.append(BodyLimit(size))
    c = anns.cors
    if c.enabled:
        found.append(
            Cors(
                c.allow_origin,
                _items(c.allow_methods),
                _items(c.allow_headers),
                _items(c.expose_headers),
                c.allow_credentials,
                c.max_age,
            )
        )
    return tuple(found)


def _access(
    anns: IngressAnnotations, settings: NginxGlobalSettings | None, secrets: IngressSecrets
) -> tuple[Filter, ...]:
    found: list[Filter] = []
    limit = anns.rate_limit
    if limit.active:
        found.append(
            RateLimit(
                limit.rps,
                limit.rpm,
                limit.connections,
                limit.burst_multiplier,
                limit.allowlist,
                settings.limit_req_status_code if settings else 503,
                settings.limit_conn_status_code if settings else 503,
            )
        )
    ranges = anns.source_ranges
    if ranges.allow is not None or ranges.deny is not None:
        allow = ranges.allow
        if allow is None:
            allow = settings.whitelist_source_range if settings else ()
        deny = ranges.deny
        if deny is None:
            deny = settings.denylist_source_range if settings else ()
        found.append(SourceRanges(allow, deny))
    basic = anns.basic_auth
    if basic is not None:
        secret = (basic.secret_namespace, basic.secret_name)
        found.append(BasicAuth(basic.realm, secrets.users, secret, basic.secret_type))
    ext = anns.external_auth
    if ext is not None:
        found.append(
            ExternalAuth(
                ext.url,
                ext.method or "GET",
                ext.signin,
                ext.response_headers,
                (),
                ext.signin_redirect_param or "rd",
                ext.request_redirect,
                ext.always_set_cookie,
            )
        )
    return tuple(found)


def _back(
    anns: IngressAnnotations, settings: NginxGlobalSettings | None, secrets: IngressSecrets
) -> tuple[Filter, ...]:
    found: list[Filter] = []
    b = anns.backends
    if b.protocol in ("HTTPS", "AUTO_HTTP"):
        ssl, pem = b.proxy_ssl, secrets.proxy_ssl
        # ingress-nginx verifies only with a ca.crt (no proxy_ssl_verify without one)
        verify = bool(ssl and ssl.verify and pem.ca_pem)
        found.append(
            UpstreamProtocol(
                "HTTPS" if b.protocol == "HTTPS" else "AUTO",
                verify,
                (ssl.name or None) if ssl else None,
                ssl.server_name if ssl else False,
                (ssl.secret_namespace, ssl.secret_name) if ssl else None,
                ssl.verify_depth if ssl else 1,
                pem.ca_pem if verify else b"",
                pem.cert_pem,
                pem.key_pem,
            )
        )
    lim = anns.limits
    given = (lim.connect_timeout, lim.read_timeout, lim.send_timeout)
    if any(v is not None for v in given):
        s = settings
        base: tuple[int | None, ...] = (None, None, None)
        if s is not None:
            base = (s.proxy_connect_timeout, s.proxy_read_timeout, s.proxy_send_timeout)
        chosen = tuple(g if g is not None else d for g, d in zip(given, base, strict=True))
        if chosen != base:
            connect, read, send = (float(v) if v is not None else None for v in chosen)
            found.append(Timeouts(connect, read, send))
    given_retry = (lim.next_upstream, lim.next_upstream_tries, lim.next_upstream_timeout)
    if any(v is not None for v in given_retry):
        inherited = next_upstream() if settings is None else listener_retry(settings)
        retry = next_upstream(
            lim.next_upstream if lim.next_upstream is not None else base_words(settings),
            lim.next_upstream_tries if lim.next_upstream_tries is not None else inherited.tries,
            lim.next_upstream_timeout
            if lim.next_upstream_timeout is not None
            else int(inherited.timeout),
            settings is not None and settings.retry_non_idempotent,
        )
        if retry != inherited:
            found.append(retry)
    return tuple(found)


def next_upstream(
    words: str = "error timeout", tries: int = 3, timeout: int = 0, non_idempotent: bool = False
) -> Retry:
    """nginx's proxy_next_upstream (`words`), proxy_next_upstream_tries and _timeout as
    a Retry filter; ingress-nginx's buildNextUpstream adds non_idempotent when the
    ConfigMap's retry-non-idempotent is true. ``off`` anywhere turns every condition off
    (nginx lets it win over the others)."""
    parts = words.split()
    if "off" in parts:
        return Retry(tries, (), (), False, float(timeout))
    on = tuple(w for w in NEXT_UPSTREAM_CONDITIONS if w in parts)
    statuses = tuple(sorted({int(w[5:]) for w in parts if w.startswith("http_")}))
    return Retry(tries, on, statuses, non_idempotent or "non_idempotent" in parts, float(timeout))


def listener_retry(s: NginxGlobalSettings) -> Retry:
    """The ConfigMap's retry rule (what routes without their own annotations get)."""
    return next_upstream(
        s.proxy_next_upstream,
        s.proxy_next_upstream_tries,
        s.proxy_next_upstream_timeout,
        s.retry_non_idempotent,
    )


def base_words(s: NginxGlobalSettings | None) -> str:
    return "error timeout" if s is None else s.proxy_next_upstream


def _items(text: str) -> tuple[str, ...]:
    """"GET, PUT,POST" -> ("GET", "PUT", "POST")."""
    return tuple(p.strip() for p in text.split(",") if p.strip())
