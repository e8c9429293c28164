"""The API stand-in serves the Gateway API kinds as their CRDs do: two versions of one
object, a status subresource, printer columns, the CRDs' status defaults; and can act as a
cluster without them."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.discovery.test_kube_standin import call, watch_lines
from tests.kubeapi.fixtures import api_server, run

V1 = "/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways"
V1BETA1 = "/apis/gateway.networking.k8s.io/v1beta1/namespaces/default/gateways"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
MERGE = "application/merge-patch+json"


def gateway(name: str = "gw") -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "gatewayClassName": "seaway",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
        },
        "status": {"conditions": [{"type": "Ignored"}]},  # dropped on create
    }


def test_status_subresource_semantics() -> None:
    async def main() -> None:
        async with api_server() as server:
            status, created, _ = await call(server, "POST", V1, gateway())
            assert status == 201
            # The CRD's default status, not the one sent.
            types = [(c["type"], c["status"], c["reason"]) for c in created["status"]["conditions"]]
            assert types == [("Accepted", "Unknown", "Pending"), ("Programmed", "Unknown",
                                                                  "Pending")]  # fmt: skip
            rv = created["metadata"]["resourceVersion"]
            new_status = {"addresses": [{"type": "IPAddress", "value": "10.0.0.1"}],
                          "conditions": []}  # fmt: skip
            # /status with a stale resourceVersion: refused.
            body = {"metadata": {"resourceVersion": "1"}, "status": new_status}
            status, err, _ = await call(server, "PATCH", f"{V1}/gw/status", body, MERGE)
            assert status == 409 and err["reason"] == "Conflict"
            # /status writes the status and nothing else (the spec change is ignored).
            body = {"metadata": {"resourceVersion": rv}, "status": new_status,
                    "spec": {"gatewayClassName": "other"}}  # fmt: skip
            status, patched, _ = await call(server, "PATCH", f"{V1}/gw/status", body, MERGE)
            assert status == 200, patched
            assert patched["status"]["addresses"][0]["value"] == "10.0.0.1"
            assert patched["spec"]["gatewayClassName"] == "seaway"
            assert patched["metadata"]["generation"] == 1
            # A write to the object keeps the status, and bumps the generation.
            spec_patch = {"spec": {"gatewayClassName": "other"}, "status": None}
            status, patched, _ = await call(server, "PATCH", f"{V1}/gw", spec_patch, MERGE)
            assert status == 200
            assert patched["status"]["addresses"][0]["value"] == "10.0.0.1"
            assert patched["metadata"]["generation"] == 2
            # Custom resources take no strategic merge patch (kubectl knows; clients that
            # do not are told).
            status, err, _ = await call(
                server, "PATCH", f"{V1}/gw", {"spec": {}}, "application/strategic-merge-patch+json"
            )
            assert status == 415 and err["reason"] == "UnsupportedMediaType"
            status, got, _ = await call(server, "GET", f"{V1}/gw/status")
            assert status == 200 and got["status"]["addresses"][0]["value"] == "10.0.0.1"

    run(main())


def test_one_object_two_versions() -> None:
    async def main() -> None:
        async with api_server() as server:
            await call(server, "POST", V1, gateway())
            status, old, _ = await call(server, "GET", f"{V1BETA1}/gw")
            assert status == 200
            assert old["apiVersion"] == "gateway.networking.k8s.io/v1beta1"
            status, listing, _ = await call(server, "GET", V1BETA1)
            assert listing["apiVersion"] == "gateway.networking.k8s.io/v1beta1"
            assert [i["metadata"]["name"] for i in listing["items"]] == ["gw"]
            rv = listing["metadata"]["resourceVersion"]
            watching = watch_lines(server, f"{V1BETA1}?watch=1&resourceVersion={rv}", 1)
            task = asyncio.ensure_future(watching)
            await asyncio.sleep(0)
            await call(server, "POST", V1BETA1, {**gateway("gw2"),
                       "apiVersion": "gateway.networking.k8s.io/v1beta1"})  # fmt: skip
            (event,) = await task
            assert event["object"]["apiVersion"] == "gateway.networking.k8s.io/v1beta1"
            status, stored, _ = await call(server, "GET", f"{V1}/gw2")
            assert stored["apiVersion"] == "gateway.networking.k8s.io/v1"
            # Discovery: both versions, v1 preferred; ReferenceGrant too (and the alpha
            # versions TLSRoute is also served at).
            status, group, _ = await call(server, "GET", "/apis/gateway.networking.k8s.io")
            versions = [v["version"] for v in group["versions"]]
            assert versions == ["v1", "v1beta1", "v1alpha3", "v1alpha2"]
            assert group["preferredVersion"]["version"] == "v1"
            status, res, _ = await call(server, "GET", "/apis/gateway.networking.k8s.io/v1beta1")
            names = {r["name"] for r in res["resources"]}
            assert {"gateways", "gateways/status", "referencegrants", "httproutes"} <= names

    run(main())


def test_printer_columns_as_a_table() -> None:
    async def main() -> None:
        async with api_server() as server:
            await call(server, "POST", V1, gateway())
            status, table, _ = await call(server, "GET", V1, Accept=TABLE)
            assert status == 200 and table["kind"] == "Table"
            names = [c["name"] for c in table["columnDefinitions"]]
            assert names == ["Name", "Class", "Address", "Programmed", "Age"]
            (row,) = table["rows"]
            assert row["cells"][:4] == ["gw", "seaway", None, "Unknown"]
            assert row["object"]["metadata"]["name"] == "gw"
            # Kinds without printer columns answer a plain list, as before.
            status, plain, _ = await call(server, "GET", "/api/v1/namespaces", Accept=TABLE)
            assert plain["kind"] == "NamespaceList"
            labels = {i["metadata"]["name"]: i["metadata"]["labels"] for i in plain["items"]}
            assert labels["default"] == {"kubernetes.io/metadata.name": "default"}

    run(main())


def test_a_cluster_without_the_crds() -> None:
    async def main() -> None:
        async with api_server() as server:
            server.gateway_api = False
            status, _, _ = await call(server, "GET", "/apis/gateway.networking.k8s.io")
            assert status == 404
            status, _, _ = await call(server, "GET", V1)
            assert status == 404
            status, groups, _ = await call(server, "GET", "/apis")
            assert "gateway.networking.k8s.io" not in {g["name"] for g in groups["groups"]}
            server.gateway_api = True
            status, groups, _ = await call(server, "GET", "/apis")
            assert "gateway.networking.k8s.io" in {g["name"] for g in groups["groups"]}

    run(main())
