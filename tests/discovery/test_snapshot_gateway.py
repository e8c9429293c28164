"""Gateway API objects from files reach the store and the Snapshot, as Ingresses do: in
key order, rebuilt only when their kind changed (an unchanged kind's tuple is shared with
the previous Snapshot)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from discovery.file_source import FileSource
from discovery.snapshot_builder import SnapshotBuilder
from discovery.store import Store

GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: seaway}
spec: {controllerName: seaway.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: seaway
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: v1
kind: Namespace
metadata: {name: infra}
"""


def route(name: str, namespace: str = "default") -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {namespace}}}
spec: {{parentRefs: [{{name: gw, namespace: infra}}]}}
"""


def test_files_to_snapshot(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text(GATEWAY)
    routes = tmp_path / "routes.yaml"
    routes.write_text(route("b") + "---" + route("a") + "---" + route("c", "apps"))

    async def main() -> None:
        store = Store()
        source = FileSource(str(tmp_path), rescan_interval=0.2)
        task = asyncio.create_task(source.run(store, lambda: None))
        try:
            await source.wait_batches(1, 10)
            builder = SnapshotBuilder(store)
            first, _ = builder.build()
            assert [c.meta.name for c in first.gateway_classes] == ["seaway"]
            assert [(g.meta.namespace, g.meta.name) for g in first.gateways] == [("infra", "gw")]
            assert [(r.meta.namespace, r.meta.name) for r in first.http_routes] == [
                ("apps", "c"), ("default", "a"), ("default", "b"),
            ]  # fmt: skip
            assert [n.meta.name for n in first.namespaces] == ["infra"]
            # One route file changes: the routes are rebuilt, the Gateways shared.
            routes.write_text(route("a"))
            await source.wait_batches(source.batches + 1, 10)
            while len(store.objects("HTTPRoute")) != 1:
                await source.wait_batches(source.batches + 1, 10)
            second, changed = builder.build()
            assert changed == frozenset()  # no service port changed
            assert [r.meta.name for r in second.http_routes] == ["a"]
            assert second.gateways is first.gateways
            assert second.gateway_classes is first.gateway_classes
            assert second.namespaces is first.namespaces
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())
