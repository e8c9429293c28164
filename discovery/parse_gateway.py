"""Gateway API GatewayClass, Gateway and ReferenceGrant manifests, and v1 Namespace ->
discovery.model_gateway objects (HTTPRoute: discovery/parse_httproute.py).

Validated as the CRDs validate (patterns, enums, the CEL rules on listeners), with the
CRDs' defaults applied: a listener's allowedRoutes is {namespaces: {from: Same}}, its
tls.mode Terminate, a certificateRef's kind Secret, an address's type IPAddress. A
listener whose protocol seaway does not serve, or a Secret that does not exist, is not
an error here: the Gateway's status says so (discovery/gateway_status.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from discovery.model_gateway import (
    GATEWAY_GROUP,
    AllowedRoutes,
    GatewayAddress,
    GatewayClass,
    GatewayStatus,
    Listener,
    ListenerStatus,
    ListenerTLS,
    LocalObjectRef,
    Namespace,
    ReferenceGrant,
    ReferenceGrantFrom,
    ReferenceGrantTo,
    RouteGroupKind,
    SecretObjectRef,
)
from discovery.model_gateway import Gateway as GatewayObj
from discovery.parse_common import (
    Problems,
    check_dns1123_label,
    check_enum,
    check_ip,
    check_port,
    get_int,
    get_map,
    get_str,
    get_str_map,
    read_meta,
    show,
)
from discovery.parse_gateway_common import (
    CONTROLLER_RE,
    check_group,
    check_hostname,
    check_kind,
    check_object_name,
    check_section_name,
    items_at,
    opt_map,
    parse_label_selector,
    parse_route_group_kind,
    parse_secret_ref,
    read_conditions,
    required_str,
    status_of,
    sub,
)

TLS_MODES = ("Terminate", "Passthrough")
FROM_NAMESPACES = ("All", "Selector", "Same")
_DOMAIN_PATH = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/"
_PROTOCOL_CORE = re.compile(r"[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?\Z")
_PROTOCOL_DOMAIN = re.compile(_DOMAIN_PATH + r"[A-Za-z0-9]+\Z")
_ADDRESS_TYPE = re.compile(_DOMAIN_PATH + r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+\Z")
MAX_LISTENERS = 64


def parse_gateway_class(p: Problems, doc: Mapping[str, Any]) -> GatewayClass | None:
    meta = read_meta(p, doc, namespaced=False)
    spec = get_map(p, doc, "spec", "")
    controller = required_str(p, spec, "controllerName", "spec")
    if controller is not None and not (len(controller) <= 253 and CONTROLLER_RE.match(controller)):
        p.add(
            "spec.controllerName",
            'must be a domain-prefixed path like "example.net/gateway-controller", got '
            + show(controller),
        )
    description = get_str(p, spec, "description", "spec.") or ""
    if len(description) > 64:
        p.add("spec.description", f"must be at most 64 characters, got {len(description)}")
    params = None
    raw_params = opt_map(p, spec, "parametersRef", "spec")
    if raw_params is not None:
        params = _local_ref(p, raw_params, "spec.parametersRef")
    if p.errors or meta is None or controller is None:
        return None
    return GatewayClass(
        meta, controller, description, params, read_conditions(status_of(doc).get("conditions"))
    )


def parse_gateway(p: Problems, doc: Mapping[str, Any]) -> GatewayObj | None:
    meta = read_meta(p, doc, namespaced=True)
    spec = get_map(p, doc, "spec", "")
    class_name = required_str(p, spec, "gatewayClassName", "spec")
    if class_name is not None:
        check_object_name(p, class_name, "spec.gatewayClassName")
    listeners = []
    raw_listeners = items_at(p, spec, "listeners", "spec", MAX_LISTENERS, 1)
    if not raw_listeners and spec.get("listeners") is None:
        p.add("spec.listeners", "required (at least one listener)")
    for where, raw in raw_listeners:
        listener = _listener(p, raw, where)
        if listener is not None:
            listeners.append(listener)
    _check_distinct(p, listeners)
    addresses = [
        a
        for where, raw in items_at(p, spec, "addresses", "spec", 16)
        if (a := _spec_address(p, raw, where)) is not None
    ]
    _check_unique_addresses(p, addresses)
    params = _infrastructure_parameters(p, spec)
    if p.errors or meta is None or class_name is None:
        return None
    return GatewayObj(
        meta,
        class_name,
        tuple(listeners),
        tuple(addresses),
        _gateway_status(status_of(doc)),
        params,
    )


def _infrastructure_parameters(p: Problems, spec: Mapping[str, Any]) -> LocalObjectRef | None:
    """spec.infrastructure: its labels and annotations are checked (maps of strings, at
    most 8 each, as the API's schema) and not propagated (seaway creates no resources for
    a Gateway); its parametersRef is returned for the Accepted condition."""
    infra = opt_map(p, spec, "infrastructure", "spec")
    if infra is None:
        return None
    for field_name in ("labels", "annotations"):
        values = opt_map(p, infra, field_name, "spec.infrastructure")
        if values is None:
            continue
        where = f"spec.infrastructure.{field_name}"
        if len(values) > 8:
            p.add(where, f"at most 8 entries, got {len(values)}")
        for key, value in values.items():
            if type(value) is not str:
                p.add(f"{where}[{key}]", "must be a string, got " + show(value))
    raw_params = opt_map(p, infra, "parametersRef", "spec.infrastructure")
    if raw_params is None:
        return None
    return _local_ref(p, raw_params, "spec.infrastructure.parametersRef")


def parse_reference_grant(p: Problems, doc: Mapping[str, Any]) -> ReferenceGrant | None:
    meta = read_meta(p, doc, namespaced=True)
    spec = get_map(p, doc, "spec", "")
    froms: list[ReferenceGrantFrom] = []
    raw_from = items_at(p, spec, "from", "spec", 16, 1)
    if spec.get("from") is None:
        p.add("spec.from", "required (at least one entry)")
    for where, raw in raw_from:
        group = _group_required(p, raw, where)
        kind = required_str(p, raw, "kind", where)
        ns = required_str(p, raw, "namespace", where)
        if kind is not None:
            check_kind(p, kind, sub(where, "kind"))
        if ns is not None:
            check_dns1123_label(p, ns, sub(where, "namespace"))
        if group is not None and kind is not None and ns is not None:
            froms.append(ReferenceGrantFrom(group, kind, ns))
    tos: list[ReferenceGrantTo] = []
    raw_to = items_at(p, spec, "to", "spec", 16, 1)
    if spec.get("to") is None:
        p.add("spec.to", "required (at least one entry)")
    for where, raw in raw_to:
        group = _group_required(p, raw, where)
        kind = required_str(p, raw, "kind", where)
        if kind is not None:
            check_kind(p, kind, sub(where, "kind"))
        name = get_str(p, raw, "name", where + ".") or ""
        if name:
            check_object_name(p, name, sub(where, "name"))
        if group is not None and kind is not None:
            tos.append(ReferenceGrantTo(group, kind, name))
    if p.errors or meta is None:
        return None
    return ReferenceGrant(meta, tuple(froms), tuple(tos))


def parse_namespace(p: Problems, doc: Mapping[str, Any]) -> Namespace | None:
    meta = read_meta(p, doc, namespaced=False)
    if meta is not None:
        check_dns1123_label(p, meta.name, "metadata.name")
    if p.errors or meta is None:
        return None
    return Namespace(meta)


# -- listeners ------------------------------------------------------------------------------


def _listener(p: Problems, raw: Mapping[str, Any], path: str) -> Listener | None:
    errors = len(p.errors)
    name = required_str(p, raw, "name", path)
    if name is not None:
        check_section_name(p, name, sub(path, "name"))
    port = check_port(p, get_int(p, raw, "port", path + "."), sub(path, "port"))
    protocol = required_str(p, raw, "protocol", path)
    if protocol is not None and not _valid_protocol(protocol):
        p.add(
            sub(path, "protocol"),
            'must be HTTP, HTTPS, TLS, TCP, UDP or a domain-prefixed name like "example.com/p",'
            " got " + show(protocol),
        )
    hostname = get_str(p, raw, "hostname", path + ".") or ""
    if hostname:
        check_hostname(p, hostname, sub(path, "hostname"))
        if protocol in ("TCP", "UDP"):
            p.add(sub(path, "hostname"), f"must not be set for protocol {protocol}")
    tls = None
    raw_tls = opt_map(p, raw, "tls", path)
    if raw_tls is not None:
        tls = _listener_tls(p, raw_tls, sub(path, "tls"))
        if protocol in ("HTTP", "TCP", "UDP"):
            p.add(sub(path, "tls"), f"must not be set for protocol {protocol}")
        elif protocol == "HTTPS" and tls is not None and tls.mode != "Terminate":
            p.add(sub(path, "tls.mode"), "must be Terminate for protocol HTTPS")
    elif protocol == "TLS":
        p.add(sub(path, "tls"), "required for protocol TLS (mode Terminate or Passthrough)")
    allowed = _allowed_routes(p, raw, path)
    if len(p.errors) > errors or name is None or port is None or protocol is None:
        return None
    return Listener(name, port, protocol, hostname, tls, allowed)


def _valid_protocol(value: str) -> bool:
    # The CRD's pattern: a core name, or (unanchored at the start) domain/name.
    if len(value) > 255:
        return False
    return bool(_PROTOCOL_CORE.match(value) or _PROTOCOL_DOMAIN.search(value))


def _listener_tls(p: Problems, raw: Mapping[str, Any], path: str) -> ListenerTLS | None:
    errors = len(p.errors)
    mode = get_str(p, raw, "mode", path + ".") or "Terminate"
    check_enum(p, mode, TLS_MODES, sub(path, "mode"))
    refs: list[SecretObjectRef] = []
    for where, item in items_at(p, raw, "certificateRefs", path, 64):
        ref = parse_secret_ref(p, item, where)
        if ref is not None:
            refs.append(ref)
    options = get_str_map(p, raw, "options", path + ".")
    if len(options) > 16:
        p.add(sub(path, "options"), f"must have at most 16 entries, got {len(options)}")
    if mode == "Terminate" and not refs and not options and len(p.errors) == errors:
        p.add(
            sub(path, "certificateRefs"),
            "required when mode is Terminate (a kubernetes.io/tls Secret), unless options are set",
        )
    if len(p.errors) > errors:
        return None
    return ListenerTLS(mode, tuple(refs), dict(options))


def _allowed_routes(p: Problems, raw: Mapping[str, Any], path: str) -> AllowedRoutes:
    allowed = opt_map(p, raw, "allowedRoutes", path)
    if allowed is None:
        return AllowedRoutes()
    where = sub(path, "allowedRoutes")
    namespaces = opt_map(p, allowed, "namespaces", where) or {}
    from_ = get_str(p, namespaces, "from", where + ".namespaces.") or "Same"
    check_enum(p, from_, FROM_NAMESPACES, where + ".namespaces.from")
    selector = None
    raw_selector = opt_map(p, namespaces, "selector", where + ".namespaces")
    if raw_selector is not None:
        selector = parse_label_selector(p, raw_selector, where + ".namespaces.selector")
    elif from_ == "Selector":
        p.add(where + ".namespaces.selector", 'required when from is "Selector"')
    kinds: list[RouteGroupKind] = []
    for kwhere, item in items_at(p, allowed, "kinds", where, 8):
        kind = parse_route_group_kind(p, item, kwhere)
        if kind is not None:
            kinds.append(kind)
    return AllowedRoutes(from_, selector, tuple(kinds))


def _check_distinct(p: Problems, listeners: list[Listener]) -> None:
    """The CRD's CEL rules: unique names; unique (port, protocol, hostname)."""
    names: dict[str, int] = {}
    combos: dict[tuple[int, str, str], str] = {}
    for i, listener in enumerate(listeners):
        if listener.name in names:
            p.add(
                f"spec.listeners[{i}].name",
                f"{show(listener.name)} is already the name of listeners[{names[listener.name]}]"
                " (listener names must be unique within a Gateway)",
            )
        names.setdefault(listener.name, i)
        combo = (listener.port, listener.protocol, listener.hostname)
        if combo in combos:
            p.add(
                f"spec.listeners[{i}]",
                f"same port, protocol and hostname as listener {show(combos[combo])} (each "
                "combination must be unique)",
            )
        combos.setdefault(combo, listener.name)


