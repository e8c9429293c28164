"""Typed, immutable Kubernetes objects seaway understands.

Only the fields a dataplane needs are kept; everything else a manifest carries
(managedFields, status we do not use, ...) is accepted and dropped by the parser.
Objects are frozen dataclasses with slots: cheap to build by the ten thousand and safe
to share between the store, the Snapshot and the dataplanes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

# ObjectKey and ObjectMeta live in model_meta (the Gateway API types in model_gateway use
# them too); re-exported here, where every other module looks for them.
from discovery.fast_init import fast_init
from discovery.model_gateway import GATEWAY_KINDS, GatewayObject
from discovery.model_meta import ObjectKey as ObjectKey
from discovery.model_meta import ObjectMeta as ObjectMeta

Protocol = Literal["TCP", "UDP", "SCTP"]
ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]
TrafficPolicy = Literal["Cluster", "Local"]
# spec.trafficDistribution ("" = unset). PreferClose is the older name of PreferSameZone.
TrafficDistribution = Literal["", "PreferClose", "PreferSameZone", "PreferSameNode"]
PathType = Literal["Exact", "Prefix", "ImplementationSpecific"]

KIND_SERVICE = "Service"
KIND_ENDPOINTSLICE = "EndpointSlice"
KIND_INGRESS = "Ingress"
KIND_INGRESSCLASS = "IngressClass"
KIND_SECRET = "Secret"
KIND_NODE = "Node"
KIND_CONFIGMAP = "ConfigMap"
KINDS = (
    KIND_SERVICE,
    KIND_ENDPOINTSLICE,
    KIND_INGRESS,
    KIND_INGRESSCLASS,
    KIND_SECRET,
    KIND_NODE,
    KIND_CONFIGMAP,
    *GATEWAY_KINDS,  # Gateway API and Namespace (discovery/model_gateway.py)
)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LAST_CHANGE_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
ZONE_LABEL = "topology.kubernetes.io/zone"
DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds, the Kubernetes default for ClientIP affinity
LOAD_BALANCER_ANNOTATION = "seaway.dev/load-balancer"
HASH_BY_ANNOTATION = "seaway.dev/hash-by"
# Endpoint health of a Service (discovery/parse_health.py; README "How seaway decides an
# endpoint is bad"): active checks, opt-in, and passive outlier detection, on by default.
HEALTH_CHECK_PATH_ANNOTATION = "seaway.dev/health-check-path"
HEALTH_CHECK_INTERVAL_ANNOTATION = "seaway.dev/health-check-interval"
HEALTH_CHECK_TIMEOUT_ANNOTATION = "seaway.dev/health-check-timeout"
HEALTHY_THRESHOLD_ANNOTATION = "seaway.dev/health-check-healthy-threshold"
UNHEALTHY_THRESHOLD_ANNOTATION = "seaway.dev/health-check-unhealthy-threshold"
OUTLIER_ERRORS_ANNOTATION = "seaway.dev/outlier-consecutive-errors"
OUTLIER_5XX_ANNOTATION = "seaway.dev/outlier-consecutive-5xx"

# How a service port's proxy spreads connections (L4) and requests (L7) over endpoints;
# the algorithms are in proxy/balancers/, the table of them in README.md.
LoadBalancerPolicy = Literal["round-robin", "least-request", "ewma", "maglev"]
LOAD_BALANCER_POLICIES: tuple[LoadBalancerPolicy, ...] = (
    "round-robin",
    "least-request",
    "ewma",
    "maglev",
)
DEFAULT_LOAD_BALANCER: LoadBalancerPolicy = "least-request"
HashSource = Literal["client-ip", "header", "cookie"]


@fast_init
@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    protocol: Protocol
    port: int
    target_port: int | str  # number, or the name of a container port
    node_port: int | None = None


@dataclass(frozen=True, slots=True)
class HashBy:
    """What consistent hashing (maglev) hashes: the client IP, a request header or a
    cookie. L4 has no header or cookie, so it always hashes the client IP."""

    source: HashSource = "client-ip"
    name: str = ""  # the header name (lower case) or the cookie name

    def __str__(self) -> str:
        return self.source if self.source == "client-ip" else f"{self.source}:{self.name}"


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """How a Service's endpoints are judged (annotations seaway.dev/health-check-* and
    seaway.dev/outlier-*), by the L4 and L7 proxies.

    Active checks are on when `check_interval` is set (any health-check annotation sets
    it): `check_path` "" checks by TCP connect, else by `GET check_path` (2xx-3xx pass).
    Passive outlier detection ejects an endpoint after `consecutive_errors` connect
    failures, timeouts or resets in a row (0: off) and, opt-in, after `consecutive_5xx`
    responses of status 500-599 in a row (0: off)."""

    check_path: str = ""
    check_interval: float = 0.0  # seconds; 0: no active checks
    check_timeout: float = 2.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 3
    consecutive_errors: int = 5
    consecutive_5xx: int = 0

    @property
    def active(self) -> bool:
        return self.check_interval > 0


DEFAULT_ENDPOINT_HEALTH = EndpointHealth()


@dataclass(frozen=True, slots=True)
class LoadBalancing:
    """A Service's choice of balancer (annotations seaway.dev/load-balancer, -hash-by) and
    how its endpoints' health is judged (`health`: which endpoints the balancer skips)."""

    policy: LoadBalancerPolicy = DEFAULT_LOAD_BALANCER
    hash_by: HashBy = HashBy()
    health: EndpointHealth = DEFAULT_ENDPOINT_HEALTH


