"""--max-connections at L7 on real sockets: past the limit a new client gets 503 and a
closed connection; once a client leaves, new ones are served again."""

from __future__ import annotations

import dataclasses
import socket

from ingress.settings import HttpSettings
from proxy.acceptor import COUNTERS
from tests.ingress.l7kit import HOST, LoopThread, exchange, one_backend
from tests.support import wait_until

SETTINGS = dataclasses.replace(HttpSettings(), max_connections=2)
REQUEST = b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n"


def keep_alive_client(port: int) -> socket.socket:
    """A client that made one request and keeps its connection open."""
    s = socket.create_connection((HOST, port), timeout=5)
    s.sendall(REQUEST)
    assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
    return s


def test_past_max_connections_a_client_gets_503_and_a_close(lt: LoopThread) -> None:
    with one_backend(lt, SETTINGS) as (proxy, _):
        before = COUNTERS.refused
        first, second = keep_alive_client(proxy.port), keep_alive_client(proxy.port)
        answer = exchange(proxy.port, REQUEST)  # read until the proxy closes
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert b"Connection: close" in answer
        assert COUNTERS.refused == before + 1
        first.close()
        server = proxy.server
        assert server is not None
        wait_until(lambda: len(server.ctx.connections) == 1, 5, "the first client to leave")
        third = keep_alive_client(proxy.port)
        for s in (second, third):
            s.close()
