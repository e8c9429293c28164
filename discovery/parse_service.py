"""v1 Service manifest -> discovery.model.Service, validated as the API server would for
the fields a dataplane relies on.

nodePort is accepted in 1-65535: the 30000-32767 range is a cluster setting
(--service-node-port-range), not a property of the object, so seaway does not impose it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, cast

from discovery.model import (
    DEFAULT_AFFINITY_TIMEOUT,
    DEFAULT_LOAD_BALANCING,
    Protocol,
    Service,
    ServicePort,
    ServiceType,
    TrafficDistribution,
    TrafficPolicy,
)
from discovery.parse_balancing import parse_load_balancing
from discovery.parse_common import (
    IANA_MESSAGE,
    IPV4_PATTERN,
    Problems,
    check_dns1123_label,
    check_dns1123_subdomain,
    check_enum,
    check_ip,
    check_port,
    get_int,
    get_list,
    get_map,
    get_str,
    get_str_list,
    is_iana_svc_name,
    load_balancer_ingress,
    read_meta,
    show,
)
from discovery.parse_fast import service_port

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICIES = ("Cluster", "Local")
AFFINITIES = ("None", "ClientIP")
TRAFFIC_DISTRIBUTIONS = ("PreferClose", "PreferSameZone", "PreferSameNode")
MAX_AFFINITY_TIMEOUT = 86400
_IPV4_OK = IPV4_PATTERN.match


def parse_service(p: Problems, doc: Mapping[str, Any]) -> Service | None:
    meta = read_meta(p, doc, namespaced=True, name_check="dns1035")
    spec = doc.get("spec")
    if type(spec) is not dict:
        spec = get_map(p, doc, "spec", "")
    stype = _enum(p, spec, "type", SERVICE_TYPES, "ClusterIP")
    cluster_ips, headless = _cluster_ips(p, spec)
    ports = _ports(p, spec)
    if not ports and not headless and stype != "ExternalName" and spec.get("ports") in (None, []):
        p.add("spec.ports", "required (at least one port)")
    timeout = _affinity(p, spec) if "sessionAffinity" in spec else None
    etp = _enum(p, spec, "externalTrafficPolicy", POLICIES, "Cluster")
    itp = _enum(p, spec, "internalTrafficPolicy", POLICIES, "Cluster")
    external_ips: list[str] = []
    if spec.get("externalIPs"):
        external_ips = get_str_list(p, spec, "externalIPs", "spec.")
        for i, ip in enumerate(external_ips):
            check_ip(p, ip, f"spec.externalIPs[{i}]")
    external_name = ""
    if "externalName" in spec or stype == "ExternalName":
        external_name = _external_name(p, spec, stype)
    hc = None
    if spec.get("healthCheckNodePort") is not None:
        hc = check_port(
            p, get_int(p, spec, "healthCheckNodePort", "spec."), "spec.healthCheckNodePort", False
        )
    lb = load_balancer_ingress(p, doc) if "status" in doc else ()
    balancing = parse_load_balancing(p, meta.annotations) if meta is not None else None
    distribution = ""
    if spec.get("trafficDistribution") is not None:
        value = get_str(p, spec, "trafficDistribution", "spec.")
        if value is not None and check_enum(
            p, value, TRAFFIC_DISTRIBUTIONS, "spec.trafficDistribution"
        ):
            distribution = value
    source_ranges: tuple[str, ...] = ()
    if spec.get("loadBalancerSourceRanges"):
        source_ranges = _source_ranges(p, spec, stype)

    if p.errors or meta is None:
        return None
    return Service(
        meta=meta,
        type=cast(ServiceType, stype),
        cluster_ips=cluster_ips,
        headless=headless,
        ports=ports,
        session_affinity_timeout=timeout,
        external_traffic_policy=cast(TrafficPolicy, etp),
        internal_traffic_policy=cast(TrafficPolicy, itp),
        external_ips=tuple(external_ips),
        load_balancer_ips=tuple(e.ip for e in lb if e.ip),
        load_balancer_hostnames=tuple(e.hostname for e in lb if e.hostname and not e.ip),
        external_name=external_name,
        health_check_node_port=hc,
        load_balancing=balancing or DEFAULT_LOAD_BALANCING,
        traffic_distribution=cast(TrafficDistribution, distribution),
        load_balancer_source_ranges=source_ranges,
    )


def _enum(
    p: Problems, spec: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str
) -> str:
    value = spec.get(key, default)
    if value in allowed:
        return cast(str, value)
    value = get_str(p, spec, key, "spec.") or default
    check_enum(p, value, allowed, "spec." + key)
    return value


def _external_name(p: Problems, spec: Mapping[str, Any], stype: str) -> str:
    name = get_str(p, spec, "externalName", "spec.") or ""
    if stype == "ExternalName":
        if not name:
            p.add("spec.externalName", "required when type is ExternalName")
        else:
            check_dns1123_subdomain(p, name.rstrip("."), "spec.externalName")
    return name


def _cluster_ips(p: Problems, spec: Mapping[str, Any]) -> tuple[tuple[str, ...], bool]:
    single = spec.get("clusterIP")
    many = spec.get("clusterIPs")
    if (  # the common case
        type(single) is str
        and _IPV4_OK(single) is not None
        and (many is None or (type(many) is list and len(many) == 1 and many[0] == single))
    ):
        return (single,), False
    return _cluster_ips_checked(p, spec)


def _cluster_ips_checked(p: Problems, spec: Mapping[str, Any]) -> tuple[tuple[str, ...], bool]:
    single = get_str(p, spec, "clusterIP", "spec.")
    many = get_str_list(p, spec, "clusterIPs", "spec.")
    if single and many and many[0] != single:
        p.add(
            "spec.clusterIPs[0]", f"must match spec.clusterIP {show(single)}, got {show(many[0])}"
        )
    ips = many or ([single] if single else [])
    if ips and ips[0] == "None":
        if len(ips) > 1:
            p.add("spec.clusterIPs", 'must be ["None"] alone for a headless service')
        return (), True
    field = "spec.clusterIPs" if many else "spec.clusterIP"
    for i, ip in enumerate(ips):
        if ip == "None":
            p.add(f"{field}[{i}]", '"None" is only allowed alone, first')
        else:
            check_ip(p, ip, f"{field}[{i}]" if many else field)
    return tuple(ips), False


def _ports(p: Problems, spec: Mapping[str, Any]) -> tuple[ServicePort, ...]:
    raw = get_list(p, spec, "ports", "spec.")
    ports: list[ServicePort] = []
    names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    many = len(raw) > 1
    for i, item in enumerate(raw):
        if type(item) is dict:  # the common case: everything valid (parse_fast.py)
            port = service_port(item, many, names, seen)
            if port is not None:
                ports.append(port)
                continue
        _port_checked(p, item, i, many, names, seen, ports)
    return tuple(ports)


def _port_checked(
    p: Problems,
    item: Any,
    i: int,
    many: bool,
    names: set[str],
    seen: set[tuple[int, str]],
    ports: list[ServicePort],
) -> None:
    """One port, every problem reported (the slow path)."""
    path = f"spec.ports[{i}]."
    if type(item) is not dict:
        p.add(path[:-1], "must be a mapping, got " + show(item))
        return
    name = get_str(p, item, "name", path) or ""
    if name:
        if check_dns1123_label(p, name, path + "name") and name in names:
            p.add(path + "name", f"duplicate port name {show(name)}")
        names.add(name)
    elif many:
        p.add(path + "name", "required when the service has more than one port")
    proto = get_str(p, item, "protocol", path) or "TCP"
    check_enum(p, proto, PROTOCOLS, path + "protocol")
    port = get_int(p, item, "port", path)
    port = check_port(p, port, path + "port", required=item.get("port") is None)
    target = _target_port(p, item, path, port)
    node_port = get_int(p, item, "nodePort", path)
    if node_port == 0:
        node_port = None
    node_port = check_port(p, node_port, path + "nodePort", required=False)
    if port is not None:
        if (port, proto) in seen:
            p.add(path + "port", f"duplicate port {port}/{proto}")
        seen.add((port, proto))
        if target is not None:
            ports.append(ServicePort(name, cast(Protocol, proto), port, target, node_port))


def _target_port(
    p: Problems, item: Mapping[str, Any], path: str, port: int | None
) -> int | str | None:
    v = item.get("targetPort")
    if v is None:
        return port  # the Kubernetes default: same as port
    if type(v) is int:
        return check_port(p, v, path + "targetPort")
    if type(v) is str and is_iana_svc_name(v):  # "8080" quoted is a (bad) name, as in k8s
        return v
    p.add(path + "targetPort", IANA_MESSAGE + show(v))
    return None


def _affinity(p: Problems, spec: Mapping[str, Any]) -> int | None:
    affinity = get_str(p, spec, "sessionAffinity", "spec.") or "None"
    if not check_enum(p, affinity, AFFINITIES, "spec.sessionAffinity") or affinity == "None":
        return None
    cfg = get_map(p, spec, "sessionAffinityConfig", "spec.")
    client = get_map(p, cfg, "clientIP", "spec.sessionAffinityConfig.")
    path = "spec.sessionAffinityConfig.clientIP."
    timeout = get_int(p, client, "timeoutSeconds", path)
    if timeout is None:
        return DEFAULT_AFFINITY_TIMEOUT
    if not 1 <= timeout <= MAX_AFFINITY_TIMEOUT:
        p.add(path + "timeoutSeconds", f"must be 1-86400, got {timeout}")
        return None
    return timeout


def _source_ranges(p: Problems, spec: Mapping[str, Any], stype: str) -> tuple[str, ...]:
    """spec.loadBalancerSourceRanges -> canonical CIDRs. Like the API server: only for
    type LoadBalancer, each a CIDR (surrounding spaces tolerated, as kube-proxy does;
    host bits are allowed and cleared)."""
    path = "spec.loadBalancerSourceRanges"
    values = get_list(p, spec, "loadBalancerSourceRanges", "spec.")
    if stype != "LoadBalancer":
        p.add(path, "may only be used when type is LoadBalancer")
        return ()
    out: list[str] = []
    for i, value in enumerate(values):
        if type(value) is not str:
            p.add(f"{path}[{i}]", "must be a string, got " + show(value))
            continue
        text = value.strip()
        try:
            if "/" not in text:
                raise ValueError(text)
            out.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            p.add(f"{path}[{i}]", f"must be a CIDR (10.0.0.0/8, fd00::/64), got {show(value)}")
    return tuple(out)