DEFAULT_LOAD_BALANCING = LoadBalancing()


@fast_init
@dataclass(frozen=True, slots=True)
class Service:
    meta: ObjectMeta
    type: ServiceType = "ClusterIP"
    cluster_ips: tuple[str, ...] = ()  # "None" (headless) is kept out: see `headless`
    headless: bool = False
    ports: tuple[ServicePort, ...] = ()
    session_affinity_timeout: int | None = None  # seconds when sessionAffinity is ClientIP
    external_traffic_policy: TrafficPolicy = "Cluster"
    internal_traffic_policy: TrafficPolicy = "Cluster"
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()  # status.loadBalancer.ingress[].ip
    load_balancer_hostnames: tuple[str, ...] = ()  # status.loadBalancer.ingress[].hostname
    external_name: str = ""
    health_check_node_port: int | None = None
    load_balancing: LoadBalancing = DEFAULT_LOAD_BALANCING
    traffic_distribution: TrafficDistribution = ""
    # spec.loadBalancerSourceRanges as canonical CIDRs (e.g. "10.0.0.0/8"), in order.
    load_balancer_source_ranges: tuple[str, ...] = ()

    kind = KIND_SERVICE

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(KIND_SERVICE, self.meta.namespace, self.meta.name)

    @property
    def proxied(self) -> bool:
        """kube-proxy ignores ExternalName and headless services; so do our dataplanes."""
        return self.type != "ExternalName" and not self.headless and bool(self.cluster_ips)


@dataclass(frozen=True, slots=True)
class EndpointConditions:
    # Resolved as kube-proxy does: ready/serving default to True when unset,
    # terminating defaults to False.
    ready: bool = True
    serving: bool = True
    terminating: bool = False


@fast_init
@dataclass(frozen=True, slots=True)
class Endpoint:
    addresses: tuple[str, ...]
    conditions: EndpointConditions = EndpointConditions()
    node_name: str = ""
    zone: str = ""
    hint_zones: tuple[str, ...] = ()  # hints.forZones[].name
    hint_nodes: tuple[str, ...] = ()  # hints.forNodes[].name


@fast_init
@dataclass(frozen=True, slots=True)
class EndpointPort:
    name: str
    port: int
    protocol: Protocol = "TCP"


@fast_init
@dataclass(frozen=True, slots=True)
class EndpointSlice:
    meta: ObjectMeta
    service_name: str  # from the kubernetes.io/service-name label
    address_type: Literal["IPv4", "IPv6", "FQDN"] = "IPv4"
    endpoints: tuple[Endpoint, ...] = ()
    ports: tuple[EndpointPort, ...] = ()

    kind = KIND_ENDPOINTSLICE

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(KIND_ENDPOINTSLICE, self.meta.namespace, self.meta.name)


@dataclass(frozen=True, slots=True)
class IngressBackend:
    """A service backend (port by number or by name) or, rarely, a resource backend."""

    service_name: str = ""
    port_number: int | None = None
    port_name: str = ""
    resource: str = ""  # "apiGroup/Kind/name" of a resource backend; seaway answers 503


