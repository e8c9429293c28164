"""Build Snapshots from the store, incrementally.

The first build resolves every Service; later builds take the store's changes and
recompute only the Services they touch (a Service change, or an EndpointSlice change
naming the Service in its previous or current service-name label). Unchanged
ServicePortInfo objects, and unchanged Snapshot fields, are shared with the previous
Snapshot (same objects), so `new.ingresses is old.ingresses` means "no Ingress changed".
Snapshot maps are plain dicts (they pickle) shared between Snapshots: never mutate them.
`invalidate()` makes the next build a full one reporting every service port (for a
retry after a failed dataplane sync); a build that raises does the same.

Ingress annotations are parsed when an Ingress changes (only that one), and ingress-nginx's
global settings when the ConfigMap named by --configmap changes (see IngressNginxMode).
The Secrets those annotations name (auth-secret, proxy-ssl-secret) are read for their use
(discovery/auth_secrets.py) when they or the annotations change; other Secrets but TLS
ones never reach the Snapshot.

Endpoint resolution follows kube-proxy's EndpointSliceCache:
- a slice belongs to the Service named by its kubernetes.io/service-name label in its
  namespace, and counts only when its addressType is a family of the Service's cluster
  IPs (FQDN slices never count);
- a slice port feeds the service port with the same name ("" for an unnamed port) and
  protocol; the slice carries the number, which is how a named targetPort resolves;
- one endpoint per slice endpoint, from its first address; duplicates (same ip:port)
  across slices merge, preferring a ready one; slices are read in name order;
- usable endpoints: the ready ones, or when none is ready the serving-and-terminating
  ones; topology (EndpointSlice hints, trafficDistribution: discovery/topology.py)
  narrows the ready ones for cluster-wide traffic, as kube-proxy does.

The node's zone is NodeTopology.zone when given (--node-zone), else the
topology.kubernetes.io/zone label of the Node named NodeTopology.node_name in the store
(the kube source watches that one Node); a change of it recomputes every service.
Per service port it also resolves what kube-proxy's ServicePortInfo holds:
loadBalancerSourceRanges (a family whose ranges include 0.0.0.0/0 or ::/0 is
unrestricted, so its ranges are left out) and the health-check node port (type
LoadBalancer with externalTrafficPolicy Local only).
"""

from __future__ import annotations

import gc
import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import TypeVar

from discovery.auth_secrets import AuthSecret, Use, read_auth_secret, secret_uses
from discovery.model import (
    KIND_CONFIGMAP,
    KIND_ENDPOINTSLICE,
    KIND_INGRESS,
    KIND_INGRESSCLASS,
    KIND_NODE,
    KIND_SECRET,
    KIND_SERVICE,
    LAST_CHANGE_TRIGGER_TIME,
    ConfigMap,
    EndpointSlice,
    GenericSecret,
    Ingress,
    IngressClass,
    KubeObject,
    Node,
    ObjectKey,
    Service,
    TLSSecret,
)
from discovery.model_gateway import (
    KIND_GATEWAY,
    KIND_GATEWAYCLASS,
    KIND_HTTPROUTE,
    KIND_NAMESPACE,
    KIND_REFERENCEGRANT,
    KIND_TCPROUTE,
    KIND_TLSROUTE,
    KIND_UDPROUTE,
    Gateway,
    GatewayClass,
    HTTPRoute,
    Namespace,
    ReferenceGrant,
    TCPRoute,
    TLSRoute,
    UDPRoute,
)
from discovery.nginx_annotations import parse_ingress_annotations
from discovery.nginx_configmap import IngressNginxMode, NginxGlobalSettings, global_settings
from discovery.nginx_settings import NO_ANNOTATIONS, IngressAnnotations
from discovery.snapshot import EndpointInfo, ServicePortInfo, ServicePortName, Snapshot
from discovery.store import Change, Store
from discovery.topology import NodeTopology, cluster_endpoints, endpoint_hints

