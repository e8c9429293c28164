"""Every L7 endpoint pick (a Lease) ends, whatever happens to its request: after many
requests on real sockets that succeed, fail (dead endpoint, hung endpoint, bad response,
an endpoint that drops its keep-alive connections), are retried, are cut by the client
mid-response or before the upstream connection is up, tunnel (WebSocket), break the
protocol while their body streams, or are refused at the per-endpoint cap, the route's
balancer counts nothing in flight and nothing connecting, and the retry budget no retry
in flight: for every balancer, pipelined too, and for routes whose endpoint a hash or a
sticky cookie chooses."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections import Counter
from collections.abc import Iterator

import pytest

from discovery.model import HashBy, LoadBalancing
from discovery.snapshot import EndpointInfo
from ingress.settings import HttpSettings
from proxy.balancer import Balancer
from tests.ingress import routerkit as k
from tests.ingress.l7kit import HOST, Backend, LoopThread, Proxy, port_info
from tests.ingress.nginxkit import ann
from tests.ingress.nginxkit import snapshot as nginx_snapshot
from tests.support import wait_until

SETTINGS = HttpSettings(upstream_timeout=0.3, connect_timeout=2.0, max_endpoint_requests=4)


class DroppingBackend(asyncio.Protocol):
    """Answers the first GET of each connection (keep-alive) and closes the connection on
    the second without a byte: the proxy's reused connection fails before its response,
    so the GET is retried on a fresh connection. A POST or /slow is never answered."""

    hung_gets = 0  # GET /slow requests it left unanswered (reset by the fixture)

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.seen = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if data.startswith(b"GET /slow"):
            DroppingBackend.hung_gets += 1
        if not data.startswith(b"GET ") or data.startswith(b"GET /slow"):
            return  # a POST (or its body), /slow: left unanswered
        self.seen += data.count(b"\r\n\r\n")
        if self.seen >= 2:
            self.transport.close()
        elif b"\r\n\r\n" in data:
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ndropper")


def dead_endpoint() -> EndpointInfo:
    """A loopback port nothing listens on (connects are refused)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    return EndpointInfo(HOST, port)


