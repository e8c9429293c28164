"""Which Gateway API objects are seaway's, and how they fit together (pure, no I/O).

`attach_gateways(snapshot, config)` answers, from the objects alone:

- GatewayClasses: seaway's are those whose spec.controllerName is `config.controller_name`
  (`--gateway-controller-name`, default seaway.dev/gateway-controller). A class with a
  parametersRef is not accepted (seaway takes no parameters: InvalidParameters).
- Gateways: those of seaway's classes. Their addresses (spec.addresses of type IPAddress,
  or the default addresses when none are given); their listeners: HTTP and HTTPS are
  served (HTTPS terminates TLS with the certificateRefs' kubernetes.io/tls Secrets;
  a Secret in another namespace needs a ReferenceGrant), others are UnsupportedProtocol;
  listeners that cannot be told apart are Conflicted (see `_conflicts`).
- HTTPRoutes: for each parentRef naming one of seaway's Gateways, the listeners it
  attaches to (sectionName and port select listeners; allowedRoutes kinds and namespaces
  admit the route; route and listener hostnames must intersect) or why none; each
  backendRef resolved to a Service port, or why not (InvalidKind, BackendNotFound,
  RefNotPermitted); rules using what seaway does not implement are dropped.

The result feeds the status (discovery/gateway_status.py) and the HTTPRoute translator
(which builds the L7 route model from the attached listeners, effective hostnames,
resolved backends and valid rules). Routes and Gateways are taken oldest first
(creationTimestamp, then namespace/name), the precedence the spec gives them.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass

from discovery.gateway_hostnames import intersect_hostnames
from discovery.model import ObjectMeta, Service, TLSSecret
from discovery.model_gateway import (
    GATEWAY_GROUP,
    KIND_GATEWAY,
    KIND_HTTPROUTE,
    KIND_TCPROUTE,
    KIND_TLSROUTE,
    KIND_UDPROUTE,
    NAMESPACE_NAME_LABEL,
    AnyRoute,
    BackendObjectRef,
    Gateway,
    GatewayAddress,
    GatewayClass,
    HTTPRouteRule,
    Listener,
    ParentRef,
    ReferenceGrant,
    RouteGroupKind,
)
from discovery.snapshot import ServicePortInfo, Snapshot
from discovery.tls_pem import pem_problem

DEFAULT_GATEWAY_CONTROLLER = "seaway.dev/gateway-controller"
HTTPROUTE_KIND = RouteGroupKind(KIND_HTTPROUTE, GATEWAY_GROUP)
TLSROUTE_KIND = RouteGroupKind(KIND_TLSROUTE, GATEWAY_GROUP)
TCPROUTE_KIND = RouteGroupKind(KIND_TCPROUTE, GATEWAY_GROUP)
UDPROUTE_KIND = RouteGroupKind(KIND_UDPROUTE, GATEWAY_GROUP)
# Listener protocols seaway serves, and the route kinds each takes (TLS: mode
# Passthrough only; TLS termination for TLSRoutes is not implemented).
PROTOCOL_KINDS: Mapping[str, tuple[RouteGroupKind, ...]] = {
    "HTTP": (HTTPROUTE_KIND,),
    "HTTPS": (HTTPROUTE_KIND,),
    "TLS": (TLSROUTE_KIND,),
    # served by the userspace L4 proxy (--proxy-mode userspace)
    "TCP": (TCPROUTE_KIND,),
    "UDP": (UDPROUTE_KIND,),
}
# Filters seaway's route model does not implement: a rule using one is dropped.
UNSUPPORTED_FILTERS = frozenset({"CORS", "ExternalAuth", "ExtensionRef"})
_UNSPECIFIED = ("0.0.0.0", "::", "")


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    controller_name: str = DEFAULT_GATEWAY_CONTROLLER
    # Where a Gateway without spec.addresses is served (--gateway-bind-address).
    bind_address: str = "0.0.0.0"
    # What status.addresses says for such a Gateway (the node's addresses); empty:
    # none known, and the Gateway is not Programmed (AddressNotAssigned).
    default_addresses: Sequence[str] = ()
    # Addresses this node has; an IPAddress in spec.addresses outside them (and outside
    # loopback) is AddressNotUsable. None: not checked (seaway check).
    local_addresses: Container[str] | None = None
    unsupported_filters: frozenset[str] = UNSUPPORTED_FILTERS
    # Address:ports this process already serves otherwise (the Ingress listeners,
    # --http-bind-address / --https-bind-address), with what they are: a Gateway listener
    # on one of them would fail to bind, so it is not Accepted (PortUnavailable).
    reserved: tuple[tuple[str, int, str], ...] = ()
    # Whether TCP and UDP listeners are served: only the userspace L4 proxy serves them
    # (--proxy-mode userspace); in the kernel modes they are not Accepted.
    l4_listeners: bool = True


@dataclass(frozen=True, slots=True)
class Verdict:
    """A condition's outcome: its status (True/False), reason and message."""

    status: bool
    reason: str
    message: str = ""


