"""Memory per connection: idle keep-alive clients (L7), websocket tunnels (L7) and TCP
tunnels (L4), seaway beside nginx and haproxy.

    python3 bench/memory.py                            # 10,000 idle, 1,000 tunnels
    python3 bench/memory.py --idle 2000 --tunnels 200  # quicker

For each scenario and target a fresh proxy is started in front of the same backend; the
resident memory (VmRSS, the proxy's processes together) is read after a warm-up, then
after N clients each made one request and stay connected (idle keep-alive), or after N
tunnels each echoed one message both ways; the difference over N is the figure. Kernel
socket buffers are not in RSS and not counted (the same for every target).
The backend is a small asyncio server in its own process: HTTP answers 200 "ok" with
keep-alive, an Upgrade request gets 101 and then an echo; a second port echoes raw TCP.
seaway runs as `seaway run --workers 1 --proxy-mode userspace --max-connections 0`.
Every process is stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

from bench.common import (  # noqa: E402
    HOST,
    Processes,
    free_port,
    haproxy,
    rss_bytes,
    start_nginx,
    wait_port,
)

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: web.test\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")
GET = b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n"

# ---------------------------------------------------------------- the backend process


class _Backend(asyncio.Protocol):
    def __init__(self) -> None:
        self.t: asyncio.Transport | None = None
        self.tunnel = False
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.t is not None
        if self.tunnel:
            self.t.write(data)
            return
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            if b"\nupgrade:" in head.lower():
                self.t.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\n"
                             b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
                self.tunnel = True
                if self.buf:
                    self.t.write(self.buf)
                return
            self.t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.t.write(data)


async def _serve_backend(http_port: int, echo_port: int) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_server(_Backend, HOST, http_port, backlog=4096)
    await loop.create_server(_Echo, HOST, echo_port, backlog=4096)
    await asyncio.Event().wait()


# ---------------------------------------------------------------- targets

MANIFEST = """\
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec:
  clusterIP: 10.96.0.80
  ports: [{{name: http, port: 80, targetPort: {http}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: web-1, namespace: default, labels: {{kubernetes.io/service-name: web}}}}
addressType: IPv4
ports: [{{name: http, port: {http}, protocol: TCP}}]
endpoints: [{{addresses: [127.0.0.1]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: echo, namespace: default}}
spec:
  clusterIP: 127.0.0.1
  ports: [{{name: tcp, port: {l4}, targetPort: {echo}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: echo-1, namespace: default, labels: {{kubernetes.io/service-name: echo}}}}
addressType: IPv4
ports: [{{name: tcp, port: {echo}, protocol: TCP}}]
endpoints: [{{addresses: [127.0.0.1]}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: web, namespace: default}}
spec:
  defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}
"""

NGINX_HTTP = """
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    upstream be {{ server 127.0.0.1:{http}; keepalive 64; }}
"""
NGINX_SERVER = """
        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 300s;
        }
"""


def start_seaway(procs: Processes, http: int, echo: int, port: int, l4: bool) -> int:
    os.makedirs(procs.path("manifests"), exist_ok=True)
    l4_port = port if l4 else free_port()
    manifest = procs.write("manifests/m.yaml", MANIFEST.format(http=http, echo=echo, l4=l4_port))
    argv = [
        sys.executable, "-m", "proxy.app.cli", "run", "-c", manifest,
        "--proxy-mode", "userspace", "--workers", "1", "--max-connections", "0",
        "--watch-ingress-without-class",
        "--http-bind-address", f"{HOST}:{free_port() if l4 else port}",
        "--metrics-bind-address", "127.0.0.1:0", "--healthz-bind-address", "127.0.0.1:0",
    ]  # fmt: skip
    proc = procs.start(argv, env={**os.environ, "PYTHONPATH": str(ROOT)}, log="seaway.log")
    wait_port(HOST, port, proc=proc)
    return proc.pid


def targets(
    http: int, echo: int, room: int
) -> dict[str, tuple[str, int, Callable[[Processes, int], int]]]:
    """name -> (scenario kind, most clients it takes, start(procs, port) -> pid). Kinds:
    l7 or l4. `room`: the descriptors a proxy may use; haproxy counts two per client
    connection (one for its server side), so it takes half as many clients."""
    half = room // 2 - 64

    def nginx(procs: Processes, port: int) -> int:
        return start_nginx(procs, "proxy", port, NGINX_SERVER, NGINX_HTTP.format(http=http),
                           connections=room).pid

    return {
        "seaway L7": ("l7", room, lambda procs, port: start_seaway(procs, http, echo, port, False)),
        "nginx": ("l7", room, nginx),
        "haproxy http": ("l7", half, lambda procs, port: haproxy(
            procs, port, [(HOST, http)], "http", maxconn=half).pid),
        "seaway L4": ("l4", room, lambda procs, port: start_seaway(procs, http, echo, port, True)),
        "haproxy tcp": ("l4", half, lambda procs, port: haproxy(
            procs, port, [(HOST, echo)], "tcp", maxconn=half).pid),
    }


# ---------------------------------------------------------------- clients


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " in head.split(b"\r\n", 1)[0]:
        return head
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return head


async def open_clients(port: int, n: int, kind: str) -> list[Conn]:
    """n connections: idle (one GET each), ws (Upgrade, 101, one echo), tcp (one echo)."""
    gate = asyncio.Semaphore(200)
    out: list[Conn] = []

    async def one() -> None:
        async with gate:
            reader, writer = await asyncio.open_connection(HOST, port)
            if kind == "idle":
                writer.write(GET)
                head = await _read_response(reader)
                assert head.startswith(b"HTTP/1.1 200"), head
            else:
                if kind == "ws":
                    writer.write(UPGRADE)
                    head = await _read_response(reader)
                    assert b" 101 " in head, head
                writer.write(b"hello")
                assert await reader.readexactly(5) == b"hello"
            out.append((reader, writer))

    await asyncio.gather(*(one() for _ in range(n)))
    return out


async def measure(pid: int, port: int, n: int, kind: str) -> tuple[int, int]:
    warm = await open_clients(port, 20, kind)
    for _, w in warm:
        w.close()
    await asyncio.sleep(1.0)
    before = rss_bytes(pid)
    clients = await open_clients(port, n, kind)
    await asyncio.sleep(1.0)
    after = rss_bytes(pid)
    for _, w in clients:
        w.close()
    await asyncio.sleep(0.5)
    return before, after


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--idle", type=int, default=10_000, help="idle keep-alive clients")
    ap.add_argument("--tunnels", type=int, default=1_000, help="websocket and TCP tunnels")
    ap.add_argument("--only", default="", help="comma-separated target names to run")
    ap.add_argument("--backend", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.backend:
        import uvloop

        uvloop.run(_serve_backend(*args.backend))
        return 0
    # Our clients and each proxy's side of them (idle: one descriptor each; a tunnel: two)
    need = max(args.idle, 2 * args.tunnels) + 2048
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        print(f"needs {need} open files; the hard limit is {hard}", file=sys.stderr)
        return 2
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))  # children inherit
    rows: list[tuple[str, str, int, int, int]] = []
    with Processes() as procs:
        http, echo = free_port(), free_port()
        backend = procs.start([sys.executable, "-m", "bench.memory", "--backend", str(http),
                               str(echo)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                              log="backend.log")
        wait_port(HOST, http, proc=backend)
        wait_port(HOST, echo, proc=backend)
        only = {t.strip() for t in args.only.split(",") if t.strip()}
        room = need if hard == resource.RLIM_INFINITY else hard - 1024
        for name, (kind, most, start) in targets(http, echo, room).items():
            if only and name not in only:
                continue
            scenarios = [("idle keep-alive", "idle", args.idle), ("websocket tunnel", "ws",
                         args.tunnels)] if kind == "l7" else [("TCP tunnel", "tcp", args.tunnels)]
            for label, client_kind, n in scenarios:
                n = min(n, most)
                port = free_port()
                pid = start(procs, port)
                t0 = time.monotonic()
                before, after = asyncio.run(measure(pid, port, n, client_kind))
                rows.append((label, name, n, before, after))
                print(f"  {label:<17} {name:<13} {n:>6} conns  {(after - before) / n / 1024:7.2f}"
                      f" KiB each  ({time.monotonic() - t0:.1f} s)", flush=True)
                for proc in list(procs.procs):
                    if proc.pid == pid:
                        procs.stop(proc)
                subprocess.run(["sleep", "0.2"], check=False)
    print()
    print(f"{'scenario':<18}{'target':<15}{'conns':>7}{'RSS before':>12}{'RSS after':>12}"
          f"{'per conn':>11}{'vs seaway':>11}")
    per = {(s, t): (a - b) / n for s, t, n, b, a in rows}
    for scenario, target, n, before, after in rows:
        mine = per.get((scenario, "seaway L7" if target != "seaway L4" and scenario !=
                        "TCP tunnel" else "seaway L4"))
        each = (after - before) / n
        vs = f"{each / mine:.2f}x" if mine else ""
        print(f"{scenario:<18}{target:<15}{n:>7}{before / 2**20:>10.1f}Mi{after / 2**20:>10.1f}Mi"
              f"{each / 1024:>8.2f}KiB{vs:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
