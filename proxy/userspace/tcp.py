"""TCP forwarding: asyncio Protocols that pass bytes straight through, both ways.

One accepted connection = a `ClientSide` and, once connected, an `UpstreamSide`. Each
side writes what it receives to the other side's transport. Flow control: when one
transport's write buffer goes over the high-water mark (`pause_writing`), the other
side stops reading until it drains (`resume_writing`); `ReadFlow` (proxy/flow.py, shared
with L7) keeps the reasons a side is not reading (still connecting, backpressure) so they
do not undo each other.
Half-close: EOF from one side becomes `write_eof` on the other while the opposite
direction stays open; the connection closes when both directions have ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import cast

from discovery.snapshot import EndpointInfo
from proxy.acceptor import COUNTERS
from proxy.balancer import Lease
from proxy.flow import ReadFlow
from proxy.outlier import CONNECT_FAILED
from proxy.userspace.listeners import SourceRanges
from proxy.userspace.stats import BYTES_IN, BYTES_OUT, WIDTH, L4Stats, Row
from proxy.userspace.target import ServiceTarget

log = logging.getLogger(__name__)

CONNECTING = 1
BACKPRESSURE = 2

CONNECT_TIMEOUT = 5.0
DRAIN_POLL = 0.05  # seconds between looks at the connections left while draining
WRITE_HIGH = 256 * 1024
WRITE_LOW = 64 * 1024
_LINGER_ZERO = struct.pack("ii", 1, 0)


def reset(transport: asyncio.Transport) -> None:
    """Close with RST (SO_LINGER 0) instead of FIN: "nothing here", at once."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    transport.abort()


def _tune(transport: asyncio.Transport) -> None:
    # uvloop (and asyncio) already set TCP_NODELAY on TCP transports
    transport.set_write_buffer_limits(WRITE_HIGH, WRITE_LOW)


class TcpConnections:
    """The open connections of a dataplane (to abort them on stop), their settings and
    their counters."""

    __slots__ = ("connect_timeout", "loop", "open", "stats")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        connect_timeout: float = CONNECT_TIMEOUT,
        stats: L4Stats | None = None,
    ):
        self.loop = loop
        self.connect_timeout = connect_timeout
        self.open: set[ClientSide] = set()
        self.stats = L4Stats() if stats is None else stats

    def abort_all(self) -> None:
        for conn in list(self.open):
            conn.abort()

    async def drain(self, grace: float) -> None:
        """Wait up to `grace` seconds for the open connections to end by themselves."""
        deadline = self.loop.time() + grace
        while self.open and self.loop.time() < deadline:
            await asyncio.sleep(DRAIN_POLL)


class TcpListenerFactory:
    """Protocol factory of one listener; `target` is re-pointed on config changes, and
    `sources` (loadBalancerSourceRanges of a load-balancer IP listener) set or cleared."""

    __slots__ = ("conns", "sources", "target")

    def __init__(self, target: ServiceTarget, conns: TcpConnections) -> None:
        self.target = target
        self.conns = conns
        self.sources: SourceRanges | None = None

    def __call__(self) -> ClientSide:
        sources = self.sources
        if sources is not None:
            return GuardedClientSide(self.target, self.conns, sources)
        return ClientSide(self.target, self.conns)


