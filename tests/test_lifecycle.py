"""Signals, as a real seaway process gets them: graceful drain on SIGTERM (L7 and L4),
SIGHUP re-reads the files, SIGUSR1 reopens the access log in every worker."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support import (
    connect_refused,
    free_port,
    http_get,
    seaway,
    wait_for_port,
    wait_until,
)

HOST = "127.0.0.1"
GRACE = 10.0  # --shutdown-grace-period of these tests, seconds
DELAY = 1.5  # seconds the slow backend takes to answer


class SlowBackend:
    """HTTP/1.1 keep-alive backend in a thread: answers each request after `delay`
    seconds; `/fast` at once. Counts the requests it has received."""

    def __init__(self, delay: float = DELAY) -> None:
        self.delay = delay
        self.received = 0
        self.loop = asyncio.new_event_loop()
        self.port = free_port()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, HOST, self.port))
        ready.set()
        self.loop.run_forever()
        server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.received += 1
                if not head.startswith(b"GET /fast"):
                    await asyncio.sleep(self.delay)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def slow() -> Iterator[SlowBackend]:
    backend = SlowBackend()
    yield backend
    backend.close()


def request(port: int, path: str = "/") -> tuple[int, dict[str, str]]:
    """One keep-alive GET (no Connection: close) on a fresh connection: (status, headers)."""
    with socket.create_connection((HOST, port), timeout=GRACE + 10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                return 0, {}
            data += chunk
    head = data.split(b"\r\n\r\n")[0].decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in head[1:])
    return int(head[0].split()[1]), {k.lower(): v for k, v in headers.items()}


def refused(port: int) -> bool:
    return connect_refused(HOST, port)


def ready_status(metrics: int) -> int:
    return http_get(HOST, metrics, "/readyz")[0]


def proxy_args(port: int, metrics: int, to: str, *extra: str) -> list[str]:
    return ["proxy", "--listen", f"{HOST}:{port}", "--to", to,
            "--metrics-bind-address", f"{HOST}:{metrics}",
            "--shutdown-grace-period", f"{GRACE:g}s", *extra]


def test_sigterm_lets_16_slow_requests_finish_then_exits_0(slow: SlowBackend) -> None:
    port, metrics = free_port(), free_port()
    args = proxy_args(port, metrics, f"{HOST}:{slow.port}", "--workers", "2")
    with seaway(args) as proc:
        wait_for_port(HOST, port)
        wait_until(lambda: ready_status(metrics) == 200, what="ready")
        # An idle keep-alive connection: closed by the drain, not left to time out.
        idle = socket.create_connection((HOST, port), timeout=GRACE)
        idle.sendall(b"GET /fast HTTP/1.1\r\nHost: test\r\n\r\n")
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")
        before = slow.received
        with ThreadPoolExecutor(16) as pool:
            answers = [pool.submit(request, port) for _ in range(16)]
            wait_until(lambda: slow.received - before == 16, what="16 requests in flight")
            proc.send_signal(signal.SIGTERM)
            wait_until(lambda: ready_status(metrics) == 503, what="/readyz 503")
            wait_until(lambda: refused(port), what="listeners closed")
            assert idle.recv(65536) == b""  # the idle connection was closed
            results = [a.result() for a in answers]
        assert [status for status, _ in results] == [200] * 16
        # Their heads had not come back yet at SIGTERM: each says the connection closes.
        assert all(headers.get("connection") == "close" for _, headers in results)
        assert proc.wait(GRACE) == 0  # within the grace period
        idle.close()
        assert proc.stderr is not None
        log = proc.stderr.read()
        assert "SIGTERM: shutting down gracefully" in log and "stopped" in log


def test_l4_connections_drain_too() -> None:
    from tests.proxy.userspace.helpers import NamedBackend

    port, metrics = free_port(), free_port()
    loop = asyncio.new_event_loop()
    backend = NamedBackend("b")
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(backend.start(), loop).result(10)
    try:
        with seaway(proxy_args(port, metrics, f"{HOST}:{backend.port}", "--l4")) as proc:
            wait_for_port(HOST, port)
            conn = socket.create_connection((HOST, port), timeout=GRACE)
            conn.sendall(b"one")
            assert conn.recv(100) == b"b:one"
            proc.send_signal(signal.SIGTERM)
            wait_until(lambda: refused(port), what="the listener closed")
            conn.sendall(b"two")  # the open connection still works while draining
            assert conn.recv(100) == b"b:two"
            assert proc.poll() is None  # it waits for the connection
            conn.close()
            assert proc.wait(GRACE) == 0
    finally:
        loop.call_soon_threadsafe(backend.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


MANIFEST = """apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 127.0.79.1
  ports: [{name: http, port: %d}]
