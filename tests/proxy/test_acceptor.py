"""proxy.acceptor: the pause schedule on EMFILE (fake loop and socket, no sleeping), the
log lines per episode, the counters; refusal over the limit with real sockets."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

import pytest

from proxy.acceptor import (
    COUNTERS,
    FIRST_PAUSE,
    MAX_PAUSE,
    Acceptor,
    answer_and_close,
    reset_socket,
)
from tests.proxy.userspace.helpers import run


class FakeLoop:
    """Records readers and timers; `fire()` runs the pending timer."""

    def __init__(self) -> None:
        self.now = 0.0
        self.reader: Callable[[], None] | None = None
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def time(self) -> float:
        return self.now

    def add_reader(self, fd: int, cb: Callable[[], None]) -> None:
        assert self.reader is None, "reader added twice"
        self.reader = cb

    def remove_reader(self, fd: int) -> bool:
        self.reader = None
        return True

    def call_later(self, delay: float, cb: Callable[[], None]) -> asyncio.TimerHandle:
        self.timers.append((delay, cb))
        return asyncio.TimerHandle(self.now + delay, cb, (), asyncio.new_event_loop())

    def fire(self) -> float:
        delay, cb = self.timers.pop(0)
        self.now += delay
        cb()
        return delay


class FakeListener:
    """accept() raises the queued errors, then hands out socket pairs' ends."""

    def __init__(self) -> None:
        self.errors: list[int] = []
        self.backlog = 0
        self.made: list[socket.socket] = []

    def fileno(self) -> int:
        return 99

    def accept(self) -> tuple[socket.socket, Any]:
        if self.errors:
            code = self.errors.pop(0)
            raise OSError(code, "Too many open files")
        if not self.backlog:
            raise BlockingIOError
        self.backlog -= 1
        a, b = socket.socketpair()
        self.made += [a, b]
        return a, None

    def close(self) -> None:
        for s in self.made:
            s.close()


def test_emfile_pauses_with_a_growing_delay_logs_once_and_resumes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop, sock = FakeLoop(), FakeListener()
    accepted: list[socket.socket] = []
    acc = Acceptor(loop, sock, accepted.append, "http://127.0.0.1:80")  # type: ignore[arg-type]
    before = (COUNTERS.accept_failures, COUNTERS.accept_pauses)
    sock.errors = [errno.EMFILE] * 10
    caplog.set_level(logging.INFO, "proxy.acceptor")
    assert loop.reader is not None
    loop.reader()
    assert acc.paused and loop.reader is None  # no spinning on a readable socket
    delays = []
    while sock.errors:
        delays.append(loop.fire())
        assert loop.reader is not None
        loop.reader()  # readable again at once: one accept, fails, pauses longer
    assert delays[:4] == [FIRST_PAUSE, 0.02, 0.04, 0.08]
    assert max(delays) == MAX_PAUSE and delays[-1] == MAX_PAUSE
    assert COUNTERS.accept_failures - before[0] == 10
    assert COUNTERS.accept_pauses - before[1] == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Too many open files" in warnings[0].getMessage()
    assert "open files limit" in warnings[0].getMessage()

    sock.backlog = 3  # descriptors freed: the next try accepts the queue
    loop.fire()
    assert loop.reader is not None
    loop.reader()
    assert len(accepted) == 3 and not acc.paused
    resumed = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(resumed) == 1 and "10 accepts failed meanwhile" in resumed[0]

    sock.errors = [errno.ENFILE]  # a new episode starts from the first pause again
    loop.reader()
    assert loop.timers[-1][0] == FIRST_PAUSE
    assert COUNTERS.accept_pauses - before[1] == 2
    acc.close()
    assert not loop.timers or acc._timer is None
    sock.close()
    for s in accepted:
        s.close()


def test_other_accept_errors_are_logged_without_pausing(caplog: pytest.LogCaptureFixture) -> None:
    loop, sock = FakeLoop(), FakeListener()
    acc = Acceptor(loop, sock, lambda c: None, "tcp://x")  # type: ignore[arg-type]
    sock.errors = [errno.EPROTO]
    assert loop.reader is not None
    loop.reader()
    assert not acc.paused and loop.reader is not None
    assert "accept on tcp://x failed" in caplog.text


def listening() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    s.setblocking(False)
    return s


def reset_seen(address: tuple[str, int]) -> type[BaseException] | None:
    """Connect and read: the error the peer's answer raised (None: a plain close)."""
    try:
        with socket.create_connection(address, timeout=5) as c:
            c.recv(100)
    except ConnectionResetError as exc:
        return type(exc)
    return None


def test_over_the_limit_connections_are_refused_with_503_or_reset() -> None:
    async def main() -> tuple[bytes, type[BaseException] | None]:
        loop = asyncio.get_running_loop()
        kept: list[socket.socket] = []
        http_sock, tcp_sock = listening(), listening()
        full = True

        def response(conn: socket.socket) -> None:
            answer_and_close(conn, b"HTTP/1.1 503 Service Unavailable\r\n\r\n")

        before = COUNTERS.refused
        http = Acceptor(loop, http_sock, kept.append, "http", lambda: full, response)
        tcp = Acceptor(loop, tcp_sock, kept.append, "tcp", lambda: full, reset_socket)
        try:
            r, w = await asyncio.open_connection(*http_sock.getsockname())
            answer = await asyncio.wait_for(r.read(), 5)
            w.close()
            error = await asyncio.to_thread(reset_seen, tcp_sock.getsockname())
            assert COUNTERS.refused - before == 2 and not kept
            return answer, error
        finally:
            http.close()
            tcp.close()

    answer, error = run(main())
    assert answer == b"HTTP/1.1 503 Service Unavailable\r\n\r\n"
    assert error is ConnectionResetError