class ClientSide(asyncio.Protocol):
    __slots__ = (
        "_conns",
        "_task",
        "closed",
        "eof",
        "gate",
        "lease",
        "pending",
        "row",
        "target",
        "transport",
        "up",
        "upstream",
    )

    def __init__(self, target: ServiceTarget, conns: TcpConnections) -> None:
        self.target = target
        self._conns = conns
        self.row: Row | None = None  # counters of the service port and endpoint, once up
        self.transport: asyncio.Transport | None = None
        self.gate: ReadFlow | None = None
        self.up: UpstreamSide | None = None
        self.upstream: asyncio.Transport | None = None  # up.transport, once connected
        self._task: asyncio.Task[None] | None = None
        self.lease: Lease | None = None  # the endpoint pick this connection holds
        self.pending: list[bytes] = []
        self.eof = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        picker = self.target.picker
        if picker.affinity is not None:  # only then is the client address needed
            peer = transport.get_extra_info("peername")
            client_ip = peer[0] if peer else ""
        else:
            client_ip = ""
        lease = self.lease = picker.lease(client_ip, (), self._conns.loop.time())
        if lease is None:
            if picker.balancer.saturated:
                COUNTERS.endpoint_overflows += 1
                log.debug("%s: every endpoint at its cap, refusing", self.target.name)
            else:
                log.debug("%s: no endpoints, resetting a connection", self.target.name)
            self._conns.stats.failed(self.target.name, "")
            self.closed = True
            reset(transport)
            return
        lease.begin_connect()
        _tune(transport)
        self.gate = ReadFlow(transport)
        self.gate.pause(CONNECTING)
        self._conns.open.add(self)
        self._task = self._conns.loop.create_task(self._connect(lease.endpoint, client_ip))

    async def _connect(self, ep: EndpointInfo | None, client_ip: str) -> None:
        tried: list[EndpointInfo] = []
        loop = self._conns.loop
        try:
            while ep is not None:
                tried.append(ep)
                up = UpstreamSide(self)
                try:
                    async with asyncio.timeout(self._conns.connect_timeout):
                        await loop.create_connection(up, ep.ip, ep.port)
                except (OSError, TimeoutError) as e:
                    log.debug("%s: connect to %s failed: %s", self.target.name, ep.address, e)
                    if self.lease is not None:
                        self.lease.failed(CONNECT_FAILED)  # (endpoint health)
                        self.lease.end(loop.time())
                    self._conns.stats.failed(self.target.name, ep.address)
                    if self.closed:
                        return
                    self.lease = self.target.picker.lease(client_ip, tried, loop.time())
                    ep = None
                    if self.lease is not None:
                        self.lease.begin_connect()
                        ep = self.lease.endpoint
                    continue
                if self.lease is not None:
                    self.lease.connected(loop.time())
                    self.lease.answered(0)  # connected: its failure streak (if any) ends
                self._attach(up, ep.address)
                return
            if not self.closed and self.transport is not None:
                log.info("%s: no endpoint reachable (tried %d)", self.target.name, len(tried))
                reset(self.transport)
        finally:
            self._task = None  # the task refers to us through this coroutine: no cycle

    def _attach(self, up: UpstreamSide, endpoint: str) -> None:
        t = up.transport
        if self.closed or t is None:  # the client left while we were connecting
            up.abort()
            return
        self.up = up
        self.upstream = t
        self.row = up.row = self._conns.stats.opened(self.target.name, endpoint)
        up.endpoint = endpoint
        if self.pending:
            self.row[BYTES_IN] += sum(len(p) for p in self.pending)
            t.writelines(self.pending)
            self.pending.clear()
        if self.eof and t.can_write_eof():
            t.write_eof()
        if self.gate is not None:
            self.gate.resume(CONNECTING)

    # -- client -> upstream
    def data_received(self, data: bytes) -> None:
        upstream = self.upstream
        if upstream is not None:
            self.row[BYTES_IN] += len(data)  # type: ignore[index]  # set with upstream
            try:
                upstream.write(data)
            except RuntimeError:  # upstream already closed; its connection_lost is due
                self.transport.abort()  # type: ignore[union-attr]
        else:  # uvloop may deliver what it already read before the pause took effect
            self.pending.append(data)

    def eof_received(self) -> bool:
        self.eof = True
        up = self.up
        if up is None:
            return True  # still connecting: passed on once connected
        if up.eof or up.transport is None:
            return False  # both directions ended: close (pending writes are flushed)
        if up.transport.can_write_eof():
            up.transport.write_eof()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._conns.open.discard(self)
        if self.lease is not None:
            self.lease.end()
            self.lease = None
        if self.up is not None:
            self._conns.stats.closed(self.target.name, self.up.endpoint)
            if self.up.transport is not None:
                self.up.transport.close()
        # drop the references that form cycles, so a connection is freed by refcounting
        # rather than by the garbage collector
        self.up = self.upstream = self.transport = self.gate = None

    # -- flow control: our transport's buffer is full -> stop reading upstream
    def pause_writing(self) -> None:
        if self.up is not None and self.up.gate is not None:
            self.up.gate.pause(BACKPRESSURE)

    def resume_writing(self) -> None:
        if self.up is not None and self.up.gate is not None:
            self.up.gate.resume(BACKPRESSURE)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        if self.up is not None:
            self.up.abort()


class GuardedClientSide(ClientSide):
    """A connection to a load-balancer IP with source ranges: a client outside them is
    reset at once (the kernel modes drop its SYN; accepted here, it can only be closed)."""

    __slots__ = ("sources",)

    def __init__(self, target: ServiceTarget, conns: TcpConnections, sources: SourceRanges):
        super().__init__(target, conns)
        self.sources = sources

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        if not peer or not self.sources.permits(peer[0]):
            log.debug("%s: %s is outside loadBalancerSourceRanges", self.target.name, peer)
            self.closed = True
            reset(cast(asyncio.Transport, transport))
            return
        super().connection_made(transport)


class UpstreamSide(asyncio.Protocol):
    __slots__ = ("client", "downstream", "endpoint", "eof", "gate", "row", "transport")

    def __init__(self, client: ClientSide) -> None:
        self.client = client
        self.downstream = client.transport
        self.transport: asyncio.Transport | None = None
        self.gate: ReadFlow | None = None
        self.eof = False
        self.endpoint = ""
        self.row: Row = [0] * WIDTH  # the client's row once attached (until then: unseen)

    def __call__(self) -> UpstreamSide:  # its own protocol factory: no closure per connect
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        _tune(transport)
        self.gate = ReadFlow(transport)

    def data_received(self, data: bytes) -> None:
        self.row[BYTES_OUT] += len(data)
        try:
            self.downstream.write(data)  # type: ignore[union-attr]
        except RuntimeError:  # client already closed
            self.transport.abort()  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        self.eof = True
        client = self.client
        t = client.transport
        if client.eof or t is None or t.is_closing():
            return False
        if t.can_write_eof():
            t.write_eof()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        client = self.client
        if client.up is self and client.transport is not None:
            client.transport.close()
        self.transport = self.downstream = self.gate = None

    def pause_writing(self) -> None:
        gate = self.client.gate
        if gate is not None:
            gate.pause(BACKPRESSURE)

    def resume_writing(self) -> None:
        gate = self.client.gate
        if gate is not None:
            gate.resume(BACKPRESSURE)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
