"""The L7 proxy end to end: real listener, real backends (Python and nginx), curl and raw
sockets as clients."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator

import pytest

from discovery.snapshot import EndpointInfo
from ingress.settings import HttpSettings
from tests.ingress.l7kit import (
    HOST,
    Backend,
    LoopThread,
    Proxy,
    access_log_lines,
    exchange,
    get,
    nginx_backend,
    parse_responses,
    two_service_snapshot,
)
from tests.support import free_port

SETTINGS = HttpSettings(upstream_timeout=0.3, connect_timeout=2.0)


@pytest.fixture(scope="module")
def site(lt: LoopThread) -> Iterator[tuple[Proxy, list[Backend], Backend]]:
    """web.test -> three `web` backends (round robin), web.test/api -> one `api` backend."""
    webs = [lt.run(Backend(f"web{i}").start()) for i in range(3)]
    api = lt.run(Backend("api").start())
    proxy = Proxy(lt, SETTINGS)
    proxy.apply(two_service_snapshot([b.endpoint for b in webs], [api.endpoint]))
    try:
        yield proxy, webs, api
    finally:
        proxy.close()
        for b in [*webs, api]:
            lt.run(b.close())


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "20", *args], capture_output=True, timeout=30
    )


def doc(body: bytes) -> dict[str, object]:
    return json.loads(body)  # type: ignore[no-any-return]


def test_routing_by_host_and_path(site: tuple[Proxy, list[Backend], Backend]) -> None:
    proxy, _, _ = site
    status, body = get(proxy.port, "/api/users?id=7")
    assert status == 200 and doc(body)["name"] == "api"
    assert doc(body)["path"] == "/api/users?id=7"
    status, body = get(proxy.port, "/index.html")
    assert status == 200 and str(doc(body)["name"]).startswith("web")
    status, body = get(proxy.port, "/api", host="WEB.test:8080")
    assert status == 200 and doc(body)["name"] == "api"
    assert doc(body)["headers"]["Host"] == "WEB.test:8080"  # type: ignore[index]


def test_404_and_503(site: tuple[Proxy, list[Backend], Backend]) -> None:
    proxy, _, _ = site
    assert get(proxy.port, "/", host="nobody.test")[0] == 404
    assert get(proxy.port, "/other", host="nobody.test")[0] == 503


def test_round_robin_over_three_endpoints(site: tuple[Proxy, list[Backend], Backend]) -> None:
    proxy, _, _ = site
    names = [str(doc(get(proxy.port, "/rr")[1])["name"]) for _ in range(9)]
    assert sorted(names) == sorted(["web0", "web1", "web2"] * 3)
    assert names[:3] == names[3:6] == names[6:9]  # a rotation, not random


def test_upstream_connections_are_reused(lt: LoopThread) -> None:
    backend = lt.run(Backend("solo").start())
    proxy = Proxy(lt, SETTINGS)
    proxy.apply(two_service_snapshot([backend.endpoint], [backend.endpoint]))
    try:
        for _ in range(10):  # ten client connections, one after the other
            assert get(proxy.port, "/")[0] == 200
        assert len(backend.stats.requests) == 10
        assert backend.stats.connections == 1
    finally:
        proxy.close()
        lt.run(backend.close())


def test_stale_pooled_connection_is_replaced(lt: LoopThread) -> None:
    backend = lt.run(Backend("solo").start())
    proxy = Proxy(lt, SETTINGS)
    proxy.apply(two_service_snapshot([backend.endpoint], [backend.endpoint]))
    try:
        assert get(proxy.port, "/")[0] == 200
        # The backend drops its idle keep-alive connection; the next request still works.
        def drop_all() -> None:
            for t in backend.stats.transports:
                t.close()

        lt.loop.call_soon_threadsafe(drop_all)
        for _ in range(3):
            assert get(proxy.port, "/")[0] == 200
        assert backend.stats.connections == 2
    finally:
        proxy.close()
        lt.run(backend.close())


def test_chunked_request_and_response(site: tuple[Proxy, list[Backend], Backend]) -> None:
    proxy, _, _ = site
    payload = os.urandom(300_000)
    with tempfile.NamedTemporaryFile() as f:
        f.write(payload)
        f.flush()
        r = curl(
            "-H",
            "Host: web.test",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            f"@{f.name}",
            f"http://{HOST}:{proxy.port}/echo-body",
        )
    assert r.returncode == 0, r.stderr
    assert r.stdout == payload
    raw = exchange(
        proxy.port, b"GET /chunked HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n"
    )
    head, _, _ = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    (resp,) = parse_responses(raw)
    assert doc(bytes(resp.body))["path"] == "/chunked"
    # An HTTP/1.0 client cannot take chunked: the body comes decoded, then the close.
    raw10 = exchange(proxy.port, b"GET /chunked HTTP/1.0\r\nHost: web.test\r\n\r\n")
    head10, _, body10 = raw10.partition(b"\r\n\r\n")
    assert b"chunked" not in head10 and b"Connection: close" in head10
    assert doc(body10)["path"] == "/chunked"


def test_pipelined_requests_answered_in_order(site: tuple[Proxy, list[Backend], Backend]) -> None:
    proxy, _, _ = site
    raw = (
        b"".join(b"GET /api/%d HTTP/1.1\r\nHost: web.test\r\n\r\n" % i for i in range(5))
        + b"GET /api/last HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n"
    )
    responses = parse_responses(exchange(proxy.port, raw))
    paths = [doc(bytes(r.body))["path"] for r in responses]
    assert paths == [f"/api/{i}" for i in range(5)] + ["/api/last"]


def test_head_204_304_have_no_body_and_keep_alive(
    site: tuple[Proxy, list[Backend], Backend],
) -> None:
    proxy, _, _ = site
    with socket.create_connection((HOST, proxy.port), timeout=10) as s:
        s.sendall(b"HEAD /api HTTP/1.1\r\nHost: web.test\r\n\r\n")
        s.sendall(b"GET /api/status/204 HTTP/1.1\r\nHost: web.test\r\n\r\n")
        s.sendall(b"GET /api/status/304 HTTP/1.1\r\nHost: web.test\r\n\r\n")
        s.sendall(b"GET /api/after HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n")
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    parts = raw.split(b"HTTP/1.1 ")
    assert [p[:3] for p in parts[1:]] == [b"200", b"204", b"304", b"200"]
    assert parts[1].endswith(b"Content-Length: 1234\r\n\r\n")  # HEAD: no body follows
    assert parts[2].endswith(b"\r\n\r\n") and parts[3].endswith(b"\r\n\r\n")
    assert b'"/api/after"' in parts[4]


def test_headers_forwarded_and_hop_by_hop_removed(
    site: tuple[Proxy, list[Backend], Backend],
) -> None:
    proxy, _, _ = site
    extra = (
        "Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n"
        "TE: trailers\r\nProxy-Authorization: Basic eA==\r\nUpgrade: h2c\r\n"
        "X-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 6.6.6.6\r\nX-Kept: yes\r\n"
    )
    raw = exchange(
        proxy.port,
        b"GET /api/a%2Fb?x=1&y HTTP/1.1\r\nHost: Web.Test\r\n"
        + f"{extra}Connection: close\r\n\r\n".encode(),
    )
    (resp,) = parse_responses(raw)
    d = doc(bytes(resp.body))
    h = d["headers"]
    assert isinstance(h, dict)
    assert d["path"] == "/api/a%2Fb?x=1&y"
    assert h["Host"] == "Web.Test"
    for gone in ("Connection", "X-Secret", "Keep-Alive", "TE", "Proxy-Authorization", "Upgrade"):
        assert gone not in h, gone
    assert h["X-Kept"] == "yes"
    assert h["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
    assert h["X-Real-IP"] == "127.0.0.1"
    assert h["X-Forwarded-Proto"] == "http"
    assert h["X-Forwarded-Host"] == "Web.Test"


def test_expect_100_continue(site: tuple[Proxy, list[Backend], Backend]) -> None:
    proxy, _, _ = site
    with socket.create_connection((HOST, proxy.port), timeout=10) as s:
        s.sendall(
            b"POST /api/upload HTTP/1.1\r\nHost: web.test\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        interim = s.recv(1024)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"hello")
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    (resp,) = parse_responses(raw)
    d = doc(bytes(resp.body))
    assert resp.status == 200 and d["body_length"] == 5
    assert "Expect" not in d["headers"]  # type: ignore[operator]


def test_websocket_upgrade_is_tunnelled(site: tuple[Proxy, list[Backend], Backend]) -> None:
    proxy, _, _ = site
    with socket.create_connection((HOST, proxy.port), timeout=10) as s:
        s.sendall(
            b"GET /api/ws HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nhello"
        )
        raw = b""
        while b"HELLO" not in raw:
            chunk = s.recv(1024)
            assert chunk, raw
            raw += chunk
        assert raw.startswith(b"HTTP/1.1 101 ")
        assert b"Upgrade: websocket" in raw
        for word in (b"frame one", b"x" * 100_000):
            s.sendall(word)
            got = b""
            while len(got) < len(word):
                got += s.recv(65536)
            assert got == word.upper()


def test_502_and_504(lt: LoopThread, site: tuple[Proxy, list[Backend], Backend]) -> None:
    proxy, _, api = site
    assert get(proxy.port, "/api/slow")[0] == 504
    assert get(proxy.port, "/api/bad")[0] == 502  # backend sends two Content-Lengths
    dead = EndpointInfo(HOST, free_port())
    p2 = Proxy(lt, SETTINGS)
    p2.apply(two_service_snapshot([dead], [dead]))
    try:
        assert get(p2.port, "/")[0] == 502
        # A dead endpoint next to a live one: connect failures go to the next endpoint.
        p2.apply(two_service_snapshot([dead, api.endpoint], [dead]))
        assert [get(p2.port, "/")[0] for _ in range(4)] == [200] * 4
    finally:
        p2.close()


def test_config_change_under_load(lt: LoopThread) -> None:
    a = lt.run(Backend("a").start())
    b = lt.run(Backend("b").start())
    proxy = Proxy(lt, SETTINGS)
    proxy.apply(two_service_snapshot([a.endpoint], [a.endpoint]))
    failures: list[object] = []
    seen: set[str] = set()
    stop = threading.Event()

    def client() -> None:
        with socket.create_connection((HOST, proxy.port), timeout=10) as s:
            while not stop.is_set():
                s.sendall(b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")
                raw = b""
                while not (r := parse_responses(raw)):
                    chunk = s.recv(65536)
                    if not chunk:
                        failures.append("closed")
                        return
                    raw += chunk
                if r[0].status != 200:
                    failures.append(r[0].status)
                seen.add(str(doc(bytes(r[0].body))["name"]))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for gen in range(2, 22):
            eps = (
                [a.endpoint]
                if gen % 3 == 0
                else [b.endpoint]
                if gen % 3 == 1
                else [a.endpoint, b.endpoint]
            )
            proxy.apply(two_service_snapshot(eps, eps, generation=gen))
            fails_now = len(failures)
            assert fails_now == 0, failures
    finally:
        stop.set()
        for t in threads:
            t.join(20)
        proxy.close()
        lt.run(a.close())
        lt.run(b.close())
    assert failures == []
    assert seen == {"a", "b"}


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed")
def test_nginx_backend(lt: LoopThread) -> None:
    port = free_port()
    proxy = Proxy(lt, SETTINGS)
    try:
        with nginx_backend(port, "nginx $request_uri $http_x_forwarded_for") as log:
            ep = EndpointInfo(HOST, port)
            proxy.apply(two_service_snapshot([ep], [ep]))
            for i in range(5):
                r = curl("-H", "Host: web.test", f"http://{HOST}:{proxy.port}/n/{i}?q=1")
                assert r.returncode == 0, r.stderr
                assert r.stdout == f"nginx /n/{i}?q=1 127.0.0.1".encode()
            assert len(access_log_lines(log, "/n/", 5)) == 5
    finally:
        proxy.close()