# -- results -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatewayClassState:
    gateway_class: GatewayClass
    accepted: Verdict


@dataclass(frozen=True, slots=True)
class ListenerState:
    listener: Listener
    supported_kinds: tuple[RouteGroupKind, ...]
    accepted: Verdict
    resolved_refs: Verdict
    conflicted: Verdict  # status True: conflicted
    programmed: Verdict
    certificates: tuple[TLSSecret, ...] = ()  # the valid ones, in certificateRefs order
    attached_routes: int = 0

    @property
    def name(self) -> str:
        return self.listener.name


@dataclass(frozen=True, slots=True)
class GatewayState:
    gateway: Gateway
    accepted: Verdict
    programmed: Verdict
    addresses: tuple[GatewayAddress, ...]  # status.addresses
    bind_addresses: tuple[str, ...]  # where its listeners are served
    listeners: tuple[ListenerState, ...]

    def listener(self, name: str) -> ListenerState | None:
        for state in self.listeners:
            if state.listener.name == name:
                return state
        return None


@dataclass(frozen=True, slots=True)
class BackendResolution:
    """One backendRef (or mirror backendRef): ok when `reason` is ""."""

    ref: BackendObjectRef
    namespace: str  # resolved
    weight: int
    reason: str = ""  # InvalidKind, BackendNotFound, RefNotPermitted
    message: str = ""
    service: Service | None = None
    port: ServicePortInfo | None = None  # None also for a headless Service

    @property
    def ok(self) -> bool:
        return not self.reason


@dataclass(frozen=True, slots=True)
class RuleState:
    rule: HTTPRouteRule
    backends: tuple[BackendResolution, ...]  # rule.backend_refs, in order
    mirrors: tuple[BackendResolution, ...]  # RequestMirror backends (rule and backend filters)
    problem: str = ""  # why seaway drops the rule (UnsupportedValue); "" when valid


@dataclass(frozen=True, slots=True)
class AttachedListener:
    name: str
    # The hostnames the route serves on this listener: () = every host.
    hostnames: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParentAttachment:
    ref: ParentRef
    gateway: GatewayState
    accepted: Verdict
    listeners: tuple[AttachedListener, ...] = ()  # when accepted


@dataclass(frozen=True, slots=True)
class RouteState:
    route: AnyRoute  # HTTPRoute or TLSRoute (its rules have only backendRefs)
    parents: tuple[ParentAttachment, ...]  # parentRefs naming seaway's Gateways, in order
    rules: tuple[RuleState, ...]
    resolved_refs: Verdict


@dataclass(frozen=True, slots=True)
class GatewayAttachment:
    classes: tuple[GatewayClassState, ...]
    gateways: tuple[GatewayState, ...]  # oldest first
    routes: tuple[RouteState, ...]  # oldest first; only routes with a parent of seaway's

    def gateway(self, namespace: str, name: str) -> GatewayState | None:
        for state in self.gateways:
            meta = state.gateway.meta
            if meta.namespace == namespace and meta.name == name:
                return state
        return None

    def route(self, namespace: str, name: str) -> RouteState | None:
        for state in self.routes:
            meta = state.route.meta
            if meta.namespace == namespace and meta.name == name:
                return state
        return None


# -- entry point ------------------------------------------------------------------------------


