"""The access log: one line per request, formatted on the loop, written by a thread.

Lines collect in a buffer that is handed to one writer thread when it holds FLUSH_BYTES
or every FLUSH_INTERVAL seconds, so the event loop never waits on a disk or a pipe. If
the writer falls behind by more than MAX_BACKLOG bytes, lines are dropped (and counted
in `dropped`, logged once per interval) rather than held in memory without bound.
Each worker process writes its own batches to the same file, opened with O_APPEND, so
batches of whole lines never interleave (nginx's workers share a log the same way).
`reopen()` (SIGUSR1, after logrotate moved the file) closes and opens the path again,
in order with the writes.

Formats (absent values are "-"):
  combined  nginx's combined format, then request length, request time, upstream
            address, upstream status, upstream response time, route and service:
    127.0.0.1 - - [23/Nov/2026:10:00:00 +0000] "GET /api/users HTTP/1.1" 200 312 "-"
    "curl/8.5.0" 78 0.002 127.0.21.1:9002 200 0.001 "demo/demo" "demo/api:8000"
  json      one object per line with the same fields (keys as in nginx's variables).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import re
import sys
import threading
import time
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from ingress.exchange import Exchange
    from ingress.http1 import HttpProtocol
    from ingress.request import RequestState

log = logging.getLogger(__name__)

FORMATS = ("combined", "json")
FLUSH_BYTES = 64 * 1024
FLUSH_INTERVAL = 0.5  # seconds
MAX_BACKLOG = 64 * 1024 * 1024  # bytes handed to the writer and not written yet

_REOPEN = b"\0reopen"  # queue markers (never a log batch: batches end with a newline)
_STOP = b"\0stop"
_UNSAFE = re.compile(rb'[\x00-\x1f"\\\x7f-\xff]')
_NAMES_CACHE = 1024  # routes and upstream addresses remembered as their logged bytes


def _escape(value: bytes) -> bytes:
    """nginx's escaping of logged strings: ", \\ and bytes outside printable ASCII as \\xHH."""
    if _UNSAFE.search(value) is None:
        return value
    return _UNSAFE.sub(lambda m: b"\\x%02X" % m.group()[0], value)


def _headers(req: RequestState) -> tuple[bytes, bytes]:
    """(Referer, User-Agent) of the request, b"-" when absent."""
    return req.header(b"referer") or b"-", req.header(b"user-agent") or b"-"


def _route_names(route: object) -> tuple[bytes, bytes]:
    """(route, service) as logged: "namespace/name" of the object the route came from,
    and the backend "namespace/service:port"."""
    origin = getattr(route, "origin", None)
    name = f"{origin.namespace}/{origin.name}" if origin is not None else "-"
    service = str(getattr(route, "key", "")) or "-"
    return _escape(name.encode()), _escape(service.encode())


