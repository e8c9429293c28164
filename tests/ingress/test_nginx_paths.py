"""ingress-nginx path annotations in the route table: use-regex, rewrite-target, app-root,
x-forwarded-prefix; and routes without annotations left exactly as they were. Each test
names the ingress-nginx e2e test (test/e2e/annotations/*.go) or doc it follows."""

from __future__ import annotations

from ingress.route_actions import find_filter, forwarded_prefix, rewrite_target
from ingress.route_filters import Rewrite
from ingress.routes import PathMatch, Redirect, RegexReplace
from tests.ingress.nginxkit import NGINX, ann, ing, name, path, translate

HOST = "rewrite.bar.com"


def test_routes_without_annotations_have_no_filters_and_no_regex() -> None:
    """The brief: translation adds no per-request cost to a route that uses no annotation;
    in ingress-nginx mode the ConfigMap's defaults are the listener's, not the route's."""
    for nginx in (None, NGINX):
        t = translate(ing("plain", HOST, path("/a"), path("/b/c", path_type="Exact")), nginx=nginx)
        routes = t.routes(HOST)
        assert [r.match.path for r in routes] == [
            PathMatch("Exact", "/b/c"),
            PathMatch("Prefix", "/a"),
        ]
        assert all(r.filters == () for r in routes)
        assert all(b.filters == () for r in routes for b in r.action.backends)  # type: ignore[union-attr]
        assert t.ask(HOST, "/a/x").filters == ()
    assert translate(ing("plain", HOST, path("/"))).listener.filters == ()


def test_rewrite_target_with_captures_keeps_the_query() -> None:
    """docs/examples/rewrite/README.md: use-regex + rewrite-target /$2 on
    /something(/|$)(.*): /something -> /, /something/ -> /, /something/new -> /new;
    nginx `rewrite ... break` keeps the query."""
    t = translate(
        ing(
            "rw",
            HOST,
            path("/something(/|$)(.*)", path_type="ImplementationSpecific"),
            annotations=ann(use_regex="true", rewrite_target="/$2"),
        )
    )
    (route,) = t.routes(HOST)
    assert route.match.path == PathMatch("Regex", "^/something(/|$)(.*)", ignore_case=True)
    assert find_filter(route.filters, Rewrite) == Rewrite(
        RegexReplace("/something(/|$)(.*)", "/$2", ignore_case=True)
    )
    for target, upstream in [
        ("/something", "/"),
        ("/something/", "/"),
        ("/something/new", "/new"),
        ("/SOMETHING/new?x=1&y", "/new?x=1&y"),  # ~*: any case; the query is kept
    ]:
        assert t.upstream_target(HOST, target) == upstream, target
    assert name(t.ask(HOST, "/other")) == "404"


def test_longest_regex_location_first() -> None:
    """e2e rewrite.go "should use correct longest path match": a plain Ingress for
    /.well-known/acme/challenge and a rewrite-target one for / on the same host: both
    become ~* locations, the longer first, and the plain path is not rewritten."""
    t = translate(
        ing("kube-lego", HOST, path("/.well-known/acme/challenge"), created="1"),
        ing("rewrite-index", HOST, path("/"), annotations=ann(rewrite_target="/new/backend"),
            created="2"),
    )
    assert [p.value for p in t.paths(HOST)] == [
        "^/.well-known/acme/challenge/",
        "^/.well-known/acme/challenge",
        "^/",
    ]
    assert all(p.kind == "Regex" and p.ignore_case for p in t.paths(HOST))
    assert t.upstream_target(HOST, "/.well-known/acme/challenge") == "/.well-known/acme/challenge"
    assert t.upstream_target(HOST, "/anything?q=1") == "/new/backend?q=1"


def test_use_regex_on_one_ingress_makes_every_path_of_the_host_a_regex() -> None:
    """e2e rewrite.go "should use ~* location modifier if regex annotation is present":
    /foo (plain) and /foo.+ (use-regex, rewrite-target): /foo goes to the plain path,
    /foo/bar to the rewritten one; a plain Prefix now also matches /foobar, as in
    ingress-nginx (its "^/foo" location)."""
    t = translate(
        ing("foo", HOST, path("/foo", "plain"), created="1"),
        ing("regex", HOST, path("/foo.+", "rx"), created="2",
            annotations=ann(use_regex="true", rewrite_target="/new/backend")),
        services=("plain", "rx"),
    )
    assert [p.value for p in t.paths(HOST)] == ["^/foo.+", "^/foo/", "^/foo"]
    assert (name(t.ask(HOST, "/foo")), t.upstream_target(HOST, "/foo")) == ("plain", "/foo")
    assert name(t.ask(HOST, "/foo/bar")) == "rx"
    assert t.upstream_target(HOST, "/foo/bar") == "/new/backend"
    assert name(t.ask(HOST, "/FOO")) == "plain"  # ~*: case-insensitive now
    assert "every path is a case-insensitive regular expression" in " ".join(t.applied("foo"))
    other = translate(ing("foo", "other.test", path("/foo", "plain")), services=("plain",))
    assert name(other.ask("other.test", "/foobar")) == "404"  # no regex on other hosts