def attach_gateways(snapshot: Snapshot, config: GatewayConfig) -> GatewayAttachment:
    classes = tuple(
        GatewayClassState(c, _class_verdict(c))
        for c in snapshot.gateway_classes
        if c.controller_name == config.controller_name
    )
    accepted_classes = {s.gateway_class.meta.name: s for s in classes}
    grants = ReferenceGrants(snapshot.reference_grants)
    ours = sorted(
        (g for g in snapshot.gateways if g.gateway_class_name in accepted_classes),
        key=lambda g: age_key(g.meta),
    )
    drafts = [
        _gateway(g, accepted_classes[g.gateway_class_name], snapshot, grants, config) for g in ours
    ]
    _mark_conflicts(drafts)
    by_key = {(d.gateway.meta.namespace, d.gateway.meta.name): d for d in drafts}
    labels = _namespace_labels(snapshot)
    routes: list[RouteState] = []
    attached: dict[tuple[str, str, str], set[tuple[str, str]]] = {}
    every: list[AnyRoute] = [
        *snapshot.http_routes, *snapshot.tls_routes, *snapshot.tcp_routes, *snapshot.udp_routes
    ]
    for route in sorted(every, key=lambda r: age_key(r.meta)):
        state = _route(route, by_key, labels, snapshot, grants, config)
        if state is None:
            continue
        routes.append(state)
        for parent in state.parents:
            if not parent.accepted.status:
                continue
            gmeta = parent.gateway.gateway.meta
            for listener in parent.listeners:
                attached.setdefault((gmeta.namespace, gmeta.name, listener.name), set()).add(
                    (route.meta.namespace, route.meta.name)
                )
    gateways = tuple(d.finish(attached) for d in drafts)
    # Parents point at the finished gateway states (with attachedRoutes counted).
    finished = {(g.gateway.meta.namespace, g.gateway.meta.name): g for g in gateways}
    routes = [
        RouteState(
            r.route,
            tuple(
                ParentAttachment(
                    p.ref,
                    finished[(p.gateway.gateway.meta.namespace, p.gateway.gateway.meta.name)],
                    p.accepted,
                    p.listeners,
                )
                for p in r.parents
            ),
            r.rules,
            r.resolved_refs,
        )
        for r in routes
    ]
    return GatewayAttachment(classes, gateways, tuple(routes))


def age_key(meta: ObjectMeta) -> tuple[str, str, str]:
    """Oldest first: creationTimestamp (RFC 3339 sorts as text), then namespace/name."""
    return (meta.creation_timestamp, meta.namespace, meta.name)


# -- ReferenceGrant -----------------------------------------------------------------------------


class ReferenceGrants:
    """ReferenceGrants by namespace, answering "may this reference cross namespaces?"."""

    __slots__ = ("_by_namespace",)

    def __init__(self, grants: Iterable[ReferenceGrant]) -> None:
        self._by_namespace: dict[str, list[ReferenceGrant]] = {}
        for grant in grants:
            self._by_namespace.setdefault(grant.meta.namespace, []).append(grant)

    def allows(
        self,
        from_group: str,
        from_kind: str,
        from_namespace: str,
        to_group: str,
        to_kind: str,
        to_namespace: str,
        to_name: str,
    ) -> bool:
        if from_namespace == to_namespace:
            return True
        for grant in self._by_namespace.get(to_namespace, ()):
            if not any(
                f.group == from_group and f.kind == from_kind and f.namespace == from_namespace
                for f in grant.from_refs
            ):
                continue
            if any(
                t.group == to_group and t.kind == to_kind and t.name in ("", to_name)
                for t in grant.to_refs
            ):
                return True
        return False


# -- GatewayClass, Gateway ----------------------------------------------------------------------


def _class_verdict(gateway_class: GatewayClass) -> Verdict:
    ref = gateway_class.parameters_ref
    if ref is not None:
        return Verdict(
            False,
            "InvalidParameters",
            f"seaway takes no parameters; parametersRef {ref.group or 'core'}/{ref.kind} "
            f"{ref.name} is not supported",
        )
    return Verdict(True, "Accepted", "seaway serves Gateways of this class")


