"""Route actions and header filters at request time, through the real HttpProtocol with
real backends (Python echo backends, nginx). Each case names the upstream test it follows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ingress.route_filters import HttpsRedirect, RequestHeaders, ResponseHeaders, Rewrite
from ingress.routes import (
    FixedResponse,
    Redirect,
    RegexReplace,
    ReplaceFullPath,
    ReplacePrefix,
)
from tests.ingress.filterkit import (
    backend_of,
    backends,
    https_port,
    on_one_connection,
    proxy,
    request,
    table,
)
from tests.ingress.l7kit import Backend, LoopThread, nginx_server
from tests.ingress.routemodel import route
from tests.support import free_port


@pytest.fixture(scope="module")
def echo(lt: LoopThread) -> Iterator[Backend]:
    with backends(lt, "echo") as (b,):
        yield b


def test_redirects_with_location(lt: LoopThread) -> None:
    """Gateway API HTTPRouteRedirectHostAndStatus, HTTPRouteRedirectPortAndScheme,
    HTTPRouteRedirectPath (conformance/tests/httproute-redirect-*.go): status and a
    Location built from the request; ingress-nginx permanent-redirect (a whole URL)."""
    routes = table(
        route(Redirect(hostname="example.org"), "/hostname-redirect"),
        route(Redirect(status=301, hostname="example.org"), "/host-and-status"),
        route(Redirect(scheme="https", port=8443), "/scheme-https-and-port-8443"),
        route(Redirect(path=ReplacePrefix("/replacement-prefix")), "/original-prefix"),
        route(Redirect(path=ReplaceFullPath("/full"), keep_query=False), "/full-path"),
        route(Redirect(status=308, location="https://www.google.com/x"), "/whole"),
    )
    with proxy(lt, routes) as p:
        a = request(p.port, "/hostname-redirect/x?q=1")
        assert (
            a.status == 302 and a.header("Location") == "http://example.org/hostname-redirect/x?q=1"
        )
        a = request(p.port, "/host-and-status", host="app.test:8080")
        assert a.status == 301 and a.header("Location") == "http://example.org:8080/host-and-status"
        a = request(p.port, "/scheme-https-and-port-8443")
        assert a.header("Location") == "https://app.test:8443/scheme-https-and-port-8443"
        a = request(p.port, "/original-prefix/lemon")
        assert a.header("Location") == "http://app.test/replacement-prefix/lemon"
        a = request(p.port, "/full-path/a?gone=1")
        assert a.header("Location") == "http://app.test/full"
        a = request(p.port, "/whole/y")
        assert a.status == 308 and a.header("Location") == "https://www.google.com/x"
        assert a.body == b"308 Permanent Redirect\n"
        head = request(p.port, "/whole", method="HEAD")
        assert head.status == 308 and head.body == b"" and head.header("Location")


def test_fixed_response_and_own_page(lt: LoopThread) -> None:
    """A FixedResponse answers its body and headers; without a body, seaway's page."""
    routes = table(
        route(
            FixedResponse(418, b'{"tea": true}', (("Content-Type", "application/json"),)), "/tea"
        ),
        route(FixedResponse(410), "/gone"),
    )
    with proxy(lt, routes) as p:
        a = request(p.port, "/tea")
        assert a.status == 418 and a.body == b'{"tea": true}'
        assert a.header("Content-Type") == "application/json"
        assert a.header("Content-Length") == "13"
        b = request(p.port, "/gone")
        assert b.status == 410 and b.body == b"410 Gone\n"


def test_https_redirect_only_for_plain_http(lt: LoopThread, echo: Backend) -> None:
    """ingress-nginx forcesslredirect.go ("should redirect to https"): 308 with the same
    URL in https, the Host's port dropped; the same route on the HTTPS listener forwards."""
    be = backend_of("echo", echo.port)
    routes = table(route(be, "/", filters=(HttpsRedirect(),)))
    with proxy(lt, routes, https=True) as p:
        a = request(p.port, "/a/b?c=d", host="app.test:8080")
        assert a.status == 308 and a.header("Location") == "https://app.test/a/b?c=d"
        b = request(https_port(p), "/a/b?c=d", tls=True)
        assert b.status == 200 and b.json()["path"] == "/a/b?c=d"
        assert b.sent_header("X-Forwarded-Proto") == "https"
    routes = table(route(be, "/", filters=(HttpsRedirect(port=8443, status=301),)))
    with proxy(lt, routes) as p:
        a = request(p.port, "/x")
        assert a.status == 301 and a.header("Location") == "https://app.test:8443/x"


