"""Retries on real sockets (the rule: ingress/retry.py): GETs pass an endpoint that
refuses connections and one that hangs; a POST that reached a backend is never sent
twice, one whose connect failed is; a PUT's whole body goes again; per-try and
whole-request timeouts; statuses to retry; the retry budget under a total outage (wrk
as the client, backend hits counted); a pinned endpoint (cookie, hash) at its cap or
gone fails over. ingress-nginx's e2e tests check only the nginx.conf these annotations
produce (test/e2e/annotations/proxy.go "should build proxy next upstream"); the
behaviour tested here is nginx's proxy_next_upstream's, as its documentation states it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
from collections import Counter
from collections.abc import Iterator

import pytest

from discovery.model import LoadBalancing
from discovery.snapshot import EndpointInfo
from ingress.route_filters import Retry, Timeouts
from ingress.settings import HttpSettings
from proxy.userspace.tcp import reset
from tests.ingress import routerkit as k
from tests.ingress.filterkit import backend_of, proxy, request, table
from tests.ingress.l7kit import (
    HOST,
    Backend,
    LoopThread,
    Proxy,
    exchange,
    get,
    parse_responses,
    port_info,
)
from tests.ingress.nginxkit import ann
from tests.ingress.nginxkit import snapshot as nginx_snapshot
from tests.ingress.routemodel import route
from tests.support import free_port


class Misbehaving(asyncio.Protocol):
    """A backend endpoint that counts the request heads it gets and then, by `mode`:
    "hang" (never answers), "reset" (RST at once), or answers every request with
    `status` (keep-alive)."""

    def __init__(self, owner: MisbehavingServer) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.owner.transports.append(self.transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        heads = len(re.findall(rb"(?:GET|POST|PUT|HEAD|DELETE) [^ ]+ HTTP/1\.1\r\n", data))
        self.owner.hits += heads
        t = self.transport
        assert t is not None
        if not heads or self.owner.mode == "hang":
            return
        if self.owner.mode == "reset":
            reset(t)
            return
        status = self.owner.status
        for _ in range(heads):
            t.write(b"HTTP/1.1 %d X\r\nContent-Length: 3\r\n\r\n%d" % (status, status))


class MisbehavingServer:
    def __init__(self, mode: str, status: int = 503) -> None:
        self.mode = mode
        self.status = status
        self.hits = 0
        self.transports: list[asyncio.Transport] = []
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> MisbehavingServer:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: Misbehaving(self), HOST, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def endpoint(self) -> EndpointInfo:
        return EndpointInfo(HOST, self.port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for t in self.transports:
            t.abort()


@contextlib.contextmanager
def servers(lt: LoopThread, *specs: tuple[str, int]) -> Iterator[list[MisbehavingServer]]:
    started = [lt.run(MisbehavingServer(mode, status).start()) for mode, status in specs]
    try:
        yield started
    finally:
        for s in started:
            lt.run(s.close())


@pytest.fixture
def healthy(lt: LoopThread) -> Iterator[Backend]:
    backend = lt.run(Backend("healthy").start())
    yield backend
    lt.run(backend.close())


def refusing() -> EndpointInfo:
    return EndpointInfo(HOST, free_port())


@contextlib.contextmanager
def served(lt: LoopThread, eps: list[EndpointInfo], settings: HttpSettings) -> Iterator[Proxy]:
    """web.test/ over `eps`, round robin (so every endpoint gets its turn)."""
    p = Proxy(lt, settings)
    ing = k.ingress("site", k.rule("web.test", k.path("/", "web")))
    p.apply(k.snapshot([ing], [port_info("web", eps)]))
    try:
        yield p
    finally:
        p.close()


def send(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    head = f"{method} {path} HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n"
    if body or method in ("POST", "PUT"):
        head += f"Content-Length: {len(body)}\r\n"
    answers = parse_responses(exchange(port, head.encode() + b"\r\n" + body))
    return (answers[0].status, bytes(answers[0].body)) if answers else (0, b"")


def test_gets_pass_a_refusing_and_a_hung_endpoint(lt: LoopThread, healthy: Backend) -> None:
    """ingress-nginx's default proxy-next-upstream "error timeout", 3 tries: with one
    endpoint refusing connections and one accepting but never answering (a deadlocked
    pod still listed as ready), every GET is answered 200 by the healthy one; the hung
    one is given up on after the per-try read timeout, not the whole request's."""
    settings = HttpSettings(upstream_timeout=0.3)
    with servers(lt, ("hang", 0)) as (hung,):
        eps = [refusing(), hung.endpoint, healthy.endpoint]
        with served(lt, eps, settings) as p:
            answers = [get(p.port, f"/get/{i}") for i in range(12)]
    assert [status for status, _ in answers] == [200] * 12
    assert all(b'"name": "healthy"' in body for _, body in answers)
    assert hung.hits >= 3  # round robin sent it its share; each was tried again elsewhere
    assert len(healthy.stats.requests) == 12