class _Clock:
    """Wall-clock timestamps, formatted once per second."""

    __slots__ = ("_iso", "_local", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._local = b""
        self._iso = ""

    def stamps(self) -> tuple[bytes, str]:
        second = int(time.time())
        if second != self._second:
            self._second = second
            t = time.localtime(second)
            self._local = time.strftime("%d/%b/%Y:%H:%M:%S %z", t).encode()
            iso = time.strftime("%Y-%m-%dT%H:%M:%S%z", t)
            self._iso = f"{iso[:-2]}:{iso[-2:]}"  # nginx's $time_iso8601: +00:00
        return self._local, self._iso


class AccessLog:
    __slots__ = (
        "_addresses",
        "_buffer",
        "_clock",
        "_closed",
        "_handed",
        "_loop",
        "_names",
        "_queue",
        "_size",
        "_thread",
        "_timer",
        "_written",
        "dropped",
        "format",
        "path",
    )

    def __init__(self, path: str, fmt: str = "combined") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown access log format {fmt!r}: use one of {FORMATS}")
        self.path = path
        self.format = fmt
        self.dropped = 0
        self._buffer: list[bytes] = []
        self._size = 0
        self._handed = 0  # bytes given to the writer (loop thread only)
        self._written = 0  # bytes it wrote (writer thread only)
        self._queue: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._clock = _Clock()
        self._names: dict[object, tuple[bytes, bytes]] = {}  # route -> its logged names
        self._addresses: dict[tuple[str, int], bytes] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        fd = self._open()  # fail here, at start, if the path cannot be written
        self._thread = threading.Thread(
            target=self._write_loop, args=(fd,), name="access-log", daemon=True
        )
        self._thread.start()
        self._timer = loop.call_later(FLUSH_INTERVAL, self._tick)

    # -- on the loop ---------------------------------------------------------------------
    def request(
        self,
        proto: HttpProtocol,
        req: RequestState,
        ex: Exchange | None,
        status: int,
        sent: int,
        received: int,
        took: float,
        upstream: float,
    ) -> None:
        if self._closed:
            return
        up_addr = up_status = b"-"
        if ex is not None:
            conn = ex.conn
            if conn is not None:
                up_addr = self._address(conn.key)
            elif ex.tried:
                up_addr = ex.tried[-1].address.encode()
            if ex.status and not req.local:
                up_status = b"%d" % ex.status
        route = req.route
        names = self._names.get(route)
        if names is None:
            if len(self._names) >= _NAMES_CACHE:
                self._names.clear()
            names = self._names[route] = _route_names(route)
        referer, agent = _headers(req)
        local, iso = self._clock.stamps()
        if self.format == "json":
            line = self._json(proto, req, status, sent, received, took, upstream, iso, referer,
                              agent, up_addr, up_status, names)
        else:
            line = b'%s - - [%s] "%s %s HTTP/%s" %d %d "%s" "%s" %d %.3f %s %s %s "%s" "%s"\n' % (
                proto.client_ip or b"-",
                local,
                req.method,
                _escape(req.url),
                req.version.encode(),
                status,
                sent,
                _escape(referer),
                _escape(agent),
                received,
                took,
                up_addr,
                up_status,
                b"%.3f" % upstream if upstream >= 0 else b"-",
                names[0],
                names[1],
            )
        self._buffer.append(line)
        self._size += len(line)
        if self._size >= FLUSH_BYTES:
            self.flush()

    @staticmethod
    def _json(
        proto: HttpProtocol,
        req: RequestState,
        status: int,
        sent: int,
        received: int,
        took: float,
        upstream: float,
        iso: str,
        referer: bytes,
        agent: bytes,
        up_addr: bytes,
        up_status: bytes,
        names: tuple[bytes, bytes],
    ) -> bytes:
        def text(value: bytes) -> str | None:
            return None if value == b"-" else value.decode("latin-1")

        return orjson.dumps(
            {
                "time": iso,
                "remote_addr": proto.client_ip.decode(),
                "request_method": req.method.decode("latin-1"),
                "request_uri": req.url.decode("latin-1"),
                "server_protocol": f"HTTP/{req.version}",
                "status": status,
                "bytes_sent": sent,
                "request_length": received,
                "http_referer": text(referer),
                "http_user_agent": text(agent),
                "host": (req.host or b"").decode("latin-1"),
                "request_time": round(took, 6),
                "upstream_addr": text(up_addr),
                "upstream_status": int(up_status) if up_status != b"-" else None,
                "upstream_response_time": round(upstream, 6) if upstream >= 0 else None,
                "route": text(names[0]),
                "service": text(names[1]),
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )

    def _address(self, key: tuple[str, int]) -> bytes:
        found = self._addresses.get(key)
        if found is None:
            if len(self._addresses) >= _NAMES_CACHE:
                self._addresses.clear()
            ip, port = key
            found = self._addresses[key] = (
                f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
            ).encode()
        return found

    def flush(self) -> None:
        """Hand the buffered lines to the writer thread (or drop them if it is far behind)."""
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        lines = len(self._buffer)
        self._buffer.clear()
        self._size = 0
        if self._handed - self._written > MAX_BACKLOG:
            self.dropped += lines
            return
        self._handed += len(data)
        self._queue.put(data)

    def reopen(self) -> None:
        """Close and open the file again (after logrotate moved it), in order with writes."""
        self.flush()
        self._queue.put(_REOPEN)

    async def close(self) -> None:
        """Write what is buffered and stop the writer (waiting for it off the loop)."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush()
        self._queue.put(_STOP)
        if self._thread is not None and self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, 5.0)

    def _tick(self) -> None:
        self._timer = None
        if self._closed or self._loop is None:
            return
        self.flush()
        if self.dropped:
            log.warning("access log %s: %d line(s) dropped: the disk is too slow",
                        self.path, self.dropped)
            self.dropped = 0
        self._timer = self._loop.call_later(FLUSH_INTERVAL, self._tick)

    # -- in the writer thread --------------------------------------------------------------
    def _open(self) -> int:
        if self.path == "-":
            return os.dup(sys.stdout.fileno())
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def _write_loop(self, fd: int) -> None:
        while True:
            item = self._queue.get()
            if item == _STOP:
                os.close(fd)
                return
            if item == _REOPEN:
                try:
                    fresh = self._open()
                except OSError as exc:
                    log.error("access log %s: cannot reopen: %s (still writing the old file)",
                              self.path, exc.strerror)
                    continue
                os.close(fd)
                fd = fresh
                continue
            self._write_all(fd, item)
            self._written += len(item)

    def _write_all(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except InterruptedError:
                continue
            except OSError as exc:
                log.error("access log %s: write failed: %s", self.path, exc.strerror)
                return
            view = view[n:]
