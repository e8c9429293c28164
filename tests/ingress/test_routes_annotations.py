"""ingress-nginx annotation cases expressed in the route model, as the annotation
translator will: the tables here are what an annotated Ingress becomes, and the checks
are ingress-nginx's documented or tested answers (source named in each test, from
kubernetes/ingress-nginx: docs/ and test/e2e/annotations/, rootfs/etc/nginx/lua/)."""

from __future__ import annotations

from ingress.route_actions import (
    find_filter,
    https_redirect_location,
    redirect_location,
    rewrite_target,
)
from ingress.route_filters import (
    BasicAuth,
    BodyLimit,
    CookieAffinity,
    Cors,
    ErrorPages,
    ExternalAuth,
    HashBy,
    HttpsRedirect,
    Mirror,
    RateLimit,
    RequestHeaders,
    ResponseHeaders,
    Retry,
    Rewrite,
    SourceRanges,
    Timeouts,
    UpstreamProtocol,
)
from ingress.route_match import RouteResult
from ingress.routes import (
    CookieMatch,
    HeaderMatch,
    PathMatch,
    Redirect,
    RegexReplace,
    ReplaceFullPath,
    Route,
)
from tests.ingress.routemodel import ask, backend, name, route, table, vhost

PATTERN = "^/something(/|$)(.*)"


def test_rewrite_target_with_captures() -> None:
    """docs/examples/rewrite/README.md: use-regex + rewrite-target /$2 on
    path /something(/|$)(.*); test/e2e/annotations/rewrite.go "should use ~* location
    modifier if regex annotation is present" (case-insensitive)."""
    rewrite = Rewrite(RegexReplace(PATTERN, "/$2", ignore_case=True))
    t = table(
        vhost(
            ["rewrite.bar.com"],
            route("http-svc", PATTERN, "Regex", ignore_case=True, filters=(rewrite,)),
        )
    )
    for target, upstream in [
        ("/something", "/"),
        ("/something/", "/"),
        ("/something/new", "/new"),
        ("/SOMETHING/new?x=1&y", "/new?x=1&y"),  # ~*: any case; the query is kept
    ]:
        r = ask(t, target, "rewrite.bar.com")
        assert name(r) == "http-svc"
        found = find_filter(r.filters, Rewrite)
        assert found is not None and found.path is not None and r.route is not None
        assert rewrite_target(found.path, target.encode(), r.route.match.path) == upstream.encode()
    assert name(ask(t, "/somethingelse", "rewrite.bar.com")) == "404"


def test_rewrite_keeps_the_query_after_the_replacements_own() -> None:
    """nginx rewrite: "If a replacement string includes the new request arguments, the
    previous request arguments are appended after them"."""
    rewrite = RegexReplace("^/api/(.*)", "/v2/$1?from=api")
    assert rewrite_target(rewrite, b"/api/users?id=7", PathMatch()) == (b"/v2/users?from=api&id=7")
    assert rewrite_target(rewrite, b"/other", PathMatch()) == b"/other"  # no match: unchanged
    missing = RegexReplace("^/(a)(b)?", "/${1}-$2-$7")
    assert rewrite_target(missing, b"/a", PathMatch()) == b"/a--"


def test_app_root() -> None:
    """test/e2e/annotations/approot.go "should redirect to /foo": 302,
    Location http://approot.bar.com/foo (nginx: return 302 $scheme://$http_host/foo)."""
    to_root = Redirect(302, path=ReplaceFullPath("/foo"), keep_query=False)
    t = table(vhost(["approot.bar.com"], route(to_root, "/", "Exact"), route("echo", "/")))
    r = ask(t, "/", "approot.bar.com")
    assert r.status == 302 and isinstance(r.action, Redirect)
    assert redirect_location(r.action, b"http", b"approot.bar.com", b"/", PathMatch()) == (
        b"http://approot.bar.com/foo"
    )
    assert name(ask(t, "/bar", "approot.bar.com")) == "echo"


def test_permanent_redirect() -> None:
    """test/e2e/annotations/redirect.go: permanent-redirect answers 301 (or
    permanent-redirect-code) with Location exactly the annotation's URL."""
    url = "http://redirect.example.com/"
    for code in (301, 308):
        t = table(vhost(["redirect.bar.com"], route(Redirect(code, location=url))))
        r = ask(t, "/anything?q=1", "redirect.bar.com")
        assert r.status == code and isinstance(r.action, Redirect)
        loc = redirect_location(r.action, b"http", b"redirect.bar.com", b"/x?q", PathMatch())
        assert loc == url.encode()