"""


def test_sighup_rereads_the_files(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    path.write_text(MANIFEST % free_port())
    args = ["run", "-c", str(path), "--metrics-bind-address", f"{HOST}:{free_port()}",
            "--healthz-bind-address", f"{HOST}:0", "--http-bind-address", f"{HOST}:0"]
    with seaway(args) as proc:
        assert proc.stderr is not None
        lines: list[str] = []
        for line in proc.stderr:
            lines.append(line)
            if "synced generation" in line:
                break
        assert sum(f"{path}: 1 objects" in ln for ln in lines) == 1
        proc.send_signal(signal.SIGHUP)
        for line in proc.stderr:
            lines.append(line)
            if f"{path}: 1 objects" in line:
                break
        assert any("SIGHUP: re-reading the source" in ln for ln in lines)
        assert sum(f"{path}: 1 objects" in ln for ln in lines) == 2  # read again, unchanged
        assert proc.poll() is None


def test_sigusr1_reopens_the_access_log_in_every_worker(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    rotated = tmp_path / "access.log.1"
    port, metrics = free_port(), free_port()
    backend_port = free_port()
    with seaway(["echo", "--listen", f"{HOST}:{backend_port}", "--name", "b"]):
        wait_for_port(HOST, backend_port)
        args = proxy_args(port, metrics, f"{HOST}:{backend_port}", "--workers", "2",
                          "--access-log", str(log))
        with seaway(args) as proc:
            wait_for_port(HOST, port)
            for i in range(10):
                assert http_get(HOST, port, f"/before-{i}")[0] == 200
            wait_until(lambda: log.exists() and log.read_text().count("/before-") == 10,
                       what="10 lines logged")
            log.rename(rotated)
            proc.send_signal(signal.SIGUSR1)
            # Fresh connections land on both processes (SO_REUSEPORT): once a batch of 30
            # is wholly in the new file, every process reopened it.
            for batch in range(10):
                paths = [f"/after-{batch}-{i}" for i in range(30)]
                for path in paths:
                    assert http_get(HOST, port, path)[0] == 200
                wait_until(lambda ps=paths: all(_logged(p, log, rotated) for p in ps),
                           what="the batch logged")
                if all(_logged(p, log) for p in paths):
                    break
            else:
                raise AssertionError("a worker kept writing the rotated file")
            assert rotated.read_text().count("/before-") == 10
            assert proc.poll() is None


def _logged(path: str, *files: Path) -> bool:
    return any(f.exists() and path + " " in f.read_text() for f in files)


def test_status_json_reports_draining(slow: SlowBackend) -> None:
    port, metrics = free_port(), free_port()
    with seaway(proxy_args(port, metrics, f"{HOST}:{slow.port}", "--workers", "1")) as proc:
        wait_for_port(HOST, port)
        wait_until(lambda: ready_status(metrics) == 200, what="ready")
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(request, port)
            wait_until(lambda: slow.received >= 1, what="a request in flight")
            proc.send_signal(signal.SIGTERM)
            wait_until(lambda: json.loads(http_get(HOST, metrics, "/status.json")[1])["draining"],
                       what="draining in /status.json")
            assert answer.result()[0] == 200
        assert proc.wait(GRACE) == 0
