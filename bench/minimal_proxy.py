"""The floor: a deliberately minimal uvloop + httptools keep-alive reverse proxy.

    python3 bench/minimal_proxy.py --listen 127.0.0.1:8080 --backend 127.0.0.1:9000

Not seaway, and not a product: bench/http.py runs it as the row "floor" to show what a
Python proxy on uvloop and llhttp can reach on this machine, with the least work that is
still a correct keep-alive HTTP/1.1 proxy. Every request and every response is parsed by
strict llhttp (no Python callback per header, no caches of any kind); the request head
gets an X-Forwarded-For line (as nginx's bench config adds one); response bytes go to
the client as they arrive. One backend, a FIFO of idle keep-alive connections to it, one
request in flight per client connection (reading pauses until its response ended; wrk
does not pipeline). No timeouts, routing, hop-by-hop handling or error pages: a bad
request or response closes the connection.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import deque
from collections.abc import Callable
from functools import partial

import httptools
import uvloop

_BLANK = b"\r\n\r\n"


class _Upstream(asyncio.BaseProtocol):
    """One keep-alive connection to the backend, serving one client request at a time."""

    __slots__ = ("client", "done", "idle", "keep", "parser", "transport")

    def __init__(self, idle: deque[_Upstream]) -> None:
        self.idle = idle
        self.parser = httptools.HttpResponseParser(self)
        self.client: Client | None = None
        self.transport: asyncio.Transport | None = None
        self.done = self.keep = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.transport.close()
        elif self in self.idle:
            self.idle.remove(self)

    def on_headers_complete(self) -> None:
        self.keep = self.parser.should_keep_alive()

    def on_message_complete(self) -> None:
        self.done = True

    def data_received(self, data: bytes | memoryview) -> None:
        client = self.client
        if client is None:
            self.transport.close()  # type: ignore[union-attr]  # bytes nobody asked for
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.client = None
            self.transport.close()  # type: ignore[union-attr]
            client.transport.close()
            return
        client.transport.write(data)
        if self.done:
            self.done = False
            self.client = None
            if self.keep:
                self.idle.append(self)
            else:
                self.transport.close()  # type: ignore[union-attr]
            client.response_done()


class Upstream(_Upstream, asyncio.Protocol):
    """Reads arrive as bytes objects (uvloop copies each read into a new one)."""

    __slots__ = ()


_READ_SIZE = 256 * 1024  # as uvloop's own read buffer: a 64 KiB response in one read


class ReadBuffer:
    """The one buffer every upstream connection of the loop reads into, as uvloop's own
    read buffer is one per loop: a buffer per connection (64 of them) put the kernel's
    copies outside the CPU cache and cost more than the copy it saved."""

    __slots__ = ("view",)

    def __init__(self) -> None:
        self.view = memoryview(bytearray(_READ_SIZE))


class BufferedUpstream(_Upstream, asyncio.BufferedProtocol):
    """`--buffered`: reads land in the loop's ReadBuffer and go to the client from a view
    of it. uvloop keeps a view of what it could not send at once, so the buffer is reused
    only when the client's transport holds nothing back; otherwise a new one replaces it."""

    __slots__ = ("buffer",)

    def __init__(self, idle: deque[_Upstream], buffer: ReadBuffer) -> None:
        super().__init__(idle)
        self.buffer = buffer

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer.view

    def buffer_updated(self, nbytes: int) -> None:
        client = self.client
        self.data_received(self.buffer.view[:nbytes])
        if client is not None and client.transport.get_write_buffer_size():
            self.buffer.view = memoryview(bytearray(_READ_SIZE))  # the old one is queued


class Client(asyncio.Protocol):
    """One client connection: requests parsed by llhttp, forwarded with X-Forwarded-For."""

    __slots__ = (
        "head",
        "idle",
        "loop",
        "new_upstream",
        "parser",
        "pending",
        "target",
        "transport",
        "upstream",
        "xff",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        target: tuple[str, int],
        idle: deque[_Upstream],
        new_upstream: Callable[[deque[_Upstream]], _Upstream] = Upstream,
    ) -> None:
        self.loop = loop
        self.target = target
        self.idle = idle
        self.new_upstream = new_upstream
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.upstream: _Upstream | None = None
        self.pending: list[bytes] | None = None  # request bytes while connecting
        self.head = True  # the next bytes start a head
        self.xff = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.xff = b"X-Forwarded-For: %s\r\n\r\n" % peer[0].encode()

    def connection_lost(self, exc: Exception | None) -> None:
        up, self.upstream = self.upstream, None
        if up is not None and up.transport is not None:
            up.client = None
            up.transport.close()

    def on_headers_complete(self) -> None:
        self.head = False

    def on_message_complete(self) -> None:
        self.transport.pause_reading()  # one request at a time: until its response ended

    def data_received(self, data: bytes) -> None:
        head = self.head
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()
            return
        if head:  # the first read of a request: its head, with our line added
            end = data.find(_BLANK)
            if end < 0:
                self.transport.close()  # (a head split across reads: not in the floor)
                return
            data = data[: end + 2] + self.xff + data[end + 4 :]
        up = self.upstream
        if up is None:
            if self.idle:
                up = self.upstream = self.idle.popleft()
                up.client = self
            elif self.pending is None:
                self.pending = [data]
                self.loop.create_task(self._connect())
                return
            else:
                self.pending.append(data)
                return
        up.transport.write(data)  # type: ignore[union-attr]

    async def _connect(self) -> None:
        try:
            new = self.new_upstream
            _, up = await self.loop.create_connection(lambda: new(self.idle), *self.target)
        except OSError:
            self.transport.close()
            return
        up.client = self
        self.upstream = up
        pending, self.pending = self.pending or [], None
        up.transport.writelines(pending)  # type: ignore[union-attr]

    def response_done(self) -> None:
        self.upstream = None
        self.head = True
        self.transport.resume_reading()


async def serve(listen: tuple[str, int], backend: tuple[str, int], buffered: bool) -> None:
    loop = asyncio.get_running_loop()
    idle: deque[_Upstream] = deque()
    upstream: Callable[[deque[_Upstream]], _Upstream] = Upstream
    if buffered:
        buffer = ReadBuffer()
        upstream = partial(BufferedUpstream, buffer=buffer)
    server = await loop.create_server(
        lambda: Client(loop, backend, idle, upstream), *listen, backlog=4096, reuse_port=True
    )
    async with server:
        await server.serve_forever()


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True, help="host:port")
    p.add_argument("--backend", required=True, help="host:port")
    p.add_argument(
        "--buffered",
        action="store_true",
        help="read responses into a reused buffer (asyncio.BufferedProtocol), not new bytes",
    )
    args = p.parse_args()
    uvloop.run(serve(_addr(args.listen), _addr(args.backend), args.buffered))
