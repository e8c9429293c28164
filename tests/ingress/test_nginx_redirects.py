"""ingress-nginx redirect annotations in the route table: ssl-redirect (on by default for
hosts with TLS), force-ssl-redirect, preserve-trailing-slash, no-tls-redirect-locations,
permanent-redirect, temporal-redirect, relative-redirects, from-to-www-redirect. Each
test names the ingress-nginx e2e test or source it follows."""

from __future__ import annotations

from dataclasses import replace

from ingress.route_actions import find_filter, https_redirect_location
from ingress.route_filters import BodyLimit, Cors, HttpsRedirect
from ingress.routes import Redirect
from tests.ingress.nginxkit import NGINX, Translated, ann, ing, name, path, translate

HOST = "forcesslredirect.bar.com"


def https(t: Translated, host: str, target: str) -> str | None:
    """Where a plain-HTTP request is redirected, or None when it is not."""
    redirect = find_filter(t.ask(host, target).filters, HttpsRedirect)
    if redirect is None:
        return None
    assert redirect.status == 308
    return https_redirect_location(redirect, host.encode(), target.encode()).decode()


def test_force_ssl_redirect_drops_the_trailing_slash() -> None:
    """e2e forcesslredirect.go "should redirect to https": GET / -> 308, Location
    https://forcesslredirect.bar.com (lua_ingress.lua: one trailing "/" of the request
    URI dropped unless preserve-trailing-slash; the Host's port never written)."""
    t = translate(ing("f", HOST, path("/"), annotations=ann(force_ssl_redirect="true")))
    assert https(t, HOST, "/") == "https://forcesslredirect.bar.com"
    assert https(t, HOST + ":8080", "/a/b/?q=1") == "https://forcesslredirect.bar.com/a/b/?q=1"
    assert https(t, HOST, "/a/b/") == "https://forcesslredirect.bar.com/a/b"


def test_preserve_trailing_slash() -> None:
    """e2e preservetrailingslash.go "should allow preservation of trailing slashes":
    ssl-redirect with TLS and preserve-trailing-slash: Location https://<host>/."""
    annotations = ann(ssl_redirect="true", preserve_trailing_slash="true")
    t = translate(ing("p", HOST, path("/"), annotations=annotations, tls=[([HOST], "cert")]))
    assert https(t, HOST, "/") == "https://forcesslredirect.bar.com/"


def test_ssl_redirect_is_on_by_default_for_hosts_with_tls_in_ingress_nginx_mode() -> None:
    """annotations.md "Server-side HTTPS enforcement through redirect": "By default the
    controller redirects (308) to HTTPS if TLS is enabled for that ingress"; the check
    is per host (lua_ingress.lua: a certificate configured for the request's host), so
    another Ingress of that host without tls redirects too; hosts without TLS do not."""
    t = translate(
        ing("tls", "secure.test", path("/"), tls=[(["secure.test"], "cert")], created="1"),
        ing("other", "secure.test", path("/api"), created="2"),
        ing("open", "open.test", path("/")),
        nginx=NGINX,
    )
    assert https(t, "secure.test", "/x") == "https://secure.test/x"
    assert https(t, "secure.test", "/api/v1") == "https://secure.test/api/v1"
    assert https(t, "open.test", "/x") is None
    assert "plain HTTP redirected to HTTPS (308)" in t.applied("tls")


def test_ssl_redirect_false_and_outside_ingress_nginx_mode() -> None:
    """ssl-redirect: "false" turns it off; without --configmap or ingress-nginx's
    controller name seaway's own default (no redirect) stands unless the annotation asks;
    the ConfigMap's http-redirect-code sets the status."""
    tls = [(["secure.test"], "cert")]
    off = translate(ing("a", "secure.test", path("/"), tls=tls,
                        annotations=ann(ssl_redirect="false")), nginx=NGINX)
    assert https(off, "secure.test", "/") is None
    own = translate(ing("a", "secure.test", path("/"), tls=tls))
    assert https(own, "secure.test", "/") is None
    asked = translate(ing("a", "secure.test", path("/"), tls=tls,
                          annotations=ann(ssl_redirect="true")))
    assert https(asked, "secure.test", "/x") == "https://secure.test/x"
    code = translate(ing("a", "secure.test", path("/"), tls=tls),
                     nginx=replace(NGINX, http_redirect_code=301))
    redirect = find_filter(code.ask("secure.test", "/").filters, HttpsRedirect)
    assert redirect is not None and redirect.status == 301


def test_wildcard_certificates_count_for_their_hosts() -> None:
    """certificate.lua get_pem_cert_uid falls back to the "*.domain" certificate."""
    t = translate(ing("w", "a.wild.test", path("/"), tls=[(["*.wild.test"], "cert")]),
                  nginx=NGINX)
    assert https(t, "a.wild.test", "/") == "https://a.wild.test"


