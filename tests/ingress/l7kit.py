"""Helpers for the L7 proxy tests: a uvloop in a thread, a scriptable backend, raw clients.

The proxy and the backends run in one background event loop; the test thread talks to
them with raw sockets and curl, as a real client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httptools
import uvloop

from discovery.model import LoadBalancing
from discovery.snapshot import EndpointInfo, ServicePortInfo, ServicePortName, Snapshot
from ingress.route_match import compile_table
from ingress.routes import RouteTable
from ingress.server import WorkerServer
from ingress.settings import HttpSettings
from ingress.translate_ingress import translate_ingresses
from tests.ingress import routerkit as k

T = TypeVar("T")
HOST = "127.0.0.1"


class LoopThread:
    """A uvloop running in a daemon thread; `run` executes a coroutine there."""

    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


# ---------------------------------------------------------------- backend


class BackendStats:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[dict[str, Any]] = []
        self.transports: list[asyncio.BaseTransport] = []


class HeadReader(asyncio.Protocol):
    """A scripted test backend: each request head (bodies are not expected) goes to
    `on_head`, with the connection's transport."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf and self.transport is not None:
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            self.on_head(head, self.transport)

    def on_head(self, head: bytes, transport: asyncio.Transport) -> None:
        raise NotImplementedError


class BackendProtocol(asyncio.Protocol):
    """HTTP/1.1 backend. Paths: /slow never answers, /chunked answers chunked,
    /ws upgrades and echoes, /echo-body returns the body, /bad answers garbage, /close
    answers without length and closes; anything else gets JSON about the request."""

    def __init__(self, name: str, stats: BackendStats) -> None:
        self.name = name
        self.stats = stats
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.tunnel = False
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body_length = 0
        self.body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.stats.connections += 1
        self.stats.transports.append(transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.tunnel:
            self.transport.write(data.upper())  # websocket stand-in: echo upper-cased
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            rest = data[int(exc.args[0]) :]
            if rest:
                self.transport.write(rest.upper())
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.body_length = 0
        self.body = bytearray()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1")
        if key in self.headers:
            self.headers[key] += ", " + value.decode("latin-1")
        else:
            self.headers[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        path = self.url.decode()
        method = self.parser.get_method().decode()
        self.stats.requests.append(
            {"path": path, "method": method, "headers": self.headers, "conn": id(self)}
        )
        if path.removeprefix("/api").startswith("/ws"):
            self.tunnel = True
            assert self.transport is not None
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\n\r\n"
            )

    def on_body(self, body: bytes) -> None:
        self.body_length += len(body)
        if self.url.removeprefix(b"/api").startswith(b"/echo-body"):
            self.body += body

    def on_message_complete(self) -> None:
        t = self.transport
        assert t is not None
        full = self.url.decode()
        path = full.removeprefix("/api")  # the same behaviours behind /api
        if path.startswith("/ws") or path.startswith("/slow"):
            return
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            t.write(
                b"HTTP/1.1 %d X\r\nContent-Length: 0\r\nX-Name: %s\r\n\r\n"
                % (code, self.name.encode())
            )
            return
        if path.startswith("/big/"):
            size = int(path.split("/")[2])
            t.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            block = b"z" * 1048576
            while size > 0:
                t.write(block[: min(size, len(block))])
                size -= len(block)
            return
        if path.startswith("/bad"):
            t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello")
            return
        if path.startswith("/echo-body"):
            t.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(self.body))
            t.write(bytes(self.body))
            return
        doc = {
            "name": self.name,
            "method": self.parser.get_method().decode(),
            "path": full,
            "headers": self.headers,
            "body_length": self.body_length,
        }
        body = json.dumps(doc).encode()
        if path.startswith("/chunked"):
            t.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for part in (body[:10], body[10:]):
                t.write(b"%x\r\n%s\r\n" % (len(part), part))
            t.write(b"0\r\n\r\n")
        elif path.startswith("/close"):
            t.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)
            t.close()
        else:
            if self.parser.get_method() == b"HEAD":
                body = b""  # a HEAD response announces the length but sends no body
                t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
            else:
                t.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


