"""The L7 proxy picks endpoints by the backend Service's balancer, end to end on real
sockets: least request and EWMA send less to a slow endpoint than round robin does (side
by side in one run; EWMA also as ingress-nginx's load-balance: ewma), maglev keeps a user
(header, cookie, client IP) on one endpoint, and a per-endpoint request cap answers 503
while it is full."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from collections.abc import Iterator

import pytest

from discovery.model import HashBy, LoadBalancerPolicy, LoadBalancing
from discovery.snapshot import EndpointInfo, Snapshot
from ingress.settings import HttpSettings
from tests.ingress import routerkit as k
from tests.ingress.l7kit import HOST, Backend, LoopThread, Proxy, get, port_info
from tests.ingress.nginxkit import ann
from tests.ingress.nginxkit import snapshot as nginx_snapshot

SETTINGS = HttpSettings(upstream_timeout=1.0, connect_timeout=2.0)


class DelayedBackend(asyncio.Protocol):
    """Answers each request (one per read: the proxy sends one at a time) after `delay`
    seconds with its name; counts what it served."""

    def __init__(self, name: str, delay: float, served: Counter[str]) -> None:
        self.name = name
        self.delay = delay
        self.served = served
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if b"\r\n\r\n" in data:
            asyncio.get_running_loop().call_later(self.delay, self._answer)

    def _answer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.served[self.name] += 1
            body = self.name.encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                                 % (len(body), body))


async def delayed_backend(name: str, delay: float, served: Counter[str]) -> EndpointInfo:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: DelayedBackend(name, delay, served), HOST, 0)
    return EndpointInfo(HOST, server.sockets[0].getsockname()[1])


def site_snapshot(services: dict[str, tuple[list[EndpointInfo], LoadBalancing]]) -> Snapshot:
    """Host NAME.test -> service NAME, for each service."""
    rules = [k.rule(f"{name}.test", k.path("/", name)) for name in services]
    ing = k.ingress("site", *rules)
    ports = [port_info(name, eps, balancing=lb) for name, (eps, lb) in services.items()]
    return k.snapshot([ing], ports)


async def load(port: int, host: str, clients: int, requests: int) -> list[bytes]:
    """`clients` keep-alive connections sending `requests` GETs each, one at a time."""

    async def client() -> list[bytes]:
        reader, writer = await asyncio.open_connection(HOST, port)
        bodies = []
        for _ in range(requests):
            writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            bodies.append(await reader.readexactly(length))
        writer.close()
        return bodies

    results = await asyncio.gather(*(client() for _ in range(clients)))
    return [b for r in results for b in r]


@pytest.fixture
def proxy(lt: LoopThread) -> Iterator[Proxy]:
    p = Proxy(lt, SETTINGS)
    try:
        yield p
    finally:
        p.close()


def test_least_request_and_ewma_send_less_to_a_slow_endpoint_than_round_robin(
    lt: LoopThread, proxy: Proxy
) -> None:
    served: Counter[str] = Counter()
    services: dict[str, tuple[list[EndpointInfo], LoadBalancing]] = {}
    policies: tuple[LoadBalancerPolicy, ...] = ("round-robin", "least-request", "ewma")
    for policy in policies:
        eps = [
            lt.run(delayed_backend(f"{policy}-slow", 0.05, served)),
            lt.run(delayed_backend(f"{policy}-fast1", 0.0, served)),
            lt.run(delayed_backend(f"{policy}-fast2", 0.0, served)),
        ]
        services[policy] = (eps, LoadBalancing(policy))
    proxy.apply(site_snapshot(services))
    share = {}
    for policy in services:
        bodies = asyncio.run(load(proxy.port, f"{policy}.test", clients=6, requests=25))
        assert len(bodies) == 150
        share[policy] = served[f"{policy}-slow"] / 150
    assert share["round-robin"] > 0.25  # its third, give or take
    assert share["least-request"] < share["round-robin"] / 2, share
    assert share["ewma"] < share["round-robin"] / 2, share


def test_nginx_load_balance_ewma_is_seaways_ewma(lt: LoopThread, proxy: Proxy) -> None:
    """ingress-nginx `load-balance: ewma` (annotation, docs/user-guide/nginx-configuration/
    annotations.md "Custom NGINX load balancing") runs seaway's EWMA balancer, over the
    Service's own choice: two Services whose seaway.dev/load-balancer is round-robin, one
    Ingress annotated ewma; side by side in one run the ewma one sends far less to its
    slow endpoint."""
    served: Counter[str] = Counter()
    ports, rules = [], []
    for name in ("plain", "ewma"):
        eps = [
            lt.run(delayed_backend(f"{name}-slow", 0.05, served)),
            lt.run(delayed_backend(f"{name}-fast1", 0.0, served)),
            lt.run(delayed_backend(f"{name}-fast2", 0.0, served)),
        ]
        ports.append(port_info(name, eps, balancing=LoadBalancing("round-robin")))
        rules.append(k.rule(f"{name}.test", k.path("/", name)))
    plain = k.ingress("plain", rules[0])
    ewma = k.ingress("ewma", rules[1], annotations=ann(load_balance="ewma"))
    proxy.apply(nginx_snapshot([plain, ewma], (), None, ports))
    share = {}
    for name in ("plain", "ewma"):
        bodies = asyncio.run(load(proxy.port, f"{name}.test", clients=6, requests=25))
        assert len(bodies) == 150
        share[name] = served[f"{name}-slow"] / 150
    assert share["plain"] > 0.25, share  # round robin: its third, give or take
    assert share["ewma"] < share["plain"] / 2, share


def test_maglev_keeps_each_user_on_one_endpoint(lt: LoopThread, proxy: Proxy) -> None:
    webs = [lt.run(Backend(f"web{i}").start()) for i in range(3)]
    eps = [b.endpoint for b in webs]
    services = {
        "byheader": (eps, LoadBalancing("maglev", HashBy("header", "x-user"))),
        "bycookie": (eps, LoadBalancing("maglev", HashBy("cookie", "sid"))),
        "byip": (eps, LoadBalancing("maglev")),
    }
    proxy.apply(site_snapshot(services))
    try:
        def name(host: str, extra: str) -> str:
            status, body = get(proxy.port, "/", host=host, extra=extra)
            assert status == 200
            return str(json.loads(body)["name"])

        for host, header in (("byheader.test", "X-User: {}\r\n"),
                             ("bycookie.test", "Cookie: theme=dark; sid={}\r\n")):
            first = {u: name(host, header.format(f"user{u}")) for u in range(24)}
            again = {u: name(host, header.format(f"user{u}")) for u in range(24)}
            assert first == again
            assert len(set(first.values())) == 3  # 24 users spread over all three
        # no header: round robin over all three
        assert {name("byheader.test", "") for _ in range(3)} == {"web0", "web1", "web2"}
        assert len({name("byip.test", "") for _ in range(6)}) == 1  # one client IP
    finally:
        for b in webs:
            lt.run(b.close())


def test_endpoint_request_cap_answers_503_until_a_request_ends(lt: LoopThread) -> None:
    backend = lt.run(Backend("web").start())
    settings = dataclasses.replace(SETTINGS, upstream_timeout=0.5, max_endpoint_requests=1)
    proxy = Proxy(lt, settings)
    proxy.apply(site_snapshot({"web": ([backend.endpoint], LoadBalancing())}))
    try:
        async def main() -> tuple[int, int, int]:
            hung = asyncio.create_task(asyncio.to_thread(get, proxy.port, "/slow", "web.test"))
            while not backend.stats.requests:  # the hung request holds the endpoint
                await asyncio.sleep(0.01)
            over = (await asyncio.to_thread(get, proxy.port, "/", "web.test"))[0]
            first = (await hung)[0]
            after = (await asyncio.to_thread(get, proxy.port, "/", "web.test"))[0]
            return first, over, after

        first, over, after = asyncio.run(main())
        assert (first, over, after) == (504, 503, 200)
        assert [r["path"] for r in backend.stats.requests] == ["/slow", "/"]
    finally:
        proxy.close()
        lt.run(backend.close())
