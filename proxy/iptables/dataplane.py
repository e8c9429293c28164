"""IptablesDataplane: `seaway run --proxy-mode iptables`.

Dual-stack as kube-proxy: one IptablesSyncer per IP family, iptables for IPv4 and
ip6tables for IPv6 (when this host has a usable ip6tables: else IPv6 addresses are left
unprogrammed, with a warning), both synced on every sync, each by its own full or partial
sync. The (blocking) syncers run in a worker thread so the event loop keeps serving; a
failed sync raises (the runner retries) and the failed family's next sync is a full one.
A full sync also happens every hour (proxy/full_sync.py), like kube-proxy, to repair
rules someone else changed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from discovery.snapshot import ServicePortName, Snapshot
from proxy.full_sync import PeriodicFullSync
from proxy.iptables.applier import Applier
from proxy.iptables.builder import BuildConfig
from proxy.iptables.flavor import detect_flavor
from proxy.iptables.syncer import IptablesSyncer, SyncReport

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class IptablesConfig:
    """What the iptables dataplane needs from the command line, and nothing more."""

    build: BuildConfig
    flavor: str = "auto"  # auto | legacy | nft


def family_syncers(build: BuildConfig, flavor: str) -> list[IptablesSyncer]:
    """An IPv4 syncer, and an IPv6 one when ip6tables is usable here. Blocking."""
    syncers = [IptablesSyncer(build.for_family(4), Applier(flavor))]
    v6 = Applier(flavor, family=6)
    if v6.available():
        syncers.append(IptablesSyncer(build.for_family(6), v6))
    else:
        log.warning(
            "%s is not usable on this host (no IPv6 nat table): IPv6 service addresses "
            "are not programmed",
            v6.tool("iptables"),
        )
    return syncers


class IptablesDataplane:
    name = "iptables"

    def __init__(
        self,
        config: IptablesConfig,
        applier: Applier | None = None,
        applier6: Applier | None = None,
    ) -> None:
        """`applier` / `applier6` (tests): run the tools through these instead of
        detecting the flavor; without `applier6`, IPv4 only."""
        self.config = config
        self._appliers = [a for a in (applier, applier6) if a is not None]
        self.syncers: list[IptablesSyncer] = []
        self.last_sync_duration: float | None = None  # seconds, for metrics
        self.last_reports: list[SyncReport] = []  # one per family, IPv4 first
        self.sync_count = 0
        self._periodic = PeriodicFullSync()

    @property
    def last_report(self) -> SyncReport | None:
        """The IPv4 report of the last sync."""
        return self.last_reports[0] if self.last_reports else None

    async def start(self) -> None:
        build = self.config.build
        if self._appliers:
            self.syncers = [
                IptablesSyncer(build.for_family(a.family.version), a) for a in self._appliers
            ]
        else:
            flavor = await asyncio.to_thread(detect_flavor, self.config.flavor)
            self.syncers = await asyncio.to_thread(family_syncers, build, flavor)
        log.info(
            "iptables dataplane: using the %s flavor for %s",
            self.syncers[0].applier.flavor,
            " and ".join(s.applier.tool("iptables") for s in self.syncers),
        )

    async def sync(self, snapshot: Snapshot, changed: frozenset[ServicePortName]) -> None:
        if not self.syncers:
            await self.start()
        if self._periodic.due():
            for syncer in self.syncers:
                syncer.force_full()
        started = time.perf_counter()
        try:
            reports = await asyncio.to_thread(self._sync_all, snapshot, changed)
        except Exception:
            log.exception("iptables sync failed; the next sync is a full one")
            raise
        self.last_sync_duration = time.perf_counter() - started
        self.last_reports = reports
        self.sync_count += 1
        self._periodic.synced(all(r.full for r in reports))
        for syncer, report in zip(self.syncers, reports, strict=True):
            log.info(
                "%s %s", syncer.applier.family.tool_prefix, report.summary()
            )
        log.info("iptables sync took %.0f ms in total", self.last_sync_duration * 1000)

    def _sync_all(
        self, snapshot: Snapshot, changed: frozenset[ServicePortName]
    ) -> list[SyncReport]:
        """Every family, in one worker-thread call. A family that fails does not keep the
        other from syncing; the first error is raised afterwards."""
        reports: list[SyncReport] = []
        error: Exception | None = None
        for syncer in self.syncers:
            try:
                reports.append(syncer.sync(snapshot, changed))
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error
        return reports

    async def stop(self) -> None:
        # Like kube-proxy, rules stay on exit so traffic keeps flowing across restarts;
        # `seaway cleanup --proxy-mode iptables` removes them.
        return None
