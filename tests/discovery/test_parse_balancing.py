"""The Service balancer annotations: accepted spellings, clear errors naming the
annotation, and the choice carried into the Snapshot's ServicePortInfo."""

from __future__ import annotations

from typing import Any

import pytest

from discovery.manifest import parse_manifest_text, parse_object
from discovery.model import (
    DEFAULT_LOAD_BALANCER,
    HashBy,
    LoadBalancing,
    Service,
)
from discovery.parse_balancing import hash_by_from_text
from discovery.snapshot_builder import build_snapshot


def service(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
        "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80, "targetPort": 8080}]},
    }


def balancing_of(annotations: dict[str, str]) -> LoadBalancing:
    obj, errors = parse_object(service(annotations), "web.yaml")
    assert not errors, [str(e) for e in errors]
    assert isinstance(obj, Service)
    return obj.load_balancing


def errors_of(annotations: dict[str, str]) -> list[str]:
    obj, errors = parse_object(service(annotations), "web.yaml")
    assert obj is None
    return [str(e) for e in errors]


def test_without_annotations_the_default() -> None:
    assert balancing_of({}) == LoadBalancing(DEFAULT_LOAD_BALANCER, HashBy("client-ip"))


@pytest.mark.parametrize(
    ("value", "policy"),
    [
        ("round-robin", "round-robin"),
        ("least-request", "least-request"),
        ("ewma", "ewma"),
        ("maglev", "maglev"),
        ("hash", "maglev"),
        (" Least-Request ", "least-request"),
    ],
)
def test_policies(value: str, policy: str) -> None:
    assert balancing_of({"seaway.dev/load-balancer": value}).policy == policy


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("client-ip", HashBy("client-ip")),
        ("$remote_addr", HashBy("client-ip")),
        ("$binary_remote_addr", HashBy("client-ip")),
        ("header:X-User", HashBy("header", "x-user")),
        ("$http_x_user", HashBy("header", "x-user")),
        ("cookie:session_id", HashBy("cookie", "session_id")),
        ("$cookie_session_id", HashBy("cookie", "session_id")),
        ("header:", None),
        ("header:bad name", None),
        ("query:q", None),
        ("$request_uri", None),
    ],
)
def test_hash_by_forms(text: str, expected: HashBy | None) -> None:
    assert hash_by_from_text(text) == expected


def test_hash_by_alone_selects_maglev() -> None:
    got = balancing_of({"seaway.dev/hash-by": "cookie:sid"})
    assert got == LoadBalancing("maglev", HashBy("cookie", "sid"))
    assert str(got.hash_by) == "cookie:sid"


def test_unknown_balancer_is_a_clear_error() -> None:
    assert errors_of({"seaway.dev/load-balancer": "random"}) == [
        'web.yaml: Service shop/web: metadata.annotations["seaway.dev/load-balancer"]: '
        'unknown load balancer "random": expected one of round-robin, least-request, ewma, '
        "maglev (hash is maglev)"
    ]


def test_bad_hash_by_and_hash_by_with_another_balancer_are_errors() -> None:
    assert errors_of({"seaway.dev/hash-by": "query:q"}) == [
        'web.yaml: Service shop/web: metadata.annotations["seaway.dev/hash-by"]: cannot hash '
        'by "query:q": expected client-ip, header:NAME or cookie:NAME'
    ]
    assert errors_of(
        {"seaway.dev/load-balancer": "round-robin", "seaway.dev/hash-by": "client-ip"}
    ) == [
        'web.yaml: Service shop/web: metadata.annotations["seaway.dev/hash-by"]: only applies '
        "to the maglev load balancer, not round-robin"
    ]


def test_the_choice_reaches_every_service_port_in_the_snapshot() -> None:
    text = """
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  annotations:
    seaway.dev/load-balancer: ewma
spec:
  clusterIP: 10.96.0.10
  ports:
  - {name: http, port: 80}
  - {name: admin, port: 81}
"""
    objects, errors = parse_manifest_text(text, "web.yaml")
    assert not errors
    snap = build_snapshot(objects)
    assert {p.load_balancing.policy for p in snap.service_ports.values()} == {"ewma"}
    assert len(snap.service_ports) == 2
