"""`--proxy-mode userspace`: seaway's own L4 proxy (TCP and UDP) on the daemon's loop.

Each sync updates the per-service-port targets in place (new endpoints apply to new
connections at once; open connections are untouched), then diffs the listener set:
listeners of removed ports close, new ones open, unchanged ones are left alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from discovery.gateway_attach import GatewayConfig, attach_gateways
from discovery.snapshot import ServicePortName, Snapshot
from proxy.acceptor import Acceptor, reset_socket
from proxy.balancer import NO_LIMITS, EndpointLimits
from proxy.counters import Family, Totals
from proxy.health_metrics import L4_HEALTH_FAMILIES, add_health
from proxy.health_runner import HealthRunner
from proxy.outlier import Address, HealthRegistry
from proxy.userspace.addresses import DUMMY_INTERFACE, DummyInterface, host_addresses
from proxy.userspace.gateway_listeners import GatewayL4, gateway_l4_listeners
from proxy.userspace.listeners import (
    ListenerKey,
    SourceRanges,
    bindable_cluster_ips,
    desired_listeners,
    diff_listeners,
    is_loopback,
    nodeport_ips,
)
from proxy.userspace.stats import FAMILIES, L4Stats
from proxy.userspace.target import ServiceTarget
from proxy.userspace.tcp import CONNECT_TIMEOUT, TcpConnections, TcpListenerFactory
from proxy.userspace.udp import IDLE_TIMEOUT, UdpListener

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 1024


class _TcpListener:
    """A listening socket whose connections go to a service port. Accepting is
    proxy.acceptor's (pauses when descriptors run out; resets connections over
    --max-connections), each accepted socket becomes a ClientSide transport."""

    __slots__ = ("acceptor", "conns", "factory", "limit", "loop", "tasks")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        factory: TcpListenerFactory,
        key: ListenerKey,
        max_connections: int,
    ) -> None:
        self.loop = loop
        self.factory = factory
        self.conns = factory.conns
        self.limit = max_connections
        self.tasks: set[asyncio.Task[None]] = set()
        full = self._full if max_connections else None
        self.acceptor = Acceptor(loop, sock, self._accept, str(key), full, reset_socket)

    def _full(self) -> bool:
        return len(self.conns.open) + len(self.tasks) >= self.limit

    def _accept(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        task = self.loop.create_task(self._attach(conn))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _attach(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(self.factory, conn)
        except OSError as exc:
            log.debug("connection dropped before it started: %s", exc)
            conn.close()

    def retarget(self, target: ServiceTarget) -> None:
        self.factory.target = target

    def restrict(self, sources: SourceRanges | None) -> None:
        self.factory.sources = sources  # new connections; established ones stay

    def close(self) -> None:
        self.acceptor.close()  # stops accepting; established connections stay

    def stop_accepting(self) -> None:
        self.close()


class _UdpListenerHandle:
    __slots__ = ("protocol",)

    def __init__(self, protocol: UdpListener) -> None:
        self.protocol = protocol

    def retarget(self, target: ServiceTarget) -> None:
        self.protocol.target = target

    def restrict(self, sources: SourceRanges | None) -> None:
        self.protocol.restrict(sources)

    def close(self) -> None:
        self.protocol.close()

    def stop_accepting(self) -> None:
        pass  # UDP replies leave through the listener: it stays until stop()


def _bound_socket(key: ListenerKey) -> socket.socket:
    family = socket.AF_INET6 if ":" in key.ip else socket.AF_INET
    kind = socket.SOCK_STREAM if key.protocol == "TCP" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((key.ip, key.port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass(frozen=True, slots=True)
class UserspaceConfig:
    """What the userspace L4 dataplane needs from the command line."""

    bind_cluster_ips: bool = False
    nodeport_addresses: tuple[str, ...] = ()
    shutdown_grace_period: float = 30.0  # TCP connections get this long to end on SIGTERM
    max_connections: int = 0  # client connections of this process; 0 = no limit
    endpoint_limits: EndpointLimits = NO_LIMITS  # per-endpoint caps (circuit breaking)
    # Gateway API: the TCP and UDP listeners of seaway's Gateways, with their TCPRoutes
    # and UDPRoutes (proxy/userspace/gateway_listeners.py); None: not served.
    gateway: GatewayConfig | None = None


class UserspaceDataplane:
    """Implements proxy.dataplane.Dataplane.

    Keyword arguments exist for tests and embedding: `clock` (affinity and UDP idle
    time), `udp_idle_timeout`, `sweep_interval` (how often idle UDP associations and
    stale affinity entries are dropped; 0 = never, tests call `sweep()`),
    `local_addresses` (returns the host's addresses; runs in a worker thread),
    `dummy_interface` (name of the link cluster IPs are bound to).
    """

    name = "userspace"

    def __init__(
        self,
        config: UserspaceConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        udp_idle_timeout: float = IDLE_TIMEOUT,
        sweep_interval: float | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        local_addresses: Callable[[], frozenset[str]] = host_addresses,
        dummy_interface: str = DUMMY_INTERFACE,
    ) -> None:
        self.config = config
        self.clock = clock
        self.udp_idle_timeout = udp_idle_timeout
        self.sweep_interval = (
            min(udp_idle_timeout / 2, 10.0) if sweep_interval is None else sweep_interval
        )
        self.connect_timeout = connect_timeout
        self._local_addresses = local_addresses
        self._dummy = DummyInterface(dummy_interface)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conns: TcpConnections | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._targets: dict[ServicePortName, ServiceTarget] = {}
        self._listeners: dict[ListenerKey, _TcpListener | _UdpListenerHandle] = {}
        self._listening: dict[ListenerKey, ServicePortName] = {}
        self._sources: dict[ListenerKey, tuple[str, ...]] = {}  # restrictions in force
        self._bind_ips = False
        self._bound: frozenset[str] = frozenset()
        self._conflicts: frozenset[tuple[ListenerKey, ServicePortName, ServicePortName]] = (
            frozenset()
        )
        self._need_full = True
        self._gateway_warnings: tuple[str, ...] = ()
        self.stats = L4Stats()
        self.totals = Totals()
        self.health: HealthRegistry | None = None  # endpoint health (made on start)
        self._health_runner: HealthRunner | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._conns = TcpConnections(self._loop, self.connect_timeout, self.stats)
        self.health = HealthRegistry(self._loop.time)
        self._health_runner = HealthRunner(self._loop, self.health)
        if self.config.bind_cluster_ips:
            if os.geteuid() == 0:
                self._bind_ips = True
            else:
                log.warning("--bind-cluster-ips needs root; cluster IPs are not bound")
        if self.sweep_interval > 0:
            self._sweeper = self._loop.call_later(self.sweep_interval, self._periodic_sweep)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for listener in self._listeners.values():
            listener.close()
        self._listeners.clear()
        self._listening.clear()
        self._sources.clear()
        if self._conns is not None:
            self._conns.abort_all()
        if self._health_runner is not None:
            self._health_runner.close()
        self._targets.clear()
        if self._bind_ips:
            try:
                await asyncio.to_thread(self._dummy.remove)
            except Exception as e:
                log.error("cannot remove dummy interface %s: %s", self._dummy.name, e)
            self._bound = frozenset()
        self._need_full = True

    async def drain(self) -> None:
        """Graceful shutdown: TCP listeners stop accepting; open connections get the grace
        period to end by themselves (stop() aborts the rest)."""
        for listener in self._listeners.values():
            listener.stop_accepting()
        if self._conns is not None:
            await self._conns.drain(self.config.shutdown_grace_period)

    def families(self) -> tuple[Family, ...]:
        return FAMILIES + L4_HEALTH_FAMILIES

    def collect(self) -> Totals:
        """Connection counts so far (proxy/counters.py), and endpoint health."""
        delta = self.stats.take()
        if self.health is not None:
            add_health(delta, self.health)
        self.totals.absorb(0, delta)
        return self.totals

    def set_health_verdicts(self, down: frozenset[Address]) -> None:
        """The endpoints failing their active health checks now (the daemon's checker)."""
        if self.health is not None:
            self.health.set_active_down(down)

    def listening(self) -> dict[ListenerKey, ServicePortName]:
        """The listeners open now and the service port each serves."""
        return dict(self._listening)

    def sweep(self) -> None:
        """Drop idle UDP associations and expired affinity entries."""
        for listener in self._listeners.values():
            if isinstance(listener, _UdpListenerHandle):
                listener.protocol.expire_idle()
        for target in self._targets.values():
            target.expire()

    def _periodic_sweep(self) -> None:
        try:
            self.sweep()
        finally:
            if self._loop is not None and self.sweep_interval > 0:
                self._sweeper = self._loop.call_later(self.sweep_interval, self._periodic_sweep)

    # ------------------------------------------------------------------ sync
    async def sync(self, snapshot: Snapshot, changed: frozenset[ServicePortName]) -> None:
        if self._loop is None:
            raise RuntimeError("UserspaceDataplane.sync called before start()")
        full, self._need_full = self._need_full, True
        ports = snapshot.service_ports
        opts = self.config

        for name, info in ports.items():
            target = self._targets.get(name)
            if target is None:
                self._targets[name] = ServiceTarget(
                    info, self.clock, opts.endpoint_limits, self.health
                )
            elif (full or name in changed) and target.info != info:
                target.update(info)
        routes = self._gateway_routes(snapshot)
        for name, route in routes.targets.items():
            target = self._targets.get(name)
            if target is None:
                self._targets[name] = ServiceTarget(
                    route.info, self.clock, opts.endpoint_limits, self.health, route.weights
                )
            elif (target.info, target.weights) != (route.info, route.weights):
                target.update(route.info, route.weights)
        for name in [n for n in self._targets if n not in ports and n not in routes.targets]:
            del self._targets[name]

        local = set(await self._host_addresses())
        if self._bind_ips:
            want = bindable_cluster_ips(ports.values())
            if full or want != self._bound:
                await asyncio.to_thread(self._dummy.sync, want)
                self._bound = want
            local |= self._bound

        def is_local(ip: str) -> bool:
            return ip in local or is_loopback(ip)

        desired = desired_listeners(
            ports,
            is_local,
            nodeport_ips(opts.nodeport_addresses, local, "TCP"),
            nodeport_ips(opts.nodeport_addresses, local, "UDP"),
        )
        for key, name in routes.listeners.items():
            owner = desired.listeners.setdefault(key, name)
            if owner != name:
                desired = replace(desired, conflicts=(*desired.conflicts, (key, owner, name)))
        for name in desired.skipped:
            log.debug("%s: SCTP is not supported by the userspace proxy; skipped", name)
        conflicts = frozenset(desired.conflicts)
        for key, owner, loser in sorted(conflicts - self._conflicts):
            log.warning("%s and %s both want %s; %s keeps it", owner, loser, key, owner)
        self._conflicts = conflicts

        diff = diff_listeners(self._listening, desired.listeners)
        for key in diff.close:
            self._listeners.pop(key).close()
            del self._listening[key]
            self._sources.pop(key, None)
            log.info("closed listener %s", key)
        for key, name in diff.retarget:
            self._listeners[key].retarget(self._targets[name])
            self._listening[key] = name
        for key, name in diff.open:
            try:
                await self._open(key, self._targets[name])
            except OSError as e:
                log.warning("%s: cannot listen on %s: %s (retried next sync)", name, key, e)
                continue
            self._listening[key] = name
            log.info("listening on %s for %s", key, name)
        self._restrict(desired.sources)
        self._need_full = False

    def _gateway_routes(self, snapshot: Snapshot) -> GatewayL4:
        """The Gateway TCP/UDP listeners and their targets (none without a config)."""
        config = self.config.gateway
        if config is None:
            return GatewayL4()
        found = gateway_l4_listeners(attach_gateways(snapshot, config))
        if found.warnings != self._gateway_warnings:
            for warning in found.warnings:
                log.warning("gateway: %s", warning)
            self._gateway_warnings = found.warnings
        return found

    def _restrict(self, wanted: dict[ListenerKey, tuple[str, ...]]) -> None:
        """loadBalancerSourceRanges onto the listeners whose ranges changed."""
        for key in [k for k in self._sources if k not in wanted and k in self._listeners]:
            self._listeners[key].restrict(None)
            del self._sources[key]
            log.info("%s: load-balancer source ranges lifted", key)
        for key, cidrs in wanted.items():
            listener = self._listeners.get(key)
            if listener is None or self._sources.get(key) == cidrs:
                continue
            listener.restrict(SourceRanges(cidrs))
            self._sources[key] = cidrs
            log.info("%s: only clients in %s", key, ", ".join(cidrs))

    async def _host_addresses(self) -> frozenset[str]:
        try:
            return await asyncio.to_thread(self._local_addresses)
        except Exception as e:  # no netlink (some sandboxes): loopback still works
            log.warning("cannot list host addresses (%s); serving loopback cluster IPs only", e)
            return frozenset()

    async def _open(self, key: ListenerKey, target: ServiceTarget) -> None:
        assert self._loop is not None and self._conns is not None
        sock = _bound_socket(key)
        try:
            if key.protocol == "TCP":
                sock.listen(LISTEN_BACKLOG)
                factory = TcpListenerFactory(target, self._conns)
                self._listeners[key] = _TcpListener(
                    self._loop, sock, factory, key, self.config.max_connections
                )
            else:
                proto = UdpListener(
                    target, self._loop, self.clock, self.udp_idle_timeout, self.stats
                )
                await self._loop.create_datagram_endpoint(proto, sock=sock)
                self._listeners[key] = _UdpListenerHandle(proto)
        except BaseException:
            sock.close()
            raise
