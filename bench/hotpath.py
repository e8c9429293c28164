"""The Python cost of one proxied exchange, without sockets: seaway's hot path and the floor.

    python3 bench/hotpath.py [--exchanges 60000] [--rounds 5] [--profile] [--instructions]

Drives seaway's L7 code (HttpProtocol -> route -> Exchange -> UpstreamConnection, the
Outbox flushed once per "loop iteration" as uvloop would) and bench/minimal_proxy.py's
classes with in-memory transports: 64 client connections, a pool of upstream
connections, the varied requests of bench/varied.lua and responses shaped like the
bench backend's (a per-request X-Request-Id and Set-Cookie, the URI in the body), the
same with 64 KiB bodies ("64k": what the body costs in Python, apart from the copies
uvloop and the kernel make), and one identical request. Prints CPU microseconds
(process time, so steadier than wall time on a shared machine) per exchange, the median
of the rounds: what the proxy's Python costs, the part bench/http.py's "usr" column
adds to the floor's.
`--profile` prints cProfile's top functions for seaway on the varied traffic.
`--instructions` counts instructions per exchange instead (valgrind's callgrind, counting
only inside the measured loop: run through functools.reduce, the one place it toggles on),
which, unlike times, the other processes of a shared machine do not change.

No syscall is made, so this is the part of the cost that is ours; bench/http.py
measures the whole (and the kernel's share is about the same for every proxy).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from functools import reduce
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.minimal_proxy import Client, Upstream  # noqa: E402
from bench.seaway_l7 import bench_snapshot  # noqa: E402
from ingress.context import ProxyContext  # noqa: E402
from ingress.http1 import HttpProtocol  # noqa: E402
from ingress.route_match import compile_table  # noqa: E402
from ingress.settings import HttpSettings  # noqa: E402
from ingress.translate_ingress import translate_ingresses  # noqa: E402
from ingress.upstream import UpstreamConnection  # noqa: E402

CONNECTIONS = 64
AGENTS = [
    b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    b"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5"
    b" Safari/605.1.15",
    b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    b"curl/8.8.0",
    b"python-requests/2.32.3",
    b"okhttp/4.12.0",
    b"Go-http-client/1.1",
]
SECTIONS = [b"item", b"user", b"api/v1/orders", b"static/img", b"search", b"cart"]


def varied(n: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    """(request, response) pairs as bench/varied.lua and the bench backend make them."""
    rnd = random.Random(seed)
    out = []
    for counter in range(1, n + 1):
        r = rnd.randint(1, 99999999)
        uri = b"/%s/%d?page=%d&q=%x&t=%d" % (
            SECTIONS[counter % len(SECTIONS)],
            r,
            counter % 97,
            r * 7919,
            counter,
        )
        req = (
            b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: %s\r\nAccept: */*\r\n"
            b"X-Request-Id: %08x-%04x-1-%d\r\nCookie: session=%x%x; theme=%d; seen=%d\r\n\r\n"
            % (
                uri,
                AGENTS[counter % len(AGENTS)],
                r,
                counter % 65536,
                counter,
                r,
                counter,
                counter % 3,
                r % 1000,
            )
        )
        rid = b"%032x" % rnd.getrandbits(128)
        body = b"ok %s\n" % uri
        resp = (
            b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 10:15:46 GMT\r\n"
            b"Content-Type: text/plain\r\nContent-Length: %d\r\nConnection: keep-alive\r\n"
            b"X-Request-Id: %s\r\nSet-Cookie: sid=%s; Path=/; HttpOnly\r\n\r\n%s"
            % (len(body), rid, rid, body)
        )
        out.append((req, resp))
    return out


def large(pairs: list[tuple[bytes, bytes]], size: int = 65536) -> list[tuple[bytes, bytes]]:
    """The same exchanges with `size`-byte response bodies, each in one read (as
    bench/http.py's 64k scenario mostly sees them on loopback)."""
    out = []
    for req, resp in pairs:
        head, _, body = resp.partition(b"\r\n\r\n")
        head = head.replace(b"Content-Length: %d" % len(body), b"Content-Length: %d" % size)
        out.append((req, head + b"\r\n\r\n" + b"x" * size))
    return out


IDENTICAL = [
    (
        b"GET /same HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 10:15:46 GMT\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Length: 2\r\n"
        b"Connection: keep-alive\r\n\r\nok",
    )
]


class Handle:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Loop:
    """The loop methods the hot path uses; call_soon callbacks run at `iteration_end`."""

    def __init__(self) -> None:
        self.soon: list[Callable[[], object]] = []
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    def call_soon(self, cb: Callable[..., object], *args: Any) -> Handle:
        self.soon.append(cb if not args else lambda: cb(*args))
        return Handle()

    def call_later(self, delay: float, cb: Callable[..., object], *args: Any) -> Handle:
        return Handle()

    def call_at(self, when: float, cb: Callable[..., object], *args: Any) -> Handle:
        return Handle()

    def create_task(self, coro: Any) -> None:
        coro.close()
        raise AssertionError("the harness never connects: the pool must have a connection")

    def iteration_end(self) -> None:
        while self.soon:
            soon, self.soon = self.soon, []
            for cb in soon:
                cb()


class Transport:
    """Counts what is written; nothing else."""

    __slots__ = ("closed", "paused", "written")

    def __init__(self) -> None:
        self.written = 0
        self.closed = False
        self.paused = False

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def writelines(self, parts: list[bytes]) -> None:
        for p in parts:
            self.written += len(p)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def set_protocol(self, protocol: object) -> None:
        pass  # (an upstream connection after a large response: the harness feeds bytes)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


def wire(
    ctx: ProxyContext,
    loop: Loop,
    backend: tuple[str, int],
    protocol: Callable[[ProxyContext], HttpProtocol] = HttpProtocol,
) -> list[HttpProtocol]:
    """CONNECTIONS client connections of `ctx` (made by `protocol`), and as many idle
    upstream connections to `backend` in its pool."""
    clients = []
    for _ in range(CONNECTIONS):
        p = protocol(ctx)
        p.connection_made(Transport())  # type: ignore[arg-type]
        clients.append(p)
    pool = ctx.pools.get(backend)
    for _ in range(CONNECTIONS):
        conn = UpstreamConnection(loop, pool, 60.0, ctx.outbox)  # type: ignore[arg-type]
        conn.connection_made(Transport())  # type: ignore[arg-type]
        conn.keep_alive = True
        pool.release(conn)
    return clients


def seaway_run(
    traffic: list[tuple[bytes, bytes]],
    exchanges: int,
    protocol: Callable[[ProxyContext], HttpProtocol] = HttpProtocol,
) -> float:
    """CPU seconds for `exchanges` exchanges through seaway's hot path (client
    connections made by `protocol`)."""
    loop = Loop()
    table = compile_table(translate_ingresses(bench_snapshot([("127.0.0.1", 9000)])).table)
    ctx = ProxyContext(loop, HttpSettings(), table)  # type: ignore[arg-type]
    clients = wire(ctx, loop, ("127.0.0.1", 9000), protocol)
    n = len(traffic)
    start = time.process_time()

    def exchange(_: None, i: int) -> None:
        req, resp = traffic[i % n]
        client = clients[i % CONNECTIONS]
        client.data_received(req)
        loop.iteration_end()
        ex = client.exchange
        assert ex is not None and ex.conn is not None, "not forwarded"
        ex.conn.data_received(resp)
        loop.iteration_end()

    reduce(exchange, range(exchanges), None)  # (see --instructions)
    spent = time.process_time() - start
    assert all(c.exchange is None and not c.closing for c in clients)
    return spent


def floor_run(traffic: list[tuple[bytes, bytes]], exchanges: int) -> float:
    """CPU seconds for `exchanges` exchanges through bench/minimal_proxy.py's classes."""
    loop = Loop()
    idle: deque[Upstream] = deque()
    for _ in range(CONNECTIONS):
        up = Upstream(idle)
        up.connection_made(Transport())  # type: ignore[arg-type]
        idle.append(up)
    clients = []
    for _ in range(CONNECTIONS):
        c = Client(loop, ("127.0.0.1", 9000), idle)  # type: ignore[arg-type]
        c.connection_made(Transport())  # type: ignore[arg-type]
        clients.append(c)
    n = len(traffic)
    start = time.process_time()

    def exchange(_: None, i: int) -> None:
        req, resp = traffic[i % n]
        client = clients[i % CONNECTIONS]
        client.data_received(req)
        loop.iteration_end()
        up = client.upstream
        assert up is not None
        up.data_received(resp)
        loop.iteration_end()

    reduce(exchange, range(exchanges), None)  # (see --instructions)
    spent = time.process_time() - start
    assert all(c.upstream is None for c in clients)
    return spent


def client_address_targets() -> list[tuple[str, Callable[[ProxyContext], HttpProtocol]]]:
    """seaway's client-address protocols (ingress/client_protocol.py) as a listener with
    --proxy-protocol and one with ingress-nginx's enable-real-ip make them."""
    from functools import partial

    from discovery.nginx_configmap import NginxGlobalSettings
    from ingress.client_address import ClientAddress, ConnectionAddress, nginx_client_address
    from ingress.client_protocol import AddressedProtocol, ForwardedProtocol
    from ingress.proxy_protocol import ProxyHeader

    header = ProxyHeader(1, 48, ("192.168.0.1", 56324), ("192.168.0.11", 80))
    pp = ConnectionAddress(ClientAddress(proxy_protocol=True), 80)
    realip = ConnectionAddress(nginx_client_address(NginxGlobalSettings(enable_real_ip=True)), 80)
    return [
        ("seaway-pp", partial(AddressedProtocol, scheme=b"http", address=pp, header=header)),
        ("seaway-realip", partial(ForwardedProtocol, scheme=b"http", address=realip)),
    ]


def instructions(exchanges: int) -> int:
    """Instructions per exchange of each target and traffic, each run in callgrind with
    collection on only inside functools.reduce (the measured loop; setup is not counted)."""
    exchanges = min(exchanges, 5000)  # (callgrind runs ~50x slower)
    print(f"{'traffic':11}{'target':8}{'instructions':>13}{'vs floor':>10}")
    for name in ("varied", "64k", "identical"):
        counts = {}
        for target in ("floor", "seaway"):
            with tempfile.NamedTemporaryFile(suffix=".callgrind") as out:
                argv = [
                    "valgrind", "--tool=callgrind", "--collect-atstart=no",
                    "--toggle-collect=functools_reduce", f"--callgrind-out-file={out.name}",
                    sys.executable, __file__, "--exchanges", str(exchanges),
                    "--counted", f"{target},{name}",
                ]  # fmt: skip
                subprocess.run(argv, check=True, capture_output=True)
                text = Path(out.name).read_text()
            summary = next(ln for ln in text.splitlines() if ln.startswith("summary:"))
            total = int(summary.split()[1])
            counts[target] = total / exchanges
            print(f"{name:11}{target:8}{counts[target]:>13,.0f}"
                  f"{counts[target] / counts['floor']:>9.2f}x")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--exchanges", type=int, default=60000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--profile", action="store_true", help="cProfile seaway on varied traffic")
    p.add_argument(
        "--client-address",
        action="store_true",
        help="add seaway-pp (a PROXY header per connection) and seaway-realip "
        "(enable-real-ip: the client read from each request)",
    )
    p.add_argument(
        "--instructions", action="store_true", help="instructions per exchange (callgrind)"
    )
    p.add_argument("--counted", default="", help=argparse.SUPPRESS)  # TARGET,TRAFFIC
    args = p.parse_args()
    targets: list[tuple[str, Callable[[ProxyContext], HttpProtocol]]] = [("seaway", HttpProtocol)]
    if args.client_address:
        targets += client_address_targets()
    small = varied(4096)
    traffic = {"varied": small, "64k": large(small), "identical": IDENTICAL}
    if args.counted:  # (inside valgrind: see instructions())
        target, name = args.counted.split(",")
        (seaway_run if target == "seaway" else floor_run)(traffic[name], args.exchanges)
        return 0
    if args.instructions:
        return instructions(args.exchanges)
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        seaway_run(traffic["varied"], args.exchanges)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return 0
    print(f"{'traffic':11}{'target':15}{'us/exchange':>12}{'vs floor':>10}")
    for name, pairs in traffic.items():
        floor = statistics.median(floor_run(pairs, args.exchanges) for _ in range(args.rounds))
        rows = [("floor", floor)]
        for target, protocol in targets:
            runs = (seaway_run(pairs, args.exchanges, protocol) for _ in range(args.rounds))
            rows.append((target, statistics.median(runs)))
        for target, spent in rows:
            us = spent / args.exchanges * 1e6
            print(f"{name:11}{target:15}{us:>12.2f}{spent / floor:>9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
