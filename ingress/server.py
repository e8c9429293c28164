"""Listeners of one worker: the Ingress HTTP and HTTPS servers sharing one ProxyContext,
and one socket per Gateway listener address:port, each routing with its own model
Listener (a sibling ProxyContext: same pools and balancers, its own router).

Sockets are bound with SO_REUSEPORT so several worker processes can each own a listening
socket on the same port and let the kernel spread connections between them. Closing a
listening socket never touches the connections it accepted: a reload that moves or
drops a socket lets the requests under way finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial

from ingress.client_address import SEAWAY_DEFAULT, ClientAddress, ConnectionAddress
from ingress.client_protocol import (
    AddressedProtocol,
    ForwardedProtocol,
    read_proxy_header,
    refused_header,
)
from ingress.context import ProxyContext, RouterLike
from ingress.errors import error_response
from ingress.filters.runtime import attach_plans
from ingress.http1 import HttpProtocol
from ingress.passthrough import Passthrough
from ingress.proxy_protocol import ProxyProtocolError
from ingress.route_match import RouteResult
from ingress.settings import HttpSettings
from ingress.sni_match import SniRouter
from ingress.stats import RequestStats
from ingress.translate_ingress import INGRESS_LISTENER
from proxy.acceptor import Acceptor, answer_and_close
from proxy.counters import Delta
from proxy.health_metrics import add_health

log = logging.getLogger(__name__)

BACKLOG = 4096
DRAIN_POLL = 0.05  # seconds between looks at the connections left while draining
DEFER_ACCEPT = 5  # seconds the kernel holds a connection that sends nothing (passthrough)


def listen_socket(host: str, port: int) -> socket.socket:
    """A non-blocking listening TCP socket with SO_REUSEADDR and SO_REUSEPORT."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Listener:
    """One listening socket served by HttpProtocol (plain or TLS).

    Accepting is proxy.acceptor's, not the loop's create_server: measured with uvloop, a
    busy loop accepted about one connection per iteration, so 256 clients connecting at
    once waited up to a second in the accept queue. The Acceptor drains the queue per
    readiness event, pauses when descriptors run out, and past `max_connections` of this
    worker answers 503 and closes (plain HTTP; a TLS listener just closes).

    ``configure`` sets how the client address is learnt (ingress/client_address.py) for
    connections accepted from then on; with the PROXY protocol the header is read off
    the socket in ``_attach``, before the transport (and any TLS handshake) starts.
    """

    def __init__(
        self,
        ctx: ProxyContext,
        sock: socket.socket,
        tls: ssl.SSLContext | None,
        requested: tuple[str, int] | None = None,
    ) -> None:
        self.ctx = ctx
        self.loop = ctx.loop
        self.sock = sock
        self.tls = tls
        scheme = b"https" if tls is not None else b"http"
        self.scheme = scheme
        self.factory = partial(HttpProtocol, ctx, scheme)
        self.client: ConnectionAddress | None = None  # None: the peer, seaway's fields
        bound = sock.getsockname()
        self.address: tuple[str, int] = (bound[0], bound[1])
        self.requested = requested or self.address  # as asked (port 0 before binding)
        self.tasks: set[asyncio.Task[object]] = set()
        # TLS passthrough (ingress/passthrough.py): None while no host uses it, so a
        # connection costs nothing more than before.
        self.passthrough: Passthrough | None = None
        self.acceptor = Acceptor(
            self.loop,
            sock,
            self._accept,
            f"{scheme.decode()}://{self.address[0]}:{self.address[1]}",
            self._full if ctx.settings.max_connections else None,
            _close if tls is not None else _answer_503,
        )
        log.info("%s listening on %s:%d", scheme.decode(), *self.address)

    @classmethod
    async def open(
        cls,
        ctx: ProxyContext,
        address: tuple[str, int],
        tls: ssl.SSLContext | None = None,
    ) -> Listener:
        try:
            sock = listen_socket(*address)
        except OSError as exc:
            msg = f"cannot listen on {address[0]}:{address[1]}: {exc.strerror}"
            raise OSError(exc.errno, msg) from exc
        return cls(ctx, sock, tls, address)

    def _full(self) -> bool:
        return len(self.ctx.connections) + len(self.tasks) >= self.ctx.settings.max_connections

    def _accept(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ctx.stats.accepted += 1
        task = self.loop.create_task(self._attach(conn))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def configure(self, model: ClientAddress) -> None:
        """How connections accepted from now on learn their client's address."""
        if model.default:
            self.client = None
        elif self.client is None or self.client.model != model:
            self.client = ConnectionAddress(model, self.address[1])

    def set_passthrough(
        self, router: SniRouter[RouteResult] | None, relay_only: bool = False
    ) -> None:
        """Relay the TLS connections of `router`'s hosts (None or empty: none; with
        `relay_only` every other connection is reset, whatever the router holds). While
        some host is relayed, connections are accepted once their first bytes are in
        (TCP_DEFER_ACCEPT, nginx's `deferred`): the ClientHello is then usually there to
        peek at on the first try, without waiting for the socket to become readable."""
        if relay_only and router is None:
            router = SniRouter(self.address[0], (), _never)
        passthrough = None
        if router is not None and (router or relay_only):
            passthrough = Passthrough(self.ctx, router, relay_only)
        if (passthrough is None) != (self.passthrough is None):
            defer = DEFER_ACCEPT if passthrough is not None else 0
            with contextlib.suppress(OSError, AttributeError):
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, defer)
        self.passthrough = passthrough

    async def _attach(self, conn: socket.socket) -> object:
        factory: Callable[[], HttpProtocol] = self.factory
        client = self.client
        try:
            header = None
            if client is not None:
                if client.model.proxy_protocol:
                    timeout = self.ctx.settings.header_timeout
                    try:
                        header = await read_proxy_header(self.loop, conn, timeout)
                    except asyncio.CancelledError:  # the listener closes (reload, drain)
                        conn.close()
                        raise
                kind = ForwardedProtocol if client.model.per_request else AddressedProtocol
                factory = partial(kind, self.ctx, self.scheme, client, header)
            passthrough = self.passthrough
            if passthrough is not None:
                # after the PROXY header (consumed above): the socket is at the ClientHello
                source = None
                if client is not None and header is not None:
                    peer = conn.getpeername()
                    source = client.source(peer[0].encode() if peer else b"", header)
                if await passthrough.take(conn, source):
                    return None
            await self.loop.connect_accepted_socket(factory, conn, ssl=self.tls)
        except (ProxyProtocolError, TimeoutError) as exc:
            refused_header(self.acceptor.name, conn, exc)
            conn.close()
        except (OSError, ssl.SSLError) as exc:
            log.debug("connection dropped before it started: %s", exc)
            conn.close()
        return None

    async def close(self) -> None:
        self.acceptor.close()
        for task in list(self.tasks):
            task.cancel()


