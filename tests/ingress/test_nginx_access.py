"""ingress-nginx traffic and access annotations in the route table: affinity,
upstream-hash-by, load-balance (per Service port), allow/deny source ranges (with the
ConfigMap's lists), basic and external auth, rate limits, CORS, and the order of a
route's filters. Each test names the ingress-nginx e2e test or source it follows."""

from __future__ import annotations

from dataclasses import replace

from ingress.filter_headers import cors_headers, cors_origin
from ingress.route_actions import find_filter
from ingress.route_filters import (
    BasicAuth,
    BodyLimit,
    CookieAffinity,
    Cors,
    ExternalAuth,
    HashBy,
    HttpsRedirect,
    RateLimit,
    Rewrite,
    SourceRanges,
    Timeouts,
    UpstreamProtocol,
)
from tests.ingress.nginxkit import NGINX, ann, ing, path, secret, translate

HOST = "sticky.foo.com"


def test_cookie_affinity() -> None:
    """e2e affinity.go "should set sticky cookie SERVERID" (session-cookie-name) and the
    cookie Path: the annotation's, else the Ingress path (sticky.lua $location_path);
    affinitymode.go: persistent."""
    t = translate(ing("a", HOST, path("/something"), annotations=ann(
        affinity="cookie", session_cookie_name="SERVERID", session_cookie_max_age="172800",
        session_cookie_samesite="None", session_cookie_secure="true",
        affinity_mode="persistent")))
    assert t.ask(HOST, "/something").filters == (
        CookieAffinity("SERVERID", "/something", 172800, None, "None", True, "persistent"),
    )
    t = translate(ing("a", HOST, path("/x"), annotations=ann(
        affinity="cookie", session_cookie_path="/")))
    affinity = find_filter(t.ask(HOST, "/x").filters, CookieAffinity)
    assert affinity is not None and affinity.path == "/" and affinity.name == "INGRESSCOOKIE"


def test_balancing_is_per_service_port_and_the_first_ingress_decides() -> None:
    """controller.go createUpstreams: the first Ingress naming a Service port sets its
    upstream-hash-by and load-balance, for every route to that port; balancer.lua:
    affinity wins over hash, hash over load-balance; ewma is seaway's EWMA balancer (the
    Backend's, over the Service's seaway.dev/load-balancer); round_robin keeps the
    Service's."""
    t = translate(
        ing("first", "a.test", path("/"), annotations=ann(upstream_hash_by="$request_uri"),
            created="1"),
        ing("second", "b.test", path("/"), annotations=ann(load_balance="ewma"), created="2"),
    )
    assert t.ask("b.test", "/").filters == (HashBy("$request_uri"),)
    assert t.ask("b.test", "/").balancing.policy == "least-request"  # the hash decides
    t = translate(ing("e", "a.test", path("/"), annotations=ann(load_balance="ewma")))
    assert t.ask("a.test", "/").filters == ()
    assert t.ask("a.test", "/").balancing.policy == "ewma"
    t = translate(ing("e", "a.test", path("/")), nginx=replace(NGINX, load_balance="ewma"))
    assert t.ask("a.test", "/").balancing.policy == "ewma"
    t = translate(ing("e", "a.test", path("/"), annotations=ann(load_balance="round_robin")),
                  nginx=replace(NGINX, load_balance="ewma"))  # fmt: skip
    assert t.ask("a.test", "/").balancing.policy == "least-request"  # the Service's own
    t = translate(ing("h", "a.test", path("/"), annotations=ann(
        upstream_hash_by="$binary_remote_addr", upstream_hash_by_subset="true",
        upstream_hash_by_subset_size="5", affinity="cookie")))
    assert [type(f) for f in t.ask("a.test", "/").filters] == [CookieAffinity]
    t = translate(ing("h", "a.test", path("/"), annotations=ann(
        upstream_hash_by="$binary_remote_addr", upstream_hash_by_subset="true",
        upstream_hash_by_subset_size="5")))
    assert t.ask("a.test", "/").filters == (HashBy("$binary_remote_addr", 5),)


