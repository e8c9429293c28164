"""The benchmark's own tools work: bench/minimal_proxy.py (the floor row of bench/http.py)
proxies through real sockets, and bench/hotpath.py drives seaway's hot path and the floor's
classes to the end of every exchange."""

from __future__ import annotations

import shutil
import socket
import sys

import pytest

from bench.common import HOST, Processes, free_port, start_nginx, wait_port
from bench.hotpath import IDENTICAL, floor_run, large, seaway_run, varied

REPO = __file__.rsplit("/tests/", 1)[0]


def test_hotpath_runs_every_exchange_through_seaway_and_the_floor() -> None:
    traffic = varied(50)
    assert len({req for req, _ in traffic}) == 50  # every request differs
    big = large(traffic[:10])
    assert all(resp.endswith(b"\r\n\r\n" + b"x" * 65536) for _, resp in big)
    assert all(b"Content-Length: 65536\r\n" in resp for _, resp in big)
    for run in (seaway_run, floor_run):
        assert run(traffic, 200) >= 0.0  # (each run asserts every exchange completed)
        assert run(big, 20) >= 0.0
        assert run(IDENTICAL, 100) >= 0.0


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx as the backend")
def test_the_floor_proxies_keep_alive_requests_and_closes_on_a_bad_one() -> None:
    with Processes() as procs:
        be = free_port()
        server = '        location / { return 200 "uri=$request_uri xff=$http_x_forwarded_for"; }'
        start_nginx(procs, "backend", be, server)
        port = free_port()
        argv = [sys.executable, f"{REPO}/bench/minimal_proxy.py", "--listen", f"{HOST}:{port}"]
        proc = procs.start([*argv, "--backend", f"{HOST}:{be}"])
        wait_port(HOST, port, proc=proc)
        with socket.create_connection((HOST, port), timeout=5) as c:
            for path in (b"/a?x=1", b"/b"):  # two requests on one connection
                c.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path)
                resp = _read_response(c)
                assert resp.startswith(b"HTTP/1.1 200 ")
                assert resp.endswith(b"uri=%s xff=127.0.0.1" % path)
        with socket.create_connection((HOST, port), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.1\nHost: t\n\n")  # bare LF: strict llhttp refuses it
            assert c.recv(100) == b""  # closed, nothing forwarded