class _GatewayDraft:
    """A Gateway's state before conflicts across Gateways and attached routes are known."""

    __slots__ = ("accepted_class", "addresses", "bind", "gateway", "listeners", "problem")

    def __init__(
        self,
        gateway: Gateway,
        accepted_class: Verdict,
        addresses: tuple[GatewayAddress, ...],
        bind: tuple[str, ...],
        problem: Verdict | None,
        listeners: list[ListenerState],
    ) -> None:
        self.gateway = gateway
        self.accepted_class = accepted_class
        self.addresses = addresses
        self.bind = bind
        self.problem = problem  # a Gateway-level Programmed problem (addresses)
        self.listeners = listeners

    def finish(self, attached: Mapping[tuple[str, str, str], set[tuple[str, str]]]) -> GatewayState:
        meta = self.gateway.meta
        listeners = []
        for state in self.listeners:
            count = len(attached.get((meta.namespace, meta.name, state.listener.name), ()))
            listeners.append(_with_attached(state, count))
        accepted = self._accepted(listeners)
        if not accepted.status:
            programmed = Verdict(False, "Invalid", "the Gateway is not accepted")
        elif self.problem is not None:
            programmed = self.problem
        else:
            programmed = Verdict(True, "Programmed", "served on " + ", ".join(self.bind))
        return GatewayState(
            self.gateway,
            accepted,
            programmed,
            self.addresses if programmed.status else (),
            self.bind,
            tuple(listeners),
        )

    def _accepted(self, listeners: list[ListenerState]) -> Verdict:
        if not self.accepted_class.status:
            return Verdict(
                False, "Invalid", "its GatewayClass is not accepted: " + self.accepted_class.message
            )
        ref = self.gateway.parameters_ref
        if ref is not None:
            return Verdict(
                False,
                "InvalidParameters",
                f"seaway takes no parameters; spec.infrastructure.parametersRef "
                f"{ref.group or 'core'}/{ref.kind} {ref.name} is not supported",
            )
        unsupported = [a for a in self.gateway.addresses if a.type != "IPAddress"]
        if unsupported:
            return Verdict(
                False,
                "UnsupportedAddress",
                f"address type {unsupported[0].type} is not supported (only IPAddress)",
            )
        bad = [s.listener.name for s in listeners if not s.accepted.status]
        if bad and len(bad) == len(listeners):
            return Verdict(False, "ListenersNotValid", "no listener is valid: " + ", ".join(bad))
        if bad:
            return Verdict(True, "ListenersNotValid", "listeners not valid: " + ", ".join(bad))
        return Verdict(True, "Accepted", "")


def _with_attached(state: ListenerState, count: int) -> ListenerState:
    return ListenerState(
        state.listener,
        state.supported_kinds,
        state.accepted,
        state.resolved_refs,
        state.conflicted,
        state.programmed,
        state.certificates,
        count,
    )


def _gateway(
    gateway: Gateway,
    class_state: GatewayClassState,
    snapshot: Snapshot,
    grants: ReferenceGrants,
    config: GatewayConfig,
) -> _GatewayDraft:
    addresses, bind, problem = _addresses(gateway, config)
    listeners = [
        _listener(gateway, listener, snapshot, grants, config.l4_listeners)
        for listener in gateway.listeners
    ]
    _mark_protocol_conflicts(listeners)
    _mark_reserved(listeners, bind, config.reserved)
    return _GatewayDraft(gateway, class_state.accepted, addresses, bind, problem, listeners)


def _addresses(
    gateway: Gateway, config: GatewayConfig
) -> tuple[tuple[GatewayAddress, ...], tuple[str, ...], Verdict | None]:
    """(status addresses, bind addresses, Programmed problem or None)."""
    requested = [a for a in gateway.addresses if a.type == "IPAddress"]
    if not requested:
        bind = (config.bind_address,)
        if not config.default_addresses:
            return (
                (),
                bind,
                Verdict(
                    False,
                    "AddressNotAssigned",
                    "no address known for this node: set spec.addresses or --gateway-bind-address",
                ),
            )
        return tuple(GatewayAddress("IPAddress", a) for a in config.default_addresses), bind, None
    values: list[str] = []
    for address in requested:
        if not address.value:  # "assign me one": the node's
            if not config.default_addresses:
                return (
                    (),
                    (),
                    Verdict(
                        False, "AddressNotAssigned", "no address known for this node to assign"
                    ),
                )
            values.extend(a for a in config.default_addresses if a not in values)
            continue
        local = config.local_addresses
        if local is not None and address.value not in local and not _loopback(address.value):
            return (
                (),
                (),
                Verdict(
                    False,
                    "AddressNotUsable",
                    f"{address.value} is not an address of this node (spec.addresses)",
                ),
            )
        if address.value not in values:
            values.append(address.value)
    return tuple(GatewayAddress("IPAddress", v) for v in values), tuple(values), None


