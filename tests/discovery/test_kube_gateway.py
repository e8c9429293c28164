"""The Gateway API through KubeSource and the API stand-in: discovery of the group, watches,
and status written back through the status subresource."""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from typing import Any

import aiohttp
import pytest
import yaml

from discovery.kube_config import load_credentials
from discovery.kube_gateway import GatewayStatusWriter, discover_gateway_api
from discovery.model import KIND_SECRET, ObjectKey
from discovery.model_gateway import KIND_GATEWAY, KIND_HTTPROUTE, Gateway, HTTPRoute
from tests.kubeapi.fixtures import (
    api_server,
    create,
    delete,
    eventually,
    run,
    running_source,
    tls_secret,
    update,
)
from tests.kubeapi.resources import BY_KIND
from tests.kubeapi.server import ApiServer

CONTROLLER = "seaway.dev/gateway-controller"
GW = ObjectKey(KIND_GATEWAY, "default", "gw")
ROUTE = ObjectKey(KIND_HTTPROUTE, "default", "web")

MANIFESTS = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: seaway}
spec: {controllerName: seaway.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: seaway
  addresses: [{value: 127.0.70.1}]
  listeners:
  - {name: http, port: 80, protocol: HTTP}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 127.0.70.10
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: web, port: 80}]
"""


def docs(text: str = MANIFESTS) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def stored(server: ApiServer, kind: str, namespace: str, name: str) -> dict[str, Any]:
    return server.db.get(BY_KIND[kind], namespace, name)


def condition(conditions: list[dict[str, Any]], ctype: str) -> dict[str, Any]:
    (found,) = [c for c in conditions if c["type"] == ctype]
    return found


def route_parent(server: ApiServer, name: str = "web") -> dict[str, Any]:
    parents = stored(server, "HTTPRoute", "default", name).get("status", {}).get("parents", [])
    ours = [p for p in parents if p["controllerName"] == CONTROLLER]
    assert len(ours) == 1, parents
    return ours[0]


def listener(server: ApiServer, name: str = "http") -> dict[str, Any]:
    (found,) = [
        ls for ls in stored(server, "Gateway", "default", "gw")["status"].get("listeners", [])
        if ls["name"] == name
    ]  # fmt: skip
    return found


def attached(server: ApiServer) -> int | None:
    listeners = stored(server, "Gateway", "default", "gw").get("status", {}).get("listeners")
    return listeners[0]["attachedRoutes"] if listeners else None


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_group_discovery_finds_each_kind_at_its_version() -> None:
    async def main() -> None:
        async with api_server() as server, aiohttp.ClientSession() as session:
            with tempfile.TemporaryDirectory() as tmp:
                kc = server.write_kubeconfig(os.path.join(tmp, "kc"))
                creds = await load_credentials(kc, None)
                found = await discover_gateway_api(session, creds)
                assert found == {
                    "GatewayClass": "v1",
                    "Gateway": "v1",
                    "HTTPRoute": "v1",
                    "TLSRoute": "v1",
                    "TCPRoute": "v1alpha2",
                    "UDPRoute": "v1alpha2",
                    "ReferenceGrant": "v1",
                }
                server.gateway_api = False
                assert await discover_gateway_api(session, creds) is None

    run(main())


def test_status_is_written_through_the_status_subresource_once() -> None:
    async def main() -> None:
        async with api_server() as server:
            for doc in docs():
                create(server, doc)
            async with running_source(server) as r:
                await eventually(
                    lambda: stored(server, "HTTPRoute", "default", "web").get("status") is not None,
                    what="route status",
                )
                await eventually(lambda: attached(server) == 1, what="attachedRoutes 1")
                gw = stored(server, "Gateway", "default", "gw")
                assert condition(gw["status"]["conditions"], "Accepted")["status"] == "True"
                programmed = condition(gw["status"]["conditions"], "Programmed")
                assert programmed["status"] == "True"
                assert programmed["observedGeneration"] == gw["metadata"]["generation"]
                assert gw["status"]["addresses"] == [{"type": "IPAddress", "value": "127.0.70.1"}]
                cls = stored(server, "GatewayClass", "", "seaway")
                assert condition(cls["status"]["conditions"], "Accepted")["reason"] == "Accepted"
                parent = route_parent(server)
                assert parent["parentRef"] == {
                    "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw",
                }  # fmt: skip
                assert condition(parent["conditions"], "Accepted")["status"] == "True"
                assert condition(parent["conditions"], "ResolvedRefs")["status"] == "True"
                # Every write went to .../status; the objects' specs were never written.
                assert server.stats["patch:Gateway/status"] >= 1
                assert server.stats["patch:Gateway"] == 0
                assert server.stats["update:Gateway"] == 0
                # Once the watch has brought the written objects back, nothing changes:
                # more passes write nothing.
                writer = r.source.status_writer
                assert writer is not None
                await eventually(
                    lambda: isinstance(r.store.get(ROUTE), HTTPRoute)
                    and bool(r.store.get(ROUTE).parents),  # type: ignore[union-attr]
                    what="route status in the store",
                )
                writes = writer.writes
                for _ in range(3):
                    passes = writer.passes
                    writer.kick()
                    await eventually(lambda: writer.passes > passes, what="a pass")  # noqa: B023
                assert writer.writes == writes
                assert writer.conflicts == 0

    run(main())


def test_without_the_crds_seaway_carries_on_then_picks_them_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        async with api_server() as server:
            server.gateway_api = False
            create(server, docs()[2])  # the Service
            caplog.set_level(logging.INFO, logger="seaway.kube")
            async with running_source(server, source_config={"gateway_api_recheck": 0.05}) as r:
                assert len(r.ready_calls) == 1  # ready without the Gateway API
                assert r.source.gateway_versions is None
                requests = server.stats["requests"]
                await eventually(lambda: server.stats["requests"] > requests + 3, what="rechecks")
                not_served = [m for m in caplog.messages if "is not served" in m]
                assert len(not_served) == 1, not_served  # logged once, however many looks
                assert not any(q["kind"] == "Gateway" for q in server.watch_queries)
                # The CRDs get installed, objects created: watched, and status written.
                server.gateway_api = True
                for doc in docs():
                    if doc["kind"] != "Service":
                        create(server, doc)
                await eventually(lambda: isinstance(r.store.get(GW), Gateway), what="Gateway")
                await eventually(lambda: attached(server) == 1, what="status written")
                assert any("Gateway API served" in m for m in caplog.messages)

    run(main())


def test_routes_attach_detach_and_break_status_follows() -> None:
    async def main() -> None:
        async with api_server() as server:
            for doc in docs():
                if doc["kind"] != "HTTPRoute":
                    create(server, doc)
            async with running_source(server) as r:
                await eventually(lambda: attached(server) == 0, what="attachedRoutes 0")
                writer = r.source.status_writer
                assert writer is not None
                clock = writer.clock = FakeClock()
                first = listener(server)["conditions"]
                # A route attaches: attachedRoutes 1, the listener's conditions unchanged
                # (their lastTransitionTime too).
                clock.now += 3600
                route = docs()[3]
                create(server, route)
                await eventually(lambda: attached(server) == 1, what="attachedRoutes 1")
                assert listener(server)["conditions"] == first
                # A second route attaches; one detaches (its parentRef names another
                # Gateway): 2, then 1.
                second = docs()[3]
                second["metadata"]["name"] = "web2"
                create(server, second)
                await eventually(lambda: attached(server) == 2, what="attachedRoutes 2")
                route["spec"]["parentRefs"] = [{"name": "elsewhere"}]
                update(server, route)
                await eventually(lambda: attached(server) == 1, what="attachedRoutes back to 1")
                # seaway's entry for the Gateway it no longer references is removed.
                await eventually(
                    lambda: not stored(server, "HTTPRoute", "default", "web")["status"]["parents"],
                    what="stale parent removed",
                )
                # The backend goes away: the route breaks (ResolvedRefs False,
                # BackendNotFound), stays attached; Accepted keeps its transition time.
                accepted_before = condition(route_parent(server, "web2")["conditions"], "Accepted")
                clock.now += 3600
                delete(server, "Service", "default", "web")

                def broken() -> bool:
                    c = condition(route_parent(server, "web2")["conditions"], "ResolvedRefs")
                    return c["status"] == "False"

                await eventually(broken, what="ResolvedRefs False")
                parent = route_parent(server, "web2")
                resolved = condition(parent["conditions"], "ResolvedRefs")
                assert resolved["reason"] == "BackendNotFound"
                assert "default/web" in resolved["message"]
                assert condition(parent["conditions"], "Accepted") == accepted_before
                assert resolved["lastTransitionTime"] != accepted_before["lastTransitionTime"]
                assert attached(server) == 1

    run(main())


def test_route_parents_of_other_controllers_are_kept() -> None:
    async def main() -> None:
        async with api_server() as server:
            objs = docs()
            for doc in objs:
                create(server, doc)
            other = {
                "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                              "name": "other-gw"},
                "controllerName": "example.net/other-controller",
                "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                                "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z",
                                "observedGeneration": 1}],
            }  # fmt: skip
            route = stored(server, "HTTPRoute", "default", "web")
            server.db.update(
                BY_KIND["HTTPRoute"], "default", "web",
                {**route, "status": {"parents": [other]}}, subresource="status",
            )  # fmt: skip
            async with running_source(server):
                await eventually(
                    lambda: len(stored(server, "HTTPRoute", "default", "web")["status"]["parents"])
                    == 2,
                    what="seaway's parent added",
                )
                parents = stored(server, "HTTPRoute", "default", "web")["status"]["parents"]
                assert parents[0] == other  # untouched, in place
                assert parents[1]["controllerName"] == CONTROLLER

    run(main())


def test_a_gateway_certificate_secret_is_watched_by_name() -> None:
    https = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: seaway
  addresses: [{value: 127.0.70.1}]
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    tls: {certificateRefs: [{name: gw-cert}]}
"""

    async def main() -> None:
        async with api_server() as server:
            create(server, docs()[0])
            create(server, docs(https)[0])
            create(server, tls_secret("unrelated"))
            async with running_source(server) as r:

                def resolved() -> str:
                    return str(condition(listener(server, "https")["conditions"],
                                         "ResolvedRefs")["reason"])  # fmt: skip

                await eventually(lambda: "listeners" in stored(server, "Gateway", "default", "gw")
                                 .get("status", {}), what="listener status")  # fmt: skip
                assert resolved() == "InvalidCertificateRef"  # not there yet
                create(server, tls_secret("gw-cert"))
                await eventually(lambda: resolved() == "ResolvedRefs", what="secret found")
                secret_watches = {q.get("fieldSelector") for q in server.watch_queries
                                  if q["kind"] == "Secret"}  # fmt: skip
                assert secret_watches == {"metadata.name=gw-cert"}
                assert r.store.get(ObjectKey(KIND_SECRET, "default", "unrelated")) is None

    run(main())


