"""The fast path (discovery/parse_fast.py) against the strict parsers, differentially: on
valid manifests of many shapes and on every one-field mutation of them (a value replaced
by another type or an out-of-range value, a key removed, an unknown key added, a list
emptied or an entry repeated), whenever the fast path returns an object the strict path
returns the same object and reports no error. When the fast path is not sure (None), the
strict path alone decides, so its errors are unchanged (tests/discovery/test_manifest*.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from bench.manifest import generate
from discovery.manifest import parse_manifest_text, parse_object
from discovery.model import KubeObject
from discovery.parse_common import Problems
from discovery.parse_endpointslice import parse_endpointslice
from discovery.parse_fast import fast_endpointslice, fast_service
from discovery.parse_service import parse_service
from discovery.yaml_decode import decode_exact

SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "clusterIP": "10.96.0.10",
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
    },
}
SERVICES: list[dict[str, Any]] = [
    SERVICE,
    {  # as kubectl prints it: every default spelled out, status, bookkeeping metadata
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "api",
            "namespace": "default",
            "uid": "6c3f1f0e-8a51-4c8e-9d7e-000000000000",
            "resourceVersion": "1000",
            "creationTimestamp": "2024-03-11T09:21:44Z",
            "generation": 2,
            "labels": {"app": "api"},
            "annotations": {"note": "x"},
            "managedFields": [{"manager": "kubectl", "operation": "Update"}],
            "ownerReferences": [],
            "finalizers": ["f"],
            "generateName": "api-",
        },
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.96.0.11",
            "clusterIPs": ["10.96.0.11"],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "selector": {"app": "api"},
            "sessionAffinity": "None",
            "externalTrafficPolicy": "Local",
            "internalTrafficPolicy": "Cluster",
            "ports": [
                {"name": "http", "port": 80, "targetPort": "web", "nodePort": 30080},
                {"name": "dns", "port": 53, "protocol": "UDP", "appProtocol": "dns"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "nodePort": 0},
            ],
        },
        "status": {"loadBalancer": {}},
    },
    {  # a LoadBalancer with a balancing annotation and a date-time creationTimestamp
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "lb",
            "creationTimestamp": "2024-01-02 03:04:05",
            "annotations": {
                "nginx.ingress.kubernetes.io/load-balance": "ewma",
                "nginx.ingress.kubernetes.io/upstream-hash-by": "$remote_addr",
            },
        },
        "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.12", "ports": [{"port": 443}]},
        "status": {},
    },
]
SLICES: list[dict[str, Any]] = [
    {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "web-abc",
            "namespace": "shop",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.244.0.5"], "nodeName": "node-a"},
            {
                "addresses": ["10.244.1.6"],
                "conditions": {"ready": False, "serving": True, "terminating": True},
                "zone": "z1",
                "targetRef": {"kind": "Pod", "name": "web-1"},
            },
        ],
    },
    {  # kubectl's shape, several ports, conditions spelled out or null
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "api.x-1",
            "labels": {"kubernetes.io/service-name": "api", "other": "v"},
            "annotations": {
                "endpoints.kubernetes.io/last-change-trigger-time": "2024-01-02T03:04:05Z"
            },
            "resourceVersion": "7",
            "generation": 1,
            "managedFields": [],
        },
        "addressType": "IPv4",
        "ports": [
            {"name": "http", "port": 80},
            {"name": "dns", "port": 53, "protocol": "UDP", "appProtocol": "dns"},
        ],
        "endpoints": [
            {"addresses": ["10.0.0.1"], "conditions": {"ready": True, "serving": None}},
            {"addresses": ["10.0.0.2", "10.0.0.3"], "conditions": {}},
        ],
    },
    {  # no endpoints, an unnamed port
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "empty", "labels": {"kubernetes.io/service-name": "empty"}},
        "addressType": "IPv4",
        "ports": [{"port": 80}],
    },
]

# What a field is replaced with: other types, edge and out-of-range values, bad names.
REPLACEMENTS: list[Any] = [
    None,
    "",
    0,
    -1,
    1,
    65536,
    70000,
    True,
    False,
    1.5,
    "x",
    "None",
    "TCP",
    "UDP",
    "Bad_Name",
    "a" * 64,
    "10.96.0.256",
    "fd00::1",
    "8080",
    "ClusterIP",
    "ExternalName",
    "Local",
    "ClientIP",
    "IPv6",
    "FQDN",
    "2024-01-02T03:04:05Z",
    [],
    ["x"],
    [None],
    {},
    {"x": 1},
]


def mutations(doc: Any) -> Iterator[Any]:
    """Copies of doc with exactly one change somewhere in it."""
    for path in _paths(doc):
        old = _at(doc, path)
        for value in REPLACEMENTS:
            if old != value or type(old) is not type(value):
                yield _changed(doc, path, "set", value)
        yield _changed(doc, path, "remove")
        if isinstance(old, list) and old:
            yield _changed(doc, path, "repeat")
    for path in [(), *_paths(doc)]:
        if isinstance(_at(doc, path), dict):
            for key, value in ADDED:
                yield _changed(doc, (*path, key), "set", value)


# Keys added to every mapping: unknown ones, and fields the strict parsers read (with a
# valid value) that the fast path must not skip.
ADDED: list[tuple[str, Any]] = [
    ("unknownField", "x"),
    ("externalIPs", ["10.0.0.9"]),
    ("externalName", "example.com"),
    ("healthCheckNodePort", 31000),
    ("trafficDistribution", "PreferClose"),
    ("loadBalancerSourceRanges", ["10.0.0.0/8"]),
    ("sessionAffinityConfig", {"clientIP": {"timeoutSeconds": 60}}),
    ("hints", {"forZones": [{"name": "z1"}]}),
    ("status", {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}),
    ("ingress", [{"ip": "192.0.2.1"}]),
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        yield (*prefix, key)
        if isinstance(value, dict | list):
            yield from _paths(value, (*prefix, key))


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _changed(doc: Any, path: tuple[Any, ...], change: str, value: Any = None) -> Any:
    """A copy of doc with the node at path set to value, removed, or (a list) its first
    entry repeated."""
    out = copy.deepcopy(doc)
    parent, key = _at(out, path[:-1]), path[-1]
    if change == "set":
        parent[key] = value
    elif change == "remove":
        del parent[key]
    else:
        parent[key].append(copy.deepcopy(parent[key][0]))
    return out


FastParser = Callable[[Mapping[str, Any]], KubeObject | None]
StrictParser = Callable[[Problems, Mapping[str, Any]], KubeObject | None]
CASES: list[tuple[str, list[dict[str, Any]], FastParser, StrictParser]] = [
    ("Service", SERVICES, fast_service, parse_service),
    ("EndpointSlice", SLICES, fast_endpointslice, parse_endpointslice),
]


@pytest.mark.parametrize("kind, docs, fast, strict", CASES, ids=[c[0] for c in CASES])
def test_fast_path_agrees_with_strict_path(
    kind: str, docs: list[dict[str, Any]], fast: FastParser, strict: StrictParser
) -> None:
    taken = declined = 0
    for base in docs:
        assert fast(base) is not None, f"fast path declined a valid {kind}: {base}"
        for doc in [base, *mutations(base)]:
            got = fast(doc)
            p = Problems("f.yaml")
            want = strict(p, doc)
            if got is None:
                declined += 1
                continue
            taken += 1
            assert p.errors == [], f"fast path accepted what strict rejects: {doc}"
            assert got == want, doc
    # Both outcomes occur: the corpus exercises the fallback as well as the fast path.
    assert taken > 50 and declined > 200, (taken, declined)


def test_fast_path_keeps_errors_and_results_of_parse_object() -> None:
    """parse_object (which tries the fast path first) gives exactly the strict parser's
    result and errors, for every document of the corpus."""
    parsers: dict[str, StrictParser] = {
        "Service": parse_service,
        "EndpointSlice": parse_endpointslice,
    }
    for _, docs, _, _ in CASES:
        for base in docs:
            for doc in [base, *mutations(base)]:
                got, errors = parse_object(doc, "f.yaml", "document 1")
                strict = parsers.get(doc.get("kind")) if isinstance(doc.get("kind"), str) else None
                if strict is None or doc.get("apiVersion") != base["apiVersion"]:
                    continue
                p = Problems("f.yaml", label_of=(doc["kind"], True, doc, "document 1"))
                want = strict(p, doc)
                assert errors == p.errors, doc
                assert got == (want if not p.errors else None), doc


def test_error_through_the_fast_path_names_file_object_and_field() -> None:
    text = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
        "spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 70000}]}\n"
    )
    objects, errors = parse_manifest_text(text, "web.yaml")
    assert objects == []
    assert [str(e) for e in errors] == [
        "web.yaml: Service shop/web: spec.ports[0].port: must be 1-65535, got 70000"
    ]


@pytest.mark.parametrize("kubectl", [False, True])
def test_fast_path_takes_the_benchmark_manifests(kubectl: bool) -> None:
    """bench/manifest.py's generated objects (plain, and with kubectl's metadata) all take
    the fast path, with the strict path's result."""
    docs = decode_exact(generate(50, kubectl=kubectl))
    strict: dict[str, StrictParser] = {
        "Service": parse_service,
        "EndpointSlice": parse_endpointslice,
    }
    fast: dict[str, FastParser] = {"Service": fast_service, "EndpointSlice": fast_endpointslice}
    for doc in docs:
        p = Problems("big.yaml")
        want = strict[doc["kind"]](p, doc)
        assert p.errors == [] and want is not None
        assert fast[doc["kind"]](doc) == want
