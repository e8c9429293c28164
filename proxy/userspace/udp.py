"""UDP forwarding: one association (a connected upstream socket) per client address.

The listener socket is bound to the service address, so replies sent back through it
leave from the address the client talked to. An association lives while it is used;
`UdpListener.expire_idle` (run periodically by the dataplane, or by a test with a fake
clock) closes those idle longer than the timeout. A refused endpoint (ICMP port
unreachable on the connected socket) ends its association, so the client's next
datagram picks another endpoint.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from discovery.snapshot import EndpointInfo
from proxy.balancer import Lease
from proxy.userspace.listeners import SourceRanges
from proxy.userspace.stats import BYTES_IN, BYTES_OUT, DATAGRAMS_IN, DATAGRAMS_OUT, L4Stats
from proxy.userspace.target import ServiceTarget

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 30.0
MAX_PENDING = 64  # datagrams queued per association while its socket is being set up

Address = tuple[str, int]


class UdpListener(asyncio.DatagramProtocol):
    __slots__ = (
        "_loop",
        "associations",
        "clock",
        "dropped",
        "idle_timeout",
        "sources",
        "stats",
        "target",
        "transport",
    )

    def __init__(
        self,
        target: ServiceTarget,
        loop: asyncio.AbstractEventLoop,
        clock: Callable[[], float],
        idle_timeout: float = IDLE_TIMEOUT,
        stats: L4Stats | None = None,
    ) -> None:
        self.target = target
        self.stats = L4Stats() if stats is None else stats
        self._loop = loop
        self.clock = clock
        self.idle_timeout = idle_timeout
        self.transport: asyncio.DatagramTransport | None = None
        self.associations: dict[Address, Association] = {}
        self.dropped = 0  # datagrams dropped: no endpoint, or a client outside `sources`
        # loadBalancerSourceRanges of a load-balancer IP listener (see `restrict`)
        self.sources: SourceRanges | None = None

    def __call__(self) -> UdpListener:
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        assoc = self.associations.get(addr)
        if assoc is None:
            sources = self.sources
            if sources is not None and not sources.permits(addr[0]):
                self.dropped += 1
                return
            lease = self.target.picker.lease(addr[0], (), 0.0)
            if lease is None:
                self.dropped += 1
                self.stats.failed(self.target.name, "")
                log.debug("%s: no endpoints, dropping datagram from %s", self.target.name, addr)
                return
            assoc = Association(self, addr, lease.endpoint, lease)
            self.associations[addr] = assoc
            assoc.task = self._loop.create_task(assoc.open(self._loop))
        assoc.last_used = self.clock()
        row = assoc.row
        row[DATAGRAMS_IN] += 1
        row[BYTES_IN] += len(data)
        assoc.send(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("%s: listener error: %s", self.target.name, exc)

    def restrict(self, sources: SourceRanges | None) -> None:
        """Only clients inside `sources` from now on (None: anyone); associations of
        clients now outside end (only new ones are checked per datagram)."""
        self.sources = sources
        if sources is not None:
            outside = [a for a in self.associations.values() if not sources.permits(a.client[0])]
            for assoc in outside:
                self.drop(assoc)

    def reply(self, data: bytes, addr: Address) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)

    def drop(self, assoc: Association) -> None:
        if self.associations.get(assoc.client) is assoc:
            del self.associations[assoc.client]
            self.stats.closed(assoc.name, assoc.endpoint.address)
        assoc.close()

    def expire_idle(self) -> int:
        """Close associations idle for longer than the timeout; returns how many."""
        deadline = self.clock() - self.idle_timeout
        stale = [a for a in self.associations.values() if a.last_used < deadline]
        for assoc in stale:
            self.drop(assoc)
        return len(stale)

    def close(self) -> None:
        for assoc in list(self.associations.values()):
            self.drop(assoc)
        if self.transport is not None:
            self.transport.close()


class Association(asyncio.DatagramProtocol):
    __slots__ = (
        "client",
        "endpoint",
        "last_used",
        "lease",
        "listener",
        "name",
        "pending",
        "row",
        "task",
        "transport",
    )

    def __init__(
        self, listener: UdpListener, client: Address, endpoint: EndpointInfo, lease: Lease
    ) -> None:
        self.listener = listener
        self.client = client
        self.endpoint = endpoint
        self.lease = lease  # the pick this association holds (least-request counts them)
        self.name = listener.target.name  # the service port it was made for
        self.row = listener.stats.opened(self.name, endpoint.address)
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] | None = []
        self.last_used = 0.0
        self.task: asyncio.Task[None] | None = None

    def __call__(self) -> Association:
        return self

    async def open(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            await loop.create_datagram_endpoint(
                self, remote_addr=(self.endpoint.ip, self.endpoint.port)
            )
        except OSError as e:
            log.debug("udp association to %s failed: %s", self.endpoint.address, e)
            self.listener.stats.failed(self.name, self.endpoint.address)
            self.listener.drop(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.DatagramTransport, transport)
        pending, self.pending = self.pending, None
        if self.listener.associations.get(self.client) is not self:
            transport.close()  # expired or closed while connecting
            return
        for data in pending or ():
            transport.sendto(data)

    def send(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.sendto(data)
        elif self.pending is not None and len(self.pending) < MAX_PENDING:
            self.pending.append(data)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.last_used = self.listener.clock()
        row = self.row
        row[DATAGRAMS_OUT] += 1
        row[BYTES_OUT] += len(data)
        self.listener.reply(data, self.client)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp endpoint %s: %s", self.endpoint.address, exc)
        if isinstance(exc, ConnectionRefusedError):
            self.listener.drop(self)

    def close(self) -> None:
        self.lease.end()
        if self.transport is not None:
            self.transport.close()
        elif self.task is not None and not self.task.done():
            self.task.cancel()
