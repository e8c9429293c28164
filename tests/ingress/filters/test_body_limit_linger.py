"""A body over the limit gets 413, and the client can read it even while it is still
sending its body: the proxy closes its side for writing and reads (and drops) what the
client goes on sending for a while before closing, as nginx's lingering_close does, so the
client's writes do not fail with a reset before it reads the answer."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from ingress.route_filters import BodyLimit
from tests.ingress.filterkit import backend_of, proxy, table
from tests.ingress.l7kit import HOST, Backend, LoopThread
from tests.ingress.routemodel import route
from tests.support import wait_until

BODY = 8 * 1024 * 1024  # far more than the socket buffers hold


@pytest.fixture(scope="module")
def echo(lt: LoopThread) -> Iterator[Backend]:
    b = lt.run(Backend("echo").start())
    yield b
    lt.run(b.close())


def upload(port: int, head: bytes) -> tuple[bytes, int, str]:
    """Send `head` then BODY bytes from one thread while another reads: (what was read,
    bytes sent before the writes stopped, how the writes ended)."""
    sock = socket.create_connection((HOST, port))
    sock.settimeout(20)
    got = bytearray()
    sent = 0
    ended = "all sent"

    def reader() -> None:
        try:
            while chunk := sock.recv(65536):
                got.extend(chunk)
        except OSError:
            pass

    t = threading.Thread(target=reader)
    t.start()
    try:
        sock.sendall(head)
        block = b"x" * 65536
        while sent < BODY:
            sent += sock.send(block)
    except OSError as e:
        ended = type(e).__name__
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
    t.join(20)
    sock.close()
    return bytes(got), sent, ended


@pytest.mark.parametrize("framing", ["declared", "chunked"])
def test_413_is_readable_while_the_body_is_still_coming(
    lt: LoopThread, echo: Backend, framing: str
) -> None:
    be = backend_of("echo", echo.port)
    with proxy(lt, table(route(be, "/", filters=(BodyLimit(1024),)))) as p:
        if framing == "declared":
            head = (b"POST /up HTTP/1.1\r\nHost: app.test\r\nContent-Length: %d\r\n\r\n" % BODY)
        else:
            head = b"POST /up HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
            head += b"%x\r\n" % BODY
        got, sent, ended = upload(p.port, head)
        assert got.startswith(b"HTTP/1.1 413 "), (got[:100], sent, ended)
        assert b"Connection: close" in got
        assert ended == "all sent", (sent, ended)  # no reset while the body was coming


def test_a_client_that_stops_sending_is_closed_after_the_linger_timeout(
    lt: LoopThread, echo: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nginx lingering_timeout: a client that neither sends nor closes is not waited for
    longer (here 0.2 s instead of 5 s): it reads the 413 and the end of the stream (the
    proxy's FIN), and the proxy closes the socket though the client keeps it open."""
    import ingress.linger

    monkeypatch.setattr(ingress.linger, "LINGER_TIMEOUT", 0.2)
    be = backend_of("echo", echo.port)
    with proxy(lt, table(route(be, "/", filters=(BodyLimit(1024),)))) as p:
        sock = socket.create_connection((HOST, p.port))
        sock.settimeout(10)
        sock.sendall(b"POST /up HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100000\r\n\r\n"
                     + b"x" * 4096)  # fmt: skip
        got = bytearray()
        while chunk := sock.recv(65536):  # ends with the proxy's FIN
            got.extend(chunk)
        assert got.startswith(b"HTTP/1.1 413 ")
        server = p.server
        assert server is not None
        connections = server.ctx.connections
        wait_until(lambda: not connections, 5, "the lingering connection to be closed")
        sock.close()