async def status_of(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


async def keep_alive(port: int, paths: list[str], statuses: Counter[int | bytes]) -> None:
    """GETs one after another on one connection (reconnecting when the proxy closes)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    for path in paths:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: web.test\r\nX-User: u{path}\r\n\r\n".encode())
        try:
            statuses[await status_of(reader)] += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            reader, writer = await asyncio.open_connection(HOST, port)
    writer.close()


async def one_shot(port: int, data: bytes, read: int = 0) -> bytes:
    """Send `data`, read up to `read` bytes (0: nothing), and close: a client that leaves
    before or while its response comes."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(data)
    await writer.drain()
    got = await reader.read(read) if read else b""
    writer.transport.abort()
    return got


async def broken_body(port: int) -> bytes:
    """A chunked POST whose head went upstream, then a bad chunk: the proxy drops the
    exchange while the request is in flight (400, or a cut if a response began)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(b"POST /slow HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n")
    await asyncio.sleep(0.05)
    writer.write(b"zz\r\nnot a chunk\r\n")
    answer = await reader.read()
    writer.close()
    return answer[:12]


async def websocket(port: int) -> bytes:
    """A tunnel the client closes (tries again while an endpoint that is no WebSocket
    backend answers instead)."""
    for _ in range(10):
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"GET /ws HTTP/1.1\r\nHost: web.test\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 101 "):
            writer.write(b"ping")
            echoed = await reader.readexactly(4)
            writer.close()
            return echoed
        writer.close()
    return b""


async def traffic(port: int) -> Counter[int | bytes]:
    statuses: Counter[int | bytes] = Counter()
    plain = [f"/p{i}" for i in range(24)]  # (distinct: a hash of the URI spreads them)
    jobs = [keep_alive(port, plain, statuses) for _ in range(8)]
    jobs += [keep_alive(port, ["/slow", "/", "/bad", "/"], statuses) for _ in range(3)]
    jobs += [one_shot(port, b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n") for _ in range(10)]
    jobs += [one_shot(port, b"GET /big/8000000 HTTP/1.1\r\nHost: web.test\r\n\r\n", 4096)
             for _ in range(4)]
    jobs += [one_shot(port, b"POST /x HTTP/1.1\r\nHost: web.test\r\nContent-Length: 2\r\n\r\nhi",
                      64) for _ in range(6)]
    await asyncio.gather(*jobs)
    # Then, under the per-endpoint cap: tunnels, and bodies that break mid-request.
    answers = await asyncio.gather(*(broken_body(port) for _ in range(4)),
                                   *(websocket(port) for _ in range(3)))
    statuses.update(answers)
    return statuses


@pytest.fixture
def endpoints(lt: LoopThread) -> Iterator[list[EndpointInfo]]:
    webs = [lt.run(Backend(f"web{i}").start()) for i in range(2)]

    async def dropper() -> asyncio.AbstractServer:
        return await asyncio.get_running_loop().create_server(DroppingBackend, HOST, 0)

    DroppingBackend.hung_gets = 0
    server = lt.run(dropper())
    dropping = EndpointInfo(HOST, server.sockets[0].getsockname()[1])
    try:
        yield [webs[0].endpoint, webs[1].endpoint, dropping, dead_endpoint()]
    finally:
        server.close()
        for b in webs:
            lt.run(b.close())


@pytest.mark.parametrize(
    ("balancing", "pipelining", "annotations"),
    [
        (LoadBalancing("round-robin"), 1, {}),
        (LoadBalancing("least-request"), 1, {}),
        (LoadBalancing("least-request"), 4, {}),
        (LoadBalancing("ewma"), 1, {}),
        (LoadBalancing("maglev", HashBy("header", "x-user")), 1, {}),
        # the filtered exchange (ingress/filters/exchange.py) chooses the endpoint itself
        (LoadBalancing(), 1, ann(upstream_hash_by="$request_uri")),
        (LoadBalancing(), 1, ann(affinity="cookie")),
    ],
    ids=[
        "round-robin",
        "least-request",
        "least-request-pipelined",
        "ewma",
        "maglev",
        "nginx-hash-by",
        "nginx-cookie-affinity",
    ],
)
def test_no_lease_outlives_its_request(
    lt: LoopThread,
    endpoints: list[EndpointInfo],
    balancing: LoadBalancing,
    pipelining: int,
    annotations: dict[str, str],
) -> None:
    settings = dataclasses.replace(SETTINGS, upstream_pipelining=pipelining)
    proxy = Proxy(lt, settings)
    ing = k.ingress("site", k.rule("web.test", k.path("/", "web")), annotations=annotations)
    ports = [port_info("web", endpoints, balancing=balancing)]
    proxy.apply(nginx_snapshot([ing], (), None, ports))  # (annotations parsed)
    try:
        statuses = asyncio.run(traffic(proxy.port))
        server = proxy.server
        assert server is not None
        ctx = server.ctx
        wait_until(lambda: not ctx.connections, 10, "every client connection to close")

        def in_flight() -> list[tuple[list[int], list[int]]]:
            async def read() -> list[tuple[list[int], list[int]]]:
                bals: list[Balancer] = list(ctx.balancers.values())
                return [(list(b.active), list(b.connecting)) for b in bals]

            return lt.run(read())

        counts = in_flight()
        assert len(counts) == 1
        wait_until(lambda: all(not any(a) and not any(c) for a, c in in_flight()), 5,
                   f"every lease to end (active, connecting): {in_flight()}")
        # Retries after a request reached a backend (a GET /slow the dropping endpoint left
        # unanswered, retried after its read timeout) held places in the service's retry
        # budget (ingress/retry.py): every one is free again. Which endpoint each of the
        # few /slow requests meets depends on timing (round robin among concurrent
        # clients), so the budget is looked for only when one met the hung endpoint.
        if DroppingBackend.hung_gets:
            assert ctx.budgets, "no retry took a place in the budget"
        assert all(b.active == 0 for b in ctx.budgets.values()), ctx.budgets
        # The traffic did reach the paths that matter: answers, failures and refusals.
        assert statuses[200] >= 50, statuses
        failed = statuses[502] + statuses[503] + statuses[504] + statuses[b"HTTP/1.1 502"]
        assert failed >= 1, statuses
        if not annotations:  # (a hash may send /slow and /ws to one endpoint every time)
            # A body broke while its exchange was active: 400, or a cut once a response
            # began; and a tunnel.
            assert statuses[b"HTTP/1.1 400"] + statuses[b"HTTP/1.1 200"] >= 1, statuses
            assert statuses[b"PING"] >= 1, statuses
    finally:
        proxy.close()


def test_a_client_is_read_again_after_a_local_answer_to_a_request_with_a_body(
    lt: LoopThread,
) -> None:
    """The body came before any upstream connection (reading paused for it); the proxy
    answered itself (here 502: the only endpoint refuses), and the next request on that
    keep-alive connection is read and answered at once, not after the idle timeout."""
    proxy = Proxy(lt, SETTINGS)
    ing = k.ingress("site", k.rule("web.test", k.path("/", "web")))
    proxy.apply(k.snapshot([ing], [port_info("web", [dead_endpoint()])]))
    try:
        with socket.create_connection((HOST, proxy.port), timeout=3) as s:
            s.sendall(b"POST /x HTTP/1.1\r\nHost: web.test\r\nContent-Length: 2\r\n\r\nhi")
            assert s.recv(65536).startswith(b"HTTP/1.1 502 ")
            s.sendall(b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 502 ")
    finally:
        proxy.close()
