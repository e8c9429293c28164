"""One worker's L7 state, rebuilt from a WorkerConfig: compiled routes, certificates, listeners.

Used the same way by the daemon's in-process worker and by each worker process.

Sockets: the Ingress listener on the HTTP bind address (and HTTPS while it has
certificates), and one socket per Gateway listener address:port (a model Listener with an
address and a port, ingress/translate_gateway.py), each routed by its own model Listener
and, for HTTPS, terminating TLS with a CertStore of its own. A Gateway socket that would
take the Ingress listener's address:port is not opened (the kernel would split the
connections between the two with SO_REUSEPORT): that is logged as an error, as is a
socket that cannot be opened (retried on the next config).
"""

from __future__ import annotations

import asyncio
import logging

from ingress.route_match import CompiledTable, compile_table
from ingress.routes import Listener, RouteTable, SecretKey
from ingress.server import SocketSpec, WorkerServer
from ingress.settings import HttpSettings
from ingress.stats import make_stats
from ingress.tls import CertStore
from ingress.translate_ingress import INGRESS_LISTENER
from ingress.workers import WorkerConfig
from proxy.counters import Delta

log = logging.getLogger(__name__)

_ANY = ("0.0.0.0", "::", "")


def overlaps(a: tuple[str, int], b: tuple[str, int]) -> bool:
    """Whether two listening addresses would take the same connections (same port, and the
    same address or a wildcard of the same family)."""
    if a[1] != b[1]:
        return False
    if a[0] == b[0]:
        return True
    v6a, v6b = ":" in a[0], ":" in b[0]
    if a[0] in _ANY and (v6a == v6b or a[0] == "::"):
        return True
    return b[0] in _ANY and (v6a == v6b or b[0] == "::")


class L7State:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.server: WorkerServer | None = None
        self.certs = CertStore()
        self.socket_certs: dict[str, CertStore] = {}  # Gateway socket name -> its store
        self.table: CompiledTable | None = None
        self.socket_errors: list[str] = []  # Gateway sockets not served by the last apply
        self._reported: set[str] = set()
        self._leftover = Delta()
        self._down: frozenset[tuple[str, int]] = frozenset()  # the active checks' verdicts

    async def apply(self, config: WorkerConfig) -> CompiledTable:
        """Compile the config's RouteTable and serve it: HTTP while the Ingress listener
        exists (seaway owns an Ingress), HTTPS while it has certificates; a socket per
        Gateway listener address:port."""
        table = compile_table(config.table)
        for error in table.errors:
            log.error("routes: %s", error)
        listener = config.table.listener(INGRESS_LISTENER)
        want_https = listener is not None and bool(listener.certificates or listener.passthrough)
        tls = None
        if want_https and config.https is not None:
            assert listener is not None
            self.certs.update(config.tls_secrets, RouteTable((listener,)))
            tls = self.certs.server_context()
        http = config.http if listener is not None else None
        https = config.https if want_https else None
        sockets, errors = self._sockets(config, table, [a for a in (http, https) if a])
        if self.server is None:
            stats = make_stats(config.observability)
            self.server = WorkerServer(self.loop, config.settings, table, stats)
            self.server.ctx.health.set_active_down(self._down)
        main = table.listener(INGRESS_LISTENER)
        passthrough = main.passthrough if main is not None else None
        errors += await self.server.apply(table, http, https, tls, sockets, passthrough)
        for error in errors:
            if error not in self._reported:
                log.error("gateway: %s", error)
        self._reported = set(errors)
        self.socket_errors = errors
        self.table = table
        return table

    def _sockets(
        self, config: WorkerConfig, table: CompiledTable, taken: list[tuple[str, int]]
    ) -> tuple[list[SocketSpec], list[str]]:
        """The Gateway sockets to serve, and why some are not."""
        specs: list[SocketSpec] = []
        errors: list[str] = []
        stores: dict[str, CertStore] = {}
        for model in config.table.listeners:
            if model.port is None or model.address is None:
                continue
            address = (model.address, model.port)
            clash = next((t for t in taken if overlaps(address, t)), None)
            if clash is not None:
                errors.append(
                    f"{model.name}: not served: {clash[0]}:{clash[1]} is the Ingress "
                    "listener's (--http-bind-address / --https-bind-address)"
                )
                continue
            router = table.listener(model.name)
            assert router is not None
            if model.protocol == "TLS":
                specs.append(SocketSpec(model.name, address, router, None, router.passthrough,
                                        relay_only=True))  # fmt: skip
                continue
            tls = None
            if model.protocol == "HTTPS":
                default = _default_secret(model)
                store = self.socket_certs.get(model.name)
                if store is None or store.preferred_default != default:
                    store = CertStore(default, wildcard="suffix")
                store.update(config.tls_secrets, RouteTable((model,)))
                stores[model.name] = store
                tls = store.server_context()
            specs.append(SocketSpec(model.name, address, router, tls))
        self.socket_certs = stores
        return specs, errors

    def addresses(self) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:
        """The addresses actually bound (ports resolved), None where not listening."""
        s = self.server
        if s is None:
            return None, None
        return (
            s.http.address if s.http is not None else None,
            s.https.address if s.https is not None else None,
        )

    def socket_addresses(self) -> dict[str, tuple[str, int]]:
        """Gateway socket name -> the address it is bound to."""
        s = self.server
        return {} if s is None else {n: x.address for n, x in s.sockets.items()}

    def take_stats(self) -> Delta:
        if self.server is None:
            leftover, self._leftover = self._leftover, Delta()
            return leftover
        return self.server.take_stats()

    def set_health_verdicts(self, down: frozenset[tuple[str, int]]) -> None:
        """The endpoints failing their active health checks (the daemon runs them)."""
        self._down = down
        if self.server is not None:
            self.server.ctx.health.set_active_down(down)

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


def _default_secret(listener: Listener) -> SecretKey | None:
    """The certificate of the socket's Gateway listener without hostname, if any."""
    return next((c.secret_key for c in listener.certificates if not c.hosts), None)


def settings_for(
    max_body_size: int,
    base: HttpSettings | None = None,
    upstream_pipelining: int = 1,
    shutdown_grace_period: float = 30.0,
    *,
    max_connections: int = 0,
    max_endpoint_requests: int = 1024,
    max_endpoint_connecting: int = 1024,
    proxy_protocol: bool = False,
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
        proxy_protocol=proxy_protocol,
    )
