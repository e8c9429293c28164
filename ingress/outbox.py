"""Write batching: the small writes of one event-loop iteration go out together at its end.

Measured side by side (bench/http.py small/64 on 2 shared cores): writing each request
head and response as soon as it is ready woke the backend or the client once per request,
and the woken process usually preempted the proxy (about one involuntary context switch
per request). Queued here and written in one burst after every readiness event of the
iteration has been handled, the peers wake once per burst and find several messages:
about +45% requests/s, and less CPU per request for the proxy, the backend and wrk alike.
Measured again on varied traffic (bench/http.py, 5 alternating rounds): writing at once
0.48x nginx against 0.58x batched, and 1.9 us more system time per request.

Order per transport is kept because every proxy write to a transport goes through the
outbox; a large write (above DIRECT) goes out at once, after what is queued for the same
transport (then the queue is written), so flow control (pause_writing) reacts as before
and a stream never piles up here. It leaves other transports' writes queued: 64 KiB
responses (bench/http.py 64k) otherwise wrote every queued request head at each response
and scheduled a new flush for the next one, undoing the batching for that traffic. Closing
a transport must flush first (`flush`), so nothing queued for it is lost.

Large response bodies are read into one buffer per loop (`read_buffer`, see
ingress/upstream.py's UpstreamReader) and written from a view of it by `write_view`, at
once and never queued, since the buffer is read into again right after. uvloop keeps a
view of what a socket did not take at once; then the loop gets a new buffer (the old one
lives on in uvloop until it is written). One buffer for all connections, as uvloop's own
read buffer is one per loop: a buffer per connection kept the kernel's copies out of the
CPU cache and cost more than the copy it saved (bench/minimal_proxy.py --buffered).

`batch` queues a write as a list that later writes of the same iteration may extend
(pipelined request heads for one upstream connection: one write for all of them);
`generation` counts flushes, so the extender knows whether the list is still queued.
MAX_ITEMS bounds what one iteration holds back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

log = logging.getLogger(__name__)

DIRECT: Final = 16 * 1024  # bytes: writes this large are not batched (nothing to gain)
# Queued writes that go out at once, before the iteration ends. At 256 connections an
# iteration handles ~46 reads; writing every 32 lets the backend start on the first
# requests while the proxy parses the rest: at 256 connections 0.55x -> 0.61x,
# 0.61x -> 0.70x and 0.66x -> 0.71x nginx in three side-by-side runs on the loaded 2-core
# machine (p99 19.4 -> 16.6 ms in the last); at 64 connections (~31 reads per iteration)
# no change beyond the noise.
MAX_ITEMS: Final = 32
READ_SIZE: Final = 256 * 1024  # bytes: as uvloop's own read buffer (one read per response)

Soon = Callable[[Callable[[], object]], Any]


class Outbox:
    """One per event loop. `call_soon=None` writes at once (tests without a loop)."""

    __slots__ = ("_call_soon", "_direct", "_items", "_read", "_scheduled", "generation")

    def __init__(self, call_soon: Soon | None) -> None:
        self._call_soon = call_soon
        # Writes at least this large go out at once: all of them without a loop.
        self._direct = DIRECT if call_soon is not None else 0
        self._items: list[tuple[asyncio.WriteTransport, bytes | list[bytes]]] = []
        self._scheduled = False
        self.generation = 0  # flushes so far
        self._read: memoryview | None = None  # the loop's read buffer, made when first asked

    def read_buffer(self) -> memoryview:
        """The buffer a large response is read into (asyncio.BufferedProtocol.get_buffer)."""
        view = self._read
        if view is None:
            view = self._read = memoryview(bytearray(READ_SIZE))
        return view

    def write_view(self, transport: asyncio.WriteTransport, view: memoryview) -> None:
        """Write `view`, a part of the read buffer, at once (after what is queued for the
        same transport). If the transport keeps some of it for later, the read buffer it
        belongs to is left to the transport and the next read gets a new one."""
        for queued in self._items:
            if queued[0] is transport:  # its earlier bytes go first
                self._send()
                break
        transport.write(view)
        if transport.get_write_buffer_size():
            self._read = None

    def __len__(self) -> int:
        return len(self._items)

    def write(self, transport: asyncio.WriteTransport, data: bytes) -> None:
        items = self._items
        if len(data) >= self._direct:
            for queued in items:
                if queued[0] is transport:  # its earlier bytes go first
                    self._send()
                    break
            transport.write(data)
            return
        if items:
            last = items[-1]
            if last[0] is transport:  # a second write to the same transport: one syscall
                prev = last[1]
                if isinstance(prev, list):
                    prev.append(data)
                else:
                    items[-1] = (transport, [prev, data])
                return
        elif not self._scheduled:
            self._scheduled = True
            self._call_soon(self.flush)  # type: ignore[misc]  # (set when _direct is)
        items.append((transport, data))
        if len(items) >= MAX_ITEMS:
            self._send()  # a long iteration: these go now (its flush stays scheduled)

    def batch(self, transport: asyncio.WriteTransport, data: bytes) -> list[bytes] | None:
        """Queue `data` as a list the caller may append to until this generation ends
        (None: written at once, nothing to extend)."""
        if len(data) >= DIRECT or self._call_soon is None:
            self.write(transport, data)
            return None
        parts = [data]
        if not self._items and not self._scheduled:
            self._scheduled = True
            self._call_soon(self.flush)
        self._items.append((transport, parts))
        return parts

    def writelines(self, transport: asyncio.WriteTransport, parts: list[bytes]) -> None:
        if self._call_soon is None:
            transport.writelines(parts)
            return
        for part in parts:
            self.write(transport, part)

    def flush(self) -> None:
        """Write everything queued, in order (skipping transports closed meanwhile)."""
        self._scheduled = False
        self._send()

    def _send(self) -> None:
        self.generation += 1
        items = self._items
        if not items:
            return
        self._items = []
        for transport, data in items:
            if transport.is_closing():
                continue
            try:
                if isinstance(data, list):
                    transport.writelines(data)
                else:
                    transport.write(data)
            except Exception:  # one broken transport must not cost the others their data
                log.exception("write to %r failed", transport)
