"""Helpers for Gateway API tests: the conformance suite's base objects as files, status
computed for a set of manifests, and checks shaped like the upstream helpers
(conformance/utils/kubernetes/helpers.go) so ported tests read like the originals."""

from __future__ import annotations

import base64
import functools
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from discovery.gateway_attach import GatewayAttachment, GatewayConfig, attach_gateways
from discovery.gateway_status import (
    gateway_class_conditions,
    gateway_status,
    route_parents,
    status_updates,
)
from discovery.manifest import parse_manifest_text
from discovery.model import KubeObject
from discovery.model_gateway import Condition, GatewayStatus, RouteParentStatus
from discovery.snapshot import Snapshot
from discovery.snapshot_builder import build_snapshot
from ingress.selfsigned import generate

CONTROLLER = "seaway.dev/gateway-controller"
INFRA = "gateway-conformance-infra"
APP = "gateway-conformance-app-backend"
WEB = "gateway-conformance-web-backend"
NOW = "2026-01-02T03:04:05Z"
GROUP = "gateway.networking.k8s.io"


@functools.cache
def tls_secret(name: str, namespace: str) -> str:
    cert, key = generate("conformance", ["*.example.com", "example.com"])
    return f"""\
apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata: {{name: {name}, namespace: {namespace}}}
data:
  tls.crt: {base64.b64encode(cert).decode()}
  tls.key: {base64.b64encode(key).decode()}
"""


def service(name: str, namespace: str, port: int = 8080) -> str:
    return f"""\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  clusterIP: 10.96.{zlib.crc32(namespace.encode()) % 250}.{zlib.crc32(name.encode()) % 250 + 1}
  ports: [{{name: first-port, port: {port}, targetPort: 3000}}]
"""


