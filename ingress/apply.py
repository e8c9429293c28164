"""One worker's L7 state, rebuilt from a WorkerConfig: Router, certificates, listeners.

Used the same way by the daemon's in-process worker and by each worker process.
"""

from __future__ import annotations

import asyncio
import logging

from ingress.router import Router
from ingress.server import WorkerServer
from ingress.settings import HttpSettings
from ingress.tls import CertStore
from ingress.workers import WorkerConfig

log = logging.getLogger(__name__)


class L7State:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.server: WorkerServer | None = None
        self.certs = CertStore()
        self.router: Router | None = None

    async def apply(self, config: WorkerConfig) -> Router:
        router = Router.compile(config.snapshot, config.controller, config.watch_without_class)
        owned = router.owned_ingresses
        want_https = any(ing.tls for ing in owned)
        tls = None
        if want_https and config.https is not None:
            self.certs.update(config.snapshot, router)
            tls = self.certs.server_context()
        if self.server is None:
            self.server = WorkerServer(self.loop, config.settings, router)
        await self.server.apply(
            router,
            config.http if owned else None,
            config.https if want_https else None,
            tls,
        )
        self.router = router
        return router

    def addresses(self) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:
        """The addresses actually bound (ports resolved), None where not listening."""
        s = self.server
        if s is None:
            return None, None
        return (
            s.http.address if s.http is not None else None,
            s.https.address if s.https is not None else None,
        )

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None


def settings_for(
    max_body_size: int,
    base: HttpSettings | None = None,
    upstream_pipelining: int = 1,
    *,
    max_connections: int = 0,
    max_endpoint_requests: int = 1024,
    max_endpoint_connecting: int = 1024,
) -> HttpSettings:
    from dataclasses import replace

    return replace(
        base or HttpSettings(),
        max_body_size=max_body_size,
        upstream_pipelining=upstream_pipelining,
        max_connections=max_connections,
        max_endpoint_requests=max_endpoint_requests,
        max_endpoint_connecting=max_endpoint_connecting,
    )