@dataclass(frozen=True, slots=True)
class IngressPath:
    path: str
    path_type: PathType
    backend: IngressBackend


@dataclass(frozen=True, slots=True)
class IngressRule:
    host: str  # "" matches every host; may be "*.example.com"
    paths: tuple[IngressPath, ...] = ()


@dataclass(frozen=True, slots=True)
class IngressTLS:
    hosts: tuple[str, ...]
    secret_name: str


@dataclass(frozen=True, slots=True, order=True)
class LoadBalancerIngress:
    """One entry of status.loadBalancer.ingress (of an Ingress or a Service): an IP, a
    hostname, or both. Ordered by hostname then IP, as ingress-nginx sorts them."""

    hostname: str = ""
    ip: str = ""

    @property
    def address(self) -> str:
        return self.ip or self.hostname


@dataclass(frozen=True, slots=True)
class Ingress:
    meta: ObjectMeta
    ingress_class_name: str | None = None
    default_backend: IngressBackend | None = None
    rules: tuple[IngressRule, ...] = ()
    tls: tuple[IngressTLS, ...] = ()
    # status.loadBalancer.ingress as the object shows it (written by seaway in API mode:
    # discovery/ingress_status.py).
    load_balancer: tuple[LoadBalancerIngress, ...] = ()

    kind = KIND_INGRESS

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(KIND_INGRESS, self.meta.namespace, self.meta.name)


@dataclass(frozen=True, slots=True)
class IngressClass:
    meta: ObjectMeta
    controller: str

    kind = KIND_INGRESSCLASS

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(KIND_INGRESSCLASS, "", self.meta.name)

    @property
    def is_default(self) -> bool:
        return self.meta.annotations.get(DEFAULT_CLASS_ANNOTATION, "").lower() == "true"


@dataclass(frozen=True, slots=True)
class TLSSecret:
    """A v1 Secret of type kubernetes.io/tls; PEM bytes decoded from base64. `ca_pem` is
    its optional `ca.crt` (b"" without one): ingress-nginx's proxy-ssl-secret may be a TLS
    Secret whose CA verifies the pods' certificates."""

    meta: ObjectMeta
    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    ca_pem: bytes = b""

    kind = KIND_SECRET

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(KIND_SECRET, self.meta.namespace, self.meta.name)

    @property
    def data(self) -> Mapping[str, bytes]:
        """The Secret's data as the API holds it (key -> bytes)."""
        found = {"tls.crt": self.cert_pem, "tls.key": self.key_pem}
        if self.ca_pem:
            found["ca.crt"] = self.ca_pem
        return found


@dataclass(frozen=True, slots=True)
class GenericSecret:
    """A v1 Secret of any other type (Opaque, ...): its data decoded from base64. seaway
    keeps only those its Ingresses name (auth-secret, proxy-ssl-secret): the file source
    drops the others (discovery/file_source.py) and the kube source never fetches them."""

    meta: ObjectMeta
    secret_type: str = "Opaque"
    data: Mapping[str, bytes] = field(default_factory=dict, repr=False)

    kind = KIND_SECRET

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(KIND_SECRET, self.meta.namespace, self.meta.name)


@dataclass(frozen=True, slots=True)
class Node:
    """A v1 Node: only this node's, for its topology.kubernetes.io/zone label and its
    addresses (status.addresses as (type, address): the Ingress status address)."""

    meta: ObjectMeta
    addresses: tuple[tuple[str, str], ...] = ()

    kind = KIND_NODE

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(KIND_NODE, "", self.meta.name)

    @property
    def zone(self) -> str:
        return self.meta.labels.get(ZONE_LABEL, "")


@dataclass(frozen=True, slots=True)
class ConfigMap:
    """A v1 ConfigMap's string data (binaryData is dropped). seaway reads one: the
    ingress-nginx settings named by --configmap."""

    meta: ObjectMeta
    data: Mapping[str, str] = field(default_factory=dict)

    kind = KIND_CONFIGMAP

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(KIND_CONFIGMAP, self.meta.namespace, self.meta.name)


KubeObject = (
    Service
    | EndpointSlice
    | Ingress
    | IngressClass
    | TLSSecret
    | GenericSecret
    | ConfigMap
    | Node
    | GatewayObject
)