def test_affinity_follows_the_service_port() -> None:
    """controller.go getBackendServers: affinity is the upstream's, so a route of another
    Ingress to the same Service port is sticky too."""
    t = translate(
        ing("sticky", "a.test", path("/"), annotations=ann(affinity="cookie"), created="1"),
        ing("plain", "b.test", path("/api"), created="2"),
    )
    assert t.ask("b.test", "/api").filters == (CookieAffinity("INGRESSCOOKIE", "/api"),)


def test_allow_and_deny_source_ranges() -> None:
    """e2e ipallowlist.go / ipdenylist.go: allow-list then deny (403); the alias
    whitelist-source-range; the ConfigMap's lists apply where the annotation is absent,
    and a route's own list replaces them (nginx allow/deny inheritance)."""
    t = translate(ing("s", HOST, path("/"), annotations=ann(
        whitelist_source_range="18.0.0.0/8, 56.0.0.0/8", denylist_source_range="18.1.0.0/16")))
    assert find_filter(t.ask(HOST, "/").filters, SourceRanges) == SourceRanges(
        ("18.0.0.0/8", "56.0.0.0/8"), ("18.1.0.0/16",)
    )
    settings = replace(NGINX, whitelist_source_range=("10.0.0.0/8",),
                       denylist_source_range=("10.9.0.0/16",))
    t = translate(ing("s", HOST, path("/")), nginx=settings)
    assert SourceRanges(("10.0.0.0/8",), ("10.9.0.0/16",)) in t.listener.filters
    assert t.ask(HOST, "/").filters == ()
    t = translate(ing("s", HOST, path("/"), annotations=ann(allowlist_source_range="1.2.3.4")),
                  nginx=settings)
    assert find_filter(t.ask(HOST, "/").filters, SourceRanges) == SourceRanges(
        ("1.2.3.4",), ("10.9.0.0/16",)
    )


FOO_BAR = "foo:$apr1$OFG3Xybp$ckL0FHDAkoXYIlH9.cysT0"  # e2e auth.go buildSecret: foo / bar


def test_basic_auth_names_its_secret() -> None:
    """e2e auth.go "should return status code 401 when authentication is configured but
    Authorization header is not configured": auth-type basic, auth-secret, auth-realm; the
    users come from the Secret (ingress/nginx_secrets.py, tests in test_nginx_secrets.py)."""
    t = translate(ing("b", HOST, path("/"), annotations=ann(
        auth_type="basic", auth_secret="basic-secret", auth_realm="test auth")),
        secrets=[secret("basic-secret", auth=FOO_BAR + "\n")])
    assert find_filter(t.ask(HOST, "/").filters, BasicAuth) == BasicAuth(
        "test auth", (tuple(FOO_BAR.split(":", 1)),), ("default", "basic-secret"), "auth-file"
    )
    t = translate(ing("b", HOST, path("/"), annotations=ann(
        auth_type="basic", auth_secret="default/map", auth_secret_type="auth-map")),
        secrets=[secret("map", foo=FOO_BAR.split(":", 1)[1])])
    auth = find_filter(t.ask(HOST, "/").filters, BasicAuth)
    assert auth is not None and auth.secret_type == "auth-map"
    assert auth.users == (tuple(FOO_BAR.split(":", 1)),)


def test_external_auth() -> None:
    """e2e auth.go "when external authentication is configured": auth-url, auth-signin
    (rd by default), auth-response-headers, auth-method."""
    t = translate(ing("e", HOST, path("/"), annotations=ann(
        auth_url="http://auth.test/auth", auth_signin="http://$host/auth/start",
        auth_response_headers="X-User, X-Email", auth_method="POST")))
    assert find_filter(t.ask(HOST, "/").filters, ExternalAuth) == ExternalAuth(
        "http://auth.test/auth", "POST", "http://$host/auth/start", ("X-User", "X-Email")
    )