NsName = tuple[str, str]
T = TypeVar("T")
NO_TOPOLOGY = NodeTopology()

# Kinds carried into the Snapshot as they are (sorted tuples): kind -> (builder slot, type).
_CARRIED: dict[str, tuple[str, type]] = {
    KIND_GATEWAYCLASS: ("_gateway_classes", GatewayClass),
    KIND_GATEWAY: ("_gateways", Gateway),
    KIND_HTTPROUTE: ("_http_routes", HTTPRoute),
    KIND_TLSROUTE: ("_tls_routes", TLSRoute),
    KIND_TCPROUTE: ("_tcp_routes", TCPRoute),
    KIND_UDPROUTE: ("_udp_routes", UDPRoute),
    KIND_REFERENCEGRANT: ("_reference_grants", ReferenceGrant),
    KIND_NAMESPACE: ("_namespaces", Namespace),
}


class SnapshotBuilder:
    """Turns the store's current objects into Snapshots; see the module docstring.

    `not_before` (epoch seconds): EndpointSlice trigger times older than this are left
    out of `Snapshot.trigger_times`, as kube-proxy ignores those older than its start.
    `topology`: this node's name and, when known from the command line, its zone.
    `nginx`: the annotation prefix and the ingress-nginx ConfigMap to read.
    """

    __slots__ = (
        "_annotations",
        "_auth_inputs",
        "_auth_secrets",
        "_config",
        "_full",
        "_gateway_classes",
        "_gateways",
        "_generation",
        "_http_routes",
        "_ingress_classes",
        "_ingresses",
        "_namespaces",
        "_nginx",
        "_nginx_mode",
        "_not_before",
        "_ports_by_service",
        "_reference_grants",
        "_service_ports",
        "_services",
        "_slices_by_service",
        "_store",
        "_tcp_routes",
        "_tls_routes",
        "_tls_secrets",
        "_topology",
        "_udp_routes",
    )

    def __init__(
        self,
        store: Store,
        *,
        not_before: float | None = None,
        topology: NodeTopology | None = None,
        nginx: IngressNginxMode | None = None,
    ) -> None:
        self._store = store
        self._not_before = not_before
        self._config = topology or NodeTopology()
        self._topology = self._config  # with the zone in force (the Node's label)
        self._nginx_mode = nginx or IngressNginxMode()
        self._generation = 0
        self._full = True  # the next build resolves everything
        # (namespace, service-name label) -> keys of the slices naming that service.
        self._slices_by_service: dict[NsName, set[ObjectKey]] = {}
        # The maps of the last Snapshot. Never mutated once handed out: a build that
        # changes one copies it first (copy on write).
        self._service_ports: dict[ServicePortName, ServicePortInfo] = {}
        self._ports_by_service: dict[NsName, tuple[ServicePortInfo, ...]] = {}
        self._services: dict[NsName, Service] = {}
        self._ingresses: tuple[Ingress, ...] = ()
        self._ingress_classes: tuple[IngressClass, ...] = ()
        self._tls_secrets: dict[NsName, TLSSecret] = {}
        self._annotations: dict[NsName, IngressAnnotations] = {}
        self._auth_secrets: dict[NsName, AuthSecret] = {}
        # what each AuthSecret was read from: (the Secret object, its uses), for reuse
        self._auth_inputs: dict[NsName, tuple[object, frozenset[Use]]] = {}
        self._nginx: NginxGlobalSettings | None = None
        self._gateway_classes: tuple[GatewayClass, ...] = ()
        self._gateways: tuple[Gateway, ...] = ()
        self._http_routes: tuple[HTTPRoute, ...] = ()
        self._tls_routes: tuple[TLSRoute, ...] = ()
        self._tcp_routes: tuple[TCPRoute, ...] = ()
        self._udp_routes: tuple[UDPRoute, ...] = ()
        self._reference_grants: tuple[ReferenceGrant, ...] = ()
        self._namespaces: tuple[Namespace, ...] = ()

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def topology(self) -> NodeTopology:
        """This node's name and the zone in force (given, or from its Node's label)."""
        return self._topology

    def _node_topology(self) -> NodeTopology:
        config = self._config
        if config.zone or not config.node_name:
            return config
        node = self._store.get(ObjectKey(KIND_NODE, "", config.node_name))
        zone = node.zone if isinstance(node, Node) else ""
        return NodeTopology(config.node_name, zone)

    def invalidate(self) -> None:
        """Make the next build a full one that reports every service port as changed
        (those of the last Snapshot too). For a dataplane whose sync failed: its retry
        then sees everything again, not only what changed since the failed attempt."""
        self._full = True

    def build(self) -> tuple[Snapshot, frozenset[ServicePortName]]:
        """Take the store's changes and return the new Snapshot and the service ports
        added, removed or changed since the previous build (all of them the first time)."""
        try:
            if self._full:
                # A full build allocates a few objects per endpoint and frees none: the
                # cyclic GC would walk the whole heap several times for nothing (about
                # +40% at 10k services), so it is paused meanwhile.
                with _gc_paused():
                    changes = self._store.take_changes()
                    changed = self._build_all()
                self._full = False
            else:
                changes = self._store.take_changes()
                changed = self._apply(changes)
        except BaseException:
            self._full = True  # the changes taken are lost: start over next time
            raise
        self._generation += 1
        snapshot = Snapshot(
            generation=self._generation,
            service_ports=self._service_ports,
            services=self._services,
            ingresses=self._ingresses,
            ingress_classes=self._ingress_classes,
            tls_secrets=self._tls_secrets,
            auth_secrets=self._auth_secrets,
            gateway_classes=self._gateway_classes,
            gateways=self._gateways,
            http_routes=self._http_routes,
            tls_routes=self._tls_routes,
            tcp_routes=self._tcp_routes,
            udp_routes=self._udp_routes,
            reference_grants=self._reference_grants,
            namespaces=self._namespaces,
            trigger_times=self._trigger_times(changes),
            ports_by_service=self._ports_by_service,
            ingress_annotations=self._annotations,
            nginx=self._nginx,
        )
        return snapshot, changed

    # -- full build ---------------------------------------------------------------

    def _build_all(self) -> frozenset[ServicePortName]:
        store = self._store
        previous = self._service_ports
        index: dict[NsName, set[ObjectKey]] = {}
        for key, obj in store.objects(KIND_ENDPOINTSLICE).items():
            if not isinstance(obj, EndpointSlice):
                continue
            index.setdefault((key.namespace, obj.service_name), set()).add(key)
        self._slices_by_service = index
        self._topology = self._node_topology()

        services: dict[NsName, Service] = {}
        service_ports: dict[ServicePortName, ServicePortInfo] = {}
        ports_by_service: dict[NsName, tuple[ServicePortInfo, ...]] = {}
        for key, svc in store.objects(KIND_SERVICE).items():
            if not isinstance(svc, Service):
                continue
            ns_name = (key.namespace, key.name)
            services[ns_name] = svc
            infos = self._resolve(svc, ns_name)
            if infos:
                ports_by_service[ns_name] = infos
                if svc.proxied:
                    for info in infos:
                        service_ports[info.name] = info
        self._services = services
        self._service_ports = service_ports
        self._ports_by_service = ports_by_service
        self._ingresses = _sorted_values(store.objects(KIND_INGRESS), Ingress)
        self._ingress_classes = _sorted_values(store.objects(KIND_INGRESSCLASS), IngressClass)
        self._tls_secrets = {
            (k.namespace, k.name): s
            for k, s in store.objects(KIND_SECRET).items()
            if isinstance(s, TLSSecret)
        }
        self._annotations = {}
        self._update_annotations(((i.meta.namespace, i.meta.name), i) for i in self._ingresses)
        self._read_auth_secrets()
        self._nginx = self._global_settings()
        for kind in _CARRIED:
            self._carry(kind)
        return frozenset(service_ports).union(previous)

    # -- incremental build --------------------------------------------------------

    def _apply(self, changes: Mapping[ObjectKey, Change]) -> frozenset[ServicePortName]:
        touched: set[NsName] = set()
        services_changed = ingresses_changed = classes_changed = secrets_changed = False
        changed_ingresses: list[tuple[NsName, Ingress | None]] = []
        carried: set[str] = set()
        for key, change in changes.items():
            kind = key.kind
            if kind == KIND_ENDPOINTSLICE:
                for obj, add in ((change.previous, False), (change.current, True)):
                    if isinstance(obj, EndpointSlice):
                        ns_name = (key.namespace, obj.service_name)
                        touched.add(ns_name)
                        self._index_slice(ns_name, key, add)
            elif kind == KIND_SERVICE:
                touched.add((key.namespace, key.name))
                services_changed = True
            elif kind == KIND_INGRESS:
                ingresses_changed = True
                current = change.current
                ingress = current if isinstance(current, Ingress) else None
                changed_ingresses.append(((key.namespace, key.name), ingress))
            elif kind == KIND_INGRESSCLASS:
                classes_changed = True
            elif kind == KIND_SECRET:
                secrets_changed = True
            elif kind == KIND_NODE and key.name == self._config.node_name:
                topology = self._node_topology()
                if topology != self._topology:
                    self._topology = topology
                    touched.update(self._services)  # every service: hints may apply now
            elif kind == KIND_CONFIGMAP and self._is_nginx_configmap(key):
                self._nginx = self._global_settings()
            elif kind in _CARRIED:
                carried.add(kind)

        store = self._store
        if services_changed:
            self._services = _updated(self._services, changes, KIND_SERVICE)
        annotations_changed = False
        if ingresses_changed:
            self._ingresses = _sorted_values(store.objects(KIND_INGRESS), Ingress)
            annotations_changed = self._update_annotations(changed_ingresses)
        if classes_changed:
            self._ingress_classes = _sorted_values(store.objects(KIND_INGRESSCLASS), IngressClass)
        if secrets_changed:
            self._tls_secrets = _updated_tls(self._tls_secrets, changes)
        if secrets_changed or annotations_changed:
            self._read_auth_secrets()
        for kind in carried:
            self._carry(kind)
        return self._recompute(touched) if touched else frozenset()

    # -- ingress-nginx annotations and settings ---------------------------------------

    def _update_annotations(self, changed: Iterable[tuple[NsName, Ingress | None]]) -> bool:
        """Re-parse the annotations of changed Ingresses (None: deleted); the map is
        copied only when an entry differs (copy on write). Whether any differed."""
        prefix = self._nginx_mode.annotations_prefix
        passthrough = self._nginx_mode.ssl_passthrough
        updated: dict[NsName, IngressAnnotations] | None = None
        for key, ingress in changed:
            parsed = NO_ANNOTATIONS
            if ingress is not None:
                parsed = parse_ingress_annotations(ingress, prefix, passthrough)
            if self._annotations.get(key, NO_ANNOTATIONS) == parsed:
                continue
            if updated is None:
                updated = self._annotations = dict(self._annotations)
            if parsed == NO_ANNOTATIONS:
                updated.pop(key, None)
            else:
                updated[key] = parsed
        return updated is not None

    def _read_auth_secrets(self) -> None:
        """Read the Secrets the annotations name, each for its uses; an AuthSecret whose
        Secret and uses did not change is kept, and the map replaced only on a change."""
        uses = secret_uses(self._annotations.values())
        secrets: dict[NsName, AuthSecret] = {}
        inputs: dict[NsName, tuple[object, frozenset[Use]]] = {}
        get = self._store.get
        for key, wanted in uses.items():
            found = get(ObjectKey(KIND_SECRET, *key))
            if not isinstance(found, (GenericSecret, TLSSecret)):
                continue
            inputs[key] = (found, wanted)
            before = self._auth_inputs.get(key, (None, frozenset()))
            old = self._auth_secrets.get(key)
            if old is not None and before[0] is found and before[1] == wanted:
                secrets[key] = old
                continue
            secrets[key] = read_auth_secret(found, wanted)
        self._auth_inputs = inputs
        if secrets != self._auth_secrets:
            self._auth_secrets = secrets

    def _is_nginx_configmap(self, key: ObjectKey) -> bool:
        return self._nginx_mode.configmap == (key.namespace, key.name)

    def _global_settings(self) -> NginxGlobalSettings | None:
        mode = self._nginx_mode
        data = None
        if mode.configmap is not None:
            found = self._store.get(ObjectKey(KIND_CONFIGMAP, *mode.configmap))
            data = found.data if isinstance(found, ConfigMap) else None
        return global_settings(mode, data)
    def _carry(self, kind: str) -> None:
        """Refresh the Snapshot's sorted tuple of a carried kind from the store."""
        slot, cls = _CARRIED[kind]
        setattr(self, slot, _sorted_values(self._store.objects(kind), cls))

    def _index_slice(self, ns_name: NsName, key: ObjectKey, add: bool) -> None:
        keys = self._slices_by_service.get(ns_name)
        if add:
            if keys is None:
                keys = self._slices_by_service[ns_name] = set()
            keys.add(key)
        elif keys is not None:
            keys.discard(key)
            if not keys:
                del self._slices_by_service[ns_name]

    def _recompute(self, touched: Iterable[NsName]) -> frozenset[ServicePortName]:
        # Copy on write: the previous Snapshot keeps the maps it was given.
        service_ports: dict[ServicePortName, ServicePortInfo] | None = None
        ports_by_service: dict[NsName, tuple[ServicePortInfo, ...]] | None = None
        changed: set[ServicePortName] = set()
        services = self._services
        for ns_name in touched:
            old_infos = self._ports_by_service.get(ns_name, ())
            svc = services.get(ns_name)
            new_infos = self._resolve(svc, ns_name, old_infos) if svc is not None else ()
            if new_infos == old_infos:  # element-wise identity first: cheap when reused
                continue
            if ports_by_service is None:
                ports_by_service = self._ports_by_service = dict(self._ports_by_service)
            if new_infos:
                ports_by_service[ns_name] = new_infos
            else:
                del ports_by_service[ns_name]
            # Same ports, only in another order: nothing changed per service port.
            new_names = {info.name for info in new_infos if info.cluster_ips}
            for info in old_infos:
                if info.cluster_ips and info.name not in new_names:
                    changed.add(info.name)
                    if service_ports is None:
                        service_ports = self._service_ports = dict(self._service_ports)
                    service_ports.pop(info.name, None)
            for info in new_infos:
                if info.cluster_ips and self._service_ports.get(info.name) is not info:
                    changed.add(info.name)
                    if service_ports is None:
                        service_ports = self._service_ports = dict(self._service_ports)
                    service_ports[info.name] = info
        return frozenset(changed)

    # -- resolution -----------------------------------------------------------------

    def _resolve(
        self,
        svc: Service,
        ns_name: NsName,
        previous: Sequence[ServicePortInfo] = (),
    ) -> tuple[ServicePortInfo, ...]:
        """The service's port infos; an info equal to one in `previous` is reused.

        A headless Service (or one without a cluster IP) gets infos too, with no cluster
        IP and the endpoints of every address family: they are in ``ports_by_service``
        only, for the L7 proxy, which routes to endpoints (as ingress-nginx and Gateway
        API implementations do); kernel dataplanes see ``service_ports``, without them."""
        if svc.type == "ExternalName":
            return ()
        slice_keys = self._slices_by_service.get(ns_name)
        slices: list[EndpointSlice] = []
        if slice_keys:
            families = {_family(ip) for ip in svc.cluster_ips} if svc.proxied else _FAMILIES
            get = self._store.get
            for key in sorted(slice_keys) if len(slice_keys) > 1 else slice_keys:
                eps = get(key)
                if isinstance(eps, EndpointSlice) and eps.address_type in families:
                    slices.append(eps)
        infos = service_port_infos(svc, slices, self._topology)
        if not previous:
            return tuple(infos)
        reuse = {info.name: info for info in previous}
        for i, info in enumerate(infos):
            old = reuse.get(info.name)
            if old is not None and old == info:
                infos[i] = old
        return tuple(infos)

    def _trigger_times(self, changes: Mapping[ObjectKey, Change]) -> tuple[float, ...]:
        times: list[float] = []
        not_before = self._not_before
        for key, change in changes.items():
            current = change.current
            if key.kind != KIND_ENDPOINTSLICE or current is None:
                continue
            when = parse_trigger_time(current.meta.annotations.get(LAST_CHANGE_TRIGGER_TIME))
            if when is not None and (not_before is None or when >= not_before):
                times.append(when)
        times.sort()
        return tuple(times)


