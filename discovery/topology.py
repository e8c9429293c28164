"""Topology-aware routing: which endpoints cluster-wide traffic from this node may use.

kube-proxy's rule (pkg/proxy/topology.go, CategorizeEndpoints / topologyModeFromHints):

- PreferSameNode when every ready endpoint carries node hints (hints.forNodes) and at least
  one is hinted for this node: only the endpoints hinted for this node;
- else PreferSameZone when every ready endpoint carries zone hints (hints.forZones) and at
  least one is hinted for this node's zone: only the endpoints hinted for that zone;
- else no topology: every ready endpoint.
If no endpoint is ready, the serving-and-terminating ones are used, without topology.
Local traffic policies ignore all of this (ServicePortInfo.local_endpoints()).

Hints are written by the EndpointSlice controller from the Service's
spec.trafficDistribution. Manifests written by hand often carry none, so an endpoint whose
slice gives it no hints gets those the controller would write (kubernetes
staging/src/k8s.io/endpointslice/trafficdist: for PreferClose, PreferSameZone and
PreferSameNode, a ready endpoint is hinted for its own zone; for PreferSameNode also for
its own node). Slices from the API already carry them, and theirs are kept as they are.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from discovery.model import Endpoint
from discovery.snapshot import EndpointInfo

PREFER_SAME_NODE = "PreferSameNode"
PREFER_SAME_ZONE = "PreferSameZone"
_HINTING = ("PreferClose", PREFER_SAME_ZONE, PREFER_SAME_NODE)


@dataclass(frozen=True, slots=True)
class NodeTopology:
    """Where this node is, for topology: its name (as EndpointSlices spell nodeName and
    hints.forNodes) and its zone ("" when unknown: zone hints are then never used)."""

    node_name: str = ""
    zone: str = ""


def endpoint_hints(
    endpoint: Endpoint, ready: bool, traffic_distribution: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(zone hints, node hints) of a slice endpoint: its own, or when it has none and the
    Service sets trafficDistribution, those the EndpointSlice controller would give it."""
    if endpoint.hint_zones or endpoint.hint_nodes:
        return endpoint.hint_zones, endpoint.hint_nodes
    if not ready or traffic_distribution not in _HINTING:
        return (), ()
    zones = (endpoint.zone,) if endpoint.zone else ()
    same_node = traffic_distribution == PREFER_SAME_NODE and endpoint.node_name
    return zones, ((endpoint.node_name,) if same_node else ())


def topology_mode(endpoints: Sequence[EndpointInfo], node: NodeTopology) -> str:
    """"PreferSameNode", "PreferSameZone" or "" (no topology) for these endpoints, seen
    from `node` (kube-proxy's topologyModeFromHints)."""
    has_ready = False
    all_node_hints = all_zone_hints = True
    for_node = for_zone = False
    name, zone = node.node_name, node.zone
    for ep in endpoints:
        if not ep.ready:
            continue
        has_ready = True
        if not ep.hint_nodes:
            all_node_hints = False
        elif name in ep.hint_nodes:
            for_node = True
        if not ep.hint_zones:
            all_zone_hints = False
        elif zone in ep.hint_zones:
            for_zone = True
    if not has_ready:
        return ""
    if all_node_hints and for_node:
        return PREFER_SAME_NODE
    if all_zone_hints and for_zone:
        return PREFER_SAME_ZONE
    return ""


def cluster_endpoints(
    endpoints: tuple[EndpointInfo, ...], node: NodeTopology
) -> tuple[EndpointInfo, ...]:
    """The endpoints cluster-wide traffic from `node` uses (see the module docstring)."""
    mode = topology_mode(endpoints, node)
    if mode == PREFER_SAME_NODE:
        name = node.node_name
        return tuple(e for e in endpoints if e.ready and name in e.hint_nodes)
    if mode == PREFER_SAME_ZONE:
        zone = node.zone
        return tuple(e for e in endpoints if e.ready and zone in e.hint_zones)
    usable = tuple([e for e in endpoints if e.ready])
    if len(usable) == len(endpoints):
        return endpoints  # the common case: share the tuple
    if usable:
        return usable
    return tuple(e for e in endpoints if e.serving and e.terminating)
