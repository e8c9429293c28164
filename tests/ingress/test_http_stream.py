"""100 MB through the proxy both ways with bounded memory (proxy in its own process, so
its peak RSS is its own)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.ingress.l7kit import HOST, Backend, LoopThread, parse_responses
from tests.support import REPO, free_port, wait_for_port

SIZE = 100 * 1024 * 1024
# The proxy's peak RSS must stay far below one body: a whole-body buffer anywhere would
# put it above SIZE.
MAX_PEAK = 90 * 1024 * 1024


def peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def proxied(lt: LoopThread) -> Iterator[tuple[int, int, Backend]]:
    backend = lt.run(Backend("big").start())
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "bench" / "seaway_l7.py"),
            "--listen",
            f"{HOST}:{port}",
            "--backend",
            f"{HOST}:{backend.port}",
        ],
    )
    try:
        wait_for_port(HOST, port)
        yield port, proc.pid, backend
    finally:
        proc.terminate()
        proc.wait(10)
        lt.run(backend.close())


@pytest.mark.slow
def test_100mb_request_body_streams(proxied: tuple[int, int, Backend]) -> None:
    port, pid, _ = proxied
    block = b"u" * 1048576
    with socket.create_connection((HOST, port), timeout=60) as s:
        s.sendall(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % SIZE
        )
        for _ in range(SIZE // len(block)):
            s.sendall(block)
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    (resp,) = parse_responses(raw)
    assert resp.status == 200
    assert json.loads(bytes(resp.body))["body_length"] == SIZE
    assert peak_rss(pid) < MAX_PEAK


@pytest.mark.slow
def test_100mb_response_body_streams(proxied: tuple[int, int, Backend]) -> None:
    port, pid, _ = proxied
    with socket.create_connection((HOST, port), timeout=60) as s:
        s.sendall(b"GET /big/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % SIZE)
        received = 0
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(65536)
        head, _, rest = head.partition(b"\r\n\r\n")
        received = len(rest)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"Content-Length: %d" % SIZE in head
        while chunk := s.recv(1 << 20):
            received += len(chunk)
    assert received == SIZE
    assert peak_rss(pid) < MAX_PEAK
