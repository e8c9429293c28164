"""Helpers for the TLS passthrough tests: pods that terminate TLS themselves (Python ssl
servers in the test's loop), seaway's L7 state serving a snapshot, and TLS clients
(curl, and a memory-BIO client that can cut its ClientHello into pieces)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import subprocess
import time
from dataclasses import replace

from cryptography import x509
from cryptography.x509.oid import NameOID

from discovery.model import Ingress
from discovery.snapshot import EndpointInfo, ServicePortInfo, Snapshot
from ingress.apply import L7State
from ingress.dataplane import tls_secrets_for
from ingress.settings import HttpSettings
from ingress.tls import load_pem
from ingress.translate_ingress import translate_ingresses
from ingress.workers import WorkerConfig
from tests.ingress import nginxkit as nk
from tests.ingress import routerkit as k
from tests.ingress.l7kit import HOST, LoopThread

Pem = tuple[bytes, bytes]


def cn_of(der: bytes) -> str:
    value = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(
        NameOID.COMMON_NAME
    )[0].value
    assert isinstance(value, str)
    return value


class PodProtocol(asyncio.Protocol):
    """HTTP over TLS, one request per connection: /big/N answers N bytes, anything else
    the pod's name (after the whole body, counted in `received`); then closes."""

    def __init__(self, pod: TlsPod) -> None:
        self.pod = pod
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.pod.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        head, sep, rest = self.buf.partition(b"\r\n\r\n")
        if not sep or self.transport is None:
            return
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(rest) < length:
            return  # the whole upload first
        self.pod.received += len(rest)
        target = head.split(b" ", 2)[1].decode()
        body = self.pod.name.encode()
        if target.startswith("/big/"):
            body = b"p" * int(target.split("/")[2])
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        )
        self.transport.write(body)
        self.transport.close()


class TlsPod:
    """A backend that terminates TLS with its own certificate (CN = its name)."""

    def __init__(self, name: str, pem: Pem) -> None:
        self.name = name
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        load_pem(self.context, *pem)
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.connections = 0
        self.received = 0  # request body bytes

    async def start(self) -> TlsPod:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: PodProtocol(self), HOST, 0, ssl=self.context
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def endpoint(self) -> EndpointInfo:
        return EndpointInfo(HOST, self.port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


class Seaway:
    """seaway's L7 state (the worker the daemon runs) on loopback: HTTP and HTTPS."""

    def __init__(self, lt: LoopThread, settings: HttpSettings | None = None) -> None:
        self.lt = lt
        self.settings = settings or HttpSettings()
        self.state = L7State(lt.loop)
        self.http = (HOST, 0)
        self.https = (HOST, 0)

    def serve(self, snapshot: Snapshot) -> None:
        table = translate_ingresses(snapshot).table
        config = WorkerConfig(
            self.settings, self.http, self.https, table, tls_secrets_for(snapshot, table)
        )
        self.lt.run(self.state.apply(config))
        http, https = self.state.addresses()
        self.http = http or self.http
        self.https = https or self.https

    @property
    def port(self) -> int:
        return self.https[1]

    def close(self) -> None:
        self.lt.run(self.state.close())


def snapshot(
    ingresses: list[Ingress], ports: list[ServicePortInfo], secrets: dict[str, Pem],
    ssl_passthrough: bool = True,
) -> Snapshot:
    snap = nk.snapshot(ingresses, services=(), ports=ports, ssl_passthrough=ssl_passthrough)
    tls = {("default", name): k.tls_secret(name, *pem) for name, pem in secrets.items()}
    return replace(snap, tls_secrets=tls)


def curl(host: str, port: int, path: str = "/", *extra: str) -> tuple[str, str]:
    """(body, CN of the certificate shown) of `curl https://host:port/path`, the name
    resolved to 127.0.0.1 as `--resolve` does (so SNI is `host`)."""
    url = f"https://{host}:{port}{path}"
    argv = ["curl", "-sk", "-v", "--max-time", "10", "--resolve", f"{host}:{port}:{HOST}",
            *extra, url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    subject = next(
        (ln.split("CN=", 1)[1].split(",")[0].strip() for ln in done.stderr.splitlines()
         if "subject:" in ln and "CN=" in ln),
        "",
    )
    return done.stdout, subject


def handshake(port: int, server_name: str | None, pieces: list[int] | None = None,
              records: list[int] | None = None) -> tuple[str, bytes]:
    """A TLS client on a raw socket: (CN of the certificate shown, the answer to GET /).
    `records`: the ClientHello's handshake message re-cut into TLS records of these
    sizes; `pieces`: the bytes then sent in TCP writes of these sizes, 50 ms apart."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with socket.create_connection((HOST, port), timeout=10) as sock:
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.do_handshake()
        hello = outgoing.read()
        if records:
            hello = recut(hello, records)
        sizes = pieces or [len(hello)]
        pos = 0
        for size in [*sizes, len(hello)]:
            if pos >= len(hello):
                break
            sock.sendall(hello[pos : pos + size])
            pos += size
            if pieces:
                time.sleep(0.05)  # separate TCP segments (not a timing assertion)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                out = outgoing.read()
                if out:
                    sock.sendall(out)
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("closed during the handshake") from None
                incoming.write(data)
        sock.sendall(outgoing.read())
        cn = cn_of(tls.getpeercert(binary_form=True) or b"")
        tls.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.sendall(outgoing.read())
        answer = b""
        while True:
            try:
                chunk = tls.read(65536)
                if not chunk:
                    break  # close_notify
                answer += chunk
            except ssl.SSLWantReadError:
                data = sock.recv(65536)
                if not data:
                    break
                incoming.write(data)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
        return cn, answer.partition(b"\r\n\r\n")[2]


def recut(hello: bytes, sizes: list[int]) -> bytes:
    """The same handshake message in TLS records of `sizes` (the rest in a last one)."""
    message, version, out = hello[5:], hello[1:3], b""
    for size in [*sizes, len(message)]:
        piece, message = message[:size], message[size:]
        if piece:
            out += b"\x16" + version + len(piece).to_bytes(2) + piece
    return out