_FULL_RESPONSE = error_response(503)


def own_client_address(settings: HttpSettings) -> ClientAddress:
    """A socket's client address as seaway's flags say (--proxy-protocol)."""
    return ClientAddress(proxy_protocol=True) if settings.proxy_protocol else SEAWAY_DEFAULT


def ingress_client_address(router: RouterLike, settings: HttpSettings) -> ClientAddress:
    """The Ingress listeners' client address: the table's (ingress-nginx's ConfigMap),
    with the PROXY protocol also when --proxy-protocol says so."""
    table = getattr(router, "table", None)
    listener = table.listener(INGRESS_LISTENER) if table is not None else None
    model = listener.client_address if listener is not None else SEAWAY_DEFAULT
    if settings.proxy_protocol and not model.proxy_protocol:
        model = replace(model, proxy_protocol=True)
    return model


def _never(route: object) -> RouteResult:
    raise AssertionError("an empty SNI router makes no result")


def _answer_503(conn: socket.socket) -> None:
    answer_and_close(conn, _FULL_RESPONSE)


def _close(conn: socket.socket) -> None:
    conn.close()
@dataclass(frozen=True, slots=True)
class SocketSpec:
    """A socket of its own (a Gateway listener address:port): where, its routes, and its
    TLS context (None: plain HTTP), or, with ``relay_only``, the SNI names it relays.
    ``name`` is its model Listener's."""

    name: str
    address: tuple[str, int]
    router: RouterLike
    tls: ssl.SSLContext | None = None
    # A Gateway TLS listener (mode Passthrough): relays by SNI and serves nothing else.
    relay: SniRouter[RouteResult] | None = None
    relay_only: bool = False


