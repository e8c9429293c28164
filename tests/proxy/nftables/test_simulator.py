"""The nft simulator: rule parsing, trace tables and, against a reference model, every
path into every kind of service (the same model as the iptables mode's trace matrix)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from proxy.nftables import names as N
from proxy.nftables.builder import BuildConfig, build_tables
from proxy.nftables.simulator import (
    Match,
    Simulator,
    SimulatorError,
    Statement,
    format_trace,
    parse_rule,
)
from proxy.nftables.table import Chain, TableState
from tests.proxy import trace_model as M
from tests.proxy.iptables.helpers import eps, snapshot, spn, svc

NODE = "192.168.50.1"
NODE6 = "fd50::1"
LOCAL = {NODE, NODE6, "127.0.0.1"}


def test_parse_rule_terms() -> None:
    terms = parse_rule(
        "ip daddr . meta l4proto . th dport @firewall-ips "
        "ip daddr . meta l4proto . th dport . ip saddr != @firewall-allow drop"
    )
    assert [type(t).__name__ for t in terms] == ["Match", "Match", "Statement"]
    first, second, last = terms
    assert isinstance(first, Match) and first.rhs == "@firewall-ips" and not first.negate
    assert isinstance(second, Match) and second.negate and len(second.expr.parts) == 4
    assert isinstance(last, Statement) and last.kind == "drop"
    (proto, dnat) = parse_rule(
        "meta l4proto { tcp, udp, sctp } dnat ip to ip daddr . meta l4proto . th dport . "
        "numgen random mod 3 map @endpoints"
    )
    assert isinstance(proto, Match) and proto.choices == ("tcp", "udp", "sctp")
    assert isinstance(dnat, Statement) and dnat.kind == "dnat-map" and dnat.arg == "@endpoints"
    with pytest.raises(SimulatorError):
        parse_rule("ip frobnicate 1 accept")


def test_numgen_cascade_forks_evenly_and_goto_returns_to_the_caller() -> None:
    base = "type nat hook prerouting priority -100; policy accept;"
    state = TableState(
        "ip",
        chains={
            "pre": Chain(("jump svc", "meta mark set meta mark | 0x1"), base),
            "svc": Chain(("goto three",)),
            "three": Chain(
                (
                    "numgen random mod 3 0 meta l4proto tcp dnat to 10.0.0.1:1",
                    "numgen random mod 2 0 meta l4proto tcp dnat to 10.0.0.2:1",
                    "ip saddr 10.9.9.9 return",
                    "meta l4proto tcp dnat to 10.0.0.3:1",
                )
            ),
        },
    )
    out = Simulator({"ip": state}, LOCAL).trace("10.8.0.1", "10.7.0.1", 80)
    assert sorted((o.dnat, round(o.probability, 4)) for o in out) == [
        ("10.0.0.1:1", 0.3333),
        ("10.0.0.2:1", 0.3333),
        ("10.0.0.3:1", 0.3333),
    ]
    # returned from `three`: goto came back to pre (svc's caller), which goes on
    (back,) = [
        o
        for o in Simulator({"ip": state}, LOCAL).trace("10.9.9.9", "10.7.0.1", 80)
        if o.dnat is None
    ]
    assert back.hits[-1] == "ip pre: meta mark set meta mark | 0x1"


def test_undefined_chain_is_an_error() -> None:
    base = "type nat hook prerouting priority -100; policy accept;"
    state = TableState("ip", chains={"pre": Chain(("jump nowhere",), base)})
    with pytest.raises(SimulatorError, match="undefined"):
        Simulator({"ip": state}, LOCAL).trace("10.8.0.1", "10.7.0.1", 80)


CFG = BuildConfig(hostname="node-a", cluster_cidrs=("10.1.0.0/16", "fd01::/64"))
TABLES = build_tables(
    snapshot(
        svc("web", "10.96.0.10", eps("10.1.0.1", "10.1.0.2", node="node-a"), node_port=30080),
        svc("empty", "10.96.0.12", (), port=53, proto="UDP", node_port=30053),
        svc("far", "10.96.0.14", eps("10.1.0.3", node="node-b"), node_port=30082, etp="Local"),
        svc("sticky", "10.96.0.15", eps("10.1.0.1", "10.1.0.2"), affinity=300),
        replace(
            svc("fw", "10.96.0.16", eps("10.1.0.1"), lb_ips=("198.51.100.7",)),
            load_balancer_source_ranges=("192.168.0.0/16",),
        ),
        svc("six", "fd00::10", eps("fd01::1", "fd01::2", node="node-a"), node_port=30090),
    ),
    CFG,
)


def summary(
    src: str, dst: str, port: int, proto: str = "tcp"
) -> list[tuple[str | None, str, bool, float]]:
    out = Simulator(TABLES, LOCAL).trace(src, dst, port, proto)
    assert abs(sum(o.probability for o in out) - 1.0) < 1e-9
    return sorted((o.dnat, o.verdict, o.masquerade, round(o.probability, 4)) for o in out)


HALF = 0.5


@pytest.mark.parametrize(
    ("src", "dst", "port", "proto", "expected"),
    [
        # ClusterIP from a pod, from the node (masqueraded), hairpin (itself masqueraded)
        (
            "10.1.0.7",
            "10.96.0.10",
            80,
            "tcp",
            [("10.1.0.1:8080", "ACCEPT", False, HALF), ("10.1.0.2:8080", "ACCEPT", False, HALF)],
        ),
        (
            NODE,
            "10.96.0.10",
            80,
            "tcp",
            [("10.1.0.1:8080", "ACCEPT", True, HALF), ("10.1.0.2:8080", "ACCEPT", True, HALF)],
        ),
        (
            "10.1.0.1",
            "10.96.0.10",
            80,
            "tcp",
            [("10.1.0.1:8080", "ACCEPT", True, HALF), ("10.1.0.2:8080", "ACCEPT", False, HALF)],
        ),
        # a cluster IP's unknown port, and wrong protocol: rejected (nothing listens there)
        ("10.1.0.7", "10.96.0.10", 81, "tcp", [(None, "REJECT", False, 1.0)]),
        ("10.1.0.7", "10.96.0.10", 80, "udp", [(None, "REJECT", False, 1.0)]),
        # NodePort from outside: Cluster policy masquerades
        (
            "203.0.113.50",
            NODE,
            30080,
            "tcp",
            [("10.1.0.1:8080", "ACCEPT", True, HALF), ("10.1.0.2:8080", "ACCEPT", True, HALF)],
        ),
        # a node port on loopback or on a non-local address is not served
        ("203.0.113.50", "203.0.113.77", 30080, "tcp", [(None, "ACCEPT", False, 1.0)]),
        # no endpoints: REJECT for the cluster IP and the node port
        ("10.1.0.7", "10.96.0.12", 53, "udp", [(None, "REJECT", False, 1.0)]),
        ("203.0.113.50", NODE, 30053, "udp", [(None, "REJECT", False, 1.0)]),
        # eTP Local without a local endpoint: outside dropped, pods still served
        ("203.0.113.50", NODE, 30082, "tcp", [(None, "DROP", False, 1.0)]),
        ("10.1.0.7", NODE, 30082, "tcp", [("10.1.0.3:8080", "ACCEPT", False, 1.0)]),
        # loadBalancerSourceRanges: outside the ranges dropped, inside served; the cluster
        # IP is not filtered
        ("203.0.113.50", "198.51.100.7", 80, "tcp", [(None, "DROP", False, 1.0)]),
        ("192.168.3.3", "198.51.100.7", 80, "tcp", [("10.1.0.1:8080", "ACCEPT", True, 1.0)]),
        ("203.0.113.50", "10.96.0.16", 80, "tcp", [("10.1.0.1:8080", "ACCEPT", True, 1.0)]),
        # IPv6: its own table
        (
            "fd01::9",
            "fd00::10",
            80,
            "tcp",
            [("[fd01::1]:8080", "ACCEPT", False, HALF), ("[fd01::2]:8080", "ACCEPT", False, HALF)],
        ),
        (
            "fd01::1",
            "fd00::10",
            80,
            "tcp",
            [("[fd01::1]:8080", "ACCEPT", True, HALF), ("[fd01::2]:8080", "ACCEPT", False, HALF)],
        ),
        (
            "2001:db8::5",
            NODE6,
            30090,
            "tcp",
            [("[fd01::1]:8080", "ACCEPT", True, HALF), ("[fd01::2]:8080", "ACCEPT", True, HALF)],
        ),
        ("fd01::9", "fd00::10", 81, "tcp", [(None, "REJECT", False, 1.0)]),
    ],
)
def test_trace_table(
    src: str, dst: str, port: int, proto: str, expected: list[tuple[str | None, str, bool, float]]
) -> None:
    assert summary(src, dst, port, proto) == expected


def test_trace_affinity_and_format() -> None:
    out = Simulator(TABLES, LOCAL).trace("10.1.0.7", "10.96.0.15", 80)
    assert all(o.affinity_set for o in out)
    name = spn("sticky")
    remembered = N.affinity_set(name, eps("10.1.0.2")[0], 300)
    (again,) = Simulator(TABLES, LOCAL, affinity={remembered: {"10.1.0.7"}}).trace(
        "10.1.0.7", "10.96.0.15", 80
    )
    assert again.dnat == "10.1.0.2:8080" and again.affinity_set  # refreshed
    text = format_trace(out)
    assert "p=0.5000 DNAT to 10.1.0.1:8080" in text and "ClientIP affinity" in text
    assert "ip services: ip daddr . meta l4proto . th dport vmap @service-ips" in text


# -- every path into a service, against the reference model (tests/proxy/trace_model.py)


def matrix_tables(cidrs: tuple[str, ...]) -> dict[str, TableState]:
    return build_tables(
        snapshot(*M.service_ports()), BuildConfig(hostname="node-a", cluster_cidrs=cidrs)
    )


MATRIX = {cidrs: matrix_tables(cidrs) for cidrs in M.CIDR_SETS}


@pytest.mark.parametrize("path", M.PATHS)
@pytest.mark.parametrize("kind", M.KINDS, ids=[k.name for k in M.KINDS])
@pytest.mark.parametrize("who", list(M.SOURCES))
@pytest.mark.parametrize("cidrs", M.CIDR_SETS, ids=M.CIDR_IDS)
def test_trace_matrix_every_path_into_a_service(
    cidrs: tuple[str, ...], who: str, kind: M.Kind, path: str
) -> None:
    M.check(Simulator(MATRIX[cidrs], LOCAL).trace, cidrs, who, kind, path, LOCAL)