def test_post_is_not_sent_twice_once_it_reached_a_backend(
    lt: LoopThread, healthy: Backend
) -> None:
    """nginx proxy_next_upstream: "requests with a non-idempotent method (POST, LOCK,
    PATCH) are not passed to the next server if a request has been sent to an upstream
    server". A POST reset by its backend gets 502 and no other backend sees it; a PUT
    (idempotent) with its whole body in hand is sent again, body and all; a POST whose
    connect failed (nothing sent) is tried on the next endpoint; a hung endpoint's POST
    gets 504."""
    settings = HttpSettings(upstream_timeout=0.3)
    with servers(lt, ("reset", 0), ("hang", 0)) as (resetting, hung):
        with served(lt, [resetting.endpoint, healthy.endpoint], settings) as p:
            posts = [send(p.port, "POST", "/echo-body", b"order=%d" % i) for i in range(8)]
            reached_reset = resetting.hits
            puts = [send(p.port, "PUT", "/echo-body", b"put-%d" % i) for i in range(8)]
        statuses = Counter(s for s, _ in posts)
        assert statuses[502] == reached_reset >= 1, (statuses, reached_reset)
        assert statuses[200] == 8 - reached_reset
        served_posts = [r for r in healthy.stats.requests if r["method"] == "POST"]
        assert len(served_posts) == statuses[200]  # none of the failed ones reached it
        assert [(s, b) for s, b in puts] == [(200, b"put-%d" % i) for i in range(8)]
        assert resetting.hits > reached_reset  # PUTs did reach it first, then went on
        with served(lt, [refusing(), healthy.endpoint], settings) as p:
            assert [send(p.port, "POST", "/echo-body", b"x=%d" % i) for i in range(4)] == [
                (200, b"x=%d" % i) for i in range(4)
            ]
        with served(lt, [hung.endpoint], settings) as p:
            assert send(p.port, "POST", "/echo-body", b"slow")[0] == 504
            assert hung.hits == 1


def test_non_idempotent_and_off(lt: LoopThread, healthy: Backend) -> None:
    """proxy-next-upstream "error timeout non_idempotent": a POST reset by its backend
    goes to the next endpoint with its body; "off": not even a refused connect is tried
    again (nginx: 502)."""
    with servers(lt, ("reset", 0)) as (resetting,):
        be = backend_of("web", resetting.port, healthy.port)
        again = Retry(3, ("error", "timeout"), non_idempotent=True)
        with proxy(lt, table(route(be, "/echo-body", filters=(again,)))) as p:
            answers = [request(p.port, "/echo-body", method="POST", body=b"b%d" % i)
                       for i in range(6)]
        assert [(a.status, a.body) for a in answers] == [(200, b"b%d" % i) for i in range(6)]
        assert resetting.hits >= 1
    dead = backend_of("dead", free_port(), healthy.port)
    off = Retry(3, ())
    with proxy(lt, table(route(dead, "/", filters=(off,)))) as p:
        statuses = Counter(request(p.port, f"/o/{i}").status for i in range(6))
    assert statuses == Counter({502: 3, 200: 3})


