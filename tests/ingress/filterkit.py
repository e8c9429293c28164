"""Helpers for the route filter tests: a proxy serving a hand-made RouteTable in front of
real backends, and a raw HTTP/1.1 client that keeps every header field it gets.

Routes are made the way a translator makes them (tests/ingress/routemodel.py's
``route``), with Backends pointing at real listening sockets (``backend_of``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httptools

from discovery.snapshot import EndpointInfo, ServicePortName
from ingress import selfsigned
from ingress.filters.runtime import FilterRuntime
from ingress.routes import Backend, Listener, Route, RouteTable, VirtualHost
from ingress.settings import HttpSettings
from tests.ingress.l7kit import HOST, LoopThread, Proxy
from tests.ingress.l7kit import Backend as PyBackend

HOSTNAME = "app.test"


def backend_of(name: str, *ports: int, weight: int = 1) -> Backend:
    """A route model Backend for Service `name` whose endpoints are local ports."""
    eps = tuple(EndpointInfo(HOST, p) for p in ports)
    return Backend(
        f"default/{name}:80", eps, ServicePortName("default", name, "http", "TCP"), weight=weight
    )


def table(*routes: Route, hostnames: Sequence[str] = (HOSTNAME,)) -> RouteTable:
    return RouteTable((Listener("ingress", (VirtualHost(tuple(hostnames), routes),)),), 1)


@contextmanager
def backends(lt: LoopThread, *names: str) -> Iterator[list[PyBackend]]:
    """Python backends (tests/ingress/l7kit.py BackendProtocol) named `names`."""
    started = [lt.run(PyBackend(n).start()) for n in names]
    try:
        yield started
    finally:
        for b in started:
            lt.run(b.close())


@contextmanager
def proxy(
    lt: LoopThread, routes: RouteTable, settings: HttpSettings | None = None, https: bool = False
) -> Iterator[Proxy]:
    """A proxy serving `routes` on HTTP (``p.port``) and, with `https`, on HTTPS too
    (``p.https_port``, a self-signed certificate)."""
    p = Proxy(lt, settings)
    p.apply_table(routes)
    if https:
        cert, key = selfsigned.generate("app.test", ["app.test"])
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory() as d:
            paths = [os.path.join(d, n) for n in ("c.pem", "k.pem")]
            for path, data in zip(paths, (cert, key), strict=True):
                with open(path, "wb") as f:
                    f.write(data)
            tls.load_cert_chain(*paths)

        async def listen() -> None:
            assert p.server is not None
            router = p.server.ctx.router
            await p.server.apply(router, (HOST, p.port), (HOST, 0), tls)

        lt.run(listen())
    try:
        yield p
    finally:
        p.close()


def https_port(p: Proxy) -> int:
    assert p.server is not None and p.server.https is not None
    return p.server.https.address[1]


def runtime(p: Proxy) -> FilterRuntime:
    assert p.server is not None and p.server.ctx.filters is not None
    return p.server.ctx.filters


@dataclass
class Answer:
    status: int = 0
    fields: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        found = self.all(name)
        return found[0] if found else None

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.fields if n.lower() == name.lower()]

    def json(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.body)
        return doc

    def sent_header(self, name: str) -> str | None:
        """A header the Python backend received (its JSON echo; fields of one name,
        whatever their case, joined with ", ")."""
        headers: dict[str, str] = self.json()["headers"]
        found = [v for n, v in headers.items() if n.lower() == name.lower()]
        return ", ".join(found) if found else None


def parse(raw: bytes, head_request: bool = False) -> list[Answer]:
    """Every complete response in `raw` (`head_request`: the one answer to a HEAD)."""
    out: list[Answer] = []
    if head_request:
        head, blank, _ = raw.partition(b"\r\n\r\n")
        if not blank:
            return out
        lines = head.decode("latin-1").split("\r\n")
        fields = [tuple(x.strip() for x in ln.split(":", 1)) for ln in lines[1:]]
        return [Answer(int(lines[0].split()[1]), fields)]  # type: ignore[arg-type]

    class Sink:
        cur = Answer()

        def on_header(self, n: bytes, v: bytes) -> None:
            self.cur.fields.append((n.decode("latin-1"), v.decode("latin-1")))

        def on_headers_complete(self) -> None:
            self.cur.status = parser.get_status_code()

        def on_body(self, b: bytes) -> None:
            self.cur.body += b

        def on_message_complete(self) -> None:
            out.append(self.cur)
            self.cur = Answer()

    parser = httptools.HttpResponseParser(Sink())
    with contextlib.suppress(httptools.HttpParserError):
        parser.feed_data(raw)
    return out


def send(port: int, raw: bytes, timeout: float = 10.0, tls: bool = False) -> bytes:
    """Raw bytes in, everything until the proxy closes out (over TLS with `tls`, the
    certificate not checked)."""
    with socket.create_connection((HOST, port), timeout=timeout) as plain:
        s = plain
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(plain, server_hostname=HOSTNAME)
        s.sendall(raw)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def request(
    port: int,
    path: str = "/",
    host: str = HOSTNAME,
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    timeout: float = 10.0,
    tls: bool = False,
) -> Answer:
    """One request on its own connection (Connection: close)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{n}: {v}" for n, v in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    answers = parse(send(port, raw, timeout, tls), head_request=method == "HEAD")
    assert answers, f"no complete answer to {method} {path}"
    return answers[0]


def on_one_connection(port: int, requests: Sequence[bytes], timeout: float = 10.0) -> list[Answer]:
    """Several raw requests on one keep-alive connection, the answers in order."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        answers: list[Answer] = []
        for raw in requests:
            s.sendall(raw)
            data = b""
            while True:
                got = parse(data)
                if got:
                    answers.append(got[0])
                    break
                chunk = s.recv(65536)
                if not chunk:
                    return answers
                data += chunk
    return answers
