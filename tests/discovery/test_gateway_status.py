"""discovery/gateway_status.py: merging into the status an object shows, as the spec's
rules for controllers require, and reporting only what changed."""

from __future__ import annotations

from discovery.gateway_status import merge_conditions, parent_ref_json, status_updates
from discovery.model_gateway import Condition, ParentRef
from tests.discovery.gatewaykit import (
    BASE,
    CONTROLLER,
    INFRA,
    NOW,
    updates_by_key,
    with_status,
    world,
)

LATER = "2026-01-02T04:00:00Z"
ROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: gateway-conformance-infra, generation: 1}
spec:
  parentRefs: [{name: same-namespace}]
  rules: [{backendRefs: [{name: infra-backend-v1, port: 8080}]}]
"""


def test_merge_conditions_keeps_transition_times_and_foreign_conditions() -> None:
    seen = (
        Condition("example.io/Custom", "True", "Mine", "", 1, "2020-01-01T00:00:00Z"),
        Condition("Accepted", "True", "Accepted", "", 1, "2025-01-01T00:00:00Z"),
        Condition("ResolvedRefs", "True", "ResolvedRefs", "", 1, "2025-01-01T00:00:00Z"),
        Condition("PartiallyInvalid", "True", "UnsupportedValue", "x", 1, "2025-01-01T00:00:00Z"),
    )
    computed = [
        Condition("Accepted", "True", "Accepted", "", 2, LATER),
        Condition("ResolvedRefs", "False", "BackendNotFound", "gone", 2, LATER),
    ]
    merged = merge_conditions(seen, computed, frozenset({"Accepted", "ResolvedRefs",
                                                        "PartiallyInvalid"}))  # fmt: skip
    assert merged == (
        seen[0],  # not ours: kept, in place
        Condition("Accepted", "True", "Accepted", "", 2, "2025-01-01T00:00:00Z"),  # same status
        Condition("ResolvedRefs", "False", "BackendNotFound", "gone", 2, LATER),  # changed
        # PartiallyInvalid: ours, no longer set: removed
    )


def test_nothing_to_write_once_the_status_is_there() -> None:
    w = world(ROUTE)
    updates = updates_by_key(w)
    assert ("HTTPRoute", INFRA, "r") in updates
    assert ("Gateway", INFRA, "same-namespace") in updates
    # The API now shows what was written: computing again (later) changes nothing.
    again = world(with_status(BASE, updates), with_status(ROUTE, updates), base=False)
    assert status_updates(again.snapshot, again.attachment, CONTROLLER, LATER) == []


def test_a_change_rewrites_only_what_changed() -> None:
    w = world(ROUTE)
    updates = updates_by_key(w)
    base, route = with_status(BASE, updates), with_status(ROUTE, updates)
    broken = route.replace("infra-backend-v1", "missing").replace("generation: 1",
                                                                   "generation: 2")  # fmt: skip
    w2 = world(base, broken, base=False)
    later = {(u.key.kind, u.key.name): u for u in status_updates(w2.snapshot, w2.attachment,
                                                                 CONTROLLER, LATER)}  # fmt: skip
    assert set(later) == {("HTTPRoute", "r")}  # the Gateway's status is as it was
    (parent,) = later[("HTTPRoute", "r")].status["parents"]
    by_type = {c["type"]: c for c in parent["conditions"]}
    assert by_type["Accepted"]["lastTransitionTime"] == NOW  # unchanged status: kept
    assert by_type["Accepted"]["observedGeneration"] == 2  # but for the new generation
    assert by_type["ResolvedRefs"]["lastTransitionTime"] == LATER
    assert by_type["ResolvedRefs"]["reason"] == "BackendNotFound"


def test_a_newer_generation_in_status_means_wait() -> None:
    """Conditions written for a newer generation than the object seaway holds: its copy is
    stale, so it writes nothing (and does not regress the status)."""
    w = world(ROUTE)
    updates = updates_by_key(w)
    parents = updates[("HTTPRoute", INFRA, "r")]["parents"]
    for c in parents[0]["conditions"]:
        c["observedGeneration"] = 5
    stale = world(with_status(BASE, updates), with_status(ROUTE, updates), base=False)
    keys = {u.key.kind for u in status_updates(stale.snapshot, stale.attachment, CONTROLLER,
                                               LATER)}  # fmt: skip
    assert "HTTPRoute" not in keys


def test_seaways_parent_entries_go_when_the_gateway_is_no_longer_seaways() -> None:
    other = {
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "x"},
        "controllerName": "example.net/other",
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                        "message": "", "observedGeneration": 1,
                        "lastTransitionTime": "2025-01-01T00:00:00Z"}],
    }  # fmt: skip
    w = world(ROUTE)
    updates = updates_by_key(w)
    updates[("HTTPRoute", INFRA, "r")]["parents"].append(other)
    # The Gateway is deleted: the route's parentRef names nothing of seaway's any more.
    base = with_status(BASE, updates)
    start = base.index("kind: Gateway\nmetadata:\n  name: same-namespace")
    start = base.rindex("---", 0, start)
    end = base.index("---", start + 3)
    without_gateway = base[:start] + base[end:]
    w2 = world(without_gateway, with_status(ROUTE, updates), base=False)
    assert w2.attachment.route(INFRA, "r") is None
    (update,) = [u for u in status_updates(w2.snapshot, w2.attachment, CONTROLLER, LATER)
                 if u.key.kind == "HTTPRoute"]  # fmt: skip
    assert update.status == {"parents": [other]}


def test_parent_ref_json_echoes_what_was_set() -> None:
    assert parent_ref_json(ParentRef("gw")) == {
        "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw",
    }  # fmt: skip
    assert parent_ref_json(ParentRef("gw", namespace="ns", section_name="http", port=80)) == {
        "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw",
        "namespace": "ns", "sectionName": "http", "port": 80,
    }  # fmt: skip
