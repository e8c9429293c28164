"""The daemon: one source -> store -> bounded-frequency runner -> Snapshot -> dataplanes.

Event handlers only record changes and kick the runner (kube-proxy's shape); the runner
builds one Snapshot per sync and hands it to every dataplane in turn. Nothing is synced
before the source finished its initial load, so a half-listed world is never programmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from aiohttp import web

from discovery.runner import SyncRunner
from discovery.snapshot import Snapshot
from discovery.snapshot_builder import SnapshotBuilder
from discovery.store import Store
from proxy.app.admin import Health, add_health_routes, add_metrics_route, start_site
from proxy.app.metrics import DaemonMetrics
from proxy.app.options import Options
from proxy.dataplane import Dataplane

log = logging.getLogger("seaway.daemon")

STOP_DEADLINE = 10.0  # seconds each dataplane gets to shut down gracefully


def log_nginx_findings(previous: Snapshot | None, current: Snapshot, prefix: str) -> None:
    """Log what the ingress-nginx annotations of each changed Ingress (and a changed
    ConfigMap) amount to, once per change: errors as warnings, the rest at info."""
    from discovery.nginx_report import annotation_lines, configmap_lines

    before = previous.ingress_annotations if previous is not None else {}
    after = current.ingress_annotations
    if after is not before:
        for key, parsed in after.items():
            if before.get(key) is not parsed:
                for is_error, text in annotation_lines("/".join(key), parsed, prefix):
                    log.log(logging.WARNING if is_error else logging.INFO, "%s", text)
    settings = current.nginx
    if settings is not None and (previous is None or previous.nginx is not settings):
        log.info("ingress-nginx settings: %s", settings.source)
        for is_error, text in configmap_lines(settings):
            log.log(logging.WARNING if is_error else logging.INFO, "%s", text)


class Source(Protocol):
    async def run(self, store: Store, ready: Callable[[], None]) -> None: ...


class Daemon:
    def __init__(
        self,
        options: Options,
        source: Source,
        dataplanes: Sequence[Dataplane],
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self.source = source
        self.dataplanes = list(dataplanes)
        self.store = Store()
        # Trigger times from before we started are not our latency (kube-proxy ignores them).
        self.builder = SnapshotBuilder(
            self.store,
            not_before=wall_clock(),
            topology=options.node_topology(),
            nginx=options.ingress_nginx_mode(),
        )
        self.metrics = DaemonMetrics()
        self.health = Health(max_sync_period=options.sync_period, clock=wall_clock)
        self.snapshot: Snapshot | None = None
        self.synced = asyncio.Event()  # set after every successful sync; tests wait on it
        self._wall_clock = wall_clock
        self._source_ready = False
        self.runner = SyncRunner(
            self._sync,
            min_interval=options.min_sync_period,
            max_interval=options.sync_period,
        )
        self.store.on_change = self._on_change

    # -- events ---------------------------------------------------------------------------
    def _on_change(self) -> None:
        if not self.health.pending_since:
            self.health.pending_since = self._wall_clock()
        self.runner.kick()

    def _on_source_ready(self) -> None:
        if not self._source_ready:
            log.info("source finished its initial load; first sync")
        self._source_ready = True
        self.runner.kick()

    # -- the sync ---------------------------------------------------------------------------
    async def _sync(self) -> None:
        if not self._source_ready:
            return
        started = time.perf_counter()
        snapshot, changed = self.builder.build()
        build_time = time.perf_counter() - started
        log_nginx_findings(self.snapshot, snapshot, self.options.annotations_prefix)
        failed: list[str] = []
        timings: list[str] = [f"build {build_time * 1000:.1f}ms"]
        for dataplane in self.dataplanes:
            t0 = time.perf_counter()
            try:
                await dataplane.sync(snapshot, changed)
            except Exception:
                log.exception("dataplane %s failed to sync; will retry", dataplane.name)
                self.metrics.sync_errors.labels(dataplane.name).inc()
                failed.append(dataplane.name)
                continue
            took = time.perf_counter() - t0
            self.metrics.sync_duration.labels(dataplane.name).observe(took)
            timings.append(f"{dataplane.name} {took * 1000:.1f}ms")
        self.snapshot = snapshot
        endpoints = sum(len(info.endpoints) for info in snapshot.service_ports.values())
        self.metrics.service_ports.set(len(snapshot.service_ports))
        self.metrics.endpoints.set(endpoints)
        if failed:
            # The retry must hand every dataplane the whole picture again: the changes
            # this build consumed would otherwise be lost to a partial sync.
            self.builder.invalidate()
            raise RuntimeError(f"sync failed for {', '.join(failed)}")
        now = self._wall_clock()
        for trigger in snapshot.trigger_times:
            latency = max(0.0, now - trigger)
            self.metrics.network_programming.observe(latency)
            log.info("network programming latency %.3fs", latency)
        self.metrics.sync_last_timestamp.set(now)
        self.health.last_sync = now
        self.health.pending_since = 0.0
        self.health.ready = True
        log.info(
            "synced generation %d: %d service ports (%d changed), %d endpoints; %s",
            snapshot.generation,
            len(snapshot.service_ports),
            len(changed),
            endpoints,
            ", ".join(timings),
        )
        self.synced.set()

    # -- lifecycle ----------------------------------------------------------------------------
    async def _start_admin(self) -> list[web.AppRunner]:
        sites: list[web.AppRunner] = []
        healthz = self.options.healthz_bind_address
        metrics = self.options.metrics_bind_address
        if healthz == metrics and healthz[1]:
            app = web.Application()
            add_health_routes(app, self.health)
            add_metrics_route(app, self.metrics)
            sites.append(await start_site(app, *healthz))
            return sites
        if healthz[1]:
            app = web.Application()
            add_health_routes(app, self.health)
            sites.append(await start_site(app, *healthz))
        if metrics[1]:
            app = web.Application()
            add_health_routes(app, self.health)
            add_metrics_route(app, self.metrics)
            sites.append(await start_site(app, *metrics))
        return sites

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, then shut down in order within a deadline."""
        sites = await self._start_admin()
        started: list[Dataplane] = []
        tasks: list[asyncio.Task[None]] = []
        try:
            for dataplane in self.dataplanes:
                await dataplane.start()
                started.append(dataplane)
            tasks.append(asyncio.create_task(self.source.run(self.store, self._on_source_ready)))
            tasks.append(asyncio.create_task(self.runner.run()))
            stopper = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            for task in done:
                if task is not stopper and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            log.info("shutting down")
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for dataplane in reversed(started):
                try:
                    await asyncio.wait_for(dataplane.stop(), STOP_DEADLINE)
                except Exception:
                    log.exception("dataplane %s did not stop cleanly", dataplane.name)
            for site in sites:
                await site.cleanup()
            log.info("stopped")
