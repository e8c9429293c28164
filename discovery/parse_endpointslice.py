"""discovery.k8s.io/v1 EndpointSlice manifest -> discovery.model.EndpointSlice.

Conditions are resolved as kube-proxy reads them: ready and serving default to true when
unset (null), terminating to false. A port whose `port` is null ("all ports") gives a
dataplane nothing to forward to and is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

from discovery.model import (
    SERVICE_NAME_LABEL,
    Endpoint,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
    Protocol,
)
from discovery.parse_common import (
    IPV4_PATTERN,
    Problems,
    check_dns1035_label,
    check_dns1123_label,
    check_dns1123_subdomain,
    check_enum,
    check_port,
    get_bool,
    get_int,
    get_list,
    get_str,
    is_ipv4,
    is_ipv6,
    read_meta,
    show,
)
from discovery.parse_fast import slice_port

ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")
AddressType = Literal["IPv4", "IPv6", "FQDN"]
PROTOCOLS = ("TCP", "UDP", "SCTP")
MAX_ADDRESSES = 100
_DEFAULT_CONDITIONS = EndpointConditions()
# The eight possible conditions, shared (they are immutable).
_CONDITIONS = {
    (r, s, t): EndpointConditions(r, s, t)
    for r in (True, False)
    for s in (True, False)
    for t in (True, False)
}
_IPV4_OK = IPV4_PATTERN.match


def parse_endpointslice(p: Problems, doc: Mapping[str, Any]) -> EndpointSlice | None:
    meta = read_meta(p, doc, namespaced=True)
    service_name = ""
    if meta is not None:
        service_name = meta.labels.get(SERVICE_NAME_LABEL, "")
        if not service_name:
            p.add(f"metadata.labels[{SERVICE_NAME_LABEL}]", "required: the name of the Service")
        else:
            check_dns1035_label(p, service_name, f"metadata.labels[{SERVICE_NAME_LABEL}]")
    address_type = get_str(p, doc, "addressType", "")
    if address_type is None:
        if "addressType" not in doc:
            p.add("addressType", "required (IPv4, IPv6 or FQDN)")
        address_type = "IPv4"
    elif not check_enum(p, address_type, ADDRESS_TYPES, "addressType"):
        address_type = ""
    endpoints: list[Endpoint] = []
    for i, item in enumerate(get_list(p, doc, "endpoints", "")):
        ep = _endpoint(p, item, i, address_type)
        if ep is not None:
            endpoints.append(ep)
    ports = _ports(p, doc)
    if p.errors or meta is None:
        return None
    return EndpointSlice(
        meta=meta,
        service_name=service_name,
        address_type=cast(AddressType, address_type),
        endpoints=tuple(endpoints),
        ports=ports,
    )


def _endpoint(p: Problems, item: Any, i: int, address_type: str) -> Endpoint | None:
    if type(item) is not dict:
        p.add(f"endpoints[{i}]", "must be a mapping, got " + show(item))
        return None
    addresses = item.get("addresses")
    if type(addresses) is not list or not addresses:
        if addresses is None or addresses == []:
            p.add(f"endpoints[{i}].addresses", "required (at least one address)")
        else:
            p.add(f"endpoints[{i}].addresses", "must be a list, got " + show(addresses))
        return None
    if len(addresses) > MAX_ADDRESSES:
        p.add(f"endpoints[{i}].addresses", f"must have at most 100 addresses, got {len(addresses)}")
    check = _IPV4_OK if address_type == "IPv4" else None
    for j, addr in enumerate(addresses):
        if check is not None and type(addr) is str and check(addr) is not None:
            continue  # the common case, checked with one regex match
        if type(addr) is not str:
            p.add(f"endpoints[{i}].addresses[{j}]", "must be a string, got " + show(addr))
        elif not _address_ok(addr, address_type):
            p.add(
                f"endpoints[{i}].addresses[{j}]",
                f"must be a valid {address_type} address, got {show(addr)}",
            )
    conditions = _DEFAULT_CONDITIONS
    cond = item.get("conditions")
    if cond:
        if type(cond) is dict:
            r = cond.get("ready")
            s = cond.get("serving")
            t = cond.get("terminating")
            if (  # None, True or False only (1 == True, so compare identities)
                (r is None or r is True or r is False)
                and (s is None or s is True or s is False)
                and (t is None or t is True or t is False)
            ):
                conditions = _CONDITIONS[(r is not False, s is not False, t is True)]
            else:
                conditions = _conditions(p, cond, f"endpoints[{i}].conditions")
        else:
            conditions = _conditions(p, cond, f"endpoints[{i}].conditions")
    node_name = item.get("nodeName", "")
    if type(node_name) is not str:
        node_name = get_str(p, item, "nodeName", f"endpoints[{i}].") or ""
    zone = item.get("zone", "")
    if type(zone) is not str:
        zone = get_str(p, item, "zone", f"endpoints[{i}].") or ""
    hints = item.get("hints")
    if not hints:
        return Endpoint(tuple(addresses), conditions, node_name, zone)
    hint_zones, hint_nodes = _hints(p, hints, f"endpoints[{i}].hints")
    return Endpoint(tuple(addresses), conditions, node_name, zone, hint_zones, hint_nodes)


def _address_ok(addr: str, address_type: str) -> bool:
    if address_type == "IPv4":
        return is_ipv4(addr)
    if address_type == "IPv6":
        return is_ipv6(addr)
    if address_type == "FQDN":
        p = Problems("", "")
        return check_dns1123_subdomain(p, addr, "")
    return True  # unknown type already reported


def _conditions(p: Problems, cond: Any, path: str) -> EndpointConditions:
    if type(cond) is not dict:
        p.add(path, "must be a mapping, got " + show(cond))
        return _DEFAULT_CONDITIONS
    ready = get_bool(p, cond, "ready", path + ".")
    serving = get_bool(p, cond, "serving", path + ".")
    terminating = get_bool(p, cond, "terminating", path + ".")
    return _CONDITIONS[(ready is not False, serving is not False, terminating is True)]


def _hints(p: Problems, hints: Any, path: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(hints.forZones names, hints.forNodes names)."""
    if type(hints) is not dict:
        p.add(path, "must be a mapping, got " + show(hints))
        return (), ()
    return _hint_names(p, hints, "forZones", path), _hint_names(p, hints, "forNodes", path)


