"""Hand-built Snapshots and ruleset checks for the iptables tests."""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from discovery.model import Protocol, TrafficPolicy
from discovery.snapshot import EndpointInfo, ServicePortInfo, ServicePortName, Snapshot
from proxy.iptables.builder import BUILTIN_JUMPS, Ruleset

BUILTIN_TARGETS = {"ACCEPT", "DROP", "REJECT", "RETURN", "DNAT", "MARK", "MASQUERADE"}


def spn(name: str, port: str = "", proto: Protocol = "TCP", ns: str = "default") -> ServicePortName:
    return ServicePortName(ns, name, port, proto)


def eps(*ips: str, port: int = 8080, node: str = "") -> tuple[EndpointInfo, ...]:
    return tuple(EndpointInfo(ip, port, node_name=node) for ip in ips)


def svc(
    name: str,
    cluster_ip: str,
    endpoints: Iterable[EndpointInfo] = (),
    *,
    port: int = 80,
    port_name: str = "",
    proto: Protocol = "TCP",
    node_port: int | None = None,
    affinity: int | None = None,
    etp: TrafficPolicy = "Cluster",
    itp: TrafficPolicy = "Cluster",
    external_ips: tuple[str, ...] = (),
    lb_ips: tuple[str, ...] = (),
    all_endpoints: Iterable[EndpointInfo] | None = None,
    cluster_ips: tuple[str, ...] = (),
    source_ranges: tuple[str, ...] = (),
) -> ServicePortInfo:
    """One service port; `cluster_ips` (dual-stack) replaces `cluster_ip` when given."""
    usable = tuple(endpoints)
    return ServicePortInfo(
        name=spn(name, port_name, proto),
        cluster_ips=cluster_ips or (cluster_ip,),
        port=port,
        protocol=proto,
        node_port=node_port,
        session_affinity_timeout=affinity,
        external_traffic_policy=etp,
        internal_traffic_policy=itp,
        external_ips=external_ips,
        load_balancer_ips=lb_ips,
        load_balancer_source_ranges=source_ranges,
        all_endpoints=usable if all_endpoints is None else tuple(all_endpoints),
        endpoints=usable,
    )


def snapshot(*ports: ServicePortInfo, generation: int = 1) -> Snapshot:
    return Snapshot(generation=generation, service_ports={p.name: p for p in ports})


def check_jumps(ruleset: Ruleset) -> None:
    """Every -j target is a built-in target or a chain defined in the same table, every
    rule line belongs to the chain it is listed under, and no chain name is too long."""
    for table, chains in ruleset.tables.items():
        for chain, rules in chains.items():
            assert len(chain) <= 28, chain
            for line in rules:
                tokens = shlex.split(line)
                assert tokens[:2] == ["-A", chain], line
                if "-j" in tokens:
                    target = tokens[tokens.index("-j") + 1]
                    assert target in BUILTIN_TARGETS or target in chains, (
                        f"{table}: {line} jumps to undefined {target}"
                    )
    for table, _, spec in BUILTIN_JUMPS:
        target = spec.split("-j ")[1].split()[0]
        assert target in ruleset.tables[table], target


def normalised(ruleset: Ruleset) -> dict[str, dict[str, list[str]]]:
    """Order-insensitive across chains, order-preserving within a chain (order matters)."""
    return {
        table: {chain: list(rules) for chain, rules in sorted(chains.items()) if rules}
        for table, chains in sorted(ruleset.tables.items())
    }