# conformance/base/manifests.yaml, adapted: the Gateways get a loopback address each (a
# node daemon serves Gateways without spec.addresses on one bind address, where three
# HTTP listeners on port 80 without hostnames would conflict), Deployments are left out.
BASE = f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: seaway}}
spec: {{controllerName: {CONTROLLER}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: {INFRA}, labels: {{gateway-conformance: infra}}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: {APP}, labels: {{gateway-conformance: backend}}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: {WEB}, labels: {{gateway-conformance: backend}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: same-namespace, namespace: {INFRA}}}
spec:
  gatewayClassName: seaway
  addresses: [{{value: 127.0.10.1}}]
  listeners:
  - {{name: http, port: 80, protocol: HTTP, allowedRoutes: {{namespaces: {{from: Same}}}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: all-namespaces, namespace: {INFRA}}}
spec:
  gatewayClassName: seaway
  addresses: [{{value: 127.0.10.2}}]
  listeners:
  - {{name: http, port: 80, protocol: HTTP, allowedRoutes: {{namespaces: {{from: All}}}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: backend-namespaces, namespace: {INFRA}}}
spec:
  gatewayClassName: seaway
  addresses: [{{value: 127.0.10.3}}]
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Selector
        selector: {{matchLabels: {{gateway-conformance: backend}}}}
---
{service("infra-backend-v1", INFRA)}---
{service("infra-backend-v2", INFRA)}---
{service("infra-backend-v3", INFRA)}---
{service("app-backend-v1", APP)}---
{service("app-backend-v2", APP)}---
{service("web-backend", WEB)}---
{tls_secret("tls-validity-checks-certificate", INFRA)}---
{tls_secret("certificate", WEB)}"""


def config(**overrides: Any) -> GatewayConfig:
    values: dict[str, Any] = {"controller_name": CONTROLLER, "default_addresses": ("10.0.0.5",)}
    values.update(overrides)
    return GatewayConfig(**values)


def objects(*manifests: str) -> list[KubeObject]:
    text = "\n---\n".join(m.replace("{GATEWAY_CLASS_NAME}", "seaway") for m in manifests)
    objs, errors = parse_manifest_text(text, "test.yaml")
    assert not errors, "\n".join(str(e) for e in errors)
    return objs


@dataclass
class World:
    """Objects, and everything seaway computes for them."""

    snapshot: Snapshot
    attachment: GatewayAttachment

    def gateway(self, namespace: str, name: str) -> GatewayStatus:
        state = self.attachment.gateway(namespace, name)
        assert state is not None, f"Gateway {namespace}/{name} is not seaway's"
        return gateway_status(state, NOW)

    def gateway_generation(self, namespace: str, name: str) -> int:
        state = self.attachment.gateway(namespace, name)
        assert state is not None
        return state.gateway.meta.generation

    def parents(self, namespace: str, name: str) -> tuple[RouteParentStatus, ...]:
        route = next(
            r
            for r in self.snapshot.http_routes
            if r.meta.namespace == namespace and r.meta.name == name
        )
        return route_parents(route, self.attachment.route(namespace, name), CONTROLLER, NOW)

    def route_generation(self, namespace: str, name: str) -> int:
        return next(
            r.meta.generation
            for r in self.snapshot.http_routes
            if r.meta.namespace == namespace and r.meta.name == name
        )

    def class_conditions(self, name: str) -> tuple[Condition, ...]:
        state = next(c for c in self.attachment.classes if c.gateway_class.meta.name == name)
        return gateway_class_conditions(state, NOW)


def world(*manifests: str, cfg: GatewayConfig | None = None, base: bool = True) -> World:
    snapshot = build_snapshot(objects(*((BASE,) if base else ()), *manifests))
    return World(snapshot, attach_gateways(snapshot, cfg or config()))


# -- checks shaped like conformance/utils/kubernetes/helpers.go ------------------------------


def find_condition(
    conditions: Iterable[Condition], ctype: str, status: str = "", reason: str = ""
) -> bool:
    """findConditionInList: empty status or reason match anything."""
    return any(
        c.type == ctype
        and (not status or c.status == status)
        and (not reason or c.reason == reason)
        for c in conditions
    )


def latest(conditions: Iterable[Condition], generation: int) -> bool:
    """ConditionsHaveLatestObservedGeneration."""
    return all(c.observed_generation == generation for c in conditions)


@dataclass(frozen=True)
class ExpectedListener:
    name: str
    kinds: tuple[str, ...]  # HTTPRoute kinds expected in supportedKinds (group: Gateway API)
    conditions: Mapping[str, tuple[str, str]]  # type -> (status, reason or "" for any)
    attached: int


def listeners_match(status: GatewayStatus, expected: list[ExpectedListener]) -> None:
    """gatewayListenersMatch: same number of listeners; each expected one present with
    its supportedKinds, attachedRoutes and conditions."""
    actual = {ls.name: ls for ls in status.listeners}
    assert len(status.listeners) == len(expected), (
        f"expected {len(expected)} listeners, got {[ls.name for ls in status.listeners]}"
    )
    for e in expected:
        a = actual.get(e.name)
        assert a is not None, f"no status for listener {e.name}"
        got_kinds = {(k.group, k.kind) for k in a.supported_kinds}
        if not e.kinds:
            assert not got_kinds, f"{e.name}: supportedKinds should be empty, got {got_kinds}"
        for kind in e.kinds:
            assert (GROUP, kind) in got_kinds, f"{e.name}: {kind} not in {got_kinds}"
        assert a.attached_routes == e.attached, (
            f"{e.name}: attachedRoutes {a.attached_routes}, expected {e.attached}"
        )
        for ctype, (cstatus, reason) in e.conditions.items():
            assert find_condition(a.conditions, ctype, cstatus, reason), (
                f"{e.name}: no {ctype}={cstatus} ({reason or 'any'}) in {a.conditions}"
            )


def route_must_have_condition(
    w: World,
    route: tuple[str, str],
    gateway: tuple[str, str],
    ctype: str,
    status: str,
    reason: str = "",
) -> None:
    """HTTPRouteMustHaveCondition: every parent's conditions are for the route's current
    generation, and the parent naming `gateway` has the condition."""
    parents = w.parents(*route)
    generation = w.route_generation(*route)
    found = False
    for p in parents:
        assert latest(p.conditions, generation), f"stale conditions: {p.conditions}"
        ref = p.parent_ref
        if ref.name == gateway[1] and (not ref.namespace or ref.namespace == gateway[0]):
            found = found or find_condition(p.conditions, ctype, status, reason)
    assert found, f"route {route}: no {ctype}={status} ({reason or 'any'}) for {gateway}: {parents}"


def route_resolved_refs_true(w: World, route: tuple[str, str], gateway: tuple[str, str]) -> None:
    """HTTPRouteMustHaveResolvedRefsConditionsTrue."""
    route_must_have_condition(w, route, gateway, "ResolvedRefs", "True", "ResolvedRefs")


def route_has_no_accepted_parents(w: World, route: tuple[str, str]) -> None:
    """HTTPRouteMustHaveNoAcceptedParents: none, or exactly one that is not Accepted."""
    parents = [p for p in w.parents(*route) if p.controller_name == CONTROLLER]
    assert len(parents) <= 1, parents
    for p in parents:
        assert find_condition(p.conditions, "Accepted", "False"), p.conditions


def gateway_and_routes_accepted(
    w: World, gateway: tuple[str, str], *routes: tuple[str, str], sections: tuple[str, ...] = ()
) -> None:
    """GatewayAndHTTPRoutesMustBeAccepted: the Gateway has an address; each route has a
    parent for it Accepted; every listener is ResolvedRefs, Accepted and Programmed."""
    status = w.gateway(*gateway)
    assert status.addresses, f"Gateway {gateway} has no address"
    for route in routes:
        matched = [
            p
            for p in w.parents(*route)
            if p.controller_name == CONTROLLER
            and p.parent_ref.group == GROUP
            and p.parent_ref.kind == "Gateway"
            and p.parent_ref.name == gateway[1]
            and (not sections or p.parent_ref.section_name in sections)
        ]
        assert matched, f"route {route} has no parent status for {gateway}"
        for p in matched:
            assert find_condition(p.conditions, "Accepted", "True", "Accepted"), p.conditions
    for ls in status.listeners:
        for ctype in ("ResolvedRefs", "Accepted", "Programmed"):
            assert find_condition(ls.conditions, ctype, "True"), (ls.name, ls.conditions)


def gateway_must_have_condition(
    w: World, gateway: tuple[str, str], ctype: str, status: str, reason: str = ""
) -> None:
    """GatewayMustHaveCondition (conditions for the latest generation)."""
    conditions = w.gateway(*gateway).conditions
    assert latest(conditions, w.gateway_generation(*gateway)), conditions
    assert find_condition(conditions, ctype, status, reason), conditions


def gateway_has_zero_routes(w: World, gateway: tuple[str, str]) -> None:
    """GatewayMustHaveZeroRoutes."""
    listeners = w.gateway(*gateway).listeners
    assert not listeners or (len(listeners) == 1 and listeners[0].attached_routes == 0), listeners


def with_status(manifest: str, updates: Mapping[tuple[str, str, str], Mapping[str, Any]]) -> str:
    """The manifest as the API would show it once seaway's status updates were written:
    each object's status replaced by its update (kind, namespace, name)."""
    docs = list(yaml.safe_load_all(manifest))
    for doc in docs:
        meta = doc.get("metadata", {})
        key = (doc["kind"], meta.get("namespace", "default" if doc["kind"] != "GatewayClass"
                                     else ""), meta["name"])  # fmt: skip
        if key in updates:
            doc["status"] = dict(updates[key])
    return yaml.safe_dump_all(docs)


def updates_by_key(w: World, now: str = NOW) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        (u.key.kind, u.key.namespace, u.key.name): u.status
        for u in status_updates(w.snapshot, w.attachment, CONTROLLER, now)
    }