def test_ssl_redirect_is_a_filter_that_acts_on_plain_http() -> None:
    """docs/user-guide/nginx-configuration/annotations.md#server-side-https-enforcement-
    through-redirect: 308 to the https URL, on by default for an Ingress with tls."""
    t = table(vhost(["secure.test"], route("web", filters=(HttpsRedirect(),))))
    r = ask(t, "/a/b?c=d", "secure.test:8080")
    redirect = find_filter(r.filters, HttpsRedirect)
    assert redirect is not None and redirect.status == 308
    assert https_redirect_location(redirect, b"secure.test:8080", b"/a/b?c=d") == (
        b"https://secure.test/a/b?c=d"
    )
    assert https_redirect_location(HttpsRedirect(port=8443), b"Secure.test", b"/") == (
        b"https://secure.test:8443/"
    )


def _canary_table(weight: int) -> list[Route]:
    """What canary-by-header X-Canary, canary-by-cookie canary and canary-weight become:
    rootfs/etc/nginx/lua/balancer.lua route_to_alternative_upstream checks the header
    ("always"/"never"), then the cookie, then the weight."""
    stable, canary = backend("stable"), backend("canary")
    weighted = [backend("stable", 100 - weight), backend("canary", weight)]
    return [
        route(canary, headers=[HeaderMatch("X-Canary", "always")]),
        route(stable, headers=[HeaderMatch("X-Canary", "never")]),
        route(canary, cookies=[CookieMatch("canary", "always")]),
        route(stable, cookies=[CookieMatch("canary", "never")]),
        route(weighted),
    ]


def test_canary_by_header_then_cookie_then_weight() -> None:
    t = table(vhost(["canary.test"], *_canary_table(10)))

    def ask_(**h: str) -> RouteResult:
        return ask(t, "/", "canary.test", headers=h)

    assert name(ask_(**{"x-canary": "always", "cookie": "canary=never"})) == "canary"
    assert name(ask_(**{"x-canary": "never", "cookie": "canary=always"})) == "stable"
    assert name(ask_(cookie="canary=always")) == "canary"
    assert name(ask_(cookie="other=1; canary=never")) == "stable"
    split = ask_(**{"x-canary": "maybe"})  # neither keyword: falls to the weight
    assert split.split is not None
    picks = [name(split.pick(i / 100)) for i in range(100)]
    assert picks.count("canary") == 10


def test_canary_by_header_value_and_pattern() -> None:
    """canary-by-header-value (exact; always/never are then plain values) and
    canary-by-header-pattern (a regex searched in the value, as ngx.re.match)."""
    t = table(
        vhost(
            ["canary.test"],
            route("canary", headers=[HeaderMatch("X-Region", "us-east")]),
            route("canary-p", "/p", headers=[HeaderMatch("X-Region", "^eu-", "Regex")]),
            route("stable"),
        )
    )
    assert name(ask(t, "/", "canary.test", headers={"x-region": "us-east"})) == "canary"
    assert name(ask(t, "/", "canary.test", headers={"x-region": "always"})) == "stable"
    assert name(ask(t, "/p", "canary.test", headers={"x-region": "eu-west"})) == "canary-p"
    assert name(ask(t, "/p", "canary.test", headers={"x-region": "us-eu-"})) == "stable"


def test_every_annotation_filter_reaches_the_hot_path_in_order() -> None:
    """The filters the annotations translate into are handed over as given: the matcher
    neither drops nor reorders them, and a route without annotations has none."""
    error_backend = backend("default-http-backend")
    filters = (
        HttpsRedirect(),
        SourceRanges(allow=("10.0.0.0/8",), deny=("10.1.0.0/16",)),
        BasicAuth("Authentication Required", (("foo", "$apr1$abc$def"),)),
        ExternalAuth("http://auth.test/verify", signin="https://login.test/start"),
        RateLimit(rps=5, burst_multiplier=3, exempt=("127.0.0.1/32",)),
        Cors(allow_origins=("https://app.test",)),
        BodyLimit(8 * 1024 * 1024),
        Timeouts(connect=5, read=60, send=60),
        Retry(3),
        Rewrite(hostname="internal.svc"),
        RequestHeaders(set=(("X-Forwarded-Prefix", "/api"),)),
        ResponseHeaders(set=(("Strict-Transport-Security", "max-age=31536000"),)),
        CookieAffinity(samesite="Lax", max_age=172800),
        HashBy("$request_uri"),
        UpstreamProtocol("HTTPS"),
        Mirror(backend("mirror"), 50.0),
        ErrorPages((404, 503), error_backend),
    )
    t = table(vhost(["all.test"], route("api", "/api", filters=filters), route("plain", "/")))
    r = ask(t, "/api/x", "all.test")
    assert r.filters == filters
    assert find_filter(r.filters, CookieAffinity) == CookieAffinity(samesite="Lax", max_age=172800)
    assert find_filter(r.filters, Cors) is not None and find_filter(r.filters, Mirror) is not None
    assert ask(t, "/other", "all.test").filters == ()
