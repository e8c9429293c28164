"""The Snapshot: the immutable, resolved view every dataplane consumes.

Dataplanes never see the store or raw EndpointSlices; they see service ports with their
usable endpoints already chosen (ready first; serving-and-terminating only when none is
ready; duplicates across slices merged; named target ports resolved).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from discovery.auth_secrets import AuthSecret
from discovery.fast_init import fast_init
from discovery.model import (
    DEFAULT_LOAD_BALANCING,
    Ingress,
    IngressClass,
    LoadBalancing,
    Protocol,
    Service,
    TLSSecret,
    TrafficPolicy,
)
from discovery.model_gateway import (
    Gateway,
    GatewayClass,
    HTTPRoute,
    Namespace,
    ReferenceGrant,
    TCPRoute,
    TLSRoute,
    UDPRoute,
)
from discovery.nginx_configmap import NginxGlobalSettings
from discovery.nginx_settings import NO_ANNOTATIONS, IngressAnnotations


class ServicePortName(NamedTuple):
    """kube-proxy's ServicePortName: namespace/name:portname plus protocol."""

    namespace: str
    name: str
    port: str  # the service port's name ("" for a single unnamed port)
    protocol: Protocol

    def __str__(self) -> str:
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port}" if self.port else base


@fast_init
@dataclass(frozen=True, slots=True)
class EndpointInfo:
    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str = ""
    zone: str = ""
    hint_zones: tuple[str, ...] = ()  # EndpointSlice hints.forZones
    hint_nodes: tuple[str, ...] = ()  # EndpointSlice hints.forNodes

    @property
    def address(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


@fast_init
@dataclass(frozen=True, slots=True)
class ServicePortInfo:
    name: ServicePortName
    cluster_ips: tuple[str, ...]
    port: int
    protocol: Protocol
    node_port: int | None = None
    session_affinity_timeout: int | None = None  # seconds, when ClientIP affinity is on
    external_traffic_policy: TrafficPolicy = "Cluster"
    internal_traffic_policy: TrafficPolicy = "Cluster"
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    # spec.loadBalancerSourceRanges (CIDRs): traffic to a load-balancer IP from outside
    # them is dropped. Empty: no restriction.
    load_balancer_source_ranges: tuple[str, ...] = ()
    # spec.healthCheckNodePort of an externalTrafficPolicy: Local LoadBalancer service.
    health_check_node_port: int | None = None
    # The Service's balancer (annotation seaway.dev/load-balancer), for L4 and L7 proxies.
    load_balancing: LoadBalancing = DEFAULT_LOAD_BALANCING
    # Every endpoint the slices list for this port (merged, deduplicated by ip:port),
    # and the usable subset in stable order (sorted by ip, port). `endpoints` is what
    # cluster-wide traffic uses, so topology (hints, trafficDistribution) is applied to it
    # when the snapshot is built; `local_endpoints()` (Local policies) ignores topology.
    all_endpoints: tuple[EndpointInfo, ...] = ()
    endpoints: tuple[EndpointInfo, ...] = ()

    def local_endpoints(self, node_name: str) -> tuple[EndpointInfo, ...]:
        """Usable endpoints on this node, for Local traffic policies.

        Like kube-proxy, local selection falls back to serving-and-terminating local
        endpoints when no local endpoint is ready.
        """
        local = [e for e in self.all_endpoints if e.node_name == node_name]
        ready = tuple(e for e in local if e.ready)
        if ready:
            return ready
        return tuple(e for e in local if e.serving and e.terminating)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a dataplane needs for one sync. Never mutated after it is built."""

    generation: int = 0
    service_ports: Mapping[ServicePortName, ServicePortInfo] = field(default_factory=dict)
    # Raw objects the L7 dataplane compiles its router from.
    services: Mapping[tuple[str, str], Service] = field(default_factory=dict)
    ingresses: tuple[Ingress, ...] = ()
    ingress_classes: tuple[IngressClass, ...] = ()
    tls_secrets: Mapping[tuple[str, str], TLSSecret] = field(default_factory=dict)
    # The Secrets the Ingresses' auth-secret and proxy-ssl-secret annotations name (and
    # only those), read for that use: htpasswd users, CA bundles. A named Secret that does
    # not exist is absent.
    auth_secrets: Mapping[tuple[str, str], AuthSecret] = field(default_factory=dict)
    # EndpointSlice last-change-trigger-time values (epoch seconds) that this snapshot
    # is the first to include, for network-programming latency.
    trigger_times: tuple[float, ...] = ()

    # Gateway API objects (every one the source has; discovery/gateway_attach.py decides
    # which are seaway's) and the Namespaces, for allowedRoutes selectors. In key order.
    gateway_classes: tuple[GatewayClass, ...] = ()
    gateways: tuple[Gateway, ...] = ()
    http_routes: tuple[HTTPRoute, ...] = ()
    tls_routes: tuple[TLSRoute, ...] = ()
    tcp_routes: tuple[TCPRoute, ...] = ()
    udp_routes: tuple[UDPRoute, ...] = ()
    reference_grants: tuple[ReferenceGrant, ...] = ()
    namespaces: tuple[Namespace, ...] = ()

    # (namespace, service name) -> that service's ports, for Ingress backend resolution.
    ports_by_service: Mapping[tuple[str, str], tuple[ServicePortInfo, ...]] = field(
        default_factory=dict
    )
    # The ingress-nginx annotations of every Ingress that carries some (under
    # --annotations-prefix), by (namespace, name), parsed once per change of the Ingress;
    # an Ingress absent here has none. Read them with `annotations_of`.
    ingress_annotations: Mapping[tuple[str, str], IngressAnnotations] = field(
        default_factory=dict
    )
    # ingress-nginx's global settings (its ConfigMap over its defaults), or None when
    # seaway is not in ingress-nginx mode and its own defaults apply.
    nginx: NginxGlobalSettings | None = None

    def annotations_of(self, ingress: Ingress) -> IngressAnnotations:
        key = (ingress.meta.namespace, ingress.meta.name)
        return self.ingress_annotations.get(key, NO_ANNOTATIONS)
