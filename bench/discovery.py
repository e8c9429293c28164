"""KubeSource at scale: N Services + N EndpointSlices served by the API stand-in.

    cd /work/main && python3 -m bench.discovery [--objects 10000] [--repeat 3]

The stand-in runs in a child process (as an apiserver would: its own CPU), its store
loaded directly (not over HTTP). Measured, alternating the two clients side by side:

- cold start: from the start of the source to the first complete Snapshot (every kind
  listed in pages of 500, objects parsed into the Store, SnapshotBuilder.build());
- watch: N MODIFIED events (the stand-in updated every Service beforehand), streamed from
  the list's resourceVersion, until all are in the Store.

Clients compared:
- seaway:   discovery.kube_source.KubeSource (raw aiohttp, JSON straight to parse_object);
- k8s-asyncio: kubernetes_asyncio's typed API (CoreV1Api / DiscoveryV1Api list with
  limit/continue, watch.Watch().stream), models turned back into dicts with
  sanitize_for_serialization for parse_object: what "use the client library" costs.

Target: seaway cold start <= 3 s at 10,000 + 10,000.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

from discovery.kube_source import KubeSource
from discovery.kube_watch import KindWatcher, WatchSettings
from discovery.manifest import parse_object
from discovery.model import KIND_SERVICE, KubeObject
from discovery.snapshot_builder import SnapshotBuilder
from discovery.store import Store
from proxy.app.options import Options

TOUCH = "kubeapi.test/touched"
# Client CPU seconds (this process) from start to the first snapshot, per client.
CPU: dict[str, list[float]] = {"seaway": [], "k8s-asyncio": []}


# ---- the stand-in, in a child process ----------------------------------------------------
def _objects(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    services, slices = [], []
    for i in range(n):
        a, b = divmod(i, 250)
        ns = f"ns-{i % 20}"
        services.append(
            {
                "metadata": {"name": f"svc-{i}", "namespace": ns},
                "spec": {
                    "type": "ClusterIP",
                    "clusterIP": f"10.96.{a}.{b + 1}",
                    "clusterIPs": [f"10.96.{a}.{b + 1}"],
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
                    "sessionAffinity": "None",
                },
            }
        )
        slices.append(
            {
                "metadata": {
                    "name": f"svc-{i}-abcde",
                    "namespace": ns,
                    "labels": {"kubernetes.io/service-name": f"svc-{i}"},
                    "annotations": {
                        "endpoints.kubernetes.io/last-change-trigger-time": "2026-01-01T00:00:00Z"
                    },
                },
                "addressType": "IPv4",
                "endpoints": [
                    {"addresses": [f"10.1.{a}.{b + 1}"], "conditions": {"ready": True},
                     "nodeName": "node-1"},
                    {"addresses": [f"10.2.{a}.{b + 1}"], "conditions": {"ready": True},
                     "nodeName": "node-2"},
                ],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            }
        )  # fmt: skip
    return services, slices


def _serve(n: int, conn: Connection) -> None:
    from tests.kubeapi.resources import BY_KIND
    from tests.kubeapi.server import ApiServer

    async def main() -> None:
        server = ApiServer(bookmark_interval=3600)
        services, slices = _objects(n)
        server.db.load(BY_KIND["Service"], services)
        server.db.load(BY_KIND["EndpointSlice"], slices)
        await server.start()
        conn.send(server.kubeconfig())
        await asyncio.Event().wait()

    asyncio.run(main())


# ---- the clients ---------------------------------------------------------------------------
async def seaway_cold(kubeconfig: str, n: int) -> tuple[float, float, float]:
    """(seconds to ready, seconds to first snapshot, watch seconds for n events)."""
    store = Store()
    ready = asyncio.Event()
    source = KubeSource(Options(kubeconfig=kubeconfig).kube_source_config(), WatchSettings())
    t0, c0 = time.perf_counter(), time.process_time()
    task = asyncio.create_task(source.run(store, ready.set))
    try:
        await ready.wait()
        t_ready = time.perf_counter() - t0
        snapshot, _ = SnapshotBuilder(store).build()
        t_snap = time.perf_counter() - t0
        CPU["seaway"].append(time.process_time() - c0)
        assert len(snapshot.service_ports) == n, len(snapshot.service_ports)
        # Watch: N MODIFIED events waiting in the server's history, streamed from the
        # list's resourceVersion (so the server's own work to make them is not counted).
        listed = source.watchers[KIND_SERVICE]
        rv, creds = listed.resource_version, listed.credentials
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await _touch(kubeconfig, n)
        async with aiohttp.ClientSession() as session:
            watcher = KindWatcher(session, creds, listed.spec, store, WatchSettings())
            t1 = time.perf_counter()
            watching = asyncio.create_task(watcher.watch(rv))
            while watcher.events < n:
                await asyncio.sleep(0.002)
            t_watch = time.perf_counter() - t1
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
        assert all(TOUCH in o.meta.annotations for o in store.objects(KIND_SERVICE).values())
        return t_ready, t_snap, t_watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def k8s_asyncio_cold(kubeconfig: str, n: int) -> tuple[float, float, float]:
    from kubernetes_asyncio import client, config, watch

    store = Store()
    t0, c0 = time.perf_counter(), time.process_time()
    api = await config.new_client_from_config(config_file=kubeconfig, persist_config=False)
    try:
        core, disc = client.CoreV1Api(api), client.DiscoveryV1Api(api)
        to_dict = api.sanitize_for_serialization

        async def list_all(func: Callable[..., Any], kind: str, api_version: str) -> str:
            objects: list[KubeObject] = []
            cont: str | None = None
            rv = ""
            while True:
                kwargs: dict[str, Any] = {"limit": 500}
                if cont:
                    kwargs["_continue"] = cont
                result = await func(**kwargs)
                rv = rv or result.metadata.resource_version
                for item in result.items:
                    doc = to_dict(item)
                    doc["kind"], doc["apiVersion"] = kind, api_version
                    obj, _errors = parse_object(doc, file=f"api:{kind}")
                    if obj is not None:
                        objects.append(obj)
                cont = result.metadata._continue
                if not cont:
                    break
            store.replace_source(f"kube:{kind}", objects)
            return str(rv)

        rv_svc, _ = await asyncio.gather(
            list_all(core.list_service_for_all_namespaces, "Service", "v1"),
            list_all(disc.list_endpoint_slice_for_all_namespaces, "EndpointSlice",
                     "discovery.k8s.io/v1"),
        )  # fmt: skip
        t_ready = time.perf_counter() - t0
        snapshot, _ = SnapshotBuilder(store).build()
        t_snap = time.perf_counter() - t0
        CPU["k8s-asyncio"].append(time.process_time() - c0)
        assert len(snapshot.service_ports) == n

        await _touch(kubeconfig, n)
        got = 0
        t1 = time.perf_counter()
        w = watch.Watch()
        stream = w.stream(
            core.list_service_for_all_namespaces,
            resource_version=rv_svc,
            allow_watch_bookmarks=True,
            timeout_seconds=300,
        )
        async for event in stream:
            if event["type"] not in ("ADDED", "MODIFIED"):
                continue
            doc = to_dict(event["object"])
            doc["kind"], doc["apiVersion"] = "Service", "v1"
            obj, _errors = parse_object(doc, file="api:Service")
            if obj is not None:
                store.upsert(obj, source_id="kube:Service")
            got += 1
            if got >= n:
                break
        t_watch = time.perf_counter() - t1
        w.stop()
        assert all(TOUCH in o.meta.annotations for o in store.objects(KIND_SERVICE).values())
        return t_ready, t_snap, t_watch
    finally:
        await api.close()


async def _touch(kubeconfig: str, n: int) -> None:
    import json

    with open(kubeconfig) as f:
        server = json.load(f)["clusters"][0]["cluster"]["server"]
    async with aiohttp.ClientSession() as s, s.post(f"{server}/_test/touch?count={n}") as r:
        r.raise_for_status()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--objects", type=int, default=10000, help="Services (and as many slices)")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    n = args.objects
    results: dict[str, list[tuple[float, float, float]]] = {"seaway": [], "k8s-asyncio": []}
    clients = {"seaway": seaway_cold, "k8s-asyncio": k8s_asyncio_cold}
    for i in range(args.repeat):
        for name, func in clients.items():
            # A fresh stand-in each run, so every run starts from the same state.
            ctx = multiprocessing.get_context("fork")
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(n, child), daemon=True)
            proc.start()
            try:
                kubeconfig_text = parent.recv()
                with tempfile.TemporaryDirectory() as tmp:
                    path = os.path.join(tmp, "kubeconfig")
                    with open(path, "w") as f:
                        f.write(kubeconfig_text)
                    gc.collect()
                    r = asyncio.run(func(path, n))
                results[name].append(r)
                print(
                    f"run {i + 1} {name:12s} ready {r[0]:6.2f}s  first snapshot {r[1]:6.2f}s  "
                    f"{n} watch events {r[2]:6.2f}s",
                    flush=True,
                )
            finally:
                proc.terminate()
                proc.join(10)
    load1 = os.getloadavg()[0]
    print(
        f"\n{n} Services + {n} EndpointSlices, median of {args.repeat} "
        f"(load average {load1:.1f} on {os.cpu_count()} CPUs: wall times stretch with it; "
        "client CPU does not):"
    )
    med = {k: [statistics.median(r[j] for r in v) for j in range(3)] for k, v in results.items()}
    for name, (ready, snap, watch_s) in med.items():
        cpu = statistics.median(CPU[name])
        print(
            f"  {name:12s} first complete Snapshot {snap:6.2f}s (ready {ready:.2f}s, "
            f"client CPU {cpu:.2f}s)   "
            f"watch {n} events {watch_s:6.2f}s ({n / watch_s:,.0f} events/s)"
        )
    s, k = med["seaway"], med["k8s-asyncio"]
    print(f"  ratio k8s-asyncio / seaway: cold start {k[1] / s[1]:.2f}x, watch {k[2] / s[2]:.2f}x")
    cpu = statistics.median(CPU["seaway"])
    print(
        f"  target <= 3.00 s: {'met' if s[1] <= 3.0 else 'NOT met'} ({s[1]:.2f}s wall, "
        f"{cpu:.2f}s client CPU)"
    )


if __name__ == "__main__":
    main()