def _loopback(ip: str) -> bool:
    """Loopback addresses can all be listened on (Linux routes 127.0.0.0/8 locally)."""
    return ip.startswith("127.") or ip == "::1"


def _listener(
    gateway: Gateway,
    listener: Listener,
    snapshot: Snapshot,
    grants: ReferenceGrants,
    l4_listeners: bool = True,
) -> ListenerState:
    no_conflict = Verdict(False, "NoConflicts")
    kinds = PROTOCOL_KINDS.get(listener.protocol)
    if listener.protocol == "TLS" and (listener.tls is None or listener.tls.mode != "Passthrough"):
        kinds = None
    unsupported = ""
    if kinds is None:
        unsupported = (
            f"protocol {listener.protocol}"
            + (" with TLS mode Terminate" if listener.protocol == "TLS" else "")
            + " is not supported (seaway serves HTTP, HTTPS, TLS in mode Passthrough, "
            "TCP and UDP)"
        )
    elif listener.protocol in ("TCP", "UDP") and not l4_listeners:
        unsupported = (
            f"protocol {listener.protocol} is served only by the userspace L4 proxy "
            "(--proxy-mode userspace); this seaway programs the kernel"
        )
    if kinds is None or unsupported:
        return ListenerState(
            listener,
            (),
            Verdict(False, "UnsupportedProtocol", unsupported),
            Verdict(True, "ResolvedRefs"),
            no_conflict,
            Verdict(False, "Invalid", "the listener is not accepted"),
        )
    supported, resolved = _route_kinds(listener, kinds)
    certificates: tuple[TLSSecret, ...] = ()
    if listener.protocol == "HTTPS" and resolved.status:
        certificates, resolved = _certificates(gateway, listener, snapshot, grants)
    accepted = Verdict(True, "Accepted")
    if resolved.status:
        programmed = Verdict(True, "Programmed")
    else:
        programmed = Verdict(False, "Invalid", f"not served: {resolved.reason}")
    return ListenerState(
        listener, supported, accepted, resolved, no_conflict, programmed, certificates
    )


def _route_kinds(
    listener: Listener, kinds: tuple[RouteGroupKind, ...]
) -> tuple[tuple[RouteGroupKind, ...], Verdict]:
    wanted = listener.allowed_routes.kinds
    if not wanted:
        return kinds, Verdict(True, "ResolvedRefs")
    supported = tuple(k for k in wanted if k in kinds)
    invalid = [k for k in wanted if k not in kinds]
    if invalid:
        names = ", ".join(f"{k.group}/{k.kind}" if k.group else k.kind for k in invalid)
        return supported, Verdict(
            False,
            "InvalidRouteKinds",
            f"route kind(s) {names} not supported on a {listener.protocol} listener",
        )
    return supported, Verdict(True, "ResolvedRefs")


def _certificates(
    gateway: Gateway, listener: Listener, snapshot: Snapshot, grants: ReferenceGrants
) -> tuple[tuple[TLSSecret, ...], Verdict]:
    tls = listener.tls
    if tls is None or not tls.certificate_refs:
        return (), Verdict(
            False, "InvalidCertificateRef", "an HTTPS listener needs tls.certificateRefs"
        )
    ns = gateway.meta.namespace
    found: list[TLSSecret] = []
    problem: Verdict | None = None
    for ref in tls.certificate_refs:
        target = ref.in_namespace(ns)
        what = f"{ref.kind} {target}/{ref.name}"
        if ref.group != "" or ref.kind != "Secret":
            issue = Verdict(
                False,
                "InvalidCertificateRef",
                f"certificateRef {ref.group or 'core'}/{ref.kind} {ref.name}: only core "
                "Secrets are supported",
            )
        elif not grants.allows(GATEWAY_GROUP, KIND_GATEWAY, ns, "", "Secret", target, ref.name):
            issue = Verdict(
                False,
                "RefNotPermitted",
                f"{what} is in another namespace and no ReferenceGrant there allows it",
            )
        elif (secret := snapshot.tls_secrets.get((target, ref.name))) is None:
            issue = Verdict(
                False, "InvalidCertificateRef", f"{what} not found (or not kubernetes.io/tls)"
            )
        elif why := pem_problem(secret.cert_pem, secret.key_pem):
            issue = Verdict(False, "InvalidCertificateRef", f"{what}: {why}")
        else:
            found.append(secret)
            continue
        if problem is None:
            problem = issue
    if problem is not None:
        return tuple(found), problem
    return tuple(found), Verdict(True, "ResolvedRefs")


