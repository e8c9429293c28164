"""The daemon: one source -> store -> bounded-frequency runner -> Snapshot -> dataplanes.

Event handlers only record changes and kick the runner (kube-proxy's shape); the runner
builds one Snapshot per sync and hands it to every dataplane in turn. Nothing is synced
before the source finished its initial load, so a half-listed world is never programmed.

Shutdown is ordered (proxy/app/signals.py maps the signals): /readyz turns 503 at once,
the source and the runner stop, every dataplane that can drains (stops accepting and
lets what is in flight finish, within its grace period), then every dataplane stops,
then the admin server. `hurry()` (a second SIGTERM or Ctrl-C) cuts the drain short.

Active health checks (opt-in per Service) run here, once for all proxies: after each sync
the checker follows the Snapshot, and the set of endpoints failing their checks goes to
every dataplane that takes it (proxy.dataplane.Checked: userspace L4, the L7 workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aiohttp import web

from discovery.runner import SyncRunner
from discovery.snapshot import Snapshot
from discovery.snapshot_builder import SnapshotBuilder
from discovery.store import Store
from proxy.active_checker import ActiveChecker
from proxy.app.admin import Health, add_health_routes, add_metrics_route, start_site
from proxy.app.metrics import CheckCollector, DaemonMetrics
from proxy.app.options import Options
from proxy.app.startup_gc import StartupGc
from proxy.app.status import StatusBoard, SyncRecord, add_status_routes
from proxy.counters import Family
from proxy.dataplane import Checked, Counting, Dataplane, Draining
from proxy.outlier import Address

log = logging.getLogger("seaway.daemon")

STOP_DEADLINE = 10.0  # seconds each dataplane gets to stop once drained
DRAIN_MARGIN = 10.0  # seconds past the grace period before a drain is abandoned


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
        freeze_start: bool = False,
    ) -> None:
        """`freeze_start`: after the first sync, exempt the objects of the start from
        garbage collection for good (`seaway run`; see proxy/app/startup_gc.py)."""
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
        self.records = {dp.name: SyncRecord() for dp in self.dataplanes}
        self.started_at = wall_clock()
        self.status = StatusBoard(self, clock=wall_clock)
        self._wall_clock = wall_clock
        self._source_ready = False
        self._hurry = asyncio.Event()
        self.checker: ActiveChecker | None = None  # made by run() when a proxy takes verdicts
        self._startup_gc = StartupGc(freeze=freeze_start)
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
            record = self.records[dataplane.name]
            try:
                await dataplane.sync(snapshot, changed)
            except Exception as exc:
                log.exception("dataplane %s failed to sync; will retry", dataplane.name)
                self.metrics.sync_errors.labels(dataplane.name).inc()
                failed.append(dataplane.name)
                record.failures += 1
                record.last_error = f"{type(exc).__name__}: {exc}"
                record.last_error_at = self._wall_clock()
                continue
            took = time.perf_counter() - t0
            record.syncs += 1
            record.last_success = self._wall_clock()
            record.last_duration = took
            record.last_error = ""
            self.metrics.sync_duration.labels(dataplane.name).observe(took)
            timings.append(f"{dataplane.name} {took * 1000:.1f}ms")
        self.snapshot = snapshot
        if self.checker is not None:
            self.checker.update(snapshot)
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
        self._startup_gc.settle()
        self.synced.set()

    def _verdicts(self, down: frozenset[Address]) -> None:
        for dataplane in self.dataplanes:
            if isinstance(dataplane, Checked):
                dataplane.set_health_verdicts(down)

    # -- what the admin server reads ------------------------------------------------------
    def counting(self) -> list[Counting]:
        return [dp for dp in self.dataplanes if isinstance(dp, Counting)]

    def request_metrics(self) -> bytes:
        """The dataplanes' request and connection metrics, in Prometheus' text format."""
        from proxy.app.metrics import ingress_nginx_labels, render_request_metrics

        compat: tuple[Family, ...] = ()
        if self.options.metrics_compat:
            from ingress.stats import COMPAT_FAMILIES

            compat = COMPAT_FAMILIES[self.options.metrics_compat]
        sources = [(dp.collect(), dp.families()) for dp in self.counting()]
        return render_request_metrics(
            sources, compat, ingress_nginx_labels(self.options.ingress_controller)
        )

    # -- signals -------------------------------------------------------------------------------
    def reload_source(self) -> None:
        """SIGHUP: the file source reads its files again at once."""
        reload = getattr(self.source, "reload", None)
        if reload is None:
            log.info("SIGHUP: this source has nothing to re-read")
            return
        log.info("SIGHUP: re-reading the source")
        task = asyncio.get_running_loop().create_task(reload())
        task.add_done_callback(_log_failure)

    def reopen_logs(self) -> None:
        """SIGUSR1: reopen the access logs (after logrotate moved them)."""
        log.info("SIGUSR1: reopening access logs")
        for dataplane in self.dataplanes:
            reopen = getattr(dataplane, "reopen_logs", None)
            if reopen is not None:
                reopen()

    def hurry(self) -> None:
        """Cut a graceful shutdown short (a second SIGTERM or Ctrl-C)."""
        self._hurry.set()

    # -- lifecycle ----------------------------------------------------------------------------
    async def _start_admin(self) -> list[web.AppRunner]:
        sites: list[web.AppRunner] = []
        healthz = self.options.healthz_bind_address
        metrics = self.options.metrics_bind_address
        if healthz[1] and healthz != metrics:
            app = web.Application()
            add_health_routes(app, self.health)
            sites.append(await start_site(app, *healthz))
        if metrics[1]:
            app = web.Application()
            add_health_routes(app, self.health)
            add_metrics_route(app, self.metrics, self.request_metrics)
            add_status_routes(app, self.status)
            sites.append(await start_site(app, *metrics))
        return sites

    async def _drain(self) -> None:
        """Every dataplane that can drains, together, until done or hurried."""
        drains = [dp.drain() for dp in self.dataplanes if isinstance(dp, Draining)]
        if not drains:
            return
        log.info(
            "draining: listeners closed, requests in flight get up to %.0fs",
            self.options.shutdown_grace_period,
        )
        draining = asyncio.ensure_future(asyncio.gather(*drains, return_exceptions=True))
        hurry = asyncio.ensure_future(self._hurry.wait())
        limit = self.options.shutdown_grace_period + DRAIN_MARGIN
        waiting: list[asyncio.Future[Any]] = [draining, hurry]
        done, _ = await asyncio.wait(waiting, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        hurry.cancel()
        if draining not in done:
            draining.cancel()
            log.warning("shutdown hurried: closing what is still open")
        else:
            for result in draining.result():
                if isinstance(result, BaseException):
                    log.error("a dataplane failed to drain: %r", result)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, then shut down in order within a deadline."""
        self._startup_gc.pause()  # until the first sync (proxy/app/startup_gc.py)
        sites = await self._start_admin()
        started: list[Dataplane] = []
        tasks: list[asyncio.Task[None]] = [asyncio.create_task(self.status.sample_forever())]
        if any(isinstance(dp, Checked) for dp in self.dataplanes):
            self.checker = ActiveChecker(asyncio.get_running_loop(), self._verdicts)
            self.metrics.registry.register(CheckCollector(self.checker.checks))
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
            graceful = True
        except BaseException:
            graceful = False
            raise
        finally:
            log.info("shutting down")
            self._startup_gc.settle()
            self.health.draining = True  # /readyz: 503 from now on
            if self.checker is not None:
                self.checker.close()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if graceful:
                await self._drain()
            for dataplane in reversed(started):
                try:
                    await asyncio.wait_for(dataplane.stop(), STOP_DEADLINE)
                except Exception:
                    log.exception("dataplane %s did not stop cleanly", dataplane.name)
            for site in sites:
                await site.cleanup()
            log.info("stopped")


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("re-reading the source failed", exc_info=task.exception())
