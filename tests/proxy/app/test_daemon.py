"""The daemon's wiring: source -> store -> runner -> dataplanes, health and metrics.

Driven in-process with a scripted source and a recording dataplane; the admin endpoints
are real HTTP on loopback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import pytest

from discovery.model import KubeObject
from discovery.snapshot import ServicePortName, Snapshot
from discovery.store import Store
from proxy.app.daemon import Daemon
from proxy.app.options import Options
from tests.discovery.factories import ep, make_service, make_slice, port
from tests.support import free_port


class ScriptedSource:
    """Loads `initial`, waits for `release` before saying ready, then applies `later`."""

    def __init__(self, initial: list[KubeObject]) -> None:
        self.initial = initial
        self.release = asyncio.Event()
        self.store: Store | None = None

    async def run(self, store: Store, ready: Callable[[], None]) -> None:
        self.store = store
        for obj in self.initial:
            store.upsert(obj)
        await self.release.wait()
        ready()
        await asyncio.Event().wait()


class RecordingDataplane:
    def __init__(self, name: str = "recorder", fail_times: int = 0) -> None:
        self.name = name
        self.fail_times = fail_times
        self.calls: list[tuple[Snapshot, frozenset[ServicePortName]]] = []
        self.events: list[str] = []
        self.changed = asyncio.Event()

    async def start(self) -> None:
        self.events.append("start")

    async def sync(self, snapshot: Snapshot, changed: frozenset[ServicePortName]) -> None:
        if self.fail_times:
            self.fail_times -= 1
            self.changed.set()
            raise OSError("simulated apply failure")
        self.calls.append((snapshot, changed))
        self.changed.set()

    async def stop(self) -> None:
        self.events.append("stop")


def options() -> Options:
    return Options(
        config="unused",
        healthz_bind_address=("127.0.0.1", free_port()),
        metrics_bind_address=("127.0.0.1", free_port()),
        min_sync_period=0.0,
        sync_period=3600.0,
    )


WEB = make_service("web", cluster_ip="10.96.0.10", ports=[port("http", 80, 8080)])
WEB_EPS = make_slice(WEB, endpoints=[ep("10.1.0.1"), ep("10.1.0.2")], ports=[("http", 8080)])


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text()


async def wait_calls(dp: RecordingDataplane, n: int) -> None:
    async with asyncio.timeout(10):
        while len(dp.calls) < n:
            dp.changed.clear()
            await dp.changed.wait()


def test_no_sync_before_source_ready_then_full_then_partial() -> None:
    async def scenario() -> None:
        opts = options()
        source = ScriptedSource([WEB, WEB_EPS])
        dp = RecordingDataplane()
        daemon = Daemon(opts, source, [dp])
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        try:
            healthz = "http://{}:{}".format(*opts.healthz_bind_address)
            metrics = "http://{}:{}".format(*opts.metrics_bind_address)
            async with asyncio.timeout(10):
                while source.store is None:
                    await asyncio.sleep(0.01)
            # Objects are in the store, but the source is not ready: nothing synced.
            status, _ = await get(healthz + "/readyz")
            assert status == 503
            assert dp.calls == []

            source.release.set()
            await wait_calls(dp, 1)
            snapshot, changed = dp.calls[0]
            spn = ServicePortName("default", "web", "http", "TCP")
            assert changed == {spn}
            assert [e.ip for e in snapshot.service_ports[spn].endpoints] == ["10.1.0.1", "10.1.0.2"]
            status, body = await get(healthz + "/readyz")
            assert status == 200 and '"ready": true' in body

            # One endpoint change: a partial sync naming just that port.
            assert source.store is not None
            source.store.upsert(make_slice(WEB, endpoints=[ep("10.1.0.3")], ports=[("http", 8080)]))
            await wait_calls(dp, 2)
            snapshot, changed = dp.calls[1]
            assert changed == {spn}
            assert [e.ip for e in snapshot.service_ports[spn].endpoints] == ["10.1.0.3"]

            status, text = await get(metrics + "/metrics")
            assert status == 200
            count = 'kubeproxy_sync_proxy_rules_duration_seconds_count{dataplane="recorder"}'
            assert f"{count} 2.0" in text
            assert "seaway_usable_endpoints 1.0" in text
        finally:
            stop.set()
            await task
        assert dp.events == ["start", "stop"]

    asyncio.run(scenario())


def test_failed_sync_is_retried_and_counted() -> None:
    async def scenario() -> None:
        opts = options()
        source = ScriptedSource([WEB, WEB_EPS])
        source.release.set()
        dp = RecordingDataplane(fail_times=1)
        daemon = Daemon(opts, source, [dp])
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        try:
            await wait_calls(dp, 1)
            assert dp.fail_times == 0
            status, text = await get("http://{}:{}/metrics".format(*opts.metrics_bind_address))
            assert status == 200
            assert 'seaway_sync_errors_total{dataplane="recorder"} 1.0' in text
        finally:
            stop.set()
            await task

    asyncio.run(scenario())


def test_network_programming_latency_from_trigger_time() -> None:
    async def scenario() -> None:
        opts = options()
        source = ScriptedSource([WEB, WEB_EPS])
        source.release.set()
        dp = RecordingDataplane()
        now = [1_800_000_000.0]  # an injected wall clock
        daemon = Daemon(opts, source, [dp], wall_clock=lambda: now[0])
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        try:
            await wait_calls(dp, 1)
            # A change triggered 10 s after the daemon started, applied 3 s later.
            # (Trigger times from before the start are not counted, as in kube-proxy.)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now[0] + 10))
            now[0] += 13
            eps = make_slice(WEB, endpoints=[ep("10.1.0.9")], ports=[("http", 8080)],
                             trigger_time=stamp)
            assert source.store is not None
            source.store.upsert(eps)
            await wait_calls(dp, 2)
            status, text = await get("http://{}:{}/metrics".format(*opts.metrics_bind_address))
            assert status == 200
            lines = text.splitlines()
            count = next(line for line in lines if line.startswith(
                "kubeproxy_network_programming_duration_seconds_count"))
            total = next(line for line in lines if line.startswith(
                "kubeproxy_network_programming_duration_seconds_sum"))
            assert count.endswith(" 1.0")
            assert float(total.split()[-1]) == 3.0
        finally:
            stop.set()
            await task

    asyncio.run(scenario())


@pytest.mark.parametrize("mode", ["userspace"])
def test_run_help_lists_kube_proxy_flags(mode: str) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "proxy.app.cli", "run", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--proxy-mode", "--kubeconfig", "--master", "--hostname-override",
                 "--cluster-cidr", "--nodeport-addresses", "--metrics-bind-address",
                 "--healthz-bind-address", "--cleanup", "--min-sync-period", "--sync-period",
                 "--config", mode):
        assert flag in out


def test_ingress_nginx_findings_are_logged_once_per_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each sync logs what changed Ingresses' annotations amount to (errors as warnings),
    and the ConfigMap's settings when they change; an unchanged world logs nothing."""
    from discovery.nginx_configmap import IngressNginxMode
    from discovery.snapshot_builder import SnapshotBuilder
    from proxy.app.daemon import log_nginx_findings
    from tests.discovery.factories import make_ingress

    n = "nginx.ingress.kubernetes.io/"
    store = Store()
    store.upsert(make_ingress("web", annotations={n + "proxy-body-size": "10x"}))
    builder = SnapshotBuilder(store, nginx=IngressNginxMode(enabled=True))
    first, _ = builder.build()
    caplog.set_level("INFO", logger="seaway.daemon")
    log_nginx_findings(None, first, "nginx.ingress.kubernetes.io")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings[0] == (
        f'default/web: metadata.annotations[{n}proxy-body-size]: invalid size "10x"'
    )
    assert "ingress-nginx settings: ingress-nginx defaults" in caplog.text
    caplog.clear()
    store.upsert(make_service("web"))
    second, _ = builder.build()
    log_nginx_findings(first, second, "nginx.ingress.kubernetes.io")
    assert caplog.records == []
    store.upsert(make_ingress("web", annotations={n + "use-regex": "true"}))
    third, _ = builder.build()
    log_nginx_findings(second, third, "nginx.ingress.kubernetes.io")
    assert [r.getMessage() for r in caplog.records] == [
        "default/web: annotations recognised: use-regex"
    ]
