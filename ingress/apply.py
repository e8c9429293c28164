"""One worker's L7 state, rebuilt from a WorkerConfig: compiled routes, certificates, listeners.

Used the same way by the daemon's in-process worker and by each worker process.
"""

from __future__ import annotations

import asyncio
import logging

from ingress.route_match import CompiledTable, compile_table
from ingress.server import WorkerServer
from ingress.settings import HttpSettings
from ingress.tls import CertStore
from ingress.translate_ingress import INGRESS_LISTENER
from ingress.workers import WorkerConfig

log = logging.getLogger(__name__)


class L7State:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.server: WorkerServer | None = None
        self.certs = CertStore()
        self.table: CompiledTable | None = None

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
            self.server = WorkerServer(self.loop, config.settings, table)
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

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None


def settings_for(
    max_body_size: int, base: HttpSettings | None = None, upstream_pipelining: int = 1
) -> HttpSettings:
    from dataclasses import replace

    return replace(
        base or HttpSettings(),
        max_body_size=max_body_size,
        upstream_pipelining=upstream_pipelining,
    )
