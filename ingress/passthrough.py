"""TLS passthrough on a listening socket: relay a connection unterminated when its
ClientHello's SNI name is a passthrough host (ingress-nginx ssl-passthrough, TLSRoute).

Per accepted connection, only on a socket whose listener has passthrough hosts
(ingress/server.py asks `Passthrough.take` before handing the socket to TLS):

1. **Peek** (`peek_client_hello`): the first bytes are read with MSG_PEEK, so they stay in
   the kernel's receive buffer for whoever reads the socket next, the TLS handshake or the
   relay; nothing has to be replayed. ingress/client_hello.py says whether they are a
   complete ClientHello; while it asks for more, SO_RCVLOWAT is set to the length it
   needs, so the loop wakes once, when those bytes are there (a ClientHello fragmented
   over TCP segments or TLS records costs one wake per missing piece, not one per byte).
   A client that sends nothing within the header timeout (--header-timeout's setting,
   10 s) or closes is dropped; one that stops in mid-ClientHello goes to TLS, which fails.
2. **Route** on the SNI name (ingress/sni_match.py). No name, an unknown one, or bytes
   that are not a ClientHello: the normal path (TLS termination), or, on a listener that
   only relays, the connection is closed.
3. **Relay** (proxy/relay.py): the endpoint is chosen by the backend's balancer, the same
   per-worker balancer object L7 requests to that Service port use (leases, caps,
   least-request counts); the upstream is connected first (a failed connect tries the next
   endpoint, as L4 does), then the client socket becomes a transport and bytes flow both
   ways. No endpoint, or none reachable: the client is reset. Counted in
   ingress/relay_stats.py.

Composing with a step before this one (the PROXY protocol, whose header precedes the
ClientHello): `take` starts from "the socket's read position is the first byte of the TLS
stream". A step that runs first must consume exactly its own bytes from the socket
(PROXY v1 ends at its CRLF, v2 carries its length: peek, then recv that many) and leave
the rest in the kernel; then it calls `take` with the same socket, unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from random import random
from time import perf_counter
from typing import TYPE_CHECKING

from discovery.snapshot import EndpointInfo
from ingress.client_hello import MAX_STREAM, Peek, read_client_hello
from ingress.relay_stats import BYTES_IN, BYTES_OUT, CONNECTIONS, FAILURES
from proxy.acceptor import reset_socket
from proxy.balancer import Lease
from proxy.relay import Relay

if TYPE_CHECKING:
    from ingress.context import ProxyContext
    from ingress.route_match import RouteResult
    from ingress.sni_match import SniRouter

log = logging.getLogger(__name__)

_STALLED = Peek.invalid("the client stopped sending in the middle of its ClientHello")


async def peek_client_hello(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout: float
) -> Peek | None:
    """The ClientHello at `sock`'s read position, read without consuming it (see the
    module docstring); None when the client closed or sent nothing complete within
    `timeout` seconds."""
    deadline = loop.time() + timeout
    seen = 0
    lowat = 1
    try:
        while True:
            try:
                data = sock.recv(MAX_STREAM, socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                data = None
            if data is not None:
                if not data:
                    return None  # closed before sending anything
                peek = read_client_hello(data)
                if peek.status != "more":
                    return peek
                if len(data) == seen:
                    return _STALLED  # woken without new bytes: the client half-closed
                seen = len(data)
                if peek.needed != lowat:
                    lowat = peek.needed
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
            left = deadline - loop.time()
            if left <= 0 or not await _readable(loop, sock.fileno(), left):
                return None
    except OSError as exc:  # reset by the peer
        log.debug("passthrough: reading a ClientHello failed: %s", exc)
        return None
    finally:
        if lowat != 1:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _readable(loop: asyncio.AbstractEventLoop, fd: int, timeout: float) -> bool:
    """Wait until `fd` is readable (True) or `timeout` seconds have passed (False)."""
    waiter: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, _wake, waiter)
    try:
        async with asyncio.timeout(timeout):
            await waiter
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)


class PassthroughRelay(Relay):
    """A relay that holds its endpoint lease and its place among the worker's
    connections until it ends."""

    __slots__ = ("ctx", "lease")

    def __init__(self, ctx: ProxyContext, row: list[int], lease: Lease) -> None:
        super().__init__(row, BYTES_IN, BYTES_OUT, _ended)
        self.ctx = ctx
        self.lease: Lease | None = lease


def _ended(relay: Relay) -> None:
    assert isinstance(relay, PassthroughRelay)
    lease = relay.lease
    if lease is not None:
        relay.lease = None
        lease.end(relay.ctx.loop.time() if lease.timed else None)
    relay.ctx.connections.discard(relay.client)


class Passthrough:
    """The passthrough step of one listening socket: its context and SNI router;
    `relay_only` for a listener that terminates nothing (Gateway TLS Passthrough)."""

    __slots__ = ("ctx", "relay_only", "router")

    def __init__(
        self, ctx: ProxyContext, router: SniRouter[RouteResult], relay_only: bool = False
    ) -> None:
        self.ctx = ctx
        self.router = router
        self.relay_only = relay_only

    async def take(self, conn: socket.socket, client_ip: bytes | None = None) -> bool:
        """Relay `conn` if its ClientHello names a passthrough host; True when it was
        relayed or dropped, False when it is for the normal TLS path. `client_ip`: the
        client's address when a PROXY header said it (else the socket's peer is)."""
        ctx = self.ctx
        try:
            peek = await peek_client_hello(ctx.loop, conn, ctx.settings.header_timeout)
        except asyncio.CancelledError:  # the listener closed (reload, shutdown)
            conn.close()
            raise
        if peek is None:
            conn.close()
            return True
        result = self.router.match(peek.server_name) if peek.status == "hello" else None
        if result is None:
            if self.relay_only:
                log.debug("passthrough: no host for SNI %r (%s)", peek.server_name, peek.status)
                reset_socket(conn)
                return True
            return False
        await relay(ctx, result, conn, client_ip)
        return True


async def relay(
    ctx: ProxyContext, result: RouteResult, conn: socket.socket, client_ip: bytes | None = None
) -> None:
    """Connect an endpoint of `result`'s backend and relay `conn` to it (module doc, 3)."""
    route = result.pick(random()) if result.split is not None else result
    row = ctx.stats.relays.row(route)
    if route.status:
        row[FAILURES] += 1
        log.debug("passthrough %s: %s", route.source, route.status)
        reset_socket(conn)
        return
    state = route.cache
    if state is None or state.owner is not ctx:
        state = route.cache = ctx.route_state(route)
    bal = state.balancer
    key = None
    if bal.needs_key and route.balancing.hash_by.source == "client-ip":
        if client_ip is not None:
            key = client_ip
        else:
            peer = conn.getpeername()
            key = peer[0].encode() if peer else None
    loop = ctx.loop
    tried: list[EndpointInfo] = []
    while True:
        lease = bal.lease(key, tried, loop.time() if bal.observes else 0.0)
        if lease is None:
            row[FAILURES] += 1
            log.info("passthrough %s: no endpoint reachable (tried %d)", route.source, len(tried))
            reset_socket(conn)
            return
        ep = lease.endpoint
        relayed = PassthroughRelay(ctx, row, lease)
        lease.begin_connect()
        began = perf_counter()
        try:
            async with asyncio.timeout(ctx.settings.connect_timeout):
                await loop.create_connection(relayed.upstream, ep.ip, ep.port)
        except (OSError, TimeoutError) as exc:
            log.debug("passthrough %s: connect to %s failed: %s", route.source, ep.address, exc)
            ctx.stats.connect_failed((ep.ip, ep.port))
            relayed.lease = None
            lease.end(loop.time() if lease.timed else None)
            tried.append(ep)
            continue
        ctx.stats.connected((ep.ip, ep.port), perf_counter() - began)
        lease.connected(loop.time() if lease.timed else None)
        break
    try:
        await loop.connect_accepted_socket(relayed.client, conn)
    except OSError as exc:
        log.debug("passthrough %s: the client left: %s", route.source, exc)
        relayed.abandon()
        conn.close()
        return
    row[CONNECTIONS] += 1
    if not relayed.ended:
        ctx.connections.add(relayed.client)