def service_port_infos(
    svc: Service, slices: Sequence[EndpointSlice], topology: NodeTopology = NO_TOPOLOGY
) -> list[ServicePortInfo]:
    """Resolve each port of a proxied Service against its slices (already filtered to
    the service's address families and sorted by name), for a node at `topology`. A port
    repeating an earlier port's name and protocol (invalid; validation rejects it) is
    skipped."""
    ns, name = svc.meta.namespace, svc.meta.name
    infos: list[ServicePortInfo] = []
    port_ids: set[tuple[str, str]] = set()
    distribution = svc.traffic_distribution
    source_ranges = _effective_source_ranges(svc.load_balancer_source_ranges)
    health_check_port = (
        svc.health_check_node_port
        if svc.type == "LoadBalancer" and svc.external_traffic_policy == "Local"
        else None
    )
    for sp in svc.ports:
        if (sp.name, sp.protocol) in port_ids:
            continue
        port_ids.add((sp.name, sp.protocol))
        merged: dict[tuple[str, int], EndpointInfo] = {}
        hinted = False
        for eps in slices:
            for slice_port in eps.ports:
                if slice_port.name != sp.name or slice_port.protocol != sp.protocol:
                    continue
                port = slice_port.port
                for endpoint in eps.endpoints:
                    if not endpoint.addresses:
                        continue
                    ip = endpoint.addresses[0]
                    cond = endpoint.conditions
                    seen = merged.get((ip, port))
                    if seen is None or (cond.ready and not seen.ready):
                        if distribution or endpoint.hint_zones or endpoint.hint_nodes:
                            zones, nodes = endpoint_hints(endpoint, cond.ready, distribution)
                            hinted = hinted or bool(zones or nodes)
                        else:
                            zones = nodes = ()
                        merged[(ip, port)] = EndpointInfo(
                            ip,
                            port,
                            cond.ready,
                            cond.serving,
                            cond.terminating,
                            endpoint.node_name,
                            endpoint.zone,
                            zones,
                            nodes,
                        )
        if len(merged) > 1:
            all_endpoints = tuple(merged[k] for k in sorted(merged, key=_endpoint_sort_key))
        else:
            all_endpoints = tuple(merged.values())
        if hinted:
            usable = cluster_endpoints(all_endpoints, topology)
        else:
            usable = tuple([e for e in all_endpoints if e.ready])
            if len(usable) == len(all_endpoints):
                usable = all_endpoints  # the common case: share the tuple
            elif not usable:
                usable = tuple([e for e in all_endpoints if e.serving and e.terminating])
        infos.append(
            ServicePortInfo(
                name=ServicePortName(ns, name, sp.name, sp.protocol),
                cluster_ips=svc.cluster_ips,
                port=sp.port,
                protocol=sp.protocol,
                node_port=sp.node_port,
                session_affinity_timeout=svc.session_affinity_timeout,
                external_traffic_policy=svc.external_traffic_policy,
                internal_traffic_policy=svc.internal_traffic_policy,
                external_ips=svc.external_ips,
                load_balancer_ips=svc.load_balancer_ips,
                load_balancing=svc.load_balancing,
                load_balancer_source_ranges=source_ranges,
                health_check_node_port=health_check_port,
                all_endpoints=all_endpoints,
                endpoints=usable,
            )
        )
    return infos


