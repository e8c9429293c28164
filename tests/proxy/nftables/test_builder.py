"""Golden nft text for representative services, plus structural checks of the layout."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from discovery.snapshot import ServicePortInfo, Snapshot
from proxy.nftables import names as N
from proxy.nftables.builder import BuildConfig, TableBuilder, build_tables, networks
from proxy.nftables.render import render_full
from proxy.nftables.table import TableState
from tests.proxy.iptables.helpers import eps, snapshot, spn, svc

CFG = BuildConfig(hostname="node-a", cluster_cidrs=("10.1.0.0/16", "fd01::/64"))
GOLDEN = Path(__file__).parent / "golden"


def ranges(spi: ServicePortInfo, *cidrs: str) -> ServicePortInfo:
    return replace(spi, load_balancer_source_ranges=cidrs)


def layout_snapshot() -> Snapshot:
    return snapshot(
        svc("web", "10.96.0.10", eps("10.1.0.1", "10.1.0.2", node="node-a"), port_name="http"),
        svc(
            "web",
            "10.96.0.10",
            eps("10.1.0.1", "10.1.0.2", node="node-a", port=8443),
            port=443,
            port_name="https",
        ),
        svc("dns", "10.96.0.12", (), port=53, proto="UDP", node_port=30053),
        svc(
            "loc",
            "10.96.0.13",
            eps("10.1.0.1", node="node-a") + eps("10.1.0.3", node="node-b"),
            node_port=30081,
            etp="Local",
            external_ips=("203.0.113.9",),
        ),
        svc("far", "10.96.0.14", eps("10.1.0.3", node="node-b"), node_port=30082, etp="Local"),
        ranges(
            svc(
                "sticky",
                "10.96.0.15",
                eps("10.1.0.1", "10.1.0.2"),
                affinity=300,
                lb_ips=("198.51.100.7",),
            ),
            "192.168.0.0/16",
            "192.168.7.0/24",
            "10.0.0.5",
        ),
        svc(
            "internal",
            "10.96.0.16",
            eps("10.1.0.1", node="node-a") + eps("10.1.0.3", node="x"),
            itp="Local",
        ),
        svc("six", "fd00::10", eps("fd01::1", "fd01::2", node="node-a"), node_port=30090),
    )


def golden(name: str, text: str) -> None:
    """Compare with golden/NAME; SEAWAY_REGEN_GOLDEN=1 rewrites it (review the diff)."""
    path = GOLDEN / name
    if os.environ.get("SEAWAY_REGEN_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"differs from {path} (SEAWAY_REGEN_GOLDEN=1 rewrites it)"


def test_golden_layout() -> None:
    golden("layout.nft", render_full(build_tables(layout_snapshot(), CFG).values()))


def test_golden_nodeport_addresses_and_no_cluster_cidr() -> None:
    cfg = BuildConfig(hostname="node-a", nodeport_addresses=("192.168.50.0/24", "192.168.50.7"))
    tables = build_tables(snapshot(svc("np", "10.96.0.20", eps("10.1.0.1"), node_port=30020)), cfg)
    golden("nodeport-addresses.nft", render_full([tables["ip"]]))
    # no IPv6 nodeport address: IPv6 serves no node port at all
    assert "service-nodeports" not in "\n".join(tables["ip6"].chains[N.SERVICES].rules)


def per_service(state: TableState) -> dict[str, tuple[str, ...]]:
    return {n: c.rules for n, c in state.chains.items() if N.is_per_service(n)}


def test_a_cluster_ip_service_is_map_elements_only() -> None:
    tables = build_tables(snapshot(svc("web", "10.96.0.10", eps("10.1.0.1", "10.1.0.2"))), CFG)
    ip = tables["ip"]
    assert per_service(ip) == {}
    assert ip.elements[N.SERVICE_IPS] == {"10.96.0.10 . tcp . 80": "goto pick-tcp-2"}
    assert ip.elements[N.endpoints_map("tcp")] == {
        "10.96.0.10 . 80 . 0": "10.1.0.1 . 8080",
        "10.96.0.10 . 80 . 1": "10.1.0.2 . 8080",
    }
    assert ip.elements[N.HAIRPIN] == {"10.1.0.1 . 10.1.0.1": "", "10.1.0.2 . 10.1.0.2": ""}
    assert N.pick_chain("tcp", 2) in ip.chains
    assert tables["ip6"].element_count() == 1  # only the fixed cluster-cidrs element


def test_object_names_are_hashes_never_user_text() -> None:
    evil = svc("a;b {", "10.96.0.9", eps("10.1.0.1"), node_port=30009, affinity=10)
    evil = replace(evil, name=spn("x y } flush ruleset", "p;q"))
    state = build_tables(snapshot(evil), CFG)["ip"]
    for name in [*state.chains, *state.sets]:
        assert all(c.isalnum() or c == "-" for c in name), name
    assert "flush" not in render_full([state])


def test_local_endpoints_fall_back_to_terminating_and_topology_is_the_snapshots() -> None:
    terminating = replace(eps("10.1.0.1", node="node-a")[0], ready=False, terminating=True)
    spi = svc(
        "t",
        "10.96.0.30",
        eps("10.1.0.3", node="node-b"),
        node_port=30030,
        etp="Local",
        all_endpoints=(terminating, *eps("10.1.0.3", node="node-b")),
    )
    state = build_tables(snapshot(spi), CFG)["ip"]
    _, svl, _ = N.policy_chains(spi.name)
    assert state.chains[svl].rules == ("meta l4proto tcp dnat to 10.1.0.1:8080",)


def test_networks_are_merged_for_interval_sets() -> None:
    assert networks(["10.0.0.0/8", "10.1.0.0/16", "10.0.0.5/32", "fd00::/8", "fd00::1"]) == [
        "10.0.0.0/8",
        "fd00::/8",
    ]
    assert networks(["192.168.1.7", "192.168.1.6/31"]) == ["192.168.1.6/31"]


@pytest.mark.parametrize("affinity", [None, 60])
def test_an_endpoint_change_touches_only_its_service(affinity: int | None) -> None:
    base = [
        svc(f"s{i}", f"10.96.1.{i}", eps(f"10.1.1.{i}"), node_port=30100 + i, affinity=affinity)
        for i in range(5)
    ]
    builder = TableBuilder(CFG)
    builder.build(snapshot(*base))
    changed = svc(
        "s2", "10.96.1.2", eps("10.1.1.2", "10.1.9.9"), node_port=30102, affinity=affinity
    )
    deltas = builder.build(snapshot(*base[:2], changed, *base[3:]))
    ip = deltas["ip"]
    svc2, _, ext2 = N.policy_chains(changed.name)
    assert ext2 not in ip.chains  # external dispatch unchanged
    assert set(ip.elements) <= {N.SERVICE_IPS, N.endpoints_map("tcp"), N.HAIRPIN}
    assert ip.elements[N.HAIRPIN] == {"10.1.9.9 . 10.1.9.9": (None, "")}
    assert svc2 in ip.chains  # its endpoints chain (used by the node port) is rewritten
    if affinity is None:
        assert ip.elements[N.SERVICE_IPS] == {
            "10.96.1.2 . tcp . 80": ("goto pick-tcp-1", "goto pick-tcp-2")
        }
    assert deltas["ip6"].empty()
    # and the result equals a fresh build
    assert builder.states() == build_tables(snapshot(*base[:2], changed, *base[3:]), CFG)


def test_hairpin_elements_for_endpoints_that_can_reach_this_node() -> None:
    """A remote pod sends to this node's cluster IPs never (its own node DNATs it), to
    this node's NodePort it may: hairpin elements for local endpoints (and endpoints of
    unknown node), and for every endpoint of a service reached from outside."""
    mixed = eps("10.1.0.1", node="node-a") + eps("10.1.0.2", node="node-b") + eps("10.1.0.4")
    cluster_ip_only = build_tables(snapshot(svc("c", "10.96.0.40", mixed)), CFG)["ip"]
    assert set(cluster_ip_only.elements[N.HAIRPIN]) == {
        "10.1.0.1 . 10.1.0.1",
        "10.1.0.4 . 10.1.0.4",
    }
    node_port = build_tables(snapshot(svc("c", "10.96.0.40", mixed, node_port=30040)), CFG)
    assert len(node_port["ip"].elements[N.HAIRPIN]) == 3
