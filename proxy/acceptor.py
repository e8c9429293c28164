"""Accepting connections on a listening socket, for the L4 and L7 listeners: drains the
accept queue per readiness event, backs off when descriptors run out, and enforces the
per-worker connection limit.

Why not the loop's own server (create_server): under EMFILE, asyncio's selector loop
logs through the exception handler and retries after a fixed second; uvloop (libuv)
accepts and closes every pending connection with a reserved descriptor, and when that
trick fails it closes the listening handle for good, without a word (uvloop's
UVStreamServer._fatal_error swallows OSErrors). A loop that retried at once would spin a
core and write megabytes of log a second. Here, as nginx does, accepting pauses
instead: on EMFILE/ENFILE (and ENOBUFS/ENOMEM) the reader is removed and re-added after
a pause that doubles from 10 ms up to 1 s while accepts keep failing; connections wait
in the kernel's backlog meanwhile. One warning starts an episode, one info line ends it
with the count of failed accepts; the counters are exported as metrics.

Beyond `max_connections` (a callable tells whether the worker is full) a new connection
is accepted and handed to `refuse` at once: L7 answers 503 and closes, L4 resets.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import socket
import struct
from collections.abc import Callable

log = logging.getLogger(__name__)

ACCEPT_BATCH = 256  # connections accepted per readiness event
FIRST_PAUSE = 0.01
MAX_PAUSE = 1.0
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_LINGER_ZERO = struct.pack("ii", 1, 0)


class LimitCounters:
    """Per-process counts of what the limits did (read by proxy/app/metrics.py)."""

    __slots__ = ("accept_failures", "accept_pauses", "endpoint_overflows", "refused")

    def __init__(self) -> None:
        self.accept_failures = 0  # accepts that failed for want of descriptors or memory
        self.accept_pauses = 0  # episodes of paused accepting
        self.refused = 0  # connections refused over --max-connections
        self.endpoint_overflows = 0  # picks refused: every endpoint at its cap


COUNTERS = LimitCounters()


def nofile_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Acceptor:
    """Accepts on `sock` (listening, non-blocking) and hands each connection to `accept`.

    `full()` (optional) says the worker is at its connection limit; then `refuse` gets the
    connection instead. `name` is how logs call the listener.
    """

    __slots__ = (
        "_delay",
        "_failed",
        "_fd",
        "_since",
        "_timer",
        "accept",
        "full",
        "loop",
        "name",
        "refuse",
        "sock",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        accept: Callable[[socket.socket], object],
        name: str,
        full: Callable[[], bool] | None = None,
        refuse: Callable[[socket.socket], object] | None = None,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.accept = accept
        self.name = name
        self.full = full
        self.refuse = refuse or _close
        self._fd = sock.fileno()
        self._delay = 0.0  # the current pause; 0 while accepting normally
        self._failed = 0  # accepts failed in this episode
        self._since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        loop.add_reader(self._fd, self._on_readable)

    @property
    def paused(self) -> bool:
        return self._timer is not None

    def _on_readable(self) -> None:
        sock = self.sock
        full = self.full
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno in OUT_OF_RESOURCES:
                    self._pause(exc)
                else:
                    log.warning("accept on %s failed: %s", self.name, exc)
                return
            if self._delay:
                self._resumed()
            if full is not None and full():
                COUNTERS.refused += 1
                self.refuse(conn)
                continue
            self.accept(conn)

    def _pause(self, exc: OSError) -> None:
        COUNTERS.accept_failures += 1
        self._failed += 1
        if not self._delay:
            COUNTERS.accept_pauses += 1
            self._since = self.loop.time()
            self._delay = FIRST_PAUSE
            log.warning(
                "accept on %s: %s (open files limit %d); pausing accepts, retrying from "
                "%.0f ms up to %.0f s until descriptors free up",
                self.name,
                exc.strerror,
                nofile_limit(),
                FIRST_PAUSE * 1000,
                MAX_PAUSE,
            )
        else:
            self._delay = min(self._delay * 2, MAX_PAUSE)
        self.loop.remove_reader(self._fd)
        self._timer = self.loop.call_later(self._delay, self._retry)

    def _retry(self) -> None:
        self._timer = None
        self.loop.add_reader(self._fd, self._on_readable)

    def _resumed(self) -> None:
        log.info(
            "accept on %s: resumed after %.1f s; %d accepts failed meanwhile",
            self.name,
            self.loop.time() - self._since,
            self._failed,
        )
        self._delay = 0.0
        self._failed = 0

    def close(self) -> None:
        """Stop accepting and close the listening socket."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        else:
            self.loop.remove_reader(self._fd)
        self.sock.close()


def _close(conn: socket.socket) -> None:
    conn.close()


def reset_socket(conn: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the L4 answer to a connection over the limit."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    conn.close()


def answer_and_close(conn: socket.socket, response: bytes) -> None:
    """Send a small canned response (fits the socket buffer) and close; what the client
    sent so far is read first, so the close is a FIN and not a reset that could discard
    the response."""
    with contextlib.suppress(OSError):
        conn.setblocking(False)
        conn.send(response)
        while conn.recv(65536):
            pass
    conn.close()
