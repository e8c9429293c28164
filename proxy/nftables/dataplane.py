"""NftablesDataplane: `seaway run --proxy-mode nftables`.

Each sync runs the (blocking) NftSyncer in a worker thread so the event loop keeps
serving; a failed sync raises (the runner retries) and the next one is a full sync. A
full sync (read back, write the differences) also happens every hour (proxy/full_sync.py),
like kube-proxy, to repair what someone else changed in seaway's tables.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from discovery.snapshot import ServicePortName, Snapshot
from proxy.full_sync import PeriodicFullSync
from proxy.nftables.applier import NftApplier
from proxy.nftables.builder import BuildConfig
from proxy.nftables.syncer import NftSyncer, SyncReport

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class NftablesConfig:
    """What the nftables dataplane needs from the command line, and nothing more."""

    build: BuildConfig


class NftablesDataplane:
    name = "nftables"

    def __init__(self, config: NftablesConfig, applier: NftApplier | None = None) -> None:
        self.config = config
        self.syncer = NftSyncer(config.build, applier or NftApplier())
        self.last_sync_duration: float | None = None  # seconds, for metrics
        self.last_report: SyncReport | None = None
        self.sync_count = 0
        self._periodic = PeriodicFullSync()

    async def start(self) -> None:
        return None

    async def sync(self, snapshot: Snapshot, changed: frozenset[ServicePortName]) -> None:
        syncer = self.syncer
        if self._periodic.due():
            syncer.force_full()
        started = time.perf_counter()
        try:
            report = await asyncio.to_thread(syncer.sync, snapshot, changed)
        except Exception:
            log.exception("nftables sync failed; the next sync is a full one")
            raise
        self.last_sync_duration = time.perf_counter() - started
        self.last_report = report
        self.sync_count += 1
        self._periodic.synced(report.full)
        log.info("nftables %s (total %.0f ms)", report.summary(), self.last_sync_duration * 1000)

    async def stop(self) -> None:
        # Like kube-proxy, the tables stay on exit so traffic keeps flowing across
        # restarts; `seaway cleanup --proxy-mode nftables` removes them.
        return None
