"""Gateway API TLSRoute (v1, v1alpha3, v1alpha2), TCPRoute and UDPRoute (v1alpha2)
manifests -> discovery.model_gateway objects.

Validated as the CRDs validate: parentRefs as for HTTPRoute; for TLSRoute 1-16 hostnames
(v1 and v1alpha3 require one; v1alpha2 allowed none, which matches every SNI name on the
listener), no IP addresses among them; 1-16 rules each with 1-16 backendRefs (a core
Service with its port; weight 0-1000000, default 1). The same parentRef checks and status
reading as HTTPRoute (discovery/parse_httproute.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, TypeVar

from discovery.model_gateway import HTTPBackendRef, HTTPRouteRule, TCPRoute, TLSRoute, UDPRoute
from discovery.parse_common import Problems, get_int, get_list, get_map, get_str, read_meta, show
from discovery.parse_gateway_common import (
    check_hostname,
    check_section_name,
    items_at,
    parse_backend_object_ref,
    status_of,
    sub,
)
from discovery.parse_httproute import MAX_WEIGHT, parents_status, read_parent_refs

ALPHA2 = "gateway.networking.k8s.io/v1alpha2"


def parse_tlsroute(p: Problems, doc: Mapping[str, Any]) -> TLSRoute | None:
    meta = read_meta(p, doc, namespaced=True)
    spec = get_map(p, doc, "spec", "")
    parents = read_parent_refs(p, spec)
    hostnames: list[str] = []
    raw_hosts = get_list(p, spec, "hostnames", "spec.")
    if not raw_hosts and doc.get("apiVersion") != ALPHA2:
        p.add("spec.hostnames", "must have at least 1 item (a TLSRoute routes by SNI name)")
    if len(raw_hosts) > 16:
        p.add("spec.hostnames", f"must have at most 16 items, got {len(raw_hosts)}")
    for i, host in enumerate(raw_hosts):
        where = f"spec.hostnames[{i}]"
        if type(host) is not str:
            p.add(where, "must be a string, got " + show(host))
        elif _is_ip(host):
            p.add(where, f"must be a host name, not an IP address: {show(host)}")
        elif check_hostname(p, host, where):
            hostnames.append(host.lower())
    rules = _rules(p, spec)
    if p.errors or meta is None:
        return None
    return TLSRoute(
        meta, tuple(parents), tuple(hostnames), tuple(rules), parents_status(status_of(doc))
    )


def parse_tcproute(p: Problems, doc: Mapping[str, Any]) -> TCPRoute | None:
    return _l4_route(p, doc, TCPRoute)


def parse_udproute(p: Problems, doc: Mapping[str, Any]) -> UDPRoute | None:
    return _l4_route(p, doc, UDPRoute)


_L4Route = TypeVar("_L4Route", TCPRoute, UDPRoute)


def _l4_route(p: Problems, doc: Mapping[str, Any], kind: type[_L4Route]) -> _L4Route | None:
    """A TCPRoute or UDPRoute: the same fields (parentRefs, rules of backendRefs)."""
    meta = read_meta(p, doc, namespaced=True)
    spec = get_map(p, doc, "spec", "")
    parents = read_parent_refs(p, spec)
    rules = _rules(p, spec)
    if p.errors or meta is None:
        return None
    return kind(meta, tuple(parents), tuple(rules), parents_status(status_of(doc)))


def _rules(p: Problems, spec: Mapping[str, Any]) -> list[HTTPRouteRule]:
    rules: list[HTTPRouteRule] = []
    if spec.get("rules") is None:
        p.add("spec.rules", "required: at least one rule with backendRefs")
    for where, raw in items_at(p, spec, "rules", "spec", 16, 1):
        rule = _rule(p, raw, where)
        if rule is not None:
            rules.append(rule)
    names = [r.name for r in rules if r.name]
    for name in sorted({n for n in names if names.count(n) > 1}):
        p.add("spec.rules", f"rule name {show(name)} is used more than once")
    return rules


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _rule(p: Problems, raw: Mapping[str, Any], path: str) -> HTTPRouteRule | None:
    errors = len(p.errors)
    name = get_str(p, raw, "name", path + ".") or ""
    if name:
        check_section_name(p, name, sub(path, "name"))
    backends: list[HTTPBackendRef] = []
    for where, item in items_at(p, raw, "backendRefs", path, 16, 1):
        ref = parse_backend_object_ref(p, item, where)
        weight = get_int(p, item, "weight", where + ".")
        if weight is None:
            weight = 1
        elif not 0 <= weight <= MAX_WEIGHT:
            p.add(sub(where, "weight"), f"must be 0-{MAX_WEIGHT}, got {weight}")
        if ref is not None:
            backends.append(HTTPBackendRef(ref, weight))
    if len(p.errors) > errors:
        return None
    return HTTPRouteRule(matches=(), backend_refs=tuple(backends), name=name)
