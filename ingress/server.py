"""Listeners of one worker: the HTTP and HTTPS servers sharing one ProxyContext.

Sockets are bound with SO_REUSEPORT so several worker processes can each own a listening
socket on the same port and let the kernel spread connections between them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from functools import partial

from ingress.context import ProxyContext, RouterLike
from ingress.http1 import HttpProtocol
from ingress.settings import HttpSettings

log = logging.getLogger(__name__)

BACKLOG = 4096


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
    """One listening socket served by HttpProtocol (plain or TLS)."""

    def __init__(self, server: asyncio.Server, address: tuple[str, int]) -> None:
        self.server = server
        self.address = address

    @classmethod
    async def open(
        cls,
        ctx: ProxyContext,
        address: tuple[str, int],
        tls: ssl.SSLContext | None = None,
    ) -> Listener:
        sock = listen_socket(*address)
        scheme = b"https" if tls is not None else b"http"
        server = await ctx.loop.create_server(
            partial(HttpProtocol, ctx, scheme), sock=sock, ssl=tls, backlog=BACKLOG
        )
        bound = sock.getsockname()
        log.info("%s listening on %s:%d", scheme.decode(), bound[0], bound[1])
        return cls(server, (bound[0], bound[1]))

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


class WorkerServer:
    """Everything one worker serves; `apply` opens or closes listeners as config asks."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        settings: HttpSettings,
        router: RouterLike,
    ) -> None:
        self.ctx = ProxyContext(loop, settings, router)
        self.http: Listener | None = None
        self.https: Listener | None = None

    async def apply(
        self,
        router: RouterLike,
        http: tuple[str, int] | None,
        https: tuple[str, int] | None,
        tls: ssl.SSLContext | None,
    ) -> None:
        """Route new requests with `router`; listen on `http`/`https` (None: closed)."""
        self.ctx.set_router(router)
        self.http = await self._reconcile(self.http, http, None)
        self.https = await self._reconcile(self.https, https if tls is not None else None, tls)

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

    async def close(self) -> None:
        for listener in (self.http, self.https):
            if listener is not None:
                await listener.close()
        self.http = self.https = None
        for proto in list(self.ctx.connections):
            transport = getattr(proto, "transport", None)
            if transport is not None:
                transport.close()
        self.ctx.pools.close()
