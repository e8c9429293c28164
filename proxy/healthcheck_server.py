"""Health-check node ports, the I/O part: an HTTP server per port, in every proxy mode.

`HealthCheckServer` is a Dataplane (start / sync / stop): each sync computes the ports and
answers (proxy/healthcheck.py), closes the servers of ports no longer wanted, opens the new
ones and swaps in the new answers (a request reads them at once). A port that cannot be
opened is logged and tried again at the next sync, as kube-proxy does; it never fails the
sync of the other dataplanes. Like kube-proxy, a port listens on every address, or with
--nodeport-addresses on the node's addresses inside those ranges.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from discovery.snapshot import ServicePortName, Snapshot
from proxy.healthcheck import ServiceHealth, answer, desired_health_checks

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 1.0  # seconds a closing port waits for requests in flight


@dataclass(frozen=True, slots=True)
class HealthCheckConfig:
    """What the health-check server needs from the command line."""

    node_name: str
    nodeport_addresses: tuple[str, ...] = ()  # CIDRs; empty = every address


def _always_healthy() -> bool:
    return True


class HealthCheckServer:
    """Serves the health-check node ports of the last Snapshot (see the module docstring).

    `local_addresses` lists this host's addresses (needed with --nodeport-addresses only);
    `proxy_healthy` is kube-proxy's "serviceProxyHealthy": the daemon's /healthz verdict.
    """

    name = "healthcheck"

    def __init__(
        self,
        config: HealthCheckConfig,
        *,
        local_addresses: Callable[[], frozenset[str]] | None = None,
        proxy_healthy: Callable[[], bool] = _always_healthy,
    ) -> None:
        self.config = config
        self.proxy_healthy = proxy_healthy
        self._local_addresses = local_addresses
        self._health: Mapping[int, ServiceHealth] = {}
        self._runners: dict[int, web.ServerRunner] = {}

    def ports(self) -> list[int]:
        """The ports served now."""
        return sorted(self._runners)

    async def start(self) -> None:
        return None

    async def sync(self, snapshot: Snapshot, changed: frozenset[ServicePortName]) -> None:
        desired = desired_health_checks(snapshot, self.config.node_name)
        self._health = desired  # requests read the new answers from here on
        for port in [p for p in self._runners if p not in desired]:
            await self._runners.pop(port).cleanup()
            log.info("closed health-check node port %d", port)
        for port, health in sorted(desired.items()):
            if port in self._runners:
                continue
            try:
                self._runners[port] = await self._open(port)
            except OSError as exc:
                log.error(
                    "cannot serve the health-check node port %d of %s/%s: %s (retried at "
                    "the next sync)",
                    port,
                    health.namespace,
                    health.name,
                    exc,
                )
                continue
            log.info(
                "serving health-check node port %d for %s/%s", port, health.namespace, health.name
            )

    async def stop(self) -> None:
        for runner in self._runners.values():
            await runner.cleanup()
        self._runners.clear()
        self._health = {}

    async def _open(self, port: int) -> web.ServerRunner:
        async def handle(_: web.BaseRequest) -> web.Response:
            health = self._health.get(port)
            if health is None:  # closing: the Service is gone
                return web.Response(status=503)
            status, headers, body = answer(health, self.proxy_healthy())
            return web.Response(status=status, body=body, headers=headers)

        runner = web.ServerRunner(
            web.Server(handle, access_log=None), shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            for host in await self._hosts():
                site = web.TCPSite(runner, host, port, reuse_address=True)
                await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        return runner

    async def _hosts(self) -> list[str | None]:
        """None (every address, both families) or this node's addresses in the ranges."""
        cidrs = self.config.nodeport_addresses
        if not cidrs or self._local_addresses is None:
            return [None]
        nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
        hosts: list[str | None] = []
        # netlink: in a worker thread (proxy/userspace/addresses.py says why)
        for ip in sorted(await asyncio.to_thread(self._local_addresses)):
            addr = ipaddress.ip_address(ip)
            if not addr.is_link_local and any(addr in n for n in nets if n.version == addr.version):
                hosts.append(ip)
        if not hosts:
            raise OSError(f"no address of this node is in --nodeport-addresses {list(cidrs)}")
        return hosts