# -- addresses --------------------------------------------------------------------------


def _spec_address(p: Problems, raw: Mapping[str, Any], path: str) -> GatewayAddress | None:
    errors = len(p.errors)
    atype = get_str(p, raw, "type", path + ".") or "IPAddress"
    value = get_str(p, raw, "value", path + ".") or ""
    if len(value) > 253:
        p.add(sub(path, "value"), f"must be at most 253 characters, got {len(value)}")
    if atype == "IPAddress" and value:
        check_ip(p, value, sub(path, "value"))
    elif atype == "Hostname" and value:
        check_hostname(p, value, sub(path, "value"))
    elif atype not in ("IPAddress", "Hostname", "NamedAddress") and not _valid_address_type(atype):
        p.add(
            sub(path, "type"),
            "must be IPAddress, Hostname, NamedAddress or a domain-prefixed type, got "
            + show(atype),
        )
    if len(p.errors) > errors:
        return None
    return GatewayAddress(atype, value)


def _valid_address_type(value: str) -> bool:
    return _ADDRESS_TYPE.match(value) is not None


def _check_unique_addresses(p: Problems, addresses: list[GatewayAddress]) -> None:
    seen: set[tuple[str, str]] = set()
    for i, address in enumerate(addresses):
        key = (address.type, address.value)
        if address.value and address.type in ("IPAddress", "Hostname") and key in seen:
            p.add(f"spec.addresses[{i}].value", f"{address.type} values must be unique")
        seen.add(key)


