"""Filters that act while a request is under way, through the proxy with real backends:
external auth (nginx as the auth service), sticky cookies and hashing, timeouts, tries,
TLS to the pod (nginx with ssl), custom error pages, mirrors. Each case names the
ingress-nginx e2e test or Gateway API conformance test it follows."""

from __future__ import annotations

import asyncio
import os
import socket
from collections import Counter
from collections.abc import Iterator

import pytest

from ingress import selfsigned
from ingress.route_filters import (
    CookieAffinity,
    Cors,
    ErrorPages,
    ExternalAuth,
    HashBy,
    Mirror,
    RequestHeaders,
    ResponseHeaders,
    Retry,
    Rewrite,
    Timeouts,
    UpstreamProtocol,
)
from ingress.routes import Backend as RouteBackend
from ingress.routes import ReplacePrefix
from ingress.upstream import UpstreamReader
from tests.ingress.filterkit import (
    HOSTNAME,
    backend_of,
    backends,
    https_port,
    on_one_connection,
    proxy,
    request,
    runtime,
    table,
)
from tests.ingress.l7kit import HOST, Backend, LoopThread, access_log_lines, nginx_server
from tests.ingress.routemodel import route
from tests.support import free_port

USER = ("Authorization", "Basic dXNlcjpwYXNzd29yZA==")  # user:password


@pytest.fixture(scope="module")
def pair(lt: LoopThread) -> Iterator[list[Backend]]:
    with backends(lt, "one", "two") as found:
        yield found


async def _tick() -> None:
    await asyncio.sleep(0.01)


def wait_until(lt: LoopThread, done: object) -> None:
    """Poll `done()` until it holds (a readiness poll bounded at 10 s, not a timing test)."""
    for _ in range(1000):
        if done():  # type: ignore[operator]
            return
        lt.run(_tick())
    raise AssertionError("never happened")


AUTH_SERVER = """listen 127.0.0.1:{port};
location /auth {{
    if ($http_authorization != "Basic dXNlcjpwYXNzd29yZA==") {{
        add_header WWW-Authenticate 'Basic realm="ext"' always;
        return 401;
    }}
    add_header X-Auth-User alice;
    add_header Set-Cookie "alma=armud";
    return 200 "ok";
}}
location /forbid {{ return 403; }}
location /broken {{ return 502; }}
"""


def test_external_auth_with_nginx_as_the_auth_service(lt: LoopThread, pair: list[Backend]) -> None:
    """ingress-nginx auth.go "when external authentication is configured": 200 when signed
    in, "should redirect to signin url when not signed in" (302 to
    signin?rd=scheme://host/escaped-uri), "should overwrite Foo header with auth response"
    (auth-response-headers), "user retains cookie by default" (the auth answer's
    Set-Cookie); 401 without sign-in passes WWW-Authenticate, 403 is returned, anything
    else is 500; the auth request carries X-Original-URL and X-Original-Method."""
    port = free_port()
    fmt = "$request_uri|$http_x_original_url|$http_x_original_method|$http_host"
    with nginx_server(port, AUTH_SERVER.format(port=port), fmt) as d:
        be = backend_of("one", pair[0].port)
        url = f"http://127.0.0.1:{port}"
        routes = table(
            route(
                be,
                "/plain",
                filters=(ExternalAuth(f"{url}/auth", response_headers=("X-Auth-User",)),),
            ),
            route(
                be,
                "/signin",
                filters=(ExternalAuth(f"{url}/auth", signin="http://$host/auth/start"),),
            ),
            route(be, "/forbid", filters=(ExternalAuth(f"{url}/forbid"),)),
            route(be, "/broken", filters=(ExternalAuth(f"{url}/broken"),)),
            route(be, "/nowhere", filters=(ExternalAuth(f"http://127.0.0.1:{free_port()}/x"),)),
        )
        with proxy(lt, routes) as p:
            seen = len(pair[0].stats.requests)
            no = request(p.port, "/plain")
            assert no.status == 401 and no.header("WWW-Authenticate") == 'Basic realm="ext"'
            assert len(pair[0].stats.requests) == seen  # never reached the backend
            ok = request(p.port, "/plain/x?a=b", headers=[USER, ("X-Auth-User", "mallory")])
            assert ok.status == 200 and ok.json()["path"] == "/plain/x?a=b"
            assert ok.sent_header("X-Auth-User") == "alice"
            assert ok.all("Set-Cookie") == ["alma=armud"]
            lines = access_log_lines(os.path.join(d, "access.log"), "/auth", 2)
            assert lines[-1] == f"/auth|http://app.test/plain/x?a=b|GET|127.0.0.1:{port}"
            redirect = request(p.port, "/signin/?a=b&c=d")
            assert redirect.status == 302
            assert redirect.header("Location") == (
                "http://app.test/auth/start?rd=http://app.test%2Fsignin%2F%3Fa%3Db%26c%3Dd"
            )
            assert request(p.port, "/signin", headers=[USER]).status == 200
            assert request(p.port, "/forbid", headers=[USER]).status == 403
            assert request(p.port, "/broken", headers=[USER]).status == 500
            assert request(p.port, "/nowhere", headers=[USER]).status == 500