def _mark_protocol_conflicts(listeners: list[ListenerState]) -> None:
    """Within one Gateway: listeners on one port with different protocols conflict
    (every one of them: the spec forbids picking a winner)."""
    protocols: dict[int, set[str]] = {}
    for state in listeners:
        if state.accepted.status:
            protocols.setdefault(state.listener.port, set()).add(state.listener.protocol)
    for i, state in enumerate(listeners):
        found = protocols.get(state.listener.port, set())
        if state.accepted.status and len(found) > 1:
            listeners[i] = _conflicted(
                state,
                "ProtocolConflict",
                f"port {state.listener.port} is used with protocols {', '.join(sorted(found))}",
            )


def _mark_reserved(
    listeners: list[ListenerState],
    bind: tuple[str, ...],
    reserved: tuple[tuple[str, int, str], ...],
) -> None:
    """A listener whose port is one seaway already serves on an overlapping address (the
    Ingress listeners) cannot be bound: Accepted False, PortUnavailable, as the spec says
    of a port "in use or not available"."""
    for i, state in enumerate(listeners):
        if not state.accepted.status:
            continue
        for address, port, what in reserved:
            if port == state.listener.port and _overlap((address,), bind):
                message = f"port {port} on {address} is seaway's {what}"
                listeners[i] = ListenerState(
                    state.listener,
                    state.supported_kinds,
                    Verdict(False, "PortUnavailable", message),
                    state.resolved_refs,
                    state.conflicted,
                    Verdict(False, "Invalid", message),
                    state.certificates,
                )
                break


def _conflicted(state: ListenerState, reason: str, message: str) -> ListenerState:
    return ListenerState(
        state.listener,
        state.supported_kinds,
        Verdict(False, reason, message),
        state.resolved_refs,
        Verdict(True, reason, message),
        Verdict(False, "Invalid", message),
        state.certificates,
    )


def _mark_conflicts(drafts: list[_GatewayDraft]) -> None:
    """Across Gateways served on overlapping addresses (the same IP, or a wildcard bind):
    a listener on a port an older Gateway already uses with another protocol, or with the
    same protocol and hostname, conflicts; the older Gateway keeps it."""
    taken: list[tuple[tuple[str, ...], int, str, str, str]] = []  # bind, port, proto, host, gw
    for draft in drafts:
        meta = draft.gateway.meta
        mine = f"{meta.namespace}/{meta.name}"
        for i, state in enumerate(draft.listeners):
            if not state.accepted.status:
                continue
            lst = state.listener
            for bind, port, protocol, hostname, owner in taken:
                if port != lst.port or not _overlap(bind, draft.bind):
                    continue
                if protocol != lst.protocol:
                    draft.listeners[i] = _conflicted(
                        state,
                        "ProtocolConflict",
                        f"port {port} is served with protocol {protocol} by Gateway {owner}",
                    )
                    break
                if hostname == lst.hostname:
                    draft.listeners[i] = _conflicted(
                        state,
                        "HostnameConflict",
                        f"Gateway {owner} serves {protocol} port {port} for hostname "
                        f"{hostname or '(any)'} on the same address",
                    )
                    break
            else:
                taken.append((draft.bind, lst.port, lst.protocol, lst.hostname, mine))


def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    if not a or not b:
        return False
    if any(x in _UNSPECIFIED for x in a) or any(x in _UNSPECIFIED for x in b):
        return True
    return bool(set(a) & set(b))


# -- HTTPRoute ---------------------------------------------------------------------------------


