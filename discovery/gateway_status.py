"""Gateway API status, as the spec defines it, from a GatewayAttachment (pure, no I/O).

- GatewayClass: Accepted.
- Gateway: Accepted, Programmed, status.addresses, and per listener Accepted, Programmed,
  ResolvedRefs and Conflicted with supportedKinds and attachedRoutes.
- HTTPRoute: one status.parents entry per parentRef naming one of seaway's Gateways, with
  Accepted, ResolvedRefs and (when some rules are dropped) PartiallyInvalid.

Every condition carries the object's metadata.generation as observedGeneration. The new
status is merged into the one the object shows, following the spec's rules for
controllers: a condition keeps its lastTransitionTime when its status did not change;
conditions of types seaway does not set are kept, in place; route parents written by
other controllers are kept untouched, and seaway's entries for parents that are no
longer seaway's are removed. When the object's conditions were written for a newer
generation than the object seaway holds, it waits (no update) for the newer object.

`status_updates` returns only what changed, as API JSON, ready for the status subresource.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from discovery.gateway_attach import (
    GatewayAttachment,
    GatewayClassState,
    GatewayState,
    ListenerState,
    RouteState,
    Verdict,
)
from discovery.model import ObjectMeta
from discovery.model_gateway import (
    AnyRoute,
    Condition,
    GatewayStatus,
    ListenerStatus,
    ParentRef,
    RouteGroupKind,
    RouteParentStatus,
)
from discovery.model_meta import StatusUpdate
from discovery.snapshot import Snapshot

# Condition types seaway sets (and so may remove) on each kind of status.
CLASS_TYPES = frozenset({"Accepted"})
GATEWAY_TYPES = frozenset({"Accepted", "Programmed"})
LISTENER_TYPES = frozenset({"Accepted", "Programmed", "ResolvedRefs", "Conflicted"})
ROUTE_TYPES = frozenset({"Accepted", "ResolvedRefs", "PartiallyInvalid"})


# -- conditions -----------------------------------------------------------------------------


def condition(ctype: str, verdict: Verdict, generation: int, now: str) -> Condition:
    return Condition(
        ctype,
        "True" if verdict.status else "False",
        verdict.reason,
        verdict.message,
        generation,
        now,
    )


def merge_conditions(
    seen: Sequence[Condition], computed: Sequence[Condition], owned: frozenset[str]
) -> tuple[Condition, ...]:
    """`computed` merged into `seen`: same status keeps its lastTransitionTime; seen
    conditions of types seaway owns but no longer sets are removed; others are kept in
    place; new types are appended."""
    new = {c.type: c for c in computed}
    out: list[Condition] = []
    for old in seen:
        c = new.pop(old.type, None)
        if c is None:
            if old.type not in owned:
                out.append(old)
            continue
        if c.status == old.status and old.last_transition_time:
            c = Condition(
                c.type, c.status, c.reason, c.message, c.observed_generation,
                old.last_transition_time,
            )  # fmt: skip
        out.append(c)
    out.extend(new.values())
    return tuple(out)


def _stale(seen: Iterable[Condition], meta: ObjectMeta, owned: frozenset[str]) -> bool:
    """The object shows conditions written for a newer generation than ours."""
    return any(c.type in owned and c.observed_generation > meta.generation for c in seen)


# -- per kind ------------------------------------------------------------------------------------


def gateway_class_conditions(state: GatewayClassState, now: str) -> tuple[Condition, ...]:
    gc = state.gateway_class
    computed = [condition("Accepted", state.accepted, gc.meta.generation, now)]
    return merge_conditions(gc.conditions, computed, CLASS_TYPES)


def gateway_status(state: GatewayState, now: str) -> GatewayStatus:
    gw = state.gateway
    gen = gw.meta.generation
    computed = [
        condition("Accepted", state.accepted, gen, now),
        condition("Programmed", state.programmed, gen, now),
    ]
    seen_listeners = {ls.name: ls for ls in gw.status.listeners}
    listeners = tuple(
        _listener_status(ls, seen_listeners.get(ls.name), gen, now) for ls in state.listeners
    )
    return GatewayStatus(
        state.addresses,
        merge_conditions(gw.status.conditions, computed, GATEWAY_TYPES),
        listeners,
    )


def _listener_status(
    state: ListenerState, seen: ListenerStatus | None, generation: int, now: str
) -> ListenerStatus:
    computed = [
        condition("Accepted", state.accepted, generation, now),
        condition("Programmed", state.programmed, generation, now),
        condition("ResolvedRefs", state.resolved_refs, generation, now),
        condition("Conflicted", state.conflicted, generation, now),
    ]
    return ListenerStatus(
        state.listener.name,
        state.supported_kinds,
        state.attached_routes,
        merge_conditions(seen.conditions if seen else (), computed, LISTENER_TYPES),
    )


def route_parents(
    route: AnyRoute, state: RouteState | None, controller: str, now: str
) -> tuple[RouteParentStatus, ...]:
    """The route's new status.parents: other controllers' entries as they are, seaway's
    for each parentRef naming one of its Gateways (in spec order)."""
    ours = {}
    gen = route.meta.generation
    if state is not None:
        dropped = [i for i, r in enumerate(state.rules) if r.problem]
        for parent in state.parents:
            computed = [
                condition("Accepted", parent.accepted, gen, now),
                condition("ResolvedRefs", state.resolved_refs, gen, now),
            ]
            if dropped and parent.accepted.status:
                why = "; ".join(f"rule {i}: {state.rules[i].problem}" for i in dropped)
                computed.append(
                    condition("PartiallyInvalid", Verdict(True, "UnsupportedValue",
                              "Dropped Rule(s): " + why), gen, now)
                )  # fmt: skip
            seen = _seen_parent(route, parent.ref, controller)
            merged = merge_conditions(seen.conditions if seen else (), computed, ROUTE_TYPES)
            ours[parent.ref] = RouteParentStatus(parent.ref, controller, merged)
    out: list[RouteParentStatus] = []
    for entry in route.parents:
        if entry.controller_name != controller:
            out.append(entry)
        elif entry.parent_ref in ours:
            out.append(ours.pop(entry.parent_ref))
    out.extend(ours.values())
    return tuple(out)


def _seen_parent(route: AnyRoute, ref: ParentRef, controller: str) -> RouteParentStatus | None:
    for entry in route.parents:
        if entry.controller_name == controller and entry.parent_ref == ref:
            return entry
    return None


# -- what changed ---------------------------------------------------------------------------------


def status_updates(
    snapshot: Snapshot, attachment: GatewayAttachment, controller: str, now: str
) -> list[StatusUpdate]:
    """The status of every object seaway is responsible for whose status changes."""
    updates: list[StatusUpdate] = []
    for cs in attachment.classes:
        gc = cs.gateway_class
        if _stale(gc.conditions, gc.meta, CLASS_TYPES):
            continue
        conditions = gateway_class_conditions(cs, now)
        if conditions != gc.conditions:
            updates.append(
                StatusUpdate(gc.key, gc.meta.resource_version,
                             {"conditions": [condition_json(c) for c in conditions]})
            )  # fmt: skip
    for gs in attachment.gateways:
        gw = gs.gateway
        if _stale(gw.status.conditions, gw.meta, GATEWAY_TYPES):
            continue
        status = gateway_status(gs, now)
        if status != gw.status:
            updates.append(StatusUpdate(gw.key, gw.meta.resource_version, gateway_json(status)))
    states = {r.route.key: r for r in attachment.routes}
    every: list[AnyRoute] = [
        *snapshot.http_routes, *snapshot.tls_routes, *snapshot.tcp_routes, *snapshot.udp_routes
    ]
    for route in every:
        state = states.get(route.key)
        mine = [p for p in route.parents if p.controller_name == controller]
        if state is None and not mine:
            continue
        if any(_stale(p.conditions, route.meta, ROUTE_TYPES) for p in mine):
            continue
        parents = route_parents(route, state, controller, now)
        if parents != route.parents:
            updates.append(
                StatusUpdate(route.key, route.meta.resource_version,
                             {"parents": [parent_json(p) for p in parents]})
            )  # fmt: skip
    return updates


# -- API JSON -------------------------------------------------------------------------------------


def condition_json(c: Condition) -> dict[str, Any]:
    return {
        "type": c.type,
        "status": c.status,
        "reason": c.reason,
        "message": c.message[:32768],
        "observedGeneration": c.observed_generation,
        "lastTransitionTime": c.last_transition_time,
    }


def kind_json(k: RouteGroupKind) -> dict[str, Any]:
    return {"group": k.group, "kind": k.kind}


def gateway_json(status: GatewayStatus) -> dict[str, Any]:
    return {
        "addresses": [{"type": a.type, "value": a.value} for a in status.addresses],
        "conditions": [condition_json(c) for c in status.conditions],
        "listeners": [
            {
                "name": ls.name,
                "supportedKinds": [kind_json(k) for k in ls.supported_kinds],
                "attachedRoutes": ls.attached_routes,
                "conditions": [condition_json(c) for c in ls.conditions],
            }
            for ls in status.listeners
        ],
    }


def parent_ref_json(ref: ParentRef) -> dict[str, Any]:
    out: dict[str, Any] = {"group": ref.group, "kind": ref.kind, "name": ref.name}
    if ref.namespace:
        out["namespace"] = ref.namespace
    if ref.section_name:
        out["sectionName"] = ref.section_name
    if ref.port is not None:
        out["port"] = ref.port
    return out


def parent_json(p: RouteParentStatus) -> dict[str, Any]:
    return {
        "parentRef": parent_ref_json(p.parent_ref),
        "controllerName": p.controller_name,
        "conditions": [condition_json(c) for c in p.conditions],
    }


# -- for people (seaway check) ---------------------------------------------------------------


def describe(snapshot: Snapshot, attachment: GatewayAttachment, controller: str) -> list[str]:
    """The computed status, one object per paragraph, for `seaway check`."""
    now = ""
    lines: list[str] = []
    for cs in attachment.classes:
        lines.append(f"{cs.gateway_class.key}: {_cond_line(gateway_class_conditions(cs, now))}")
    for gs in attachment.gateways:
        status = gateway_status(gs, now)
        addresses = ", ".join(a.value for a in status.addresses) or "none"
        lines.append(f"{gs.gateway.key}: {_cond_line(status.conditions)}; addresses {addresses}")
        for ls in status.listeners:
            spec = gs.listener(ls.name)
            where = f"{spec.listener.protocol} :{spec.listener.port}" if spec else ""
            host = spec.listener.hostname if spec and spec.listener.hostname else "*"
            lines.append(
                f"  listener {ls.name} ({where} {host}): {_cond_line(ls.conditions)}; "
                f"attachedRoutes {ls.attached_routes}"
            )
    for rs in attachment.routes:
        lines.append(f"{rs.route.key}:")
        for p in route_parents(rs.route, rs, controller, now):
            if p.controller_name != controller:
                continue
            ref = p.parent_ref
            target = f"{ref.in_namespace(rs.route.meta.namespace)}/{ref.name}"
            section = f" section {ref.section_name}" if ref.section_name else ""
            port = f" port {ref.port}" if ref.port is not None else ""
            lines.append(f"  parent Gateway {target}{section}{port}: {_cond_line(p.conditions)}")
    return lines


def _cond_line(conditions: Iterable[Condition]) -> str:
    parts = []
    for c in conditions:
        text = f"{c.type}={c.status} ({c.reason})"
        if c.message and (c.status == "False" or c.type in ("Conflicted", "PartiallyInvalid")):
            text += f" {c.message}"
        parts.append(text)
    return ", ".join(parts)
