"""Topology-aware routing: kube-proxy's TestCategorizeEndpoints cases (pkg/proxy/
topology_test.go, named as upstream names them), the node-hint branch of
topologyModeFromHints, hints derived from trafficDistribution as the EndpointSlice
controller writes them (trafficdist.go), and the zone taken from this node's Node."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from discovery.model import Node, ObjectMeta
from discovery.snapshot import EndpointInfo, ServicePortInfo, ServicePortName
from discovery.snapshot_builder import SnapshotBuilder, build_snapshot
from discovery.store import Store
from discovery.topology import NodeTopology, cluster_endpoints, endpoint_hints, topology_mode
from tests.discovery.factories import ep, make_service, make_slice, port

NODE = "node-a"
WEB = ServicePortName("default", "web", "", "TCP")


@dataclass(frozen=True)
class E:
    """One endpoint of an upstream case: address, zone hints, ready, local, ..."""

    address: str
    zones: tuple[str, ...] = ()
    ready: bool = True
    local: bool = False
    serving: bool | None = None
    terminating: bool = False
    nodes: tuple[str, ...] = ()

    def info(self) -> EndpointInfo:
        ip, _, p = self.address.rpartition(":")
        return EndpointInfo(
            ip,
            int(p),
            ready=self.ready,
            serving=self.ready if self.serving is None else self.serving,
            terminating=self.terminating,
            node_name=NODE if self.local else "node-b",
            hint_zones=self.zones,
            hint_nodes=self.nodes,
        )


@dataclass(frozen=True)
class Case:
    name: str
    zone: str
    endpoints: Sequence[E]
    cluster: set[str] | None  # None: upstream's service uses no cluster endpoints
    local: set[str] | None = None  # None: upstream's service uses no local endpoints
    extra: dict[str, str] = field(default_factory=dict)


A, B, C, D = ("zone-a",), ("zone-b",), ("zone-c",), ("zone-d",)

# pkg/proxy/topology_test.go TestCategorizeEndpoints (the cases whose outcome depends on
# what the Snapshot decides: cluster endpoints with topology, local endpoints without).
UPSTREAM = [
    Case(
        "should use topology since all endpoints have hints, node has a zone label and and "
        "there are endpoints for the node's zone",
        "zone-a",
        [E("10.1.2.3:80", A), E("10.1.2.4:80", B), E("10.1.2.5:80", C), E("10.1.2.6:80", A)],
        {"10.1.2.3:80", "10.1.2.6:80"},
    ),
    Case(
        "externalTrafficPolicy: Local, topology ignored for Local endpoints",
        "zone-a",
        [
            E("10.1.2.3:80", A, local=True),
            E("10.1.2.4:80", B, local=True),
            E("10.1.2.5:80", C),
            E("10.1.2.6:80", A),
        ],
        {"10.1.2.3:80", "10.1.2.6:80"},
        {"10.1.2.3:80", "10.1.2.4:80"},
    ),
    Case(
        "internalTrafficPolicy: Local, topology ignored for Local endpoints",
        "zone-a",
        [
            E("10.1.2.3:80", A, local=True),
            E("10.1.2.4:80", B, local=True),
            E("10.1.2.5:80", C),
            E("10.1.2.6:80", A),
        ],
        {"10.1.2.3:80", "10.1.2.6:80"},
        {"10.1.2.3:80", "10.1.2.4:80"},
    ),
    Case("empty node labels", "", [E("10.1.2.3:80", A)], {"10.1.2.3:80"}),
    Case("empty zone label", "", [E("10.1.2.3:80", A)], {"10.1.2.3:80"}),
    Case(
        "node in different zone, no endpoint filtering",
        "zone-b",
        [E("10.1.2.3:80", A)],
        {"10.1.2.3:80"},
    ),
    Case(
        "unready endpoint",
        "zone-a",
        [
            E("10.1.2.3:80", A),
            E("10.1.2.4:80", B),
            E("10.1.2.5:80", C),
            E("10.1.2.6:80", A, ready=False),
        ],
        {"10.1.2.3:80"},
    ),
    Case(
        "only unready endpoints in same zone (should not filter)",
        "zone-a",
        [
            E("10.1.2.3:80", A, ready=False),
            E("10.1.2.4:80", B),
            E("10.1.2.5:80", C),
            E("10.1.2.6:80", A, ready=False),
        ],
        {"10.1.2.4:80", "10.1.2.5:80"},
    ),
    Case(
        "missing hints, no filtering applied",
        "zone-a",
        [E("10.1.2.3:80", A), E("10.1.2.4:80", B), E("10.1.2.5:80"), E("10.1.2.6:80", A)],
        {"10.1.2.3:80", "10.1.2.4:80", "10.1.2.5:80", "10.1.2.6:80"},
    ),
    Case(
        "multiple hints per endpoint, filtering includes any endpoint with zone included",
        "zone-c",
        [
            E("10.1.2.3:80", ("zone-a", "zone-b", "zone-c")),
            E("10.1.2.4:80", ("zone-b", "zone-c")),
            E("10.1.2.5:80", ("zone-b", "zone-d")),
            E("10.1.2.6:80", C),
        ],
        {"10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"},
    ),
    Case(
        "conflicting topology and localness require merging allEndpoints",
        "zone-a",
        [
            E("10.0.0.0:80", A, local=True),
            E("10.0.0.1:80", B, local=True),
            E("10.0.0.2:80", A),
            E("10.0.0.3:80", B),
        ],
        {"10.0.0.0:80", "10.0.0.2:80"},
        {"10.0.0.0:80", "10.0.0.1:80"},
    ),
    Case("internalTrafficPolicy: Local, with empty endpoints", "", [], None, set()),
    Case(
        "internalTrafficPolicy: Local, but all endpoints are remote",
        "",
        [E("10.0.0.0:80"), E("10.0.0.1:80")],
        None,
        set(),
    ),
    Case(
        "internalTrafficPolicy: Local, all endpoints are local",
        "",
        [E("10.0.0.0:80", local=True), E("10.0.0.1:80", local=True)],
        None,
        {"10.0.0.0:80", "10.0.0.1:80"},
    ),
    Case(
        "Cluster traffic policy, endpoints not Ready",
        "",
        [E("10.0.0.0:80", ready=False), E("10.0.0.1:80", ready=False)],
        set(),
    ),
    Case(
        "Cluster traffic policy, some endpoints are Ready",
        "",
        [E("10.0.0.0:80", ready=False), E("10.0.0.1:80")],
        {"10.0.0.1:80"},
    ),
    Case(
        "Cluster traffic policy, all endpoints are terminating",
        "",
        [
            E("10.0.0.0:80", ready=False, serving=True, terminating=True, local=True),
            E("10.0.0.1:80", ready=False, serving=True, terminating=True),
        ],
        {"10.0.0.0:80", "10.0.0.1:80"},
    ),
    Case(
        "iTP: Local, eTP: Local, all endpoints remote and terminating",
        "",
        [
            E("10.0.0.0:80", ready=False, serving=True, terminating=True),
            E("10.0.0.1:80", ready=False, serving=True, terminating=True),
        ],
        {"10.0.0.0:80", "10.0.0.1:80"},
        set(),
    ),
    Case(
        "iTP: Cluster, eTP: Local, with terminating endpoints",
        "",
        [
            E("10.0.0.0:80"),
            E("10.0.0.1:80", ready=False, serving=False, local=True),
            E("10.0.0.2:80", ready=False, serving=True, terminating=True, local=True),
            E("10.0.0.3:80", ready=False, serving=True, terminating=True),
        ],
        {"10.0.0.0:80"},
        {"10.0.0.2:80"},
    ),
]


@pytest.mark.parametrize("case", UPSTREAM, ids=[c.name for c in UPSTREAM])
def test_categorize_endpoints(case: Case) -> None:
    infos = tuple(e.info() for e in case.endpoints)
    node = NodeTopology(NODE, case.zone)
    if case.cluster is not None:
        assert {e.address for e in cluster_endpoints(infos, node)} == case.cluster
    if case.local is not None:
        spi = ServicePortInfo(WEB, ("10.96.0.1",), 80, "TCP", all_endpoints=infos)
        assert {e.address for e in spi.local_endpoints(NODE)} == case.local


# topologyModeFromHints, node branch (PreferSameTrafficDistribution): node hints first,
# zone hints when they cannot be used.
NODE_HINTS = [
    (
        "every ready endpoint has node hints and one is for this node: same node",
        [E("10.0.0.1:80", A, nodes=(NODE,)), E("10.0.0.2:80", A, nodes=("node-b",))],
        "PreferSameNode",
        {"10.0.0.1:80"},
    ),
    (
        "node hints for other nodes only: same zone instead",
        [E("10.0.0.1:80", A, nodes=("node-c",)), E("10.0.0.2:80", B, nodes=("node-b",))],
        "PreferSameZone",
        {"10.0.0.1:80"},
    ),
    (
        "one ready endpoint without a node hint: same zone instead",
        [E("10.0.0.1:80", A, nodes=(NODE,)), E("10.0.0.2:80", A)],
        "PreferSameZone",
        {"10.0.0.1:80", "10.0.0.2:80"},
    ),
    (
        "an unready endpoint without hints does not count",
        [E("10.0.0.1:80", A, nodes=(NODE,)), E("10.0.0.2:80", ready=False)],
        "PreferSameNode",
        {"10.0.0.1:80"},
    ),
    (
        "no hints for this node or zone: every ready endpoint",
        [E("10.0.0.1:80", B, nodes=("node-b",)), E("10.0.0.2:80", C, nodes=("node-c",))],
        "",
        {"10.0.0.1:80", "10.0.0.2:80"},
    ),
]


@pytest.mark.parametrize(
    ("endpoints", "mode", "expected"),
    [c[1:] for c in NODE_HINTS],
    ids=[c[0] for c in NODE_HINTS],
)
def test_node_hints(endpoints: list[E], mode: str, expected: set[str]) -> None:
    infos = tuple(e.info() for e in endpoints)
    node = NodeTopology(NODE, "zone-a")
    assert topology_mode(infos, node) == mode
    assert {e.address for e in cluster_endpoints(infos, node)} == expected


def test_hints_derived_as_the_endpointslice_controller_writes_them() -> None:
    """trafficdist.go: a ready endpoint gets its zone (and for PreferSameNode its node);
    no zone, no zone hint; unready endpoints and unset trafficDistribution get none;
    hints the slice carries are kept."""
    zoned = ep("10.0.0.1", node="n1", zone="z1")
    assert endpoint_hints(zoned, True, "PreferClose") == (("z1",), ())
    assert endpoint_hints(zoned, True, "PreferSameZone") == (("z1",), ())
    assert endpoint_hints(zoned, True, "PreferSameNode") == (("z1",), ("n1",))
    assert endpoint_hints(zoned, False, "PreferSameNode") == ((), ())
    assert endpoint_hints(zoned, True, "") == ((), ())
    assert endpoint_hints(ep("10.0.0.2", node="n1"), True, "PreferClose") == ((), ())
    own = ep("10.0.0.3", node="n1", zone="z1", hint_zones=["z9"])
    assert endpoint_hints(own, True, "PreferSameNode") == (("z9",), ())


def _zoned_service(distribution: str = "", hints: bool = False) -> list[object]:
    svc = make_service(
        "web",
        cluster_ip="10.96.0.10",
        ports=[port("", 80, 8080)],
        traffic_distribution=distribution,  # type: ignore[arg-type]
    )
    eps = [
        ep(ip, node=node, zone=zone, hint_zones=[zone] if hints else [])
        for ip, node, zone in (
            ("10.1.0.1", "node-a", "z1"),
            ("10.1.0.2", "node-b", "z1"),
            ("10.1.0.3", "node-c", "z2"),
        )
    ]
    return [svc, make_slice(svc, eps)]


def _ips(objects: list[object], topology: NodeTopology) -> list[str]:
    snap = build_snapshot(objects, topology)  # type: ignore[arg-type]
    return [e.ip for e in snap.service_ports[WEB].endpoints]


def test_snapshot_applies_slice_hints_and_traffic_distribution() -> None:
    here = NodeTopology("node-a", "z1")
    everyone = ["10.1.0.1", "10.1.0.2", "10.1.0.3"]
    assert _ips(_zoned_service(), here) == everyone  # no hints, no distribution
    assert _ips(_zoned_service(hints=True), here) == ["10.1.0.1", "10.1.0.2"]
    assert _ips(_zoned_service("PreferClose"), here) == ["10.1.0.1", "10.1.0.2"]
    assert _ips(_zoned_service("PreferSameNode"), here) == ["10.1.0.1"]
    # a node without endpoints of its own falls back to its zone, then to everyone
    assert _ips(_zoned_service("PreferSameNode"), NodeTopology("node-d", "z2")) == ["10.1.0.3"]
    assert _ips(_zoned_service("PreferClose"), NodeTopology("node-d", "z9")) == everyone
    assert _ips(_zoned_service("PreferClose"), NodeTopology("node-d", "")) == everyone
    # the hints are in the Snapshot for every dataplane to see
    snap = build_snapshot(_zoned_service("PreferSameNode"), here)  # type: ignore[arg-type]
    first = snap.service_ports[WEB].all_endpoints[0]
    assert (first.hint_zones, first.hint_nodes) == (("z1",), ("node-a",))


def _node(zone: str | None) -> Node:
    labels = {"topology.kubernetes.io/zone": zone} if zone is not None else {}
    return Node(ObjectMeta("node-a", labels=labels))


def test_zone_from_this_nodes_label_and_its_changes() -> None:
    store = Store()
    for obj in _zoned_service("PreferClose"):
        store.upsert(obj)  # type: ignore[arg-type]
    builder = SnapshotBuilder(store, topology=NodeTopology("node-a"))
    snap, _ = builder.build()
    assert len(snap.service_ports[WEB].endpoints) == 3  # zone unknown: no topology
    store.upsert(_node("z2"))
    snap, changed = builder.build()
    assert builder.topology.zone == "z2" and changed == {WEB}
    assert [e.ip for e in snap.service_ports[WEB].endpoints] == ["10.1.0.3"]
    store.upsert(Node(ObjectMeta("node-b", labels={"topology.kubernetes.io/zone": "z1"})))
    snap, changed = builder.build()  # another node's label is not ours
    assert changed == frozenset() and builder.topology.zone == "z2"
    store.upsert(_node(None))
    snap, changed = builder.build()
    assert changed == {WEB} and len(snap.service_ports[WEB].endpoints) == 3


def test_node_zone_option_wins_over_the_label() -> None:
    store = Store()
    for obj in [*_zoned_service("PreferClose"), _node("z2")]:
        store.upsert(obj)  # type: ignore[arg-type]
    builder = SnapshotBuilder(store, topology=NodeTopology("node-a", "z1"))
    snap, _ = builder.build()
    assert [e.ip for e in snap.service_ports[WEB].endpoints] == ["10.1.0.1", "10.1.0.2"]
    store.upsert(_node("z3"))
    _, changed = builder.build()
    assert changed == frozenset()


def test_source_ranges_and_health_check_port_in_the_snapshot() -> None:
    """kube-proxy's per-family reading of loadBalancerSourceRanges (a family with /0 is
    open), and the health-check node port only for LoadBalancer + Local."""
    ranges = ["10.0.0.0/8", "0.0.0.0/0", "fd00::/64"]
    lb = make_service(
        "web",
        ports=[port("", 80, 8080)],
        type="LoadBalancer",
        external_traffic_policy="Local",
        health_check_node_port=32000,
        load_balancer_source_ranges=ranges,
    )
    info = build_snapshot([lb]).service_ports[WEB]
    assert info.load_balancer_source_ranges == ("fd00::/64",)
    assert info.health_check_node_port == 32000
    cluster = make_service(
        "web",
        ports=[port("", 80, 8080)],
        type="LoadBalancer",
        health_check_node_port=32000,
        load_balancer_source_ranges=["192.0.2.0/24"],
    )
    info = build_snapshot([cluster]).service_ports[WEB]
    assert info.load_balancer_source_ranges == ("192.0.2.0/24",)
    assert info.health_check_node_port is None