# -- helpers ------------------------------------------------------------------------------------


def _group_required(p: Problems, raw: Mapping[str, Any], path: str) -> str | None:
    """A Group field that is required but may be "" (the core group)."""
    if "group" not in raw or raw["group"] is None:
        p.add(sub(path, "group"), 'required ("" for the core group)')
        return None
    group = raw["group"]
    if type(group) is not str:
        p.add(sub(path, "group"), "must be a string, got " + show(group))
        return None
    return group if check_group(p, group, sub(path, "group")) else None


def _local_ref(p: Problems, raw: Mapping[str, Any], path: str) -> LocalObjectRef | None:
    group = _group_required(p, raw, path)
    kind = required_str(p, raw, "kind", path)
    name = required_str(p, raw, "name", path)
    if kind is not None:
        check_kind(p, kind, sub(path, "kind"))
    if group is None or kind is None or name is None:
        return None
    return LocalObjectRef(group, kind, name)


def _gateway_status(status: Mapping[str, Any]) -> GatewayStatus:
    """status as the API shows it (lenient: malformed parts are dropped)."""
    if not status:
        return GatewayStatus()
    addresses = []
    for a in status.get("addresses") or ():
        if type(a) is dict and type(a.get("value")) is str:
            atype = a["type"] if type(a.get("type")) is str else "IPAddress"
            addresses.append(GatewayAddress(atype, a["value"]))
    listeners = []
    for raw in status.get("listeners") or ():
        if type(raw) is not dict or type(raw.get("name")) is not str:
            continue
        kinds = tuple(
            RouteGroupKind(k["kind"], k["group"] if type(k.get("group")) is str else GATEWAY_GROUP)
            for k in raw.get("supportedKinds") or ()
            if type(k) is dict and type(k.get("kind")) is str
        )
        attached = raw.get("attachedRoutes")
        listeners.append(
            ListenerStatus(
                raw["name"],
                kinds,
                attached if type(attached) is int else 0,
                read_conditions(raw.get("conditions")),
            )
        )
    return GatewayStatus(
        tuple(addresses), read_conditions(status.get("conditions")), tuple(listeners)
    )