def _namespace_labels(snapshot: Snapshot) -> dict[str, Mapping[str, str]]:
    return {ns.meta.name: ns.labels for ns in snapshot.namespaces}


def _route(
    route: AnyRoute,
    gateways: Mapping[tuple[str, str], _GatewayDraft],
    labels: Mapping[str, Mapping[str, str]],
    snapshot: Snapshot,
    grants: ReferenceGrants,
    config: GatewayConfig,
) -> RouteState | None:
    ns = route.meta.namespace
    parents: list[ParentAttachment] = []
    for ref in route.parent_refs:
        if ref.group != GATEWAY_GROUP or ref.kind != KIND_GATEWAY:
            continue
        draft = gateways.get((ref.in_namespace(ns), ref.name))
        if draft is None:
            continue  # not a Gateway of seaway's (or none at all): not ours to report
        parents.append(_attach(route, ref, draft, labels))
    if not parents:
        return None
    rules = tuple(_rule(route, rule, snapshot, grants, config) for rule in route.rules)
    resolved = _resolved_refs(rules)
    valid = [r for r in rules if not r.problem]
    if not valid:
        why = "; ".join(f"rule {i}: {r.problem}" for i, r in enumerate(rules))
        parents = [
            ParentAttachment(p.ref, p.gateway, Verdict(False, "UnsupportedValue", why))
            if p.accepted.status
            else p
            for p in parents
        ]
    return RouteState(route, tuple(parents), rules, resolved)


def _attach(
    route: AnyRoute,
    ref: ParentRef,
    draft: _GatewayDraft,
    labels: Mapping[str, Mapping[str, str]],
) -> ParentAttachment:
    placeholder = _placeholder(draft)
    gmeta = draft.gateway.meta
    if not draft.accepted_class.status or any(
        a.type != "IPAddress" for a in draft.gateway.addresses
    ):
        return ParentAttachment(
            ref, placeholder, Verdict(False, "NoMatchingParent", "the Gateway is not accepted")
        )
    candidates = [
        s
        for s in draft.listeners
        if (not ref.section_name or s.listener.name == ref.section_name)
        and (ref.port is None or s.listener.port == ref.port)
    ]
    if not candidates:
        wanted = " and ".join(
            x
            for x in (
                f"named {ref.section_name}" if ref.section_name else "",
                f"on port {ref.port}" if ref.port is not None else "",
            )
            if x
        )
        return ParentAttachment(
            ref,
            placeholder,
            Verdict(
                False,
                "NoMatchingParent",
                f"Gateway {gmeta.namespace}/{gmeta.name} has no listener {wanted}",
            ),
        )
    kind = RouteGroupKind(route.kind, GATEWAY_GROUP)
    candidates = [s for s in candidates if kind in s.supported_kinds]
    if not candidates:
        return ParentAttachment(
            ref,
            placeholder,
            Verdict(False, "NotAllowedByListeners", f"no listener accepts {route.kind}s"),
        )
    rns = route.meta.namespace
    candidates = [s for s in candidates if _namespace_allowed(s, gmeta.namespace, rns, labels)]
    if not candidates:
        return ParentAttachment(
            ref,
            placeholder,
            Verdict(
                False,
                "NotAllowedByListeners",
                f"no listener allows routes from namespace {rns}",
            ),
        )
    attached = []
    for state in candidates:
        hostnames = intersect_hostnames(state.listener.hostname, route.hostnames)
        if hostnames is not None:
            attached.append(AttachedListener(state.listener.name, hostnames))
    if not attached:
        listener_hosts = ", ".join(s.listener.hostname or "(any)" for s in candidates)
        return ParentAttachment(
            ref,
            placeholder,
            Verdict(
                False,
                "NoMatchingListenerHostname",
                f"no route hostname ({', '.join(route.hostnames)}) intersects the listeners' "
                f"({listener_hosts})",
            ),
        )
    return ParentAttachment(ref, placeholder, Verdict(True, "Accepted"), tuple(attached))


def _placeholder(draft: _GatewayDraft) -> GatewayState:
    """A stand-in for the Gateway's state until its attached routes are counted."""
    return GatewayState(
        draft.gateway, Verdict(True, ""), Verdict(True, ""), (), draft.bind, tuple(draft.listeners)
    )


