"""Small builders for model objects, for tests in every area.

They build the frozen dataclasses of `discovery.model` directly (no manifest parsing), with
defaults that make a valid, proxied object:

    svc = make_service("web", cluster_ip="10.0.0.1", ports=[port("http", 80, 8080)])
    eps = make_slice(svc, endpoints=[ep("10.1.0.1"), ep("10.1.0.2", ready=False)],
                     ports=[("http", 8080)])

Endpoint specs may also be plain tuples `(ip, ready, serving, terminating, node)` (a
prefix of it is fine: `("10.1.0.1",)` or `("10.1.0.1", False)`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from discovery.model import (
    SERVICE_NAME_LABEL,
    Endpoint,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
    Ingress,
    IngressBackend,
    IngressClass,
    IngressPath,
    IngressRule,
    IngressTLS,
    ObjectMeta,
    PathType,
    Protocol,
    Service,
    ServicePort,
    ServiceType,
    TLSSecret,
    TrafficDistribution,
    TrafficPolicy,
)

AddressType = Literal["IPv4", "IPv6", "FQDN"]
EndpointSpec = Endpoint | tuple[object, ...] | str
PortSpec = ServicePort | tuple[object, ...] | int
SlicePortSpec = EndpointPort | tuple[object, ...] | int


def meta(
    name: str,
    ns: str = "default",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    resource_version: str = "",
    creation_timestamp: str = "",
) -> ObjectMeta:
    return ObjectMeta(
        name=name,
        namespace=ns,
        labels=dict(labels or {}),
        annotations=dict(annotations or {}),
        resource_version=resource_version,
        creation_timestamp=creation_timestamp,
    )


def port(
    name: str = "",
    port: int = 80,
    target_port: int | str | None = None,
    protocol: Protocol = "TCP",
    node_port: int | None = None,
) -> ServicePort:
    """A service port; target_port defaults to `port`."""
    return ServicePort(
        name=name,
        protocol=protocol,
        port=port,
        target_port=port if target_port is None else target_port,
        node_port=node_port,
    )


def _to_port(spec: PortSpec) -> ServicePort:
    if isinstance(spec, ServicePort):
        return spec
    if isinstance(spec, int):
        return port("", spec)
    return port(*spec)  # type: ignore[arg-type]


def make_service(
    name: str,
    ns: str = "default",
    cluster_ip: str | None = "10.96.0.1",
    ports: Sequence[PortSpec] = (80,),
    *,
    cluster_ips: Sequence[str] | None = None,
    type: ServiceType = "ClusterIP",
    headless: bool = False,
    session_affinity_timeout: int | None = None,
    external_traffic_policy: TrafficPolicy = "Cluster",
    internal_traffic_policy: TrafficPolicy = "Cluster",
    external_ips: Sequence[str] = (),
    load_balancer_ips: Sequence[str] = (),
    external_name: str = "",
    health_check_node_port: int | None = None,
    annotations: Mapping[str, str] | None = None,
    traffic_distribution: TrafficDistribution = "",
    load_balancer_source_ranges: Sequence[str] = (),
) -> Service:
    """A Service. `ports` items: ServicePort, an int (unnamed port, target = port) or a
    tuple of `port()` arguments `(name, port, target_port, protocol, node_port)`.
    `headless=True` or `type="ExternalName"` clears the cluster IPs."""
    if cluster_ips is None:
        cluster_ips = [cluster_ip] if cluster_ip else []
    if headless or type == "ExternalName":
        cluster_ips = []
    return Service(
        meta=meta(name, ns, annotations=annotations),
        type=type,
        cluster_ips=tuple(cluster_ips),
        headless=headless,
        ports=tuple(_to_port(p) for p in ports),
        session_affinity_timeout=session_affinity_timeout,
        external_traffic_policy=external_traffic_policy,
        internal_traffic_policy=internal_traffic_policy,
        external_ips=tuple(external_ips),
        load_balancer_ips=tuple(load_balancer_ips),
        external_name=external_name,
        health_check_node_port=health_check_node_port,
        traffic_distribution=traffic_distribution,
        load_balancer_source_ranges=tuple(load_balancer_source_ranges),
    )


def ep(
    ip: str | Sequence[str],
    ready: bool = True,
    serving: bool | None = None,
    terminating: bool = False,
    node: str = "",
    zone: str = "",
    hint_zones: Sequence[str] = (),
    hint_nodes: Sequence[str] = (),
) -> Endpoint:
    """An endpoint; `serving` defaults to `ready` (as for a pod that is not terminating)."""
    addresses = (ip,) if isinstance(ip, str) else tuple(ip)
    return Endpoint(
        addresses=addresses,
        conditions=EndpointConditions(
            ready=ready,
            serving=ready if serving is None else serving,
            terminating=terminating,
        ),
        node_name=node,
        zone=zone,
        hint_zones=tuple(hint_zones),
        hint_nodes=tuple(hint_nodes),
    )


def _to_endpoint(spec: EndpointSpec) -> Endpoint:
    if isinstance(spec, Endpoint):
        return spec
    if isinstance(spec, str):
        return ep(spec)
    return ep(*spec)  # type: ignore[arg-type]


def _to_slice_port(spec: SlicePortSpec) -> EndpointPort:
    if isinstance(spec, EndpointPort):
        return spec
    if isinstance(spec, int):
        return EndpointPort("", spec)
    return EndpointPort(*spec)  # type: ignore[arg-type]


def make_slice(
    service: Service | str,
    endpoints: Iterable[EndpointSpec] = (),
    ports: Sequence[SlicePortSpec] | None = None,
    *,
    name: str | None = None,
    ns: str | None = None,
    address_type: AddressType = "IPv4",
    trigger_time: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> EndpointSlice:
    """An EndpointSlice of `service` (a Service or its name).

    `ports` items: EndpointPort, an int (unnamed port) or `(name, port[, protocol])`.
    Default ports: for a Service, one slice port per service port with the same name and
    protocol and the numeric target port (a named target port becomes 8080); for a bare
    name, one unnamed port 80. Default slice name: `<service>-<address family>`.
    """
    if isinstance(service, Service):
        svc_name, svc_ns = service.meta.name, service.meta.namespace
        default_ports = [
            EndpointPort(
                p.name,
                p.target_port if isinstance(p.target_port, int) else 8080,
                p.protocol,
            )
            for p in service.ports
        ]
    else:
        svc_name, svc_ns = service, "default"
        default_ports = [EndpointPort("", 80)]
    namespace = svc_ns if ns is None else ns
    slice_ports = default_ports if ports is None else [_to_slice_port(p) for p in ports]
    all_labels = {SERVICE_NAME_LABEL: svc_name, **(labels or {})}
    annotations = {}
    if trigger_time is not None:
        annotations["endpoints.kubernetes.io/last-change-trigger-time"] = trigger_time
    return EndpointSlice(
        meta=meta(
            name or f"{svc_name}-{address_type.lower()}",
            namespace,
            labels=all_labels,
            annotations=annotations,
        ),
        service_name=svc_name,
        address_type=address_type,
        endpoints=tuple(_to_endpoint(e) for e in endpoints),
        ports=tuple(slice_ports),
    )


def backend(service: str, port: int | str) -> IngressBackend:
    if isinstance(port, int):
        return IngressBackend(service_name=service, port_number=port)
    return IngressBackend(service_name=service, port_name=port)


def path(
    p: str, service: str, svc_port: int | str = 80, path_type: PathType = "Prefix"
) -> IngressPath:
    return IngressPath(path=p, path_type=path_type, backend=backend(service, svc_port))


def rule(host: str, *paths: IngressPath) -> IngressRule:
    return IngressRule(host=host, paths=tuple(paths))


def make_ingress(
    name: str,
    ns: str = "default",
    rules: Sequence[IngressRule] = (),
    *,
    ingress_class_name: str | None = None,
    default_backend: IngressBackend | None = None,
    tls: Sequence[tuple[Sequence[str], str]] = (),
    annotations: Mapping[str, str] | None = None,
    creation_timestamp: str = "",
) -> Ingress:
    """An Ingress; `tls` items are `(hosts, secret_name)`."""
    return Ingress(
        meta=meta(name, ns, annotations=annotations, creation_timestamp=creation_timestamp),
        ingress_class_name=ingress_class_name,
        default_backend=default_backend,
        rules=tuple(rules),
        tls=tuple(IngressTLS(hosts=tuple(h), secret_name=s) for h, s in tls),
    )


def make_ingress_class(
    name: str, controller: str = "seaway.dev/ingress", default: bool = False
) -> IngressClass:
    annotations = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else {}
    return IngressClass(meta=meta(name, "", annotations=annotations), controller=controller)


def make_tls_secret(
    name: str, ns: str = "default", cert_pem: bytes = b"", key_pem: bytes = b""
) -> TLSSecret:
    return TLSSecret(meta=meta(name, ns), cert_pem=cert_pem, key_pem=key_pem)
