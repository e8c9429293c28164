"""One worker's L7 state, rebuilt from a WorkerConfig: compiled routes, certificates, listeners.

Used the same way by the daemon's in-process worker and by each worker process.
"""

from __future__ import annotations

import asyncio
import logging

from ingress.route_match import CompiledTable, compile_table
from ingress.server import WorkerServer
from ingress.settings import HttpSettings
from ingress.stats import make_stats
from ingress.tls import CertStore
from ingress.translate_ingress import INGRESS_LISTENER
from ingress.workers import WorkerConfig
from proxy.counters import Delta

log = logging.getLogger(__name__)


class L7State:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.server: WorkerServer | None = None
        self.certs = CertStore()
        self.table: CompiledTable | None = None
        self._leftover = Delta()

    async def apply(self, config: WorkerConfig) -> CompiledTable:
        """Compile the config's RouteTable and serve it: HTTP while the Ingress listener
        exists (seaway owns an Ingress), HTTPS while it has certificates."""
        table = compile_table(config.table)
        for error in table.errors:
            log.error("routes: %s", error)
        listener = config.table.listener(INGRESS_LISTENER)
        want_https = listener is not None and bool(listener.certificates)
        tls = None
        if want_https and config.https is not None:
            self.certs.update(config.tls_secrets, config.table)
            tls = self.certs.server_context()
        if self.server is None:
            stats = make_stats(config.observability)
            self.server = WorkerServer(self.loop, config.settings, table, stats)
        await self.server.apply(
            table,
            config.http if listener is not None else None,
            config.https if want_https else None,
            tls,
        )
        self.table = table
        return table

    def addresses(self) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:
        """The addresses actually bound (ports resolved), None where not listening."""
        s = self.server
        if s is None:
            return None, None
        return (
            s.http.address if s.http is not None else None,
            s.https.address if s.https is not None else None,
        )

    def take_stats(self) -> Delta:
        if self.server is None:
            leftover, self._leftover = self._leftover, Delta()
            return leftover
        return self.server.take_stats()

    def reopen_logs(self) -> None:
        access_log = self.server.ctx.stats.access_log if self.server is not None else None
        if access_log is not None:
            access_log.reopen()

    async def drain(self) -> None:
        """Graceful shutdown of this worker's listeners and connections (see WorkerServer)."""
        if self.server is not None:
            await self.server.drain(self.server.ctx.settings.shutdown_grace_period)

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
            self._leftover = self.server.take_stats()  # counted while closing
            self.server = None


def settings_for(
    max_body_size: int,
    base: HttpSettings | None = None,
    upstream_pipelining: int = 1,
    shutdown_grace_period: float = 30.0,
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
        shutdown_grace_period=shutdown_grace_period,
        max_connections=max_connections,
        max_endpoint_requests=max_endpoint_requests,
        max_endpoint_connecting=max_endpoint_connecting,
    )
