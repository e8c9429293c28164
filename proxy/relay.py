"""A byte relay between two connections: what one side reads, the other side writes.

Used by the L7 dataplane's TLS passthrough (ingress/passthrough.py): the upstream is
connected first, then the accepted client socket becomes a transport, so nothing has to
be buffered while connecting (bytes an upstream sends before the client side is attached
are kept until it is).

Flow control: when a side's write buffer goes over its high-water mark (`pause_writing`),
its peer stops reading until it drains (`resume_writing`). Half-close: EOF from one side
becomes `write_eof` on the other while the opposite direction stays open; the relay ends
when both directions have ended or either connection is lost (the other is then closed
after what it still has to write). Bytes are counted into a caller's row (a list of
numbers: `row[index] += n`), no lookup per read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from proxy.flow import ReadFlow

BACKPRESSURE = 1
WRITE_HIGH = 256 * 1024
WRITE_LOW = 64 * 1024


class RelaySide(asyncio.Protocol):
    """One connection of a Relay; it is also its own protocol factory."""

    __slots__ = ("eof", "flow", "index", "lost", "peer", "pending", "relay", "transport")

    def __init__(self, relay: Relay, index: int) -> None:
        self.relay = relay
        self.index = index  # where in relay.row the bytes it reads are counted
        self.transport: asyncio.Transport | None = None
        self.flow: ReadFlow | None = None
        self.peer: RelaySide | None = None
        self.pending: list[bytes] = []  # read before the peer had a transport
        self.eof = False
        self.lost = False

    def __call__(self) -> RelaySide:
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = t = cast(asyncio.Transport, transport)
        t.set_write_buffer_limits(WRITE_HIGH, WRITE_LOW)
        self.flow = ReadFlow(t)
        peer = self.peer
        if peer is not None and peer.pending:
            t.writelines(peer.pending)
            peer.pending.clear()
            if peer.eof and t.can_write_eof():
                t.write_eof()

    def data_received(self, data: bytes) -> None:
        self.relay.row[self.index] += len(data)
        peer = self.peer
        out = peer.transport if peer is not None else None
        if out is None:
            self.pending.append(data)
        elif not out.is_closing():
            out.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        out = peer.transport if peer is not None else None
        if out is None:
            return True  # passed on when the peer is attached
        if peer is not None and peer.eof:
            return False  # both directions ended: close (what is buffered is written)
        if not out.is_closing() and out.can_write_eof():
            out.write_eof()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.close()
        self.relay.side_lost()

    def pause_writing(self) -> None:
        peer = self.peer
        if peer is not None and peer.flow is not None:
            peer.flow.pause(BACKPRESSURE)

    def resume_writing(self) -> None:
        peer = self.peer
        if peer is not None and peer.flow is not None:
            peer.flow.resume(BACKPRESSURE)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Relay:
    """Two RelaySides, `client` and `upstream`; `on_end(relay)` runs once both are lost
    (or when the client side never got a transport: `abandon`)."""

    __slots__ = ("client", "ended", "on_end", "row", "upstream")

    def __init__(
        self,
        row: list[int],
        client_index: int,
        upstream_index: int,
        on_end: Callable[[Relay], None],
    ) -> None:
        self.row = row
        self.on_end = on_end
        self.ended = False
        self.client = RelaySide(self, client_index)
        self.upstream = RelaySide(self, upstream_index)
        self.client.peer = self.upstream
        self.upstream.peer = self.client

    @property
    def transport(self) -> asyncio.Transport | None:
        """The client side's transport (what a server closes on shutdown)."""
        return self.client.transport

    def side_lost(self) -> None:
        if self.client.lost and self.upstream.lost:
            self._end()

    def abandon(self) -> None:
        """The client could not be attached: close the upstream and end."""
        self.client.lost = True
        self.upstream.close()
        if self.upstream.transport is None:
            self.upstream.lost = True
        self.side_lost()

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            self.on_end(self)
            # break the cycles so refcounting frees the relay at once
            self.client.peer = self.upstream.peer = None