def test_status_computed_from_a_stale_object_is_refused() -> None:
    """The write carries the resourceVersion it was computed from: the API refuses it
    (409) when the object changed meanwhile, and nothing is overwritten."""

    async def main() -> None:
        async with api_server() as server:
            for doc in docs():
                create(server, doc)
            async with running_source(server) as r:
                await eventually(lambda: attached(server) == 1, what="status written")
                writer = r.source.status_writer
                assert writer is not None
                # A writer on the same store but behind the API: the store still holds
                # the route as first listed, the API has a newer one (status written).
                stale_store = type(r.store)()
                for kind in ("GatewayClass", "Gateway", "Service"):
                    for obj in r.store.objects(kind).values():
                        stale_store.upsert(obj)
                route = r.store.get(ROUTE)
                assert isinstance(route, HTTPRoute)
                old_meta = dataclasses.replace(route.meta, resource_version="1")
                stale_store.upsert(dataclasses.replace(route, meta=old_meta, parents=()))
                stale = GatewayStatusWriter(
                    writer.session, writer.credentials, stale_store, writer.config,
                    writer.versions,
                )  # fmt: skip
                await stale.reconcile()
                # At least the route's write is refused; under load the store may not have
                # seen the Gateway's written status yet either, and that write is refused too.
                assert stale.conflicts >= 1 and stale.writes == 0
                parent = route_parent(server)  # the API keeps what the current writer wrote
                assert condition(parent["conditions"], "Accepted")["status"] == "True"

    run(main())


def test_the_writer_retries_after_api_errors() -> None:
    async def main() -> None:
        async with api_server() as server:
            for doc in docs():
                create(server, doc)
            async with running_source(server) as r:
                await eventually(lambda: attached(server) == 1, what="status written")
                writer = r.source.status_writer
                assert writer is not None
                writes = writer.writes
                # The API fails while a new route arrives: the pass fails, is retried.
                server.fail_code = 500
                route = docs()[3]
                route["metadata"]["name"] = "web2"
                create(server, route)  # (straight into the database: no HTTP)
                writer.kick()
                await eventually(lambda: writer.failures >= 1, what="a failed pass")
                assert attached(server) == 1
                server.fail_code = 0
                # (the server stores the write before the writer has read its answer and
                # counted it: wait for both)
                await eventually(
                    lambda: attached(server) == 2 and writer.writes > writes,
                    timeout=20,
                    what="retried",
                )

    run(main())
