"""64 KiB responses end to end, framed by Content-Length, from a backend that writes them
the way real ones do or must not: in many small pieces, cut short, or followed by bytes
nobody asked for. Real sockets on loopback; the proxy runs in the test's loop thread."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from discovery.snapshot import EndpointInfo
from ingress.settings import HttpSettings
from tests.ingress.l7kit import (
    HOST,
    HeadReader,
    LoopThread,
    Proxy,
    parse_responses,
    read_until_closed,
    two_service_snapshot,
)

SIZE = 64 * 1024
BODY = bytes(range(256)) * (SIZE // 256)  # not one repeated byte: order errors show
HEAD = b"HTTP/1.1 200 OK\r\nServer: scripted\r\nContent-Length: %d\r\n\r\n" % SIZE
EXTRA = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra"


class ScriptedBackend(HeadReader):
    """Answers each request head by its path: /pieces the body in 1 KiB writes with a
    pause between (so the proxy reads it in many reads), /short 1000 body bytes then a
    close, /extra the response and a second one in the same write, /late the second one
    a moment after; anything else the whole response in one write."""

    def __init__(self, connections: list[ScriptedBackend]) -> None:
        super().__init__()
        connections.append(self)
        self.paths: list[bytes] = []  # what it was asked, in order

    def on_head(self, head: bytes, transport: asyncio.Transport) -> None:
        path = head.split(b" ", 2)[1]
        self.paths.append(path)
        asyncio.get_running_loop().create_task(self.answer(path))

    async def answer(self, path: bytes) -> None:
        t = self.transport
        assert t is not None
        if path == b"/pieces":
            t.write(HEAD)
            for i in range(0, SIZE, 1024):
                await asyncio.sleep(0.001)
                t.write(BODY[i : i + 1024])
        elif path == b"/short":
            t.write(HEAD + BODY[:1000])
            await asyncio.sleep(0.05)
            t.close()
        elif path == b"/extra":
            t.write(HEAD + BODY + EXTRA)
        elif path == b"/late":
            t.write(HEAD + BODY)
            await asyncio.sleep(0.05)
            t.write(EXTRA)
        else:
            t.write(HEAD + BODY)


@pytest.fixture(scope="module")
def proxied(lt: LoopThread) -> Iterator[tuple[Proxy, list[ScriptedBackend]]]:
    connections: list[ScriptedBackend] = []

    async def start() -> asyncio.AbstractServer:
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: ScriptedBackend(connections), HOST, 0)

    server = lt.run(start())
    port = server.sockets[0].getsockname()[1]
    proxy = Proxy(lt, HttpSettings(upstream_timeout=5.0))
    ep = EndpointInfo(HOST, port)
    proxy.apply(two_service_snapshot([ep], [ep]))
    try:
        yield proxy, connections
    finally:
        proxy.close()
        server.close()


def request(path: str, close: bool = False) -> bytes:
    extra = "Connection: close\r\n" if close else ""
    return f"GET {path} HTTP/1.1\r\nHost: web.test\r\n{extra}\r\n".encode()


def read_response(s: socket.socket) -> bytes:
    """One response with a SIZE body from a kept-alive connection."""
    got = b""
    while b"\r\n\r\n" not in got or len(got.partition(b"\r\n\r\n")[2]) < SIZE:
        chunk = s.recv(65536)
        assert chunk, f"closed after {len(got)} bytes"
        got += chunk
    return got


@pytest.mark.parametrize("path", ["/whole", "/pieces"])
def test_a_64k_body_reaches_the_client_whole_and_the_connection_stays(
    proxied: tuple[Proxy, list[ScriptedBackend]], path: str
) -> None:
    """In one write or in 64 small ones (the proxy then reads it in many reads): the
    bytes arrive unchanged and in order, and the client connection serves the next."""
    proxy, _ = proxied
    with socket.create_connection((HOST, proxy.port), timeout=10) as s:
        for _ in range(2):
            s.sendall(request(path))
            raw = read_response(s)
            (resp,) = parse_responses(raw)
            assert resp.status == 200 and bytes(resp.body) == BODY
            assert raw.endswith(BODY)  # nothing after it


def test_a_body_cut_short_closes_the_client_connection(
    proxied: tuple[Proxy, list[ScriptedBackend]],
) -> None:
    """The backend closes after 1000 of 65536 body bytes: the client got the head and
    those bytes, then a closed connection (it must see the response is incomplete),
    never a keep-alive connection waiting for bytes that will not come."""
    proxy, _ = proxied
    with socket.create_connection((HOST, proxy.port), timeout=5) as s:
        s.sendall(request("/short"))  # (kept alive, it would time out here)
        raw = read_until_closed(s)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 65536" in head
    assert body == BODY[:1000]


@pytest.mark.parametrize("path", ["/extra", "/late"])
def test_bytes_beyond_the_content_length_never_reach_a_client(
    proxied: tuple[Proxy, list[ScriptedBackend]], path: str
) -> None:
    """A backend that sends more than its Content-Length: the surplus is refused (in the
    same read: the exchange fails, 502 or a cut; later: that upstream connection is
    closed, never reused), and it reaches neither this client nor the next one."""
    proxy, connections = proxied
    with socket.create_connection((HOST, proxy.port), timeout=10) as s:
        s.sendall(request(path, close=True))
        raw = read_until_closed(s)
    assert b"extra" not in raw
    responses = parse_responses(raw)
    assert [r.status for r in responses] in ([200], [502], [])
    if responses and responses[0].status == 200:
        assert bytes(responses[0].body) == BODY
    (used,) = [c for c in connections if path.encode() in c.paths]
    for _ in range(200):  # /late's surplus comes 50 ms after the response
        assert used.transport is not None
        if used.transport.is_closing():
            break
        time.sleep(0.01)
    assert used.transport is not None and used.transport.is_closing()  # never reused
    with socket.create_connection((HOST, proxy.port), timeout=10) as s:
        s.sendall(request("/whole", close=True))
        raw = read_until_closed(s)
    assert raw.startswith(b"HTTP/1.1 200 ") and raw.endswith(BODY)