def build_snapshot(
    objects: Iterable[KubeObject],
    topology: NodeTopology | None = None,
    nginx: IngressNginxMode | None = None,
) -> Snapshot:
    """One-shot: the Snapshot of exactly these objects (for rules/apply/trace/check)."""
    store = Store()
    for obj in objects:
        store.upsert(obj)
    snapshot, _ = SnapshotBuilder(store, topology=topology, nginx=nginx).build()
    return snapshot


@lru_cache(maxsize=1024)
def _effective_source_ranges(ranges: tuple[str, ...]) -> tuple[str, ...]:
    """loadBalancerSourceRanges as kube-proxy applies them, per family: a family listing
    0.0.0.0/0 or ::/0 accepts everyone, the same as listing nothing, so its ranges are
    left out (an empty result restricts nothing; one family's ranges never restrict the
    other family's load-balancer IPs)."""
    if not ranges:
        return ranges
    open_families = {":" in r for r in ranges if r.endswith("/0")}
    if not open_families:
        return ranges
    return tuple(r for r in ranges if (":" in r) not in open_families)


def parse_trigger_time(value: str | None) -> float | None:
    """An RFC 3339 timestamp (endpoints.kubernetes.io/last-change-trigger-time) as epoch
    seconds; None when absent or malformed."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:  # RFC 3339 requires an offset; read a bare time as UTC
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@contextmanager
def _gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _sorted_values(objects: Mapping[ObjectKey, KubeObject], kind: type[T]) -> tuple[T, ...]:
    """The objects in key order (namespace, then name)."""
    return tuple(obj for key in sorted(objects) if isinstance(obj := objects[key], kind))


def _updated_tls(
    current: Mapping[NsName, TLSSecret], changes: Mapping[ObjectKey, Change]
) -> dict[NsName, TLSSecret]:
    """A copy of `current` with the changes of TLS Secrets applied (a Secret that is, or
    became, of another type is not one)."""
    updated = dict(current)
    for key, change in changes.items():
        if key.kind == KIND_SECRET:
            if isinstance(change.current, TLSSecret):
                updated[(key.namespace, key.name)] = change.current
            else:
                updated.pop((key.namespace, key.name), None)
    return updated


def _updated(
    current: Mapping[tuple[str, str], T], changes: Mapping[ObjectKey, Change], kind: str
) -> dict[tuple[str, str], T]:
    """A copy of `current` (by (namespace, name)) with the changes of one kind applied."""
    updated = dict(current)
    for key, change in changes.items():
        if key.kind == kind:
            if change.current is None:
                updated.pop((key.namespace, key.name), None)
            else:
                updated[(key.namespace, key.name)] = change.current  # type: ignore[assignment]
    return updated


_FAMILIES = frozenset({"IPv4", "IPv6"})


def _family(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


def _endpoint_sort_key(ip_port: tuple[str, int]) -> tuple[int, int, str, int]:
    ip, port = ip_port
    family, value = _ip_sort_key(ip)
    return family, value, ip, port


@lru_cache(maxsize=65536)
def _ip_sort_key(ip: str) -> tuple[int, int]:
    """Numeric order of addresses (10.0.0.2 before 10.0.0.10), IPv4 first; an
    unparsable address sorts last, by text."""
    if ":" not in ip:  # the common case, without ipaddress's slower parser
        parts = ip.split(".")
        if len(parts) == 4:
            try:
                a, b, c, d = map(int, parts)
            except ValueError:
                return 9, 0
            return 4, (a << 24) | (b << 16) | (c << 8) | d
        return 9, 0
    try:
        return 6, int(ipaddress.IPv6Address(ip))
    except ValueError:
        return 9, 0