def test_no_tls_redirect_locations() -> None:
    """e2e settings/no_tls_redirect_locations.go: a location whose path starts with one of
    the ConfigMap's no-tls-redirect-locations (default /.well-known/acme-challenge) is
    never redirected, even with force-ssl-redirect (template.go isLocationInLocationList)."""
    t = translate(
        ing("a", "h.test", path("/.well-known/acme-challenge/tok"), path("/check-no-tls"),
            path("/"), annotations=ann(force_ssl_redirect="true")),
        nginx=replace(NGINX, no_tls_redirect_locations=("/.well-known/acme-challenge",
                                                         "/check-no-tls")),
    )
    assert https(t, "h.test", "/.well-known/acme-challenge/tok") is None
    assert https(t, "h.test", "/check-no-tls") is None
    assert https(t, "h.test", "/x") == "https://h.test/x"


def test_permanent_redirect_and_code() -> None:
    """e2e redirect.go "should respond with a standard redirect code" (301, Location the
    URL as given) and "...custom redirect code" (permanent-redirect-code)."""
    url = "http://redirect.example.com"
    t = translate(ing("r", "redirect", path("/something"), annotations=ann(permanent_redirect=url)))
    assert t.location("redirect", "/something?q=1") == (301, url)
    t = translate(ing("r", "redirect", path("/something"),
                      annotations=ann(permanent_redirect=url, permanent_redirect_code="302")))
    assert t.location("redirect", "/something") == (302, url)
    assert "redirect: 302 to http://redirect.example.com" in t.applied("r")


def test_temporal_redirect_wins_and_defaults_to_302() -> None:
    """redirect/redirect.go: temporal-redirect is read first and wins; its code defaults
    to 302 (temporal-redirect-code 300-307)."""
    t = translate(ing("r", "h.test", path("/"), annotations=ann(
        temporal_redirect="https://t.example.com/x", permanent_redirect="https://p.example.com")))
    assert t.location("h.test", "/a") == (302, "https://t.example.com/x")
    t = translate(ing("r", "h.test", path("/"), annotations=ann(
        temporal_redirect="https://t.example.com/", temporal_redirect_code="307")))
    assert t.location("h.test", "/") == (307, "https://t.example.com/")


def test_redirect_routes_skip_access_checks_but_keep_body_limit_and_cors() -> None:
    """nginx.tmpl: `return <code> <url>` ends the request in the rewrite phase, before
    the ssl redirect (lua), rate limits and access checks; client_max_body_size is
    checked before (find-config phase) and the CORS preflight `if` comes first."""
    t = translate(ing("r", "h.test", path("/"), annotations=ann(
        permanent_redirect="https://p.example.com", proxy_body_size="1k", enable_cors="true",
        force_ssl_redirect="true", whitelist_source_range="10.0.0.0/8")))
    (route,) = t.routes("h.test")
    assert isinstance(route.action, Redirect)
    assert [type(f) for f in route.filters] == [BodyLimit, Cors]


def test_relative_redirects() -> None:
    """e2e relativeredirects.go: permanent-redirect "/relative" gives Location
    http://<host>/relative, or "/relative" with relative-redirects "true"."""
    t = translate(ing("r", "rel.test", path("/redirect"),
                      annotations=ann(permanent_redirect="/relative")))
    assert t.location("rel.test", "/redirect?x") == (301, "http://rel.test/relative")
    t = translate(ing("r", "rel.test", path("/redirect"),
                      annotations=ann(permanent_redirect="/relative", relative_redirects="true")))
    assert t.location("rel.test", "/redirect") == (301, "/relative")


def test_from_to_www_redirect() -> None:
    """e2e fromtowwwredirect.go "should redirect from www HTTP to HTTP": GET /foo with
    Host www.<host> -> 308 to http://<host>/foo (ingress-nginx writes the listening port,
    ":80"; seaway keeps the Host header's port, none here); ngx_srv_redirect.lua drops
    one trailing "/" of the request URI and keeps the query."""
    host = "fromtowwwredirect.bar.com"
    t = translate(ing("w", host, path("/"), annotations=ann(from_to_www_redirect="true")),
                  nginx=NGINX)
    assert t.location("www." + host, "/foo") == (308, "http://fromtowwwredirect.bar.com/foo")
    assert t.location("www." + host, "/", "https") == (308, "https://fromtowwwredirect.bar.com")
    assert t.location("www." + host + ":8080", "/a/?q=1") == (
        308,
        "http://fromtowwwredirect.bar.com:8080/a/?q=1",
    )
    assert name(t.ask(host, "/foo")) == "web"


def test_from_to_www_from_a_www_host_and_not_over_an_existing_host() -> None:
    """pkg/util/ingress BuildRedirects: a www. host redirects from the bare name; no
    redirect is made for a name that is a host of its own (a warning)."""
    t = translate(ing("w", "www.shop.test", path("/"),
                      annotations=ann(from_to_www_redirect="true")))
    assert t.location("shop.test", "/x")[1] == "http://www.shop.test/x"
    t = translate(
        ing("w", "shop.test", path("/"), annotations=ann(from_to_www_redirect="true"),
            created="1"),
        ing("own", "www.shop.test", path("/", "own"), created="2"),
        services=("web", "own"),
    )
    assert name(t.ask("www.shop.test", "/")) == "own"
    assert any("www.shop.test is a host of its own" in w for w in t.warnings())
