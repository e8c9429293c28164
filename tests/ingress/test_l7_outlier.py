"""Passive health at L7 on real sockets: a black-hole endpoint (accepts, never answers)
among two nginx backends is ejected after a short warm-up, so wrk sees (almost) no
failures and a p99 far below the 1 s read timeout, and it is back in rotation seconds
after it answers again (its probes, `OPTIONS *`, pass); a 5xx-only endpoint is ejected
with the opt-in annotation and not without it; with 2 of 3 endpoints refusing, only one
is ejected (never more than half)."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from discovery.model import EndpointHealth, LoadBalancing
from discovery.snapshot import EndpointInfo, Snapshot
from ingress.settings import HttpSettings
from proxy.health_metrics import EJECTIONS, OVERFLOWS
from proxy.outlier import HealthRegistry
from tests.ingress import routerkit as k
from tests.ingress.l7kit import HOST, HeadReader, LoopThread, Proxy, get, nginx_backend, port_info
from tests.support import free_port, wait_until

SETTINGS = HttpSettings(upstream_timeout=1.0, connect_timeout=1.0)


class HoleStats:
    def __init__(self) -> None:
        self.answer = False  # False: a black hole; True: answers 200 "hole"
        self.requests = 0  # requests answered that were not health probes
        self.probes = 0


class Hole(HeadReader):
    """Accepts connections; answers nothing until `stats.answer` is set."""

    def __init__(self, stats: HoleStats) -> None:
        super().__init__()
        self.stats = stats

    def on_head(self, head: bytes, transport: asyncio.Transport) -> None:
        if not self.stats.answer:
            return
        if b"seaway-health-check" in head:
            self.stats.probes += 1
        else:
            self.stats.requests += 1
        transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhole")


async def start_hole(stats: HoleStats) -> tuple[asyncio.AbstractServer, EndpointInfo]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Hole(stats), HOST, 0)
    return server, EndpointInfo(HOST, server.sockets[0].getsockname()[1])


def site(eps: list[EndpointInfo], health: EndpointHealth | None = None) -> Snapshot:
    ing = k.ingress("site", k.rule("web.test", k.path("/", "web")))
    balancing = LoadBalancing(health=health or EndpointHealth())  # least request
    return k.snapshot([ing], [port_info("web", eps, balancing=balancing)])


@dataclass
class Wrk:
    requests: int
    failures: int
    p99_ms: float


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk(port: int, seconds: int, connections: int = 16) -> Wrk:
    out = subprocess.run(
        ["wrk", "--latency", "-t", "2", "-c", str(connections), "-d", f"{seconds}s",
         "-H", "Host: web.test", "--timeout", "5s", f"http://{HOST}:{port}/"],
        capture_output=True, text=True, check=True, timeout=seconds + 30,
    ).stdout
    requests = re.search(r"(\d+) requests in", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)", out, re.M)
    assert requests and p99, out
    failures = sum(int(m.group(1)) for m in re.finditer(r"(?:connect|read|write|timeout) (\d+)",
                                                        out))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        failures += int(non2xx.group(1))
    return Wrk(int(requests.group(1)), failures, float(p99.group(1)) * _UNIT_MS[p99.group(2)])


@pytest.fixture
def lt() -> Iterator[LoopThread]:
    t = LoopThread()
    yield t
    t.stop()


def health_of(proxy: Proxy) -> HealthRegistry:
    assert proxy.server is not None
    return proxy.server.ctx.health


def ejected(proxy: Proxy) -> set[int]:
    return {rec.address[1] for _, rec in health_of(proxy).ejected()}


@pytest.mark.skipif(subprocess.run(["which", "wrk", "nginx"], capture_output=True).returncode,
                    reason="needs wrk and nginx (tests/run.sh installs them)")
def test_a_black_hole_leaves_rotation_and_comes_back_when_it_answers(
    lt: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    pa, pb = free_port(), free_port()
    stats = HoleStats()
    server, hole = lt.run(start_hole(stats))
    proxy = Proxy(lt, SETTINGS)
    try:
        with nginx_backend(pa, "a"), nginx_backend(pb, "b"):
            proxy.apply(site([EndpointInfo(HOST, pa), EndpointInfo(HOST, pb), hole]))
            warm = wrk(proxy.port, 3)
            assert ejected(proxy) == {hole.port}
            # The warm-up's timeouts ejected it; clients mostly did not see them: retries
            # (on by default, within their budget) sent those requests to another endpoint.
            run = wrk(proxy.port, 6)
            rate = run.failures / run.requests
            assert rate <= 0.001, run
            assert run.p99_ms < 1000.0, run
            stats.answer = True
            t0 = time.monotonic()
            wait_until(lambda: stats.requests > 0 or get(proxy.port, "/")[1] == b"hole", 15.0,
                       "the recovered endpoint back in rotation")
            back = time.monotonic() - t0
            assert ejected(proxy) == set()
            assert stats.probes >= 1  # it came back through a probe, not its 30 s
            with capsys.disabled():
                load = Path("/proc/loadavg").read_text().split()[:3]
                print(f"\nblack hole among 3 (wrk -c16, 6 s after a 3 s warm-up): "
                      f"{run.failures}/{run.requests} failed ({rate:.4%}), p99 "
                      f"{run.p99_ms:.1f} ms; warm-up failures {warm.failures}; back in "
                      f"rotation {back:.1f} s after it answered; load {' '.join(load)}")
    finally:
        proxy.close()
        server.close()


def five_hundreds(proxy: Proxy, n: int) -> int:
    return sum(1 for _ in range(n) if get(proxy.port, "/")[0] == 500)


@pytest.mark.skipif(subprocess.run(["which", "nginx"], capture_output=True).returncode,
                    reason="needs nginx (tests/run.sh installs it)")
@pytest.mark.parametrize("opt_in", [False, True])
def test_a_5xx_only_endpoint_is_ejected_with_the_opt_in_only(lt: LoopThread, opt_in: bool) -> None:
    good, bad = free_port(), free_port()
    health = EndpointHealth(consecutive_5xx=3) if opt_in else EndpointHealth()
    proxy = Proxy(lt, SETTINGS)
    try:
        with nginx_backend(good, "ok"), nginx_backend_500(bad):
            proxy.apply(site([EndpointInfo(HOST, good), EndpointInfo(HOST, bad)], health))
            first = five_hundreds(proxy, 12)
            later = five_hundreds(proxy, 20)
            assert first >= 3
            if opt_in:
                assert later == 0 and ejected(proxy) == {bad}
                counts = proxy.server.take_stats().tables[EJECTIONS]  # type: ignore[union-attr]
                assert counts == {("default", "web", "80", f"{HOST}:{bad}", "5xx"): [1.0]}
            else:
                assert later >= 6 and ejected(proxy) == set()
    finally:
        proxy.close()


def nginx_backend_500(port: int) -> object:
    from tests.ingress.l7kit import nginx_server

    return nginx_server(port, f"listen {HOST}:{port}; location / {{ return 500 'broken'; }}")


def test_with_two_of_three_refusing_only_one_is_ejected(lt: LoopThread) -> None:
    """Refused connects are retried on the next endpoint, so clients still get answers;
    the refusing endpoints fail again and again, but only one of them may be out."""
    stats = HoleStats()
    stats.answer = True
    server, alive = lt.run(start_hole(stats))
    refusing = [EndpointInfo(HOST, free_port()), EndpointInfo(HOST, free_port())]
    proxy = Proxy(lt, SETTINGS)
    try:
        proxy.apply(site([alive, *refusing]))
        statuses = [get(proxy.port, "/")[0] for _ in range(40)]
        assert statuses.count(200) == 40
        out = ejected(proxy)
        assert len(out) == 1 and out <= {e.port for e in refusing}
        delta = proxy.server.take_stats()  # type: ignore[union-attr]
        assert sum(v[0] for v in delta.tables[OVERFLOWS].values()) >= 1
    finally:
        proxy.close()
        server.close()


def test_a_repeated_request_after_a_504_goes_upstream_again(lt: LoopThread) -> None:
    """The exact-bytes memo of a keep-alive connection (ingress/http1.py) must remember
    what routing decided, not the 504 a timed-out upstream got: the same bytes again go
    to the backend, which answers now. (Before, every repeat got an instant 504.)"""
    stats = HoleStats()
    server, hole = lt.run(start_hole(stats))
    proxy = Proxy(lt, SETTINGS)
    request = b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n"
    try:
        proxy.apply(site([hole]))  # alone: never ejected (never more than half)
        with socket.create_connection((HOST, proxy.port), timeout=10) as s:
            s.sendall(request)
            assert s.recv(65536).startswith(b"HTTP/1.1 504 ")
            stats.answer = True
            s.sendall(request)
            assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        proxy.close()
        server.close()