def _namespace_allowed(
    state: ListenerState, gateway_ns: str, route_ns: str, labels: Mapping[str, Mapping[str, str]]
) -> bool:
    allowed = state.listener.allowed_routes
    if allowed.namespaces_from == "All":
        return True
    if allowed.namespaces_from == "Same":
        return route_ns == gateway_ns
    if allowed.namespaces_from == "Selector" and allowed.selector is not None:
        ns_labels = labels.get(route_ns) or {NAMESPACE_NAME_LABEL: route_ns}
        return allowed.selector.matches(ns_labels)
    return False


def _rule(
    route: AnyRoute,
    rule: HTTPRouteRule,
    snapshot: Snapshot,
    grants: ReferenceGrants,
    config: GatewayConfig,
) -> RuleState:
    ns = route.meta.namespace
    kind = route.kind
    backends = tuple(
        _backend(ns, b.backend, b.weight, snapshot, grants, kind) for b in rule.backend_refs
    )
    mirrors = tuple(
        _backend(ns, f.request_mirror.backend, 1, snapshot, grants, kind)
        for f in (*rule.filters, *(f for b in rule.backend_refs for f in b.filters))
        if f.request_mirror is not None
    )
    return RuleState(rule, backends, mirrors, _rule_problem(rule, config))


def _rule_problem(rule: HTTPRouteRule, config: GatewayConfig) -> str:
    filters = (*rule.filters, *(f for b in rule.backend_refs for f in b.filters))
    for f in filters:
        if f.type in config.unsupported_filters:
            return f"filter {f.type} is not supported"
    for match in rule.matches:
        patterns = []
        if match.path.type == "RegularExpression":
            patterns.append(("path", match.path.value))
        patterns += [
            (f"header {h.name}", h.value) for h in match.headers if h.type == "RegularExpression"
        ]
        patterns += [
            (f"query parameter {q.name}", q.value)
            for q in match.query_params
            if q.type == "RegularExpression"
        ]
        for what, pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as e:
                return f"{what}: invalid regular expression {pattern!r} ({e})"
    return ""


def _backend(
    ns: str,
    ref: BackendObjectRef,
    weight: int,
    snapshot: Snapshot,
    grants: ReferenceGrants,
    route_kind: str = KIND_HTTPROUTE,
) -> BackendResolution:
    target = ref.in_namespace(ns)
    what = f"{target}/{ref.name}"
    if ref.group != "" or ref.kind != "Service":
        return BackendResolution(
            ref, target, weight, "InvalidKind",
            f"backendRef {ref.group or 'core'}/{ref.kind} {ref.name}: only core Services are "
            "supported",
        )  # fmt: skip
    if not grants.allows(GATEWAY_GROUP, route_kind, ns, "", "Service", target, ref.name):
        return BackendResolution(
            ref, target, weight, "RefNotPermitted",
            f"Service {what} is in another namespace and no ReferenceGrant there allows it",
        )  # fmt: skip
    service = snapshot.services.get((target, ref.name))
    if service is None:
        return BackendResolution(
            ref, target, weight, "BackendNotFound", f"Service {what} not found"
        )
    if service.type == "ExternalName":
        return BackendResolution(
            ref, target, weight, "InvalidKind",
            f"Service {what} is of type ExternalName, which seaway does not route to",
            service,
        )  # fmt: skip
    protocol = "UDP" if route_kind == KIND_UDPROUTE else "TCP"
    if not any(p.port == ref.port and p.protocol == protocol for p in service.ports):
        return BackendResolution(
            ref, target, weight, "BackendNotFound",
            f"Service {what} has no {protocol} port {ref.port}", service,
        )  # fmt: skip
    info = next(
        (
            i
            for i in snapshot.ports_by_service.get((target, ref.name), ())
            if i.port == ref.port and i.protocol == protocol
        ),
        None,
    )
    return BackendResolution(ref, target, weight, service=service, port=info)


def _resolved_refs(rules: tuple[RuleState, ...]) -> Verdict:
    problems = [b for r in rules for b in (*r.backends, *r.mirrors) if not b.ok]
    if not problems:
        return Verdict(True, "ResolvedRefs")
    return Verdict(False, problems[0].reason, "; ".join(dict.fromkeys(b.message for b in problems)))
