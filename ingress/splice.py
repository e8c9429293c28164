"""Large Content-Length response bodies from backend socket to client socket with splice(2).

A 64 KiB body read the ordinary way is copied three times: by the kernel into uvloop's
read buffer, by uvloop into a bytes object, and by the kernel again into the client's
socket. `Splicer.forward` moves it socket -> pipe -> socket instead: the kernel passes
page references, nothing reaches user space.

The decision is the upstream connection's (ingress/upstream.py `_splice`), made on a
response head, so small responses pay nothing. For a body to still be in the socket when
its head is handled, a connection that has seen a large response reads its next heads
through `BufferedReads` (asyncio's BufferedProtocol: uvloop reads into a buffer we give
it) at most HEAD_READ bytes at a time, as nginx reads a head into proxy_buffer_size;
after SMALL_STREAK responses in a row that were not spliced it goes back to ordinary
reads.

The pipe is the worker loop's one pipe, and it is empty whenever `forward` returns: what
the client cannot take at once (EAGAIN on its socket) is read back and returned, for the
caller to write through the client's transport, whose flow control then pauses the
upstream side as for any body. So memory stays bounded by the transports' high-water
marks, as without splicing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sys
import termios
from typing import Final, Protocol

log = logging.getLogger(__name__)

HEAD_READ: Final = 4096  # bytes read while a response head is expected (nginx: one page)
BODY_READ: Final = 256 * 1024  # bytes read while a body is (uvloop's own read size)
SPLICE_MIN: Final = 16 * 1024  # body bytes still to come, at least, to splice them
AHEAD_MAX: Final = 16 * 1024  # bytes already read (head, body start) that go in the pipe
PIPE_SIZE: Final = 256 * 1024
SMALL_STREAK: Final = 16  # responses not spliced in a row: back to ordinary reads
_FLAGS: Final = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
_INT: Final = bytes(4)  # (the ioctl's int)

# What `forward` did (Splicer.result)
DONE: Final = 0  # every byte asked for went to the client
WAITING: Final = 1  # the backend has sent no more yet: the rest comes by ordinary reads
FULL: Final = 2  # the client could not take it all: `Splicer.rest` is for its transport
CLOSED: Final = 3  # the backend closed before the end (connection_lost follows)
EXCESS: Final = 4  # the backend sent more than its Content-Length: nothing more sent
BROKEN: Final = 5  # a socket failed (the client went away, or the backend reset)


def plain_fd(out: asyncio.Transport) -> int:
    """The socket of a client transport that writes bytes as they are (TCP, no TLS) and
    has nothing waiting to be written, else -1."""
    if out.get_write_buffer_size() or out.is_closing():
        return -1
    if out.get_extra_info("sslcontext") is not None:
        return -1
    sock = out.get_extra_info("socket")
    if sock is None:
        return -1
    fd: int = sock.fileno()
    return fd


class Splicer:
    """One per worker loop (ingress/context.py): the pipe, the read buffers of the
    connections that read through `BufferedReads` (each read is copied out at once), and
    the byte count (`spliced`, for tests and `bench/`)."""

    __slots__ = ("_r", "_w", "body", "head", "rest", "spliced", "view")

    def __init__(self) -> None:
        self._r = -1
        self._w = -1
        self.view = memoryview(bytearray(BODY_READ))
        self.head = self.view[:HEAD_READ]
        self.body = self.view
        self.rest = b""  # (FULL) bytes read back from the pipe for the client's transport
        self.spliced = 0  # body bytes moved by splice so far

    def close(self) -> None:
        if self._r >= 0:
            os.close(self._r)
            os.close(self._w)
            self._r = self._w = -1

    def _open(self) -> None:
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # (beyond pipe-max-size: the default 64 KiB)
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        self._r = r
        self._w = w

    def forward(self, src: int, dst: int, ahead: bytes, left: int) -> tuple[int, int]:
        """Send `ahead` (at most AHEAD_MAX bytes) then up to `left` bytes spliced from
        `src` to `dst`, in one pipe. Returns (what happened, bytes taken from `src`). One
        byte more than `left` is asked for each time: a surplus in the socket shows, and
        then the last bytes are not delivered (the caller fails the exchange)."""
        if self._r < 0:
            self._open()
        w = self._w
        pending = 0
        if ahead:
            try:
                pending = os.write(w, ahead)
            except OSError as exc:
                return self._broken(exc), 0
            if pending != len(ahead):  # (never: the pipe is empty and holds more)
                return self._broken(OSError("short pipe write")), 0
        taken = 0
        result = DONE
        while True:
            if taken < left:
                try:
                    k = os.splice(src, w, left - taken + 1, None, None, _FLAGS)
                except BlockingIOError:
                    result = WAITING
                    k = 0
                except OSError as exc:
                    return self._broken(exc), taken
                else:
                    if not k:
                        result = CLOSED
                    taken += k
                    if taken > left:
                        self._reset()  # (the surplus and what came with it stay unsent)
                        return EXCESS, taken
                    pending += k
            if pending:
                sent = self._deliver(dst, pending)
                if sent < pending:
                    if sent < 0:
                        return BROKEN, taken
                    self.spliced += taken
                    return FULL, taken
            if taken == left or result != DONE:
                self.spliced += taken
                return result, taken

    def _deliver(self, dst: int, n: int) -> int:
        """Move the `n` bytes in the pipe to `dst`: n, or less when `dst` was full (the
        rest is read back into `rest`), or -1 when it failed. On EAGAIN the pipe is asked
        what is left in it: splice into a full socket was seen to fail with EAGAIN after
        it had moved every byte (Linux 6.18), so the count is never inferred."""
        sent = 0
        while sent < n:
            try:
                sent += os.splice(self._r, dst, n - sent, None, None, _FLAGS)
            except BlockingIOError:
                left = self._in_pipe()
                if left:
                    self.rest = self._drain(left)
                return n - left
            except OSError as exc:
                self._broken(exc)
                return -1
        return sent

    def _in_pipe(self) -> int:
        return int.from_bytes(fcntl.ioctl(self._r, termios.FIONREAD, _INT), sys.byteorder)

    def _drain(self, n: int) -> bytes:
        parts: list[bytes] = []
        while n > 0:
            part = os.read(self._r, n)
            if not part:
                break
            parts.append(part)
            n -= len(part)
        return b"".join(parts)

    def _broken(self, exc: OSError) -> int:
        log.debug("splice failed: %r", exc)
        self._reset()
        return BROKEN

    def _reset(self) -> None:
        """After an error left bytes of unknown count in it: a new pipe."""
        self.close()
        self._open()


class SplicingReader(Protocol):
    """What `BufferedReads` reads for (ingress/upstream.py's UpstreamConnection)."""

    def reading_head(self) -> bool: ...

    def data_received(self, data: bytes) -> None: ...

    def buffered_read_done(self) -> None: ...

    def connection_lost(self, exc: Exception | None) -> None: ...

    def eof_received(self) -> bool | None: ...

    def pause_writing(self) -> None: ...

    def resume_writing(self) -> None: ...


class BufferedReads(asyncio.BufferedProtocol):
    """The protocol an upstream connection's transport calls while that connection reads
    heads HEAD_READ bytes at a time. Reads go to the connection as bytes, as ordinary
    reads do."""

    __slots__ = ("conn", "splicer")

    def __init__(self, conn: SplicingReader, splicer: Splicer) -> None:
        self.conn = conn
        self.splicer = splicer

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.splicer.head if self.conn.reading_head() else self.splicer.body

    def buffer_updated(self, nbytes: int) -> None:
        conn = self.conn
        conn.data_received(bytes(self.splicer.view[:nbytes]))
        conn.buffered_read_done()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        pass  # (set only on a connected transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self.conn.eof_received()

    def pause_writing(self) -> None:
        self.conn.pause_writing()

    def resume_writing(self) -> None:
        self.conn.resume_writing()