def test_regex_hosts_do_not_take_the_longest_match() -> None:
    """e2e rewrite.go "should fail to use longest match for documented warning":
    /foo/bar/bar (plain) and /foo/bar/[a-z]{3} (regex) have the same length; the regex,
    sorted first (descending by path), wins /foo/bar/bar."""
    t = translate(
        ing("foo", HOST, path("/foo/bar/bar", "plain"), created="1"),
        ing("regex", HOST, path("/foo/bar/[a-z]{3}", "rx"), created="2",
            annotations=ann(use_regex="true", rewrite_target="/new/backend")),
        services=("plain", "rx"),
    )
    assert [p.value for p in t.paths(HOST)][:2] == ["^/foo/bar/[a-z]{3}", "^/foo/bar/bar/"]
    assert name(t.ask(HOST, "/foo/bar/bar")) == "rx"
    assert t.upstream_target(HOST, "/foo/bar/bar") == "/new/backend"


def test_custom_rewrite_parameters() -> None:
    """e2e rewrite.go "should allow for custom rewrite parameters": /foo/bar/(.+) with
    rewrite-target /new/backend/$1: /foo/bar/bar -> /new/backend/bar."""
    t = translate(
        ing("regex", HOST, path("/foo/bar/(.+)"),
            annotations=ann(use_regex="true", rewrite_target="/new/backend/$1"))
    )
    assert t.upstream_target(HOST, "/foo/bar/bar") == "/new/backend/bar"


def test_rewrite_target_equal_to_the_path_is_no_rewrite_and_no_regex() -> None:
    """template.go needsRewrite: a rewrite-target equal to the location path rewrites
    nothing (and enforceRegexModifier is false when no other location asks)."""
    t = translate(
        ing("same", HOST, path("/"), annotations=ann(rewrite_target="/")),
    )
    (route,) = t.routes(HOST)
    assert route.match.path == PathMatch("Prefix", "/") and route.filters == ()


def test_rewrite_target_on_the_hosts_first_ingress_makes_it_a_regex_host() -> None:
    """controller.go createServers: the host's implicit "/" location takes the first
    Ingress's annotations, so a rewrite-target other than "/" there makes every path a
    regex even when it equals that Ingress's own path (which, not rewritten, is then
    split into "/app/" and an Exact "/app" by updateServerLocations)."""
    t = translate(ing("first", HOST, path("/app"), annotations=ann(rewrite_target="/app")))
    assert t.paths(HOST) == [
        PathMatch("Regex", "^/app/", ignore_case=True),
        PathMatch("Regex", "^/app", ignore_case=True),
    ]
    assert all(r.filters == () for r in t.routes(HOST))  # the target is its path: no rewrite


def test_exact_paths_become_prefix_regexes_on_regex_hosts() -> None:
    """template.go buildLocation: with enforceRegex every location, Exact ones too, is
    `~* "^<path>"`."""
    t = translate(
        ing("rx", HOST, path("/api/(v[0-9])"), path("/health", "web", "Exact"),
            annotations=ann(use_regex="true"))
    )
    assert t.paths(HOST) == [
        PathMatch("Regex", "^/api/(v[0-9])", ignore_case=True),
        PathMatch("Regex", "^/health", ignore_case=True),
    ]
    assert name(t.ask(HOST, "/healthz")) == "web"


def test_app_root_redirects_slash_with_302() -> None:
    """e2e approot.go "should redirect to /foo": GET / -> 302, Location
    http://approot.bar.com/foo (nginx: return 302 $scheme://$http_host/foo, the port of
    the Host kept, no query); other paths are proxied."""
    host = "approot.bar.com"
    t = translate(ing("approot", host, path("/"), annotations=ann(app_root="/foo")))
    assert t.location(host, "/") == (302, "http://approot.bar.com/foo")
    assert t.location(host + ":8080", "/?x=1", "https") == (302, "https://approot.bar.com:8080/foo")
    assert name(t.ask(host, "/bar")) == "web"
    first = t.routes(host)[0]
    assert first.match.path == PathMatch("Exact", "/") and first.filters == ()
    assert isinstance(first.action, Redirect)
    assert "app-root: / on approot.bar.com -> 302 to /foo" in t.applied("approot")


def test_x_forwarded_prefix_with_a_rewrite() -> None:
    """e2e xforwardedprefix.go "should set the X-Forwarded-Prefix to the annotation
    value" (with rewrite-target /foo); template.go buildProxyPass sets it only with a
    rewrite, and its $1..$n are the rewrite's captures."""
    t = translate(
        ing("xfp", "xfp.baz.com", path("/"),
            annotations=ann(x_forwarded_prefix="/test/value", rewrite_target="/foo"))
    )
    rewrite = find_filter(t.ask("xfp.baz.com", "/").filters, Rewrite)
    assert rewrite is not None and forwarded_prefix(rewrite, b"/") == b"/test/value"
    t = translate(
        ing("xfp", HOST, path("/api(/|$)(.*)"),
            annotations=ann(use_regex="true", rewrite_target="/$2", x_forwarded_prefix="/api$1"))
    )
    r = t.ask(HOST, "/api/users")
    rewrite = find_filter(r.filters, Rewrite)
    assert rewrite is not None and forwarded_prefix(rewrite, b"/api/users") == b"/api/"
    assert rewrite.path is not None and r.route is not None
    assert rewrite_target(rewrite.path, b"/api/users", r.route.match.path) == b"/users"


def test_x_forwarded_prefix_without_rewrite_does_nothing() -> None:
    """e2e xforwardedprefix.go "should not add X-Forwarded-Prefix if the annotation value
    is empty"; buildProxyPass writes the header only inside the rewrite branch."""
    for given in (ann(x_forwarded_prefix="", rewrite_target="/foo"), ann(x_forwarded_prefix="/p")):
        t = translate(ing("x", HOST, path("/"), annotations=given))
        rewrite = find_filter(t.ask(HOST, "/").filters, Rewrite)
        assert rewrite is None or rewrite.forwarded_prefix is None