def test_request_header_modifier(lt: LoopThread, echo: Backend) -> None:
    """Gateway API HTTPRouteRequestHeaderModifier (httproute-request-header-modifier.go):
    set overwrites, add appends, remove drops, case-insensitive; other headers kept."""
    be = backend_of("echo", echo.port)
    edits = RequestHeaders(
        set=(("X-Header-Set", "set-overwrites-values"),),
        add=(("X-Header-Add", "add-appends-values"),),
        remove=("X-Header-Remove",),
    )
    with proxy(lt, table(route(be, "/", filters=(edits,)))) as p:
        a = request(
            p.port, "/set", headers=[("x-header-set", "some"), ("Some-Other-Header", "val")]
        )
        assert a.sent_header("X-Header-Set") == "set-overwrites-values"
        assert a.sent_header("Some-Other-Header") == "val"
        a = request(p.port, "/add", headers=[("x-header-add", "some-other-value")])
        assert a.sent_header("X-Header-Add") == "some-other-value, add-appends-values"
        a = request(p.port, "/remove", headers=[("x-header-remove", "val")])
        assert a.sent_header("X-Header-Remove") is None
        assert a.sent_header("X-Forwarded-For") == "127.0.0.1"
    # copy (ingress-nginx's default backend gets X-Format from Accept): the request's own
    # value, replacing the field; nothing when the request has none.
    copy = RequestHeaders(copy=(("X-Format", "Accept"),))
    with proxy(lt, table(route(be, "/", filters=(copy,)))) as p:
        a = request(p.port, "/", headers=[("Accept", "text/html"), ("X-Format", "old")])
        assert a.sent_header("X-Format") == "text/html"
        assert request(p.port, "/").sent_header("X-Format") is None


def test_url_rewrite_path_and_host(lt: LoopThread, echo: Backend) -> None:
    """Gateway API HTTPRouteRewritePath and HTTPRouteRewriteHost
    (httproute-rewrite-path.go, httproute-rewrite-host.go); ingress-nginx rewrite.go
    ("should use correct longest path match", rewrite-target with $2 captures, the query
    kept) and upstreamvhost.go (upstream-vhost sets the Host sent upstream)."""
    be = backend_of("echo", echo.port)
    routes = table(
        route(be, "/prefix/one", filters=(Rewrite(ReplacePrefix("/one")),)),
        route(be, "/strip-prefix", filters=(Rewrite(ReplacePrefix("/")),)),
        route(be, "/full/one", filters=(Rewrite(ReplaceFullPath("/one")),)),
        route(
            be,
            "^/something(/|$)(.*)",
            "Regex",
            filters=(Rewrite(RegexReplace("^/something(/|$)(.*)", "/$2", ignore_case=True)),),
        ),
        route(be, "/host", filters=(Rewrite(hostname="one.example.org"),)),
        route(
            be,
            "/both",
            filters=(
                Rewrite(ReplaceFullPath("/test"), "vhost.test"),
                RequestHeaders(add=(("X-Header-Add", "header-val-1"),)),
            ),
        ),
    )
    with proxy(lt, routes) as p:
        assert request(p.port, "/prefix/one/two").json()["path"] == "/one/two"
        assert request(p.port, "/strip-prefix/three").json()["path"] == "/three"
        assert request(p.port, "/strip-prefix").json()["path"] == "/"
        assert request(p.port, "/full/one/two?x=1").json()["path"] == "/one?x=1"
        assert request(p.port, "/something/new?a=b").json()["path"] == "/new?a=b"
        assert request(p.port, "/something").json()["path"] == "/"
        a = request(p.port, "/host/x")
        assert a.json()["path"] == "/host/x" and a.sent_header("Host") == "one.example.org"
        assert a.sent_header("X-Forwarded-Host") == "app.test"
        a = request(p.port, "/both/z")
        assert a.json()["path"] == "/test" and a.sent_header("Host") == "vhost.test"
        assert a.sent_header("X-Header-Add") == "header-val-1"


def test_response_header_modifier_on_an_nginx_backend(lt: LoopThread) -> None:
    """Gateway API HTTPRouteResponseHeaderModifier (httproute-response-header-modifier.go):
    the backend's answer gets set/add/remove; the body passes untouched; routes without the
    filter pass the head as received."""
    port = free_port()
    server = (
        f"listen 127.0.0.1:{port}; location / {{ add_header X-Header-Set original;"
        " add_header X-Header-Add original; add_header X-Header-Remove val;"
        " return 200 'body from nginx'; }"
    )
    with nginx_server(port, server):
        be = backend_of("nginx", port)
        edits = ResponseHeaders(
            set=(("X-Header-Set", "set-overwrites-values"),),
            add=(("X-Header-Add", "add-appends-values"),),
            remove=("x-header-remove",),
        )
        routes = table(route(be, "/edited", filters=(edits,)), route(be, "/"))
        with proxy(lt, routes) as p:
            for _ in range(2):  # the second answer repeats the first head: still edited
                a = request(p.port, "/edited")
                assert a.status == 200 and a.body == b"body from nginx"
                assert a.all("X-Header-Set") == ["set-overwrites-values"]
                assert a.all("X-Header-Add") == ["original", "add-appends-values"]
                assert a.header("X-Header-Remove") is None
            plain = request(p.port, "/plain")
            assert plain.header("X-Header-Remove") == "val"
            assert plain.all("X-Header-Set") == ["original"]
            # Kept-alive HTTP/1.1 clients too (the pass-through path for plain heads must
            # not take an edited route's answer): the conformance client is one.
            raw = b"GET /edited HTTP/1.1\r\nHost: app.test\r\n\r\n"
            for kept in on_one_connection(p.port, [raw, raw, raw]):
                assert kept.all("X-Header-Set") == ["set-overwrites-values"]
                assert kept.header("X-Header-Remove") is None