class Backend:
    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = BackendStats()
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> Backend:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: BackendProtocol(self.name, self.stats), HOST, 0
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def endpoint(self) -> EndpointInfo:
        return EndpointInfo(HOST, self.port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


# ---------------------------------------------------------------- config


ROUND_ROBIN = LoadBalancing("round-robin")


def port_info(
    service: str,
    endpoints: Iterable[EndpointInfo],
    port: int = 80,
    balancing: LoadBalancing = ROUND_ROBIN,
) -> ServicePortInfo:
    """A service port; round robin unless `balancing` says otherwise, so tests can
    predict which backend answers."""
    eps = tuple(endpoints)
    return ServicePortInfo(
        name=ServicePortName("default", service, "", "TCP"),
        cluster_ips=("10.96.0.10",),
        port=port,
        protocol="TCP",
        load_balancing=balancing,
        all_endpoints=eps,
        endpoints=eps,
    )


def two_service_snapshot(
    web: Iterable[EndpointInfo], api: Iterable[EndpointInfo], generation: int = 1
) -> Snapshot:
    """web.test/ -> web, web.test/api -> api, any host /other -> a service with no endpoints,
    everything else 404."""
    ing = k.ingress(
        "site",
        k.rule("web.test", k.path("/", "web"), k.path("/api", "api")),
        k.rule("", k.path("/other", "empty")),
    )
    ports = [port_info("web", web), port_info("api", api), port_info("empty", ())]
    return k.snapshot([ing], ports, generation=generation)


class Proxy:
    """A WorkerServer (HTTP listener on a free port) in the loop thread."""

    def __init__(self, lt: LoopThread, settings: HttpSettings | None = None) -> None:
        self.lt = lt
        self.settings = settings or HttpSettings()
        self.server: WorkerServer | None = None
        self.port = 0

    def apply(self, snap: Snapshot) -> None:
        self.apply_table(translate_ingresses(snap).table)

    def apply_table(self, table: RouteTable) -> None:
        """Serve `table` (its first listener) on the proxy's HTTP port."""
        router = compile_table(table)

        async def go() -> None:
            if self.server is None:
                self.server = WorkerServer(self.lt.loop, self.settings, router)
            await self.server.apply(router, (HOST, self.port), None, None)
            assert self.server.http is not None
            self.port = self.server.http.address[1]

        self.lt.run(go())

    def close(self) -> None:
        if self.server is not None:
            self.lt.run(self.server.close())


@contextmanager
def one_backend(lt: LoopThread, settings: HttpSettings) -> Iterator[tuple[Proxy, Backend]]:
    """A Proxy with `settings` in front of one Python Backend ("web"), both closed after."""
    backend = lt.run(Backend("web").start())
    proxy = Proxy(lt, settings)
    proxy.apply(two_service_snapshot([backend.endpoint], [backend.endpoint]))
    try:
        yield proxy, backend
    finally:
        proxy.close()
        lt.run(backend.close())


# ---------------------------------------------------------------- clients


def exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes, read until the proxy closes the connection."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(data)
        return read_until_closed(s)


def read_until_closed(s: socket.socket) -> bytes:
    """Everything the peer sends until it closes (a timeout raises: never kept open)."""
    chunks = []
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


class Response:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()


def parse_responses(raw: bytes) -> list[Response]:
    """Every complete response in `raw` (as read from one connection), in order."""
    out: list[Response] = []

    class P:
        def __init__(self) -> None:
            self.cur = Response()

        def on_header(self, n: bytes, v: bytes) -> None:
            self.cur.headers[n.decode().lower()] = v.decode()

        def on_headers_complete(self) -> None:
            self.cur.status = parser.get_status_code()

        def on_body(self, b: bytes) -> None:
            self.cur.body.extend(b)

        def on_message_complete(self) -> None:
            out.append(self.cur)
            self.cur = Response()

    parser = httptools.HttpResponseParser(P())
    with contextlib.suppress(httptools.HttpParserError):  # a truncated tail is not ours
        parser.feed_data(raw)
    return out


def get(port: int, path: str, host: str = "web.test", extra: str = "") -> tuple[int, bytes]:
    raw = exchange(
        port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n".encode()
    )
    status = int(raw.split(b" ", 2)[1]) if raw else 0
    return status, raw.partition(b"\r\n\r\n")[2]


# ---------------------------------------------------------------- nginx as a backend


@contextmanager
def nginx_backend(port: int, body: str, log_format: str = "") -> Iterator[str]:
    """nginx (1 worker) on HOST:port answering every request 200 with `body` (nginx
    variables allowed); yields its access log's path. Stopped and removed afterwards."""
    server = f"listen {HOST}:{port}; location / {{ return 200 '{body}'; }}"
    with nginx_server(port, server, log_format) as d:
        yield os.path.join(d, "access.log")


@contextmanager
def nginx_server(
    port: int, server: str, log_format: str = "", files: dict[str, bytes] | None = None
) -> Iterator[str]:
    """nginx (1 worker) with one `server` block (its text, `{dir}` replaced by the
    directory nginx runs in, where `files` are written first), serving on `port`;
    yields that directory (access.log is there). Stopped and removed afterwards."""
    from tests.support import wait_for_port

    d = tempfile.mkdtemp(prefix="seaway-nginx-")
    os.chmod(d, 0o755)
    for name, data in (files or {}).items():
        with open(os.path.join(d, name), "wb") as out:
            out.write(data)
    conf = os.path.join(d, "nginx.conf")
    fmt = f" log_format custom '{log_format}';" if log_format else ""
    log = f"{d}/access.log" + (" custom" if log_format else "")
    with open(conf, "w") as f:
        f.write(
            f"worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;\n"
            f"events {{ worker_connections 1024; }}\n"
            f"http {{{fmt} access_log {log}; client_body_temp_path {d};"
            f" proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d};"
            f" scgi_temp_path {d};\n"
            f"  server {{ {server.replace('{dir}', d)} }} }}\n"
        )
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", d, "-g", "daemon off;"])
    try:
        wait_for_port(HOST, port)
        yield d
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)


def access_log_lines(path: str, needle: str, want: int) -> list[str]:
    """The log lines that contain `needle`, once nginx has written `want` of them (it logs
    after answering; a readiness poll, not a timing test)."""
    deadline = time.monotonic() + 10
    while True:
        with open(path) as f:
            lines = [ln for ln in f.read().splitlines() if needle in ln]
        if len(lines) >= want or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)