def test_sticky_cookie(lt: LoopThread, pair: list[Backend]) -> None:
    """ingress-nginx affinity.go "should set sticky cookie SERVERID" and
    "should set the path to /something on the generated cookie"; with the cookie, every
    request goes to the endpoint it names (persistent and balanced modes); without,
    requests spread."""
    be = backend_of("pair", *(b.port for b in pair))
    routes = table(
        route(
            be, "/p", filters=(CookieAffinity("SERVERID", path="/something", mode="persistent"),)
        ),
        route(be, "/b", filters=(CookieAffinity("SERVERID"),)),
        route(be, "/"),
    )
    with proxy(lt, routes) as p:
        for path in ("/p", "/b"):
            first = request(p.port, path)
            cookie = first.header("Set-Cookie")
            assert cookie is not None and cookie.startswith("SERVERID=")
            assert cookie.endswith("; HttpOnly") and "Path=" in cookie
            name = first.json()["name"]
            value = cookie.split(";")[0]
            names = {
                request(p.port, path, headers=[("Cookie", "a=1; " + value)]).json()["name"]
                for _ in range(6)
            }
            assert names == {name}
            again = request(p.port, path, headers=[("Cookie", value)])
            assert again.header("Set-Cookie") is None  # the cookie held: not set again
        assert "Path=/something" in (request(p.port, "/p").header("Set-Cookie") or "")
        spread = {request(p.port, "/").json()["name"] for _ in range(4)}
        assert spread == {"one", "two"}


def test_hash_by_request_uri(lt: LoopThread) -> None:
    """ingress-nginx upstreamhashby.go "should connect to the same pod": upstream-hash-by
    $request_uri sends one URI to one endpoint; different URIs spread."""
    with backends(lt, "a", "b", "c") as three:
        be = backend_of("three", *(b.port for b in three))
        with proxy(lt, table(route(be, "/", filters=(HashBy("$request_uri"),)))) as p:
            assert len({request(p.port, "/same?x=1").json()["name"] for _ in range(12)}) == 1
            names = Counter(request(p.port, f"/item/{i}").json()["name"] for i in range(30))
            assert len(names) >= 2


def test_request_and_backend_timeouts(lt: LoopThread, pair: list[Backend]) -> None:
    """Gateway API HTTPRouteTimeoutRequest and HTTPRouteTimeoutBackendRequest
    (httproute-timeout-request.go, -backend-request.go): a backend that does not answer
    in time gives 504, one that does gives 200; ingress-nginx proxy-read-timeout (the
    idle time waiting for the backend, 504) likewise."""
    be = backend_of("one", pair[0].port)
    strip = Rewrite(ReplacePrefix("/"))  # /request/slow -> /slow
    routes = table(
        route(be, "/request", filters=(strip, Timeouts(request=0.2))),
        route(be, "/backend", filters=(strip, Timeouts(backend_request=0.2))),
        route(be, "/read", filters=(strip, Timeouts(read=0.2))),
    )
    with proxy(lt, routes) as p:
        for prefix in ("/request", "/backend", "/read"):
            assert request(p.port, prefix + "/fast").status == 200
            slow = request(p.port, prefix + "/slow")  # the backend never answers /slow
            assert slow.status == 504, prefix


