"""Helpers for tests that start real processes and talk to real sockets."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


_GIVEN: set[tuple[int, int]] = set()  # (kind, port) already handed out in this process


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port free now, never one this process was given before: two calls in a row may
    otherwise get the same one from the kernel, and sockets that set SO_REUSEPORT (a
    listener and a metrics server of one seaway) would then share it silently."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if (kind, port) not in _GIVEN:
            _GIVEN.add((kind, port))
            return port


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until a TCP connect to host:port succeeds (a readiness poll, not a timing test)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def connect_refused(host: str, port: int) -> bool:
    """Whether a TCP connect to host:port is refused (nothing listens there)."""
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def wait_until(predicate: object, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if callable(predicate) and predicate():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached after {timeout}s")
        time.sleep(0.05)


@contextlib.contextmanager
def seaway(args: Sequence[str], **popen: object) -> Iterator[subprocess.Popen[str]]:
    """Run `seaway ARGS` as a child process; always stopped (SIGTERM, then SIGKILL)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy.app.cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[call-overload]
    )
    try:
        yield proc
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[str], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def http_get(host: str, port: int, path: str = "/", headers: dict[str, str] | None = None,
             timeout: float = 5.0) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a fresh connection (Connection: close); (status, body)."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {(headers or {}).get('Host', host)}",
             "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items() if k.lower() != "host"]
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, body