def _hint_names(p: Problems, hints: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    names: list[str] = []
    for k, item in enumerate(get_list(p, hints, key, path + ".")):
        where = f"{path}.{key}[{k}]"
        if type(item) is not dict:
            p.add(where, "must be a mapping with a name, got " + show(item))
            continue
        name = get_str(p, item, "name", where + ".")
        if name:
            names.append(name)
        elif item.get("name") in (None, ""):  # a non-string was reported by get_str
            p.add(where + ".name", "required")
    return tuple(names)


def _ports(p: Problems, doc: Mapping[str, Any]) -> tuple[EndpointPort, ...]:
    ports: list[EndpointPort] = []
    names: set[str] = set()
    for i, item in enumerate(get_list(p, doc, "ports", "")):
        if type(item) is dict:  # the common case: everything valid (parse_fast.py)
            port = slice_port(item, names)
            if port is not None:
                ports.append(port)
                continue
        _port_checked(p, item, i, names, ports)
    return tuple(ports)


def _port_checked(
    p: Problems, item: Any, i: int, names: set[str], ports: list[EndpointPort]
) -> None:
    """One port, every problem reported (the slow path)."""
    path = f"ports[{i}]."
    if type(item) is not dict:
        p.add(path[:-1], "must be a mapping, got " + show(item))
        return
    name = get_str(p, item, "name", path) or ""
    if name:
        check_dns1123_label(p, name, path + "name")
    if name in names:
        p.add(path + "name", f"duplicate port name {show(name)}")
    names.add(name)
    proto = get_str(p, item, "protocol", path) or "TCP"
    check_enum(p, proto, PROTOCOLS, path + "protocol")
    if item.get("port") is None:
        return
    port = check_port(p, get_int(p, item, "port", path), path + "port", required=False)
    if port is not None and proto in PROTOCOLS:
        ports.append(EndpointPort(name, port, cast(Protocol, proto)))