def test_connect_timeout(lt: LoopThread) -> None:
    """ingress-nginx proxy-connect-timeout: a backend that does not accept in time gives
    504 (a listening socket whose accept queue is full drops new SYNs)."""
    full = socket.socket()
    full.bind((HOST, 0))
    full.listen(0)
    port = full.getsockname()[1]
    queued = []
    try:
        for _ in range(8):  # fill the accept queue; later connects hang
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex((HOST, port))
            queued.append(c)
        be = backend_of("full", port)
        with proxy(lt, table(route(be, "/", filters=(Timeouts(connect=0.3),)))) as p:
            assert request(p.port, "/").status == 504
    finally:
        for c in queued:
            c.close()
        full.close()


def test_tries_across_endpoints(lt: LoopThread, pair: list[Backend]) -> None:
    """ingress-nginx proxy-next-upstream-tries (proxy.go): a failed attempt (connect
    refused, or a broken answer with invalid_header) moves to the next endpoint, at most
    `tries` attempts in all; by default ("error timeout") a broken answer is not tried
    again."""
    dead = [free_port(), free_port()]
    be = backend_of("mixed", *dead, pair[0].port)
    with proxy(lt, table(route(be, "/", filters=(Retry(tries=2),)))) as p:
        assert request(p.port, "/").status == 502  # two refused connects, then no more
    with proxy(lt, table(route(be, "/", filters=(Retry(tries=3),)))) as p:
        assert request(p.port, "/").status == 200
    both = backend_of("pair", *(b.port for b in pair))
    once = route(both, "/once", filters=(Rewrite(ReplacePrefix("/")),))
    invalid = Retry(tries=2, on=("error", "timeout", "invalid_header"))
    with proxy(lt, table(once, route(both, "/", filters=(invalid,)))) as p:
        before = [len(b.stats.requests) for b in pair]
        assert request(p.port, "/bad").status == 502
        assert [len(b.stats.requests) - n for b, n in zip(pair, before, strict=True)] == [1, 1]
        before = [len(b.stats.requests) for b in pair]
        assert request(p.port, "/once/bad").status == 502
        assert sum(len(b.stats.requests) - n for b, n in zip(pair, before, strict=True)) == 1


def test_https_to_the_pod(lt: LoopThread) -> None:
    """ingress-nginx backendprotocol.go "should set backend protocol to https://" and
    proxyssl.go (proxy-ssl-secret, -verify, -name, -server-name): TLS to an nginx backend
    listening with ssl; its self-signed certificate not checked unless proxy-ssl-verify,
    then checked against the secret's ca.crt for proxy-ssl-name (a wrong name is refused);
    the secret's tls.crt/tls.key presented as client certificate (nginx verifies it);
    AUTO_HTTP speaks TLS only to HTTPS clients; plain HTTP to that port gets nginx's 400."""
    port = free_port()
    cert, key = selfsigned.generate("pod.test", ["pod.test"])
    client_cert, client_key = selfsigned.generate("seaway-client", ["seaway-client"])
    server = (
        f"listen 127.0.0.1:{port} ssl; ssl_certificate {{dir}}/c.pem;"
        " ssl_certificate_key {dir}/k.pem; ssl_client_certificate {dir}/client.pem;"
        " ssl_verify_client optional_no_ca;"
        " location / { return 200 'tls $ssl_protocol client=$ssl_client_s_dn'; }"
    )
    files = {"c.pem": cert, "k.pem": key, "client.pem": client_cert}
    with nginx_server(port, server, files=files):
        be = backend_of("pod", port)
        verified = UpstreamProtocol("HTTPS", True, "pod.test", ca_pem=cert)
        wrong_name = UpstreamProtocol("HTTPS", True, "other.test", ca_pem=cert)
        with_client = UpstreamProtocol("HTTPS", cert_pem=client_cert, key_pem=client_key)
        strip = Rewrite(ReplacePrefix("/"))
        routes = table(
            route(be, "/tls", filters=(UpstreamProtocol("HTTPS"),)),
            route(be, "/unknown-ca", filters=(UpstreamProtocol("HTTPS", verify=True),)),
            route(be, "/verified", filters=(strip, verified)),
            route(be, "/wrong-name", filters=(strip, wrong_name)),
            route(be, "/client", filters=(strip, with_client)),
            route(be, "/auto", filters=(UpstreamProtocol("AUTO"),)),
            route(be, "/"),
        )
        with proxy(lt, routes, https=True) as p:
            for _ in range(2):  # the second one on the pooled TLS connection
                a = request(p.port, "/tls")
                assert a.status == 200 and a.body.startswith(b"tls TLSv1.")
            assert request(p.port, "/unknown-ca").status == 502  # self-signed: refused
            assert request(p.port, "/verified").body.startswith(b"tls TLSv1.")
            assert request(p.port, "/wrong-name").status == 502
            assert request(p.port, "/client").body.endswith(b"client=CN=seaway-client")
            assert request(p.port, "/tls").body.endswith(b"client=")
            assert request(p.port, "/auto").status == 400  # an HTTP client: plain HTTP
            auto = request(https_port(p), "/auto", tls=True)
            assert auto.status == 200 and auto.body.startswith(b"tls TLSv1.")
            assert request(p.port, "/plain").status == 400