class WorkerServer:
    """Everything one worker serves; `apply` opens or closes listeners as config asks."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        settings: HttpSettings,
        router: RouterLike,
        stats: RequestStats | None = None,
    ) -> None:
        self.settings = settings  # as configured; a table's listener defaults fold in
        self.ctx = ProxyContext(loop, settings, router, stats=stats)
        self.ctx.settings = attach_plans(router, self.ctx, settings)
        self.http: Listener | None = None
        self.https: Listener | None = None
        self.sockets: dict[str, Listener] = {}  # SocketSpec name -> its listener
        self.draining = False
        access_log = self.ctx.stats.access_log
        if access_log is not None:
            access_log.start(loop)

    async def apply(
        self,
        router: RouterLike,
        http: tuple[str, int] | None,
        https: tuple[str, int] | None,
        tls: ssl.SSLContext | None,
        sockets: Sequence[SocketSpec] = (),
        passthrough: SniRouter[RouteResult] | None = None,
    ) -> list[str]:
        """Route new requests with `router`; listen on `http`/`https` (None: closed) and
        on each of `sockets` (others closed); relay the TLS of `passthrough`'s hosts on
        `https`. A socket that cannot be opened is left out and named in the returned
        errors (the next apply tries it again); the Ingress ones raise OSError."""
        self.ctx.settings = attach_plans(router, self.ctx, self.settings)
        self.ctx.set_router(router)
        if self.draining:
            return []  # shutting down: listeners stay closed
        self.http = await self._reconcile(self.http, http, None)
        self.https = await self._reconcile(self.https, https if tls is not None else None, tls)
        client = ingress_client_address(router, self.settings)
        for listener in (self.http, self.https):
            if listener is not None:
                listener.configure(client)
        if self.https is not None:
            self.https.set_passthrough(passthrough)
        return await self._reconcile_sockets(sockets)

    async def _reconcile_sockets(self, specs: Sequence[SocketSpec]) -> list[str]:
        wanted = {s.name: s for s in specs}
        for name in [n for n in self.sockets if n not in wanted]:
            await self.sockets.pop(name).close()
        errors = []
        for name, spec in wanted.items():
            current = self.sockets.get(name)
            if current is not None and (current.requested, current.tls) == (spec.address, spec.tls):
                current.ctx.set_router(spec.router)
                current.configure(own_client_address(self.settings))
                current.set_passthrough(spec.relay, spec.relay_only)
                continue
            if current is not None:  # moved, or TLS on/off: a new socket
                await self.sockets.pop(name).close()
            try:
                # The settings as configured: the ConfigMap defaults folded into the
                # worker's (attach_plans) are the Ingress listener's, not a Gateway's.
                ctx = self.ctx.sibling(spec.router, self.settings)
                opened = self.sockets[name] = await Listener.open(ctx, spec.address, spec.tls)
                opened.configure(own_client_address(self.settings))
                opened.set_passthrough(spec.relay, spec.relay_only)
            except OSError as exc:
                errors.append(f"{name}: {exc.strerror or exc}")
        return errors

    async def _reconcile(
        self, current: Listener | None, want: tuple[str, int] | None, tls: ssl.SSLContext | None
    ) -> Listener | None:
        if want is None:
            if current is not None:
                await current.close()
            return None
        if current is not None:
            return current
        return await Listener.open(self.ctx, want, tls)

    def take_stats(self) -> Delta:
        """This worker's request counts since the last take, and its open connections (the
        Gateway sockets' included: their contexts share the stats and the connection set)."""
        ctx = self.ctx
        table = getattr(ctx.router, "table", None)  # a CompiledTable's RouteTable
        return add_health(ctx.stats.take(len(ctx.connections), ctx.pools, table), ctx.health)

    async def drain(self, grace: float) -> None:
        """Graceful shutdown: stop accepting, let every request in flight finish within
        `grace` seconds (idle keep-alive connections close at once, the last response on
        each connection says `Connection: close`), then close what is left."""
        self.draining = True
        await self._close_listeners()
        ctx = self.ctx
        for proto in list(ctx.connections):
            drain = getattr(proto, "drain", None)
            if drain is not None:
                drain()
        ctx.outbox.flush()
        deadline = ctx.loop.time() + grace
        while ctx.connections and ctx.loop.time() < deadline:
            await asyncio.sleep(DRAIN_POLL)
        if ctx.connections:
            log.warning(
                "%d connection(s) still busy after the %.0fs grace period: closing them",
                len(ctx.connections),
                grace,
            )

    async def _close_listeners(self) -> None:
        for listener in (self.http, self.https, *self.sockets.values()):
            if listener is not None:
                await listener.close()
        self.http = self.https = None
        self.sockets = {}

    async def close(self) -> None:
        await self._close_listeners()
        self.ctx.outbox.flush()
        for proto in list(self.ctx.connections):
            transport = getattr(proto, "transport", None)
            if transport is not None:
                transport.close()
        for _ in range(2):  # their connection_lost runs (and counts what was cut)
            await asyncio.sleep(0)
        self.ctx.pools.close()
        self.ctx.health_runner.close()
        if self.ctx.filters is not None:
            self.ctx.filters.close()
        if self.ctx.stats.access_log is not None:
            await self.ctx.stats.access_log.close()
