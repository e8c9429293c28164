"""Discovery documents: the legacy ones (/api, /apis, /api/v1, /apis/G/V) and the
aggregated discovery (apidiscovery.k8s.io/v2) kubectl asks for first."""

from __future__ import annotations

from typing import Any

from tests.kubeapi.resources import VERBS, Resource, group_versions, groups, served_at

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> str | None:
    """The aggregated content type to answer with, if the Accept header asks for one."""
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")}
        if "g=apidiscovery.k8s.io" in params and "as=APIGroupDiscoveryList" in params:
            if "v=v2" in params:
                return AGGREGATED_V2
            if "v=v2beta1" in params:
                return AGGREGATED_V2BETA1
    return None


def version_info() -> dict[str, Any]:
    return {
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-seaway-standin",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_doc(name: str, resources: list[Resource]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in group_versions(resources)]
    return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}


def api_group(name: str, exclude: frozenset[str] = frozenset()) -> dict[str, Any] | None:
    for g, resources in groups(exclude).items():
        if g == name and g:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(g, resources)}
    return None


def api_group_list(exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(g, rs) for g, rs in groups(exclude).items() if g],
    }


def api_resource_list(
    group: str, version: str, exclude: frozenset[str] = frozenset()
) -> dict[str, Any] | None:
    resources = served_at(groups(exclude).get(group, []), version)
    if not resources:
        return None
    resource_docs: list[dict[str, Any]] = []
    for r in resources:
        doc: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
        }
        if r.short_names:
            doc["shortNames"] = list(r.short_names)
        if r.categories:
            doc["categories"] = list(r.categories)
        resource_docs.append(doc)
        if r.status_subresource:
            resource_docs.append(
                {
                    "name": f"{r.plural}/status",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": r.api_version_for(version),
        "resources": resource_docs,
    }


def _aggregated_resource(r: Resource, version: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": VERBS,
    }
    if r.short_names:
        doc["shortNames"] = list(r.short_names)
    if r.categories:
        doc["categories"] = list(r.categories)
    if r.status_subresource:
        doc["subresources"] = [
            {
                "subresource": "status",
                "responseKind": {"group": r.group, "version": version, "kind": r.kind},
                "verbs": ["get", "patch", "update"],
            }
        ]
    return doc


def aggregated(
    core: bool, api_version: str, exclude: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """APIGroupDiscoveryList for /api (core=True) or /apis."""
    items = []
    for g, resources in groups(exclude).items():
        if bool(g) == core:
            continue
        items.append(
            {
                "metadata": {"name": g, "creationTimestamp": None},
                "versions": [
                    {
                        "version": v,
                        "resources": [_aggregated_resource(r, v) for r in served_at(resources, v)],
                        "freshness": "Current",
                    }
                    for v in group_versions(resources)
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    }
