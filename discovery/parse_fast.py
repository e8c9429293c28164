"""One-pass conversion of the common, valid shapes of Service and EndpointSlice.

A 10,000-service config is 20,000 of these objects, nearly all alike: a ClusterIP,
NodePort or LoadBalancer Service with an IPv4 cluster IP and a few ports, an IPv4
EndpointSlice with a few endpoints. `fast_service` and `fast_endpointslice` convert such an
object with one read of each field and no error bookkeeping, or return None: "not sure",
and the strict parsers (parse_service.py, parse_endpointslice.py) take the object and
report every problem with its field path. So a fast result is always one the strict path
would also return (tests/discovery/test_parse_fast.py compares them on valid and mutated
manifests), and errors come from the strict path only.

Each mapping is checked against the keys this path knows first (one set comparison): the
fields it reads, and a few the strict path ignores as well (selector, managedFields,
targetRef, appProtocol, ...). Any other key sends the object to the strict path, so a
field the strict parsers learn to read later is never skipped here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from discovery.model import (
    DEFAULT_LOAD_BALANCING,
    SERVICE_NAME_LABEL,
    Endpoint,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
    ObjectMeta,
    Service,
    ServicePort,
)
from discovery.parse_balancing import parse_load_balancing
from discovery.parse_common import (
    IPV4_PATTERN,
    MAX_PORT,
    Problems,
    all_str,
    canonical_timestamp,
    good_dns1123_label,
    good_iana_svc_name,
    name_matcher,
)

_META_KEYS = frozenset(
    (
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "labels",
        "annotations",
        "generation",
        # ignored by the strict path too:
        "managedFields",
        "ownerReferences",
        "finalizers",
        "generateName",
    )
)
_SERVICE_KEYS = frozenset(("apiVersion", "kind", "metadata", "spec", "status"))
# Read here, or (selector, ipFamilies, ipFamilyPolicy) ignored by the strict path too.
_SERVICE_SPEC_KEYS = frozenset(
    (
        "type",
        "clusterIP",
        "clusterIPs",
        "ports",
        "sessionAffinity",
        "externalTrafficPolicy",
        "internalTrafficPolicy",
        "selector",
        "ipFamilies",
        "ipFamilyPolicy",
    )
)
_SERVICE_PORT_KEYS = frozenset(
    ("name", "protocol", "port", "targetPort", "nodePort", "appProtocol")  # the last ignored
)
_FAST_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")  # ExternalName: strict path
_POLICIES = ("Cluster", "Local")
_PROTOCOLS = ("TCP", "UDP", "SCTP")
_EMPTY_STATUS: tuple[Any, ...] = (None, {}, {"loadBalancer": {}})

_SLICE_KEYS = frozenset(("apiVersion", "kind", "metadata", "addressType", "endpoints", "ports"))
_ENDPOINT_KEYS = frozenset(("addresses", "conditions", "nodeName", "zone", "targetRef"))
_CONDITION_KEYS = frozenset(("ready", "serving", "terminating"))
_SLICE_PORT_KEYS = frozenset(("name", "protocol", "port", "appProtocol"))
_MAX_ADDRESSES = 100
_CONDITIONS = {
    (r, s, t): EndpointConditions(r, s, t)
    for r in (True, False)
    for s in (True, False)
    for t in (True, False)
}
_BOOL_OR_NONE = (None, True, False)  # compared by identity below (1 == True)

_ipv4 = IPV4_PATTERN.match
_dns1035 = name_matcher("dns1035")
_subdomain = name_matcher("subdomain")


def fast_service(doc: Mapping[str, Any]) -> Service | None:
    """The Service, when `doc` has a common shape and is valid; else None."""
    if not doc.keys() <= _SERVICE_KEYS or doc.get("status") not in _EMPTY_STATUS:
        return None
    spec = doc.get("spec")
    if type(spec) is not dict or not spec.keys() <= _SERVICE_SPEC_KEYS:
        return None
    meta = _meta(doc.get("metadata"), _dns1035)
    if meta is None:
        return None
    stype = spec.get("type", "ClusterIP")
    etp = spec.get("externalTrafficPolicy", "Cluster")
    itp = spec.get("internalTrafficPolicy", "Cluster")
    if (
        stype not in _FAST_TYPES
        or etp not in _POLICIES
        or itp not in _POLICIES
        or spec.get("sessionAffinity", "None") != "None"
    ):
        return None
    ip = spec.get("clusterIP")
    many = spec.get("clusterIPs")
    if type(ip) is not str or _ipv4(ip) is None:
        return None
    if many is not None and (type(many) is not list or len(many) != 1 or many[0] != ip):
        return None
    ports = _service_ports(spec.get("ports"))
    if ports is None:
        return None
    balancing = DEFAULT_LOAD_BALANCING
    if meta.annotations:
        p = Problems("")
        balancing = parse_load_balancing(p, meta.annotations)
        if p.errors:
            return None
    return Service(
        meta,
        stype,
        (ip,),
        False,
        ports,
        None,
        etp,
        itp,
        load_balancing=balancing,
    )


def _service_ports(raw: Any) -> tuple[ServicePort, ...] | None:
    if type(raw) is not list or not raw:
        return None
    many = len(raw) > 1
    ports: list[ServicePort] = []
    names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    for item in raw:
        if type(item) is not dict or not item.keys() <= _SERVICE_PORT_KEYS:
            return None
        port = service_port(item, many, names, seen)
        if port is None:
            return None
        ports.append(port)
    return tuple(ports)


def service_port(
    item: Mapping[str, Any], many: bool, names: set[str], seen: set[tuple[int, str]]
) -> ServicePort | None:
    """One item of spec.ports when valid (its name and port/protocol then added to `names`
    and `seen`), else None. Shared with parse_service.py, whose common case it is."""
    name = item.get("name", "")
    proto = item.get("protocol", "TCP")
    port = item.get("port")
    target = item.get("targetPort", port)
    node_port = item.get("nodePort")
    if not (
        type(name) is str
        and ((name and good_dns1123_label(name)) or (not name and not many))
        and name not in names
        and type(proto) is str
        and proto in _PROTOCOLS
        and type(port) is int
        and 0 < port <= MAX_PORT
        and (port, proto) not in seen
        and (
            (type(target) is int and 0 < target <= MAX_PORT)
            or (type(target) is str and good_iana_svc_name(target))
        )
        and (node_port is None or (type(node_port) is int and 0 <= node_port <= MAX_PORT))
    ):
        return None
    names.add(name)
    seen.add((port, proto))
    return ServicePort(name, proto, port, target, node_port or None)  # type: ignore[arg-type]


def fast_endpointslice(doc: Mapping[str, Any]) -> EndpointSlice | None:
    """The EndpointSlice, when `doc` is a valid IPv4 slice of a common shape; else None."""
    if not doc.keys() <= _SLICE_KEYS or doc.get("addressType") != "IPv4":
        return None
    meta = _meta(doc.get("metadata"), _subdomain)
    if meta is None:
        return None
    service_name = meta.labels.get(SERVICE_NAME_LABEL)
    if type(service_name) is not str or not service_name or not _dns1035(service_name):
        return None
    raw = doc.get("endpoints")
    endpoints: list[Endpoint] = []
    if raw is not None:
        if type(raw) is not list:
            return None
        for item in raw:
            ep = _endpoint(item)
            if ep is None:
                return None
            endpoints.append(ep)
    ports = _slice_ports(doc.get("ports"))
    if ports is None:
        return None
    return EndpointSlice(meta, service_name, "IPv4", tuple(endpoints), ports)


def _endpoint(item: Any) -> Endpoint | None:
    if type(item) is not dict or not item.keys() <= _ENDPOINT_KEYS:
        return None
    addresses = item.get("addresses")
    if type(addresses) is not list or not addresses or len(addresses) > _MAX_ADDRESSES:
        return None
    for addr in addresses:
        if type(addr) is not str or _ipv4(addr) is None:
            return None
    cond = item.get("conditions")
    if cond is None:
        conditions = _CONDITIONS[(True, True, False)]
    else:
        if type(cond) is not dict or not cond.keys() <= _CONDITION_KEYS:
            return None
        r = cond.get("ready")
        s = cond.get("serving")
        t = cond.get("terminating")
        if not (
            (r is None or r is True or r is False)
            and (s is None or s is True or s is False)
            and (t is None or t is True or t is False)
        ):
            return None
        conditions = _CONDITIONS[(r is not False, s is not False, t is True)]
    node_name = item.get("nodeName", "")
    zone = item.get("zone", "")
    if type(node_name) is not str or type(zone) is not str:
        return None
    return Endpoint(tuple(addresses), conditions, node_name, zone)


def _slice_ports(raw: Any) -> tuple[EndpointPort, ...] | None:
    if raw is None:
        return ()
    if type(raw) is not list:
        return None
    ports: list[EndpointPort] = []
    names: set[str] = set()
    for item in raw:
        if type(item) is not dict or not item.keys() <= _SLICE_PORT_KEYS:
            return None
        port = slice_port(item, names)
        if port is None:
            return None
        ports.append(port)
    return tuple(ports)


def slice_port(item: Mapping[str, Any], names: set[str]) -> EndpointPort | None:
    """One item of an EndpointSlice's ports when valid (its name then added to `names`),
    else None. Shared with parse_endpointslice.py, whose common case it is."""
    name = item.get("name", "")
    proto = item.get("protocol", "TCP")
    port = item.get("port")
    if not (
        type(name) is str
        and (not name or good_dns1123_label(name))
        and name not in names
        and type(proto) is str
        and proto in _PROTOCOLS
        and type(port) is int
        and 0 < port <= MAX_PORT
    ):
        return None
    names.add(name)
    return EndpointPort(name, port, proto)  # type: ignore[arg-type]


def _meta(m: Any, name_ok: Callable[[str], bool]) -> ObjectMeta | None:
    """ObjectMeta of a namespaced object, when every field read is present and valid."""
    if type(m) is not dict or not m.keys() <= _META_KEYS:
        return None
    name = m.get("name")
    if type(name) is not str or not name or not name_ok(name):
        return None
    ns = m.get("namespace")
    if ns is None or ns == "":
        ns = "default"
    elif type(ns) is not str or not good_dns1123_label(ns):
        return None
    uid = m.get("uid", "")
    rv = m.get("resourceVersion", "")
    ts = m.get("creationTimestamp")
    generation = m.get("generation", 0)
    if type(uid) is not str or type(rv) is not str or type(generation) is not int:
        return None
    if ts is None:
        created = ""
    elif type(ts) is str:
        created = canonical_timestamp(ts)
    else:
        return None
    labels = m.get("labels")
    if labels is None:
        labels = {}
    elif type(labels) is not dict or not all_str(labels):
        return None
    annotations = m.get("annotations")
    if annotations is None:
        annotations = {}
    elif type(annotations) is not dict or not all_str(annotations):
        return None
    return ObjectMeta(name, ns, uid, rv, created, labels, annotations, generation)
