"""IptablesDataplane: `seaway run --proxy-mode iptables`.

Each sync runs the (blocking) IptablesSyncer in a worker thread so the event loop keeps
serving; a failed sync raises (the runner retries) and the next one is a full sync. A
full sync also happens every `FULL_SYNC_PERIOD` seconds, like kube-proxy, to repair
rules someone else changed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from discovery.snapshot import ServicePortName, Snapshot
from proxy.iptables.applier import Applier
from proxy.iptables.builder import BuildConfig
from proxy.iptables.flavor import detect_flavor
from proxy.iptables.syncer import IptablesSyncer, SyncReport

log = logging.getLogger(__name__)

FULL_SYNC_PERIOD = 3600.0


@dataclass(frozen=True, slots=True)
class IptablesConfig:
    """What the iptables dataplane needs from the command line, and nothing more."""

    build: BuildConfig
    flavor: str = "auto"  # auto | legacy | nft


class IptablesDataplane:
    name = "iptables"

    def __init__(self, config: IptablesConfig, applier: Applier | None = None) -> None:
        self.config = config
        self._applier = applier
        self.syncer: IptablesSyncer | None = None
        self.last_sync_duration: float | None = None  # seconds, for metrics
        self.last_report: SyncReport | None = None
        self.sync_count = 0
        self._last_full = 0.0

    async def start(self) -> None:
        applier = self._applier
        if applier is None:
            flavor = await asyncio.to_thread(detect_flavor, self.config.flavor)
            applier = Applier(flavor)
        log.info("iptables dataplane: using the %s flavor", applier.flavor)
        self.syncer = IptablesSyncer(self.config.build, applier)

    async def sync(self, snapshot: Snapshot, changed: frozenset[ServicePortName]) -> None:
        if self.syncer is None:
            await self.start()
        syncer = self.syncer
        assert syncer is not None
        now = time.monotonic()
        if now - self._last_full > FULL_SYNC_PERIOD:
            syncer.force_full()
        started = time.perf_counter()
        try:
            report = await asyncio.to_thread(syncer.sync, snapshot, changed)
        except Exception:
            log.exception("iptables sync failed; the next sync is a full one")
            raise
        self.last_sync_duration = time.perf_counter() - started
        self.last_report = report
        self.sync_count += 1
        if report.full:
            self._last_full = now
        log.info("iptables %s (total %.0f ms)", report.summary(), self.last_sync_duration * 1000)

    async def stop(self) -> None:
        # Like kube-proxy, rules stay on exit so traffic keeps flowing across restarts;
        # `seaway cleanup --proxy-mode iptables` removes them.
        return None
