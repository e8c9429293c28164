"""Access filters at request time through the proxy: basic auth, allow/deny ranges, rate
and concurrency limits, body limits, CORS. Each case names the ingress-nginx e2e test
(test/e2e/annotations/*.go) it follows. Rate limits run on an injected clock: the counts
do not depend on how fast the machine is."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
from collections.abc import Iterator

import pytest

from discovery.htpasswd import htpasswd_text
from ingress.route_filters import BasicAuth, BodyLimit, Cors, RateLimit, SourceRanges
from tests.ingress.filterkit import (
    backend_of,
    backends,
    on_one_connection,
    parse,
    proxy,
    request,
    runtime,
    send,
    table,
)
from tests.ingress.l7kit import HOST, Backend, LoopThread
from tests.ingress.routemodel import route


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def echo(lt: LoopThread) -> Iterator[Backend]:
    with backends(lt, "echo") as (b,):
        yield b


def basic(user: str, password: str) -> tuple[str, str]:
    return ("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


@pytest.mark.skipif(shutil.which("htpasswd") is None, reason="htpasswd is not installed")
def test_basic_auth(lt: LoopThread, echo: Backend) -> None:
    """auth.go: 401 without or with wrong credentials ("401 Authorization Required" page,
    WWW-Authenticate with the realm), 200 with them (an htpasswd file with a bcrypt and
    an apr1 user, as `htpasswd -c auth foo` writes: bcrypt is checked in a thread, the
    event loop goes on meanwhile); the Authorization header is not forwarded
    (nginx.tmpl: proxy_set_header Authorization "")."""
    lines = [
        subprocess.run(
            ["htpasswd", "-nb", flag, user, "bar"], capture_output=True, text=True, check=True
        ).stdout.strip()
        for flag, user in (("-B", "foo"), ("-m", "apr"))
    ]
    users = tuple(htpasswd_text("\n".join(lines).encode()).users)
    be = backend_of("echo", echo.port)
    filters = (BasicAuth("test auth", users),)
    with proxy(lt, table(route(be, "/", filters=filters))) as p:
        a = request(p.port, "/")
        assert a.status == 401 and a.header("WWW-Authenticate") == 'Basic realm="test auth"'
        assert a.body == b"401 Unauthorized\n"
        assert request(p.port, "/", headers=[basic("foo", "wrong")]).status == 401
        assert request(p.port, "/", headers=[basic("nobody", "bar")]).status == 401
        for user in ("foo", "apr", "foo"):
            ok = request(p.port, "/", headers=[basic(user, "bar")])
            assert ok.status == 200
            assert ok.sent_header("Authorization") is None


def test_basic_auth_401_carries_cors(lt: LoopThread, echo: Backend) -> None:
    """auth.go "should return status code 401 and cors headers when authentication and
    cors is configured but Authorization header is not configured"."""
    be = backend_of("echo", echo.port)
    filters = (Cors(), BasicAuth("r", (("foo", "{PLAIN}bar"),)))
    with proxy(lt, table(route(be, "/", filters=filters))) as p:
        a = request(p.port, "/")
        assert a.status == 401 and a.header("Access-Control-Allow-Origin") == "*"


def test_allow_and_deny_source_ranges(lt: LoopThread, echo: Backend) -> None:
    """ipallowlist.go / ipdenylist.go: a client outside the allow list, or inside the deny
    list, gets 403; X-Forwarded-For is not trusted."""
    be = backend_of("echo", echo.port)
    routes = table(
        route(be, "/allowed", filters=(SourceRanges(allow=("127.0.0.0/8",)),)),
        route(be, "/elsewhere", filters=(SourceRanges(allow=("18.0.0.0/8", "56.0.0.0/8")),)),
        route(be, "/denied", filters=(SourceRanges(deny=("127.0.0.1/32",)),)),
    )
    with proxy(lt, routes) as p:
        assert request(p.port, "/allowed").status == 200
        spoofed = [("X-Forwarded-For", "18.1.1.1")]
        a = request(p.port, "/elsewhere", headers=spoofed)
        assert a.status == 403 and a.body == b"403 Forbidden\n"
        assert request(p.port, "/denied").status == 403


def test_rate_limits_on_an_injected_clock(lt: LoopThread, echo: Backend) -> None:
    """ingress-nginx limit-rps with limit-burst-multiplier (nginx limit_req burst nodelay):
    with rps 1 and multiplier 2, three requests pass at once and the fourth gets 503;
    one more passes a second later; limit-req-status-code changes the status;
    limit-whitelist exempts addresses."""
    be = backend_of("echo", echo.port)
    routes = table(
        route(be, "/rps", filters=(RateLimit(rps=1, burst_multiplier=2),)),
        route(be, "/rpm", filters=(RateLimit(rpm=1, burst_multiplier=1, status=429),)),
        route(
            be, "/exempt", filters=(RateLimit(rps=1, burst_multiplier=1, exempt=("127.0.0.1",)),)
        ),
    )
    with proxy(lt, routes) as p:
        clock = Clock()
        runtime(p).clock = clock
        assert [request(p.port, "/rps").status for _ in range(4)] == [200, 200, 200, 503]
        clock.now += 1.0
        assert [request(p.port, "/rps").status for _ in range(2)] == [200, 503]
        assert [request(p.port, "/rpm").status for _ in range(3)] == [200, 200, 429]
        clock.now += 30
        assert request(p.port, "/rpm").status == 429
        assert all(request(p.port, "/exempt").status == 200 for _ in range(5))
        p.apply_table(routes)  # a new configuration with the same limits keeps the counts
        assert request(p.port, "/rpm").status == 429


