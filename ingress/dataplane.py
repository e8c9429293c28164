"""IngressDataplane: the L7 proxy as a Dataplane (see proxy/dataplane.py).

On each sync it translates the owned Ingresses (ingress/translate_ingress.py) and, with a
GatewayConfig, seaway's Gateways and their HTTPRoutes (discovery/gateway_attach.py, then
ingress/translate_gateway.py) into one RouteTable, only when something it reads changed
(Ingresses, IngressClasses, TLS Secrets, the Secrets ingress-nginx annotations name
(auth-secret users, proxy-ssl-secret CAs), ingress-nginx's ConfigMap, the Gateway API
objects and Namespaces, or a service port of a Service the routes use); compiles and
serves it (an Ingress its annotations refuse keeps its last served version): the HTTP
listener while seaway owns at least one Ingress (HTTPS while one of them has tls), a
socket per Gateway listener address:port (opened, moved and closed as Gateways come,
change and go), and sends the table to the `--workers` processes.
`--workers 1` serves in the daemon's own loop; N serves in the daemon plus N-1 processes,
and a worker process that dies is restarted with the last config (ingress/workers.py).

Request metrics: every worker counts on its own (ingress/stats.py); `collect()` adds the
in-process worker's counts to `totals`, where the worker processes' deltas arrive by
themselves every second. `drain()` is the graceful shutdown of every worker.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field

from discovery.gateway_attach import GatewayConfig, attach_gateways
from discovery.model import TLSSecret
from discovery.ownership import DEFAULT_CONTROLLER
from discovery.snapshot import ServicePortName, Snapshot
from ingress.apply import L7State, settings_for
from ingress.route_labels import route_rows
from ingress.route_match import CompiledTable
from ingress.routes import RouteTable, SecretKey
from ingress.settings import HttpSettings
from ingress.stats import FAMILIES, ObservabilitySettings
from ingress.translate_gateway import GatewayTranslation, translate_gateways
from ingress.translate_ingress import IngressTranslation, LastGood, translate_ingresses
from ingress.workers import REVIVE_INTERVAL, HealthVerdicts, WorkerConfig, WorkerPool
from proxy.counters import Delta, Family, Totals
from proxy.health_metrics import L7_HEALTH_FAMILIES

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngressConfig:
    """What the L7 dataplane needs from the command line."""

    ingress_controller: str = DEFAULT_CONTROLLER
    watch_ingress_without_class: bool = False
    http_bind_address: tuple[str, int] | None = ("0.0.0.0", 80)
    https_bind_address: tuple[str, int] | None = ("0.0.0.0", 443)
    max_body_size: int = 0
    upstream_pipelining: int = 1
    workers: int = 1
    max_connections: int = 0  # client connections per worker; 0 = no limit
    max_endpoint_requests: int = 1024  # per endpoint and worker; 0 = no cap
    max_endpoint_connecting: int = 1024
    gateway: GatewayConfig | None = None  # None: Gateway API objects are not served
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    shutdown_grace_period: float = 30.0
    proxy_protocol: bool = False  # --proxy-protocol: every L7 socket expects the header


class IngressDataplane:
    name = "ingress"

    def __init__(self, config: IngressConfig, settings: HttpSettings | None = None) -> None:
        self.config = config
        options = config
        self.settings = settings_for(
            options.max_body_size,
            settings,
            options.upstream_pipelining,
            options.shutdown_grace_period,
            max_connections=options.max_connections,
            max_endpoint_requests=options.max_endpoint_requests,
            max_endpoint_connecting=options.max_endpoint_connecting,
            proxy_protocol=options.proxy_protocol,
        )
        self.state: L7State | None = None
        self.pool = WorkerPool(max(0, options.workers - 1))
        self.totals = Totals()
        self.pool.on_stats = self._worker_stats
        self._last: tuple[object, ...] | None = None
        self._gateway_warnings: tuple[str, ...] = ()
        # Services the routes use -> their ports_by_service entry when translated.
        self._used: dict[tuple[str, str], object] = {}
        self._failed = False
        self.syncs = 0  # translations, for tests and status
        self.translation: IngressTranslation | None = None
        self.gateway_translation: GatewayTranslation | None = None
        self.route_table: RouteTable | None = None  # what is served (every listener)
        self._last_good: LastGood = {}  # each Ingress as last served
        self._supervisor: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.state = L7State(asyncio.get_running_loop())
        if self.pool.count:
            self.pool.start()
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(REVIVE_INTERVAL)
            try:
                await self.pool.revive()
            except Exception:  # a failed restart must not end supervision
                log.exception("restarting worker processes failed")

    def _worker_stats(self, index: int, delta: Delta | None) -> None:
        if delta is None:
            self.totals.forget(index)  # its connections are gone with it
        else:
            self.totals.absorb(index, delta)

    def families(self) -> tuple[Family, ...]:
        return FAMILIES + L7_HEALTH_FAMILIES

    def collect(self) -> Totals:
        """Every worker's request counts so far (the in-process worker's taken now)."""
        if self.state is not None:
            self.totals.absorb(0, self.state.take_stats())
        return self.totals

    def routes(self) -> list[dict[str, object]]:
        """Every route of the current table, for the status page (ingress/route_labels.py)."""
        return route_rows(self.route_table) if self.route_table is not None else []

    def workers(self) -> list[dict[str, object]]:
        """The worker processes (the daemon's own worker 0 is not among them)."""
        return self.pool.describe()

    def set_health_verdicts(self, down: frozenset[tuple[str, int]]) -> None:
        """The endpoints failing their active health checks now: to this process's worker
        and, over their pipes, to the worker processes."""
        if self.state is not None:
            self.state.set_health_verdicts(down)
        if self.pool.count:
            task = asyncio.get_running_loop().create_task(
                self.pool.send_verdicts(HealthVerdicts(down))
            )
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    def reopen_logs(self) -> None:
        """SIGUSR1: every worker reopens its access log."""
        if self.state is not None:
            self.state.reopen_logs()
        self.pool.signal(signal.SIGUSR1)

    async def drain(self) -> None:
        """Graceful shutdown: every worker stops accepting and finishes what is in flight
        (up to the shutdown grace period); stop() then closes what is left."""
        if self._supervisor is not None:  # a worker exiting now is not to be restarted
            self._supervisor.cancel()
            self._supervisor = None
        jobs = [self.pool.drain(self.settings.shutdown_grace_period)]
        if self.state is not None:
            jobs.append(self.state.drain())
        await asyncio.gather(*jobs)

    @property
    def table(self) -> CompiledTable | None:
        """The compiled routes this process serves (None before the first sync)."""
        return self.state.table if self.state is not None else None

    def addresses(self) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:
        return self.state.addresses() if self.state is not None else (None, None)

    def gateway_addresses(self) -> dict[str, tuple[str, int]]:
        """Gateway socket (model Listener name) -> the address it is bound to."""
        return self.state.socket_addresses() if self.state is not None else {}

    @staticmethod
    def _inputs(snapshot: Snapshot) -> tuple[object, ...]:
        """Everything a translation reads but service ports."""
        return (
            snapshot.ingresses,
            snapshot.ingress_classes,
            dict(snapshot.tls_secrets),
            dict(snapshot.auth_secrets),
            snapshot.nginx,
            snapshot.gateway_classes,
            snapshot.gateways,
            snapshot.http_routes,
            snapshot.tls_routes,
            snapshot.reference_grants,
            snapshot.namespaces,
        )

    def _needs_compile(self, snapshot: Snapshot, changed: frozenset[ServicePortName]) -> bool:
        if self._failed or self._last is None or self.translation is None:
            return True
        if self._inputs(snapshot) != self._last:
            return True
        used = self._used
        if any((c.namespace, c.name) in used for c in changed):
            return True
        # Headless Services are not in `changed` (kernel dataplanes do not see them).
        ports = snapshot.ports_by_service
        return any(ports.get(key) is not infos for key, infos in used.items())

    async def sync(self, snapshot: Snapshot, changed: frozenset[ServicePortName]) -> None:
        assert self.state is not None, "start() first"
        if not self._needs_compile(snapshot, changed):
            return
        self._failed = True
        o = self.config
        translation = translate_ingresses(
            snapshot, o.ingress_controller, o.watch_ingress_without_class, self._last_good
        )
        listeners = translation.table.listeners
        gateways = None
        if o.gateway is not None:
            gateways = translate_gateways(snapshot, attach_gateways(snapshot, o.gateway))
            listeners += gateways.listeners
        table = RouteTable(listeners, snapshot.generation)
        secrets = tls_secrets_for(snapshot, table)
        http, https = o.http_bind_address, o.https_bind_address
        config = WorkerConfig(self.settings, http, https, table, secrets, o.observability)
        await self.state.apply(config)
        self.translation = translation
        self.gateway_translation = gateways
        self.route_table = table
        self._last_good = translation.served
        self.syncs += 1
        if self.pool.workers:
            http, https = self.state.addresses()
            await self.pool.publish(
                WorkerConfig(self.settings, http, https, table, secrets, o.observability)
            )
        for warning in translation.warnings:
            log.warning("ingress: %s", warning)
        if gateways is not None and gateways.warnings != self._gateway_warnings:
            for warning in gateways.warnings:
                log.warning("gateway: %s", warning)
            self._gateway_warnings = gateways.warnings
        services = translation.services | (gateways.services if gateways else frozenset())
        self._used = {key: snapshot.ports_by_service.get(key) for key in services}
        self._last = self._inputs(snapshot)
        self._failed = False

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            self._supervisor = None
        await self.pool.stop()
        if self.state is not None:
            await self.state.close()
            self.totals.absorb(0, self.state.take_stats())


def tls_secrets_for(snapshot: Snapshot, table: RouteTable) -> dict[SecretKey, TLSSecret]:
    """The TLS Secrets of the snapshot that the table's certificates name."""
    return {k: snapshot.tls_secrets[k] for k in table.secrets() if k in snapshot.tls_secrets}