def test_invalid_access_annotations_answer_503() -> None:
    """ipallowlist/main.go: an unusable list denies the location: nginx.tmpl `return 503`,
    with no other filter."""
    t = translate(ing("d", HOST, path("/"), annotations=ann(
        whitelist_source_range="10.0.0.0/33", proxy_body_size="1k")))
    r = t.ask(HOST, "/")
    assert (r.status, r.filters) == (503, ())


def test_rate_limits() -> None:
    """e2e limitconnections.go and ratelimit: limit-rps, limit-rpm, limit-connections,
    burst multiplier (5 by default), limit-whitelist exempt; the ConfigMap's
    limit-req-status-code and limit-conn-status-code (503)."""
    t = translate(ing("r", HOST, path("/"), annotations=ann(
        limit_rps="5", limit_connections="2", limit_whitelist="10.0.0.0/8")),
        nginx=replace(NGINX, limit_req_status_code=429))
    assert find_filter(t.ask(HOST, "/").filters, RateLimit) == RateLimit(
        5, 0, 2, 5, ("10.0.0.0/8",), 429, 503
    )


def test_cors_defaults_and_origins() -> None:
    """e2e cors.go "should enable cors" (defaults: origin *, methods GET, PUT, POST,
    DELETE, PATCH, OPTIONS, credentials true, max age 1728000), "should allow origin for
    cors", "should not allow - single origin for multiple cors values", "should allow -
    matching origin with wildcard origin (2 subdomains)"."""
    t = translate(ing("c", HOST, path("/"), annotations=ann(enable_cors="true")))
    cors = find_filter(t.ask(HOST, "/").filters, Cors)
    assert cors == Cors()
    allowed = cors_origin(cors, b"https://any.test")
    assert allowed == b"*"
    assert cors_headers(cors, allowed, preflight=True) == [
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Methods", "GET, PUT, POST, DELETE, PATCH, OPTIONS"),
        ("Access-Control-Allow-Headers", "DNT, Keep-Alive, User-Agent, X-Requested-With, "
         "If-Modified-Since, Cache-Control, Content-Type, Range, Authorization"),
        ("Access-Control-Max-Age", "1728000"),
        ("Content-Type", "text/plain charset=UTF-8"),
        ("Content-Length", "0"),
    ]
    t = translate(ing("c", HOST, path("/"), annotations=ann(
        enable_cors="true", cors_allow_origin="https://origin.cors.com:8080, http://*.origin.com",
        cors_allow_credentials="false", cors_max_age="60")))
    cors = find_filter(t.ask(HOST, "/").filters, Cors)
    assert cors is not None and not cors.allow_credentials and cors.max_age == 60
    assert cors_origin(cors, b"https://origin.cors.com:8080") == b"https://origin.cors.com:8080"
    assert cors_origin(cors, b"https://origin.cors.com") is None
    assert cors_origin(cors, b"http://a.origin.com") == b"http://a.origin.com"
    assert cors_origin(cors, b"http://a.b.origin.com") is None  # one label for *
    assert cors_origin(cors, None) is None


def test_filters_come_in_nginx_phase_order() -> None:
    """nginx.tmpl: client_max_body_size (find-config), the CORS `if` and the lua ssl
    redirect (rewrite), limit_req (pre-access), allow/deny, auth_basic, auth_request
    (access), then the proxy settings."""
    t = translate(ing("all", HOST, path("/"), tls=[([HOST], "cert")], annotations=ann(
        proxy_body_size="2m", enable_cors="true", limit_rps="10",
        allowlist_source_range="10.0.0.0/8", auth_type="basic", auth_secret="s",
        auth_url="http://auth.test/", upstream_vhost="up.test", backend_protocol="HTTPS",
        proxy_read_timeout="5")), nginx=NGINX, secrets=[secret("s", auth=FOO_BAR)])
    assert [type(f) for f in t.ask(HOST, "/").filters] == [
        BodyLimit, Cors, HttpsRedirect, RateLimit, SourceRanges, BasicAuth, ExternalAuth,
        Rewrite, UpstreamProtocol, Timeouts,
    ]