def test_limit_connections_counts_requests_under_way(lt: LoopThread, echo: Backend) -> None:
    """limitconnections.go: with limit-connections N, N slow requests are served and the
    others get 503; a request that ends (here: its client leaves) frees its place."""
    be = backend_of("echo", echo.port)
    routes = table(route(be, "/", filters=(RateLimit(connections=2),)))
    with proxy(lt, routes) as p:
        seen = len(echo.stats.requests)
        slow = [socket.create_connection((HOST, p.port), timeout=10) for _ in range(2)]
        try:
            for s in slow:
                s.sendall(b"GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n")
            while len(echo.stats.requests) < seen + 2:  # both reached the backend
                lt.run(_tick())
            assert request(p.port, "/fast").status == 503
        finally:
            slow[0].close()
        for _ in range(200):  # the proxy sees the close; no timing asserted
            status = request(p.port, "/fast").status
            if status == 200:
                break
            lt.run(_tick())
        assert status == 200
        slow[1].close()


async def _tick() -> None:
    import asyncio

    await asyncio.sleep(0.01)


def test_body_limit(lt: LoopThread, echo: Backend) -> None:
    """ingress-nginx proxy-body-size (proxy.go "should set client_max_body_size"): a body
    over the route's limit gets 413, declared or chunked; at the limit it passes."""
    be = backend_of("echo", echo.port)
    with proxy(lt, table(route(be, "/", filters=(BodyLimit(10),)))) as p:
        assert request(p.port, "/echo-body", method="POST", body=b"x" * 10).body == b"x" * 10
        a = request(p.port, "/echo-body", method="POST", body=b"x" * 11)
        assert a.status == 413
        chunked = (
            b"POST /echo-body HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"
        )
        answers = parse(send(p.port, chunked))
        assert [x.status for x in answers] == [413]


def test_cors(lt: LoopThread, echo: Backend) -> None:
    """cors.go: "should enable cors" (preflight OPTIONS answered 204 with the defaults,
    never reaching the backend), "should allow origin for cors" (the origin echoed on the
    backend's answer), "should not allow - single origin for multiple cors values" (no
    header, and OPTIONS proxied), the backend's own Access-Control-* replaced."""
    be = backend_of("echo", echo.port)
    routes = table(
        route(be, "/any", filters=(Cors(),)),
        route(
            be,
            "/listed",
            filters=(Cors(allow_origins=("https://origin.cors.com:8080",), max_age=10),),
        ),
    )
    with proxy(lt, routes) as p:
        seen = len(echo.stats.requests)
        pre = request(p.port, "/any", method="OPTIONS")
        assert pre.status == 204 and pre.body == b""
        assert pre.header("Access-Control-Allow-Origin") == "*"
        assert (
            pre.header("Access-Control-Allow-Methods") == "GET, PUT, POST, DELETE, PATCH, OPTIONS"
        )
        assert pre.header("Access-Control-Max-Age") == "1728000"
        assert pre.header("Content-Length") == "0"
        assert len(echo.stats.requests) == seen
        get = request(p.port, "/any")
        assert get.status == 200 and get.header("Access-Control-Allow-Credentials") == "true"
        origin = "https://origin.cors.com:8080"
        ok = request(p.port, "/listed", headers=[("Origin", origin)])
        assert ok.all("Access-Control-Allow-Origin") == [origin]
        assert ok.header("Access-Control-Max-Age") == "10"
        no = request(p.port, "/listed", headers=[("Origin", "http://no.origin.com")])
        assert no.status == 200 and no.header("Access-Control-Allow-Origin") is None
        proxied = request(p.port, "/listed", method="OPTIONS", headers=[("Origin", "http://x.y")])
        assert proxied.status == 200 and proxied.json()["method"] == "OPTIONS"


def test_answers_with_fields_are_never_replayed_by_the_memo(lt: LoopThread, echo: Backend) -> None:
    """The exact-bytes memo (ingress/http1.py) repeats a request's routing for identical
    bytes on one connection; a route whose answers carry fields (401 and its challenge, a
    redirect's Location) or that checks per request must answer each repeat in full."""
    be = backend_of("echo", echo.port)
    filters = (BasicAuth("r", (("foo", "{PLAIN}bar"),)),)
    with proxy(lt, table(route(be, "/", filters=filters))) as p:
        raw = b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n"
        answers = on_one_connection(p.port, [raw, raw, raw])
        assert [a.status for a in answers] == [401, 401, 401]
        assert all(a.header("WWW-Authenticate") == 'Basic realm="r"' for a in answers)