def test_large_answers_over_tls_to_the_pod_come_whole(lt: LoopThread) -> None:
    """TLS to the pod (as test_https_to_the_pod) with answers large enough that the
    upstream connection reads into the loop's read buffer (ingress/upstream.py
    UpstreamReader, through the TLS transport): on one client connection, large and small
    answers in turn, every body byte for byte (each byte tells its position), and the
    pooled TLS connection does switch to the buffered reader."""
    port = free_port()
    cert, key = selfsigned.generate("pod.test", ["pod.test"])
    big = bytes((i * 7 + i // 251) % 256 for i in range(300_000))
    server = (
        f"listen 127.0.0.1:{port} ssl; ssl_certificate {{dir}}/c.pem;"
        " ssl_certificate_key {dir}/k.pem; keepalive_requests 1000;"
        " location /files/ { alias {dir}/; }"
        " location / { return 200 'small'; }"
    )
    with nginx_server(port, server, files={"c.pem": cert, "k.pem": key, "big": big}):
        routes = table(route(backend_of("pod", port), "/", filters=(UpstreamProtocol("HTTPS"),)))
        with proxy(lt, routes) as p:
            paths = ["/files/big", "/files/big", "/small", "/files/big", "/files/big"]
            raw = [f"GET {path} HTTP/1.1\r\nHost: {HOSTNAME}\r\n\r\n".encode() for path in paths]
            answers = on_one_connection(p.port, raw, timeout=20)
            assert [a.status for a in answers] == [200] * len(paths)
            for path, answer in zip(paths, answers, strict=True):
                assert answer.body == (big if path == "/files/big" else b"small"), path

            async def readers() -> list[bool]:
                return [
                    isinstance(c.transport.get_protocol(), UpstreamReader)
                    for pools in runtime(p)._tls_pools.values()
                    for pool in pools.endpoints()
                    for c, _ in pool._idle
                    if c.transport is not None
                ]

            assert lt.run(readers()) == [True]  # (its last answer was large)


def test_custom_error_pages(lt: LoopThread, pair: list[Backend]) -> None:
    """ingress-nginx custom-http-errors (customhttperrors.go; nginx.tmpl's custom error
    location): an answer with a listed status is replaced by the error backend's answer
    to "/" with X-Code, X-Format and X-Original-URI; other statuses pass; without an error
    backend, seaway's own page; the proxy's own 503 and 502 are replaced too (nginx's
    error_page applies to them)."""
    main, errors = pair
    be = backend_of("one", main.port)
    pages = ErrorPages(
        (503, 404), backend_of("errors", errors.port), "default", "site", "one", "80"
    )
    own = ErrorPages((503,))  # no backend: seaway's own page for the status
    routes = table(
        route(be, "/own", filters=(Rewrite(ReplacePrefix("/")), own)),
        route(be, "/", filters=(pages,)),
    )
    with proxy(lt, routes) as p:
        a = request(p.port, "/status/503", headers=[("Accept", "application/json")])
        assert a.status == 200 and a.json()["name"] == "two" and a.json()["path"] == "/"
        assert a.sent_header("X-Code") == "503"
        assert a.sent_header("X-Format") == "application/json"
        assert a.sent_header("X-Original-URI") == "/status/503"
        assert a.sent_header("X-Service-Name") == "one"
        assert a.sent_header("X-Ingress-Name") == "site"
        assert a.sent_header("X-Service-Port") == "80"
        passed = request(p.port, "/status/500")
        assert passed.status == 500 and passed.header("X-Name") == "one"
        mine = request(p.port, "/own/status/503")
        assert mine.status == 503 and mine.body == b"503 Service Unavailable\n"
        assert mine.header("X-Name") is None
    # The proxy's own statuses too: a Service without usable endpoints (503), a backend
    # that breaks before answering (502).
    down = RouteBackend("default/down:80", (), None, 503, "has no usable endpoints")
    pages = ErrorPages((502, 503), backend_of("errors", errors.port), "default", "site")
    routes = table(route(down, "/down", filters=(pages,)), route(be, "/", filters=(pages,)))
    with proxy(lt, routes) as p:
        a = request(p.port, "/down/x")
        assert a.status == 200 and a.json()["name"] == "two"
        assert a.sent_header("X-Code") == "503" and a.sent_header("X-Original-URI") == "/down/x"
        b = request(p.port, "/bad")
        assert b.status == 200 and b.sent_header("X-Code") == "502"


def test_request_mirror(lt: LoopThread, pair: list[Backend]) -> None:
    """Gateway API HTTPRouteRequestMirror (httproute-request-mirror.go): the backend
    answers; the mirror gets a copy of the request (with the route's header edits), its
    answer dropped."""
    main, mirror = pair
    be = backend_of("one", main.port)
    edits = RequestHeaders(set=(("X-Header-Set", "set-overwrites-values"),))
    filters = (edits, Mirror(backend_of("two", mirror.port)))
    with proxy(lt, table(route(be, "/", filters=filters))) as p:
        before = len(mirror.stats.requests)
        a = request(p.port, "/mirror?q=1")
        assert a.status == 200 and a.json()["name"] == "one"
        wait_until(lt, lambda: len(mirror.stats.requests) > before)
        copy = mirror.stats.requests[-1]
        assert copy["path"] == "/mirror?q=1"
        assert copy["headers"].get("X-Header-Set") == "set-overwrites-values"
        posted = request(p.port, "/echo-body", method="POST", body=b"hello")
        assert posted.body == b"hello"
        wait_until(lt, lambda: mirror.stats.requests[-1]["path"] == "/echo-body")


def test_response_filters_on_keep_alive_connections(lt: LoopThread, pair: list[Backend]) -> None:
    """Answers to HTTP/1.1 keep-alive clients (the common case, which the upstream side
    otherwise passes through byte for byte) still get the route's response edits, CORS
    fields, sticky cookie and error pages, request after request on one connection."""
    main, errors = pair
    be = backend_of("one", main.port)
    filters = (
        Cors(),
        ResponseHeaders(set=(("X-Edited", "yes"),)),
        CookieAffinity("SERVERID"),
        ErrorPages((503,), backend_of("errors", errors.port)),
    )
    with proxy(lt, table(route(be, "/", filters=filters))) as p:
        ask = b"GET /x HTTP/1.1\r\nHost: app.test\r\n\r\n"
        down = b"GET /status/503 HTTP/1.1\r\nHost: app.test\r\n\r\n"
        answers = on_one_connection(p.port, [ask, ask, down, ask])
        assert [a.status for a in answers] == [200, 200, 200, 200]
        for a in answers:
            assert a.header("X-Edited") == "yes"
            assert a.header("Access-Control-Allow-Origin") == "*"
            assert (a.header("Set-Cookie") or "").startswith("SERVERID=")
        assert answers[2].json()["name"] == "two"  # the error page backend