def test_per_try_and_whole_request_timeouts(lt: LoopThread, healthy: Backend) -> None:
    """Gateway API HTTPRoute timeouts: backendRequest is per try (a hung endpoint's try is
    cut after it and the request goes on to the next endpoint: 200), request bounds the
    whole exchange, tries included (504; fewer tries than endpoints fit in it)."""
    with servers(lt, ("hang", 0), ("hang", 0), ("hang", 0)) as hung:
        be = backend_of("web", hung[0].port, healthy.port)
        per_try = Timeouts(request=5.0, backend_request=0.2)
        with proxy(lt, table(route(be, "/", filters=(per_try,)))) as p:
            assert [request(p.port, f"/t/{i}").status for i in range(4)] == [200] * 4
        assert hung[0].hits >= 1
        all_hung = backend_of("hung", *(h.port for h in hung))
        whole = Timeouts(request=0.5, backend_request=0.3)
        before = sum(h.hits for h in hung)
        with proxy(lt, table(route(all_hung, "/", filters=(whole,)))) as p:
            assert request(p.port, "/w").status == 504
        assert sum(h.hits for h in hung) - before == 2  # the third try never began


def test_statuses_to_retry(lt: LoopThread, healthy: Backend) -> None:
    """proxy-next-upstream "error timeout http_503": an endpoint's 503 is not passed on
    while another endpoint may answer; when none is left the last answer goes to the
    client as it is (nginx)."""
    with servers(lt, ("answer", 503), ("answer", 503)) as (a, b):
        codes = Retry(3, ("error", "timeout"), (503,))
        be = backend_of("web", a.port, healthy.port)
        with proxy(lt, table(route(be, "/", filters=(codes,)))) as p:
            assert [request(p.port, f"/s/{i}").status for i in range(6)] == [200] * 6
        assert a.hits >= 2
        both = backend_of("both", a.port, b.port)
        with proxy(lt, table(route(both, "/", filters=(codes,)))) as p:
            last = request(p.port, "/s")
        assert (last.status, last.body) == (503, b"503")
        assert b.hits >= 1


WRK_REQUESTS = re.compile(r"(\d+) requests in")


def wrk(port: int, connections: int, seconds: int = 2) -> int:
    """Requests wrk completed against web.test/ on `port`."""
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s",
         "-H", "Host: web.test", f"http://{HOST}:{port}/"],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout
    m = WRK_REQUESTS.search(out)
    assert m is not None, out
    return int(m.group(1))


@pytest.mark.skipif(subprocess.run(["which", "wrk"], capture_output=True).returncode != 0,
                    reason="wrk is not installed")
def test_the_retry_budget_caps_retries_under_a_total_outage(lt: LoopThread) -> None:
    """Every endpoint resets each request (a total outage): without a budget each request
    would reach all three (3 tries: the load tripled). One client at a time stays within
    the minimum retry concurrency (3), so its requests are each tried three times; under
    64 connections of wrk, retries in flight stay under 20% of the other requests in
    flight, so backend hits stay near 1.2 times the requests (asserted: at most 1.25,
    the minimum of 3 in flight letting a few more through) instead of 3 times."""
    settings = HttpSettings()
    with (
        servers(lt, ("reset", 0), ("reset", 0), ("reset", 0)) as down,
        served(lt, [s.endpoint for s in down], settings) as p,
    ):
        assert [get(p.port, f"/one/{i}")[0] for i in range(5)] == [502] * 5
        assert sum(s.hits for s in down) == 15
        before = sum(s.hits for s in down)
        requests = wrk(p.port, 64)
        hits = sum(s.hits for s in down) - before
        ctx = p.server.ctx  # type: ignore[union-attr]
        refused = sum(b.refused for b in ctx.budgets.values())
    retries = hits - requests
    assert requests >= 200, requests
    assert 0 < retries <= 0.25 * requests, (requests, hits, refused)
    assert refused > 0


