"""The API stand-in itself: the apiserver semantics the other tests rely on."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.kubeapi.fixtures import api_server, create, delete, run, service, update
from tests.kubeapi.patch import merge_patch, strategic_merge
from tests.kubeapi.server import ApiServer

SERVICES = "/api/v1/namespaces/default/services"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


async def call(
    server: ApiServer,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
    **headers: str,
) -> tuple[int, Any, str]:
    data = None if body is None else json.dumps(body)
    async with (
        aiohttp.ClientSession() as s,
        s.request(
            method, server.url + path, data=data, headers={"Content-Type": content_type, **headers}
        ) as resp,
    ):
        text = await resp.text()
        return resp.status, json.loads(text) if text else None, resp.headers["Content-Type"]


async def watch_lines(server: ApiServer, path: str, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as s, s.get(server.url + path) as resp:
        assert resp.status == 200
        while len(out) < count:
            line = await resp.content.readline()
            if not line:
                break
            out.append(json.loads(line))
    return out


def test_paginated_list_is_one_consistent_snapshot() -> None:
    async def main() -> None:
        async with api_server() as server:
            for i in range(5):
                create(server, service(f"s{i}", f"127.0.80.{i + 1}"))
            status, page1, _ = await call(server, "GET", SERVICES + "?limit=2")
            assert status == 200 and [o["metadata"]["name"] for o in page1["items"]] == [
                "s0",
                "s1",
            ]
            assert "kind" not in page1["items"][0]  # list items carry no kind, as real ones
            assert page1["metadata"]["remainingItemCount"] == 3
            rv = page1["metadata"]["resourceVersion"]
            delete(server, "Service", "default", "s3")  # after the list began
            cont = page1["metadata"]["continue"]
            _, page2, _ = await call(server, "GET", f"{SERVICES}?limit=2&continue={cont}")
            assert [o["metadata"]["name"] for o in page2["items"]] == ["s2", "s3"]
            assert page2["metadata"]["resourceVersion"] == rv
            server.compact()
            cont = page2["metadata"]["continue"]
            status, err, _ = await call(server, "GET", f"{SERVICES}?limit=2&continue={cont}")
            assert status == 410 and err["reason"] == "Expired"

    run(main())


def test_watch_from_a_resource_version_and_410_when_compacted() -> None:
    async def main() -> None:
        async with api_server() as server:
            first = create(server, service("a", "127.0.80.1"))
            rv = first["metadata"]["resourceVersion"]
            create(server, service("b", "127.0.80.2"))
            update(server, service("a", "127.0.80.1", port=81))
            delete(server, "Service", "default", "b")
            events = await watch_lines(server, f"{SERVICES}?watch=true&resourceVersion={rv}", 3)
            assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
                ("ADDED", "b"),
                ("MODIFIED", "a"),
                ("DELETED", "b"),
            ]
            rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
            assert rvs == sorted(rvs) and rvs[0] > int(rv)
            server.compact()
            (err,) = await watch_lines(server, f"{SERVICES}?watch=1&resourceVersion={rv}", 1)
            assert err["type"] == "ERROR" and err["object"]["code"] == 410
            server.gone_mode = "http"
            status, body, _ = await call(server, "GET", f"{SERVICES}?watch=1&resourceVersion={rv}")
            assert status == 410 and body["code"] == 410

    run(main())


def test_bookmarks_and_field_selector() -> None:
    async def main() -> None:
        async with api_server(bookmark_interval=0.05) as server:
            create(server, service("a", "127.0.80.1"))
            rv = server.db.rv
            create(server, service("b", "127.0.80.2"))
            create(server, service("a2", "127.0.80.3"))
            path = (
                f"{SERVICES}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"
                "&fieldSelector=metadata.name%3Db"
            )
            added, bookmark = await watch_lines(server, path, 2)
            assert added["object"]["metadata"]["name"] == "b"
            assert bookmark["type"] == "BOOKMARK"
            assert bookmark["object"]["metadata"]["resourceVersion"] == str(server.db.rv)

    run(main())


def test_create_conflict_update_dry_run_and_defaults() -> None:
    async def main() -> None:
        async with api_server() as server:
            body = service("web", "")
            del body["spec"]["clusterIP"]
            del body["spec"]["ports"][0]["protocol"]
            status, created, _ = await call(server, "POST", SERVICES, body)
            assert status == 201
            assert created["spec"]["clusterIP"].startswith("127.100.")
            assert created["spec"]["ports"][0]["protocol"] == "TCP"
            assert created["metadata"]["uid"] and created["metadata"]["creationTimestamp"]
            status, err, _ = await call(server, "POST", SERVICES, body)
            assert status == 409 and err["reason"] == "AlreadyExists"
            stale = dict(created, metadata=dict(created["metadata"], resourceVersion="1"))
            status, err, _ = await call(server, "PUT", f"{SERVICES}/web", stale)
            assert status == 409 and err["reason"] == "Conflict"
            rv = server.db.rv
            status, _, _ = await call(server, "DELETE", f"{SERVICES}/web?dryRun=All")
            assert status == 200 and server.db.rv == rv
            status, err, _ = await call(server, "GET", f"{SERVICES}/nope")
            assert status == 404 and err["reason"] == "NotFound"

    run(main())


def test_patch_kinds_kubectl_and_others_send() -> None:
    async def main() -> None:
        async with api_server() as server:
            create(server, service("web", "127.0.80.1"))
            smp = {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "$setElementOrder/ports": [{"port": 443}, {"port": 80}],
                    "ports": [{"name": "https", "port": 443, "targetPort": 8443}],
                },
            }
            status, obj, _ = await call(
                server, "PATCH", f"{SERVICES}/web", smp, "application/strategic-merge-patch+json"
            )
            assert status == 200
            assert [p["port"] for p in obj["spec"]["ports"]] == [443, 80]
            assert obj["metadata"]["labels"] == {"app": "web"}
            mp = {"metadata": {"labels": None}, "spec": {"ports": [{"port": 1, "name": "x"}]}}
            _, obj, _ = await call(
                server, "PATCH", f"{SERVICES}/web", mp, "application/merge-patch+json"
            )
            assert "labels" not in obj["metadata"]
            # The list is replaced; the server then defaults protocol and targetPort.
            assert obj["spec"]["ports"] == [
                {"port": 1, "name": "x", "protocol": "TCP", "targetPort": 1}
            ]
            jp = [{"op": "replace", "path": "/spec/ports/0/port", "value": 2}]
            _, obj, _ = await call(
                server, "PATCH", f"{SERVICES}/web", jp, "application/json-patch+json"
            )
            assert obj["spec"]["ports"][0]["port"] == 2

    run(main())


def test_strategic_merge_directives() -> None:
    orig = {"spec": {"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "b"}]}}
    delete_one = {"spec": {"ports": [{"$patch": "delete", "port": 80}]}}
    assert strategic_merge(orig, delete_one, "Service") == {
        "spec": {"ports": [{"port": 81, "name": "b"}]}
    }
    replace = {"spec": {"$patch": "replace", "ports": []}}
    assert strategic_merge(orig, replace, "Service") == {"spec": {"ports": []}}
    retain = {"spec": {"$retainKeys": ["ports"], "type": None}}
    assert strategic_merge({"spec": {"ports": [], "x": 1}}, retain, "Service") == {
        "spec": {"ports": []}
    }
    # No merge key for EndpointSlice endpoints: the list is replaced (atomic).
    es = {"endpoints": [{"addresses": ["a"]}]}
    assert strategic_merge(es, {"endpoints": [{"addresses": ["b"]}]}, "EndpointSlice") == {
        "endpoints": [{"addresses": ["b"]}]
    }
    assert merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"b": None}}) == {"a": {"c": 2}}


def test_discovery_documents() -> None:
    async def main() -> None:
        async with api_server() as server:
            accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            _, doc, ctype = await call(server, "GET", "/apis", Accept=accept)
            assert ctype.startswith("application/json;g=apidiscovery.k8s.io;v=v2")
            groups = {i["metadata"]["name"]: i for i in doc["items"]}
            net = groups["networking.k8s.io"]["versions"][0]["resources"]
            assert {r["resource"]: r["scope"] for r in net} == {
                "ingresses": "Namespaced",
                "ingressclasses": "Cluster",
            }
            _, legacy, _ = await call(server, "GET", "/apis")
            assert legacy["kind"] == "APIGroupList"
            _, core, _ = await call(server, "GET", "/api/v1")
            assert "services" in [r["name"] for r in core["resources"]]
            _, version, _ = await call(server, "GET", "/version")
            assert version["major"] == "1"

    run(main())


def test_test_hooks_over_http() -> None:
    async def main() -> None:
        async with api_server() as server:
            status, result, _ = await call(server, "POST", "/_test/fail?code=503")
            assert status == 200 and result["hook"] == "fail"
            status, _, _ = await call(server, "GET", SERVICES)
            assert status == 503
            await call(server, "POST", "/_test/fail?code=0")
            create(server, service("a", "127.0.80.1"))
            _, result, _ = await call(server, "POST", "/_test/compact")
            assert result["result"] == server.db.compacted
            _, result, _ = await call(server, "POST", "/_test/touch?kind=Service&count=5")
            assert result["result"] == 1
            _, stats, _ = await call(server, "GET", "/_test/stats")
            assert stats["result"]["requests"] == 1 and "list:Service" not in stats["result"]

    run(main())


def test_ingress_status_subresource_and_printer_columns() -> None:
    """Ingress as the apiserver serves it: status dropped on create and kept by writes
    to the object, written through /status only; strategic merge patch accepted (a
    built-in kind); `kubectl get ingress` columns from its server-side printer."""
    base = "/apis/networking.k8s.io/v1/namespaces/default/ingresses"
    rules = [{"host": h, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
        "service": {"name": "web", "port": {"number": 80}}}}]}} for h in ("a.example", "")]
    body = {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ingressClassName": "seaway", "rules": rules},
        "status": {"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}]}},
    }  # fmt: skip
    lb = {"loadBalancer": {"ingress": [{"ip": "10.0.0.2"}, {"hostname": "lb.example"},
                                       {"ip": "10.0.0.1", "hostname": "one.example"}]}}
    merge = "application/merge-patch+json"

    async def main() -> None:
        async with api_server() as server:
            status, created, _ = await call(server, "POST", base, body)
            assert status == 201 and "status" not in created
            rv = created["metadata"]["resourceVersion"]
            stale = {"metadata": {"resourceVersion": "1"}, "status": lb}
            status, err, _ = await call(server, "PATCH", f"{base}/web/status", stale, merge)
            assert status == 409 and err["reason"] == "Conflict"
            patch = {"metadata": {"resourceVersion": rv}, "status": lb,
                     "spec": {"ingressClassName": "other"}}  # fmt: skip
            status, got, _ = await call(server, "PATCH", f"{base}/web/status", patch, merge)
            assert status == 200 and got["status"] == lb
            assert got["spec"]["ingressClassName"] == "seaway"
            smp = "application/strategic-merge-patch+json"
            edit = {"metadata": {"labels": {"team": "shop"}}, "status": {"loadBalancer": {}}}
            status, got, _ = await call(server, "PATCH", f"{base}/web", edit, smp)
            assert status == 200, got
            assert got["metadata"]["labels"] == {"team": "shop"} and got["status"] == lb
            status, table, _ = await call(server, "GET", base, Accept=TABLE)
            assert status == 200 and table["kind"] == "Table"
            names = [c["name"] for c in table["columnDefinitions"]]
            assert names == ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
            (row,) = table["rows"]
            assert row["cells"][:5] == [
                "web", "seaway", "a.example", "10.0.0.1,10.0.0.2,lb.example", "80"
            ]  # fmt: skip

    run(main())