# -- pinned endpoints ------------------------------------------------------------------------


def _pinned_proxy(lt: LoopThread, eps: list[EndpointInfo], annotations: dict[str, str]) -> Proxy:
    p = Proxy(lt, HttpSettings(max_endpoint_requests=1))
    ing = k.ingress("site", k.rule("web.test", k.path("/", "web")), annotations=annotations)
    ports = [port_info("web", eps, balancing=LoadBalancing("round-robin"))]
    p.apply(nginx_snapshot([ing], (), None, ports))
    return p


def _held(port: int, headers: str) -> socket.socket:
    """A /slow request (the Python backend never answers it) that keeps its endpoint at
    its cap of one request in flight while the socket stays open."""
    s = socket.create_connection((HOST, port), timeout=10)
    s.sendall(f"GET /slow HTTP/1.1\r\nHost: web.test\r\n{headers}\r\n".encode())
    return s


def _name(port: int, headers: str) -> tuple[int, str, str]:
    raw = exchange(port, f"GET /who HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n"
                         f"{headers}\r\n".encode())
    answer = parse_responses(raw)[0]
    body = bytes(answer.body).decode()
    name = re.search(r'"name": "([^"]+)"', body)
    return answer.status, name.group(1) if name else "", answer.headers.get("set-cookie", "")


def _wait_held(lt: LoopThread, p: Proxy) -> None:
    from tests.support import wait_until

    ctx = p.server.ctx  # type: ignore[union-attr]
    wait_until(lambda: any(any(b.active) for b in list(ctx.balancers.values())), 5,
               "the held request to be in flight")


def test_a_pinned_endpoint_at_its_cap_or_gone_fails_over(lt: LoopThread) -> None:
    """upstream-hash-by and cookie affinity (ingress-nginx): a request whose pinned
    endpoint is at its per-endpoint cap goes to another endpoint (not 503); the cookie
    is re-pinned to it (a new Set-Cookie), as ingress-nginx's sticky balancer does when
    the cookie's endpoint cannot be used. An endpoint that went away (connections reset,
    connects refused) fails over the same way."""
    webs = [lt.run(Backend(f"web{i}").start()) for i in range(3)]
    eps = [b.endpoint for b in webs]
    try:
        p = _pinned_proxy(lt, eps, ann(upstream_hash_by="$http_x_user"))
        try:
            status, home, _ = _name(p.port, "X-User: alice\r\n")
            assert status == 200
            with _held(p.port, "X-User: alice\r\n"):
                _wait_held(lt, p)
                status, other, _ = _name(p.port, "X-User: alice\r\n")
            assert status == 200 and other not in ("", home)
        finally:
            p.close()
        p = _pinned_proxy(lt, eps, ann(affinity="cookie"))
        try:
            status, home, cookie = _name(p.port, "")
            assert status == 200 and cookie.startswith("INGRESSCOOKIE=")
            sent = "Cookie: " + cookie.split(";")[0] + "\r\n"
            assert _name(p.port, sent)[:2] == (200, home)  # pinned
            with _held(p.port, sent):
                _wait_held(lt, p)
                status, other, repinned = _name(p.port, sent)
            assert status == 200 and other not in ("", home)
            assert repinned.startswith("INGRESSCOOKIE=") and repinned != cookie
            # The pinned endpoint goes away: its connections reset, its port refuses.
            gone = next(b for b in webs if b.name == home)
            lt.run(gone.close())
            for t in gone.stats.transports:
                lt.loop.call_soon_threadsafe(t.abort)
            status, other, _ = _name(p.port, sent)
            assert status == 200 and other not in ("", home)
        finally:
            p.close()
    finally:
        for b in webs:
            lt.run(b.close())
