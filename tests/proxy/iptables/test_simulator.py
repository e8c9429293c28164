"""The simulator on fixed rules, then packet-trace tables through generated rulesets."""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

import pytest

from discovery.model import TrafficPolicy
from proxy.iptables import chains as C
from proxy.iptables.builder import BuildConfig, Ruleset, build_ruleset
from proxy.iptables.simulator import Simulator, SimulatorError, format_trace, parse_rule
from tests.proxy.iptables.helpers import eps, snapshot, spn, svc

NODE = "192.168.50.1"
LOCAL = {NODE, "127.0.0.1"}


def fixed(
    nat: dict[str, tuple[str, ...]], filt: dict[str, tuple[str, ...]] | None = None
) -> Ruleset:
    base_nat = {C.SERVICES: (), C.POSTROUTING: (), C.MARK_MASQ: ()}
    base_filter = {C.SERVICES: (), C.EXTERNAL_SERVICES: (), C.FORWARD: (), C.PROXY_FIREWALL: ()}
    return Ruleset(tables={"nat": {**base_nat, **nat}, "filter": {**base_filter, **(filt or {})}})


def test_parse_rule_fields() -> None:
    r = parse_rule(
        '-A X -m comment --comment "a b" ! -s 10.0.0.0/8 -d 1.2.3.4/32 -p udp '
        "-m udp --dport 53 -m statistic --mode random --probability 0.25 -j Y"
    )
    assert (
        r.chain,
        r.src,
        r.src_neg,
        r.dst,
        r.dst_neg,
        r.proto,
        r.dport,
        r.probability,
        r.target,
    ) == ("X", "10.0.0.0/8", True, "1.2.3.4/32", False, "udp", 53, 0.25, "Y")
    with pytest.raises(SimulatorError):
        parse_rule("-A X --frobnicate 1 -j Y")


def test_fixed_rules_statistic_forks_and_dnat() -> None:
    rs = fixed(
        {
            C.SERVICES: (
                "-A SEAWAY-SERVICES -d 10.0.0.1/32 -p tcp -m tcp --dport 80 -j SEAWAY-SVC-T",
            ),
            "SEAWAY-SVC-T": (
                "-A SEAWAY-SVC-T -m statistic --mode random --probability 0.25 -j SEAWAY-SEP-A",
                "-A SEAWAY-SVC-T -j SEAWAY-SEP-B",
            ),
            "SEAWAY-SEP-A": (
                "-A SEAWAY-SEP-A -p tcp -m tcp -j DNAT --to-destination 10.9.0.1:8080",
            ),
            "SEAWAY-SEP-B": (
                "-A SEAWAY-SEP-B -p tcp -m tcp -j DNAT --to-destination 10.9.0.2:8080",
            ),
        }
    )
    out = Simulator(rs, LOCAL).trace("10.8.0.1", "10.0.0.1", 80)
    assert sorted((o.dnat, o.probability) for o in out) == [
        ("10.9.0.1:8080", 0.25),
        ("10.9.0.2:8080", 0.75),
    ]
    assert all(o.verdict == "ACCEPT" and not o.masquerade for o in out)
    # another port does not match: no DNAT, accepted by policy
    (miss,) = Simulator(rs, LOCAL).trace("10.8.0.1", "10.0.0.1", 81)
    assert miss.dnat is None and miss.probability == 1.0


def test_fixed_rules_return_mark_and_masquerade() -> None:
    rs = fixed(
        {
            C.SERVICES: (
                "-A SEAWAY-SERVICES -s 10.8.0.0/16 -j RETURN",
                "-A SEAWAY-SERVICES -j SEAWAY-MARK-MASQ",
            ),
            C.MARK_MASQ: ("-A SEAWAY-MARK-MASQ -j MARK --or-mark 0x4000",),
            C.POSTROUTING: (
                "-A SEAWAY-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
                "-A SEAWAY-POSTROUTING -j MASQUERADE",
            ),
        }
    )
    sim = Simulator(rs, LOCAL)
    (inside,) = sim.trace("10.8.0.1", "10.7.0.1", 80)
    (outside,) = sim.trace("10.6.0.1", "10.7.0.1", 80)
    assert not inside.masquerade and outside.masquerade


def test_fixed_rules_reject_in_filter_and_undefined_chain() -> None:
    rs = fixed({}, {C.SERVICES: ("-A SEAWAY-SERVICES -d 10.0.0.1/32 -j REJECT",)})
    (o,) = Simulator(rs, LOCAL).trace("10.8.0.1", "10.0.0.1", 80)
    assert o.verdict == "REJECT" and o.dnat is None
    bad = fixed({C.SERVICES: ("-A SEAWAY-SERVICES -j SEAWAY-NOWHERE",)})
    with pytest.raises(SimulatorError, match="undefined"):
        Simulator(bad, LOCAL).trace("10.8.0.1", "10.0.0.1", 80)


def test_fixed_rules_recent_check_uses_given_state() -> None:
    rs = fixed(
        {
            C.SERVICES: ("-A SEAWAY-SERVICES -j SEAWAY-SVC-T",),
            "SEAWAY-SVC-T": (
                "-A SEAWAY-SVC-T -m recent --name SEAWAY-SEP-B --mask 255.255.255.255 --rsource "
                "--rcheck --seconds 60 --reap -j SEAWAY-SEP-B",
                "-A SEAWAY-SVC-T -j SEAWAY-SEP-A",
            ),
            "SEAWAY-SEP-A": ("-A SEAWAY-SEP-A -p tcp -m tcp -j DNAT --to-destination 10.9.0.1:1",),
            "SEAWAY-SEP-B": ("-A SEAWAY-SEP-B -p tcp -m tcp -j DNAT --to-destination 10.9.0.2:1",),
        }
    )
    (fresh,) = Simulator(rs, LOCAL).trace("10.8.0.1", "10.0.0.1", 80)
    (sticky,) = Simulator(rs, LOCAL, recent={"SEAWAY-SEP-B": {"10.8.0.1"}}).trace(
        "10.8.0.1", "10.0.0.1", 80
    )
    assert (fresh.dnat, sticky.dnat) == ("10.9.0.1:1", "10.9.0.2:1")


CFG = BuildConfig(hostname="node-a", cluster_cidrs=("10.1.0.0/16",))
RULES = build_ruleset(
    snapshot(
        svc("web", "10.96.0.10", eps("10.1.0.1", "10.1.0.2", node="node-a"), node_port=30080),
        svc("empty", "10.96.0.12", (), port=53, proto="UDP", node_port=30053),
        svc(
            "loc",
            "10.96.0.13",
            eps("10.1.0.1", node="node-a") + eps("10.1.0.3", node="node-b"),
            node_port=30081,
            etp="Local",
            external_ips=("203.0.113.9",),
        ),
        svc("far", "10.96.0.14", eps("10.1.0.3", node="node-b"), node_port=30082, etp="Local"),
        svc("sticky", "10.96.0.15", eps("10.1.0.1", "10.1.0.2"), affinity=300),
    ),
    CFG,
)


def summary(
    src: str, dst: str, port: int, proto: str = "tcp"
) -> list[tuple[str | None, str, bool, float]]:
    out = Simulator(RULES, LOCAL).trace(src, dst, port, proto)
    assert abs(sum(o.probability for o in out) - 1.0) < 1e-9
    return sorted((o.dnat, o.verdict, o.masquerade, round(o.probability, 4)) for o in out)


@pytest.mark.parametrize(
    ("src", "dst", "port", "proto", "expected"),
    [
        # ClusterIP from a pod: spread evenly, no masquerade (pod source kept)
        (
            "10.1.0.7",
            "10.96.0.10",
            80,
            "tcp",
            [("10.1.0.1:8080", "ACCEPT", False, 0.5), ("10.1.0.2:8080", "ACCEPT", False, 0.5)],
        ),
        # ClusterIP from the node: source outside the cluster CIDR -> masquerade
        (
            NODE,
            "10.96.0.10",
            80,
            "tcp",
            [("10.1.0.1:8080", "ACCEPT", True, 0.5), ("10.1.0.2:8080", "ACCEPT", True, 0.5)],
        ),
        # hairpin: the pod reaching itself is masqueraded, reaching the other is not
        (
            "10.1.0.1",
            "10.96.0.10",
            80,
            "tcp",
            [("10.1.0.1:8080", "ACCEPT", True, 0.5), ("10.1.0.2:8080", "ACCEPT", False, 0.5)],
        ),
        # NodePort from outside: Cluster policy masquerades
        (
            "203.0.113.50",
            NODE,
            30080,
            "tcp",
            [("10.1.0.1:8080", "ACCEPT", True, 0.5), ("10.1.0.2:8080", "ACCEPT", True, 0.5)],
        ),
        # no endpoints: REJECT for the cluster IP and the node port
        ("10.1.0.7", "10.96.0.12", 53, "udp", [(None, "REJECT", False, 1.0)]),
        ("203.0.113.50", NODE, 30053, "udp", [(None, "REJECT", False, 1.0)]),
        # wrong protocol: not a service, untouched
        ("10.1.0.7", "10.96.0.12", 53, "tcp", [(None, "ACCEPT", False, 1.0)]),
        # eTP Local: external clients reach only the local endpoint, source kept
        ("203.0.113.50", NODE, 30081, "tcp", [("10.1.0.1:8080", "ACCEPT", False, 1.0)]),
        ("203.0.113.50", "203.0.113.9", 80, "tcp", [("10.1.0.1:8080", "ACCEPT", False, 1.0)]),
        # ... while pods use every endpoint
        (
            "10.1.0.7",
            NODE,
            30081,
            "tcp",
            [("10.1.0.1:8080", "ACCEPT", False, 0.5), ("10.1.0.3:8080", "ACCEPT", False, 0.5)],
        ),
        # eTP Local without a local endpoint: external traffic dropped, pods still served
        ("203.0.113.50", NODE, 30082, "tcp", [(None, "DROP", False, 1.0)]),
        ("10.1.0.7", NODE, 30082, "tcp", [("10.1.0.3:8080", "ACCEPT", False, 1.0)]),
        # a node port on a non-local address is not served
        ("203.0.113.50", "203.0.113.77", 30080, "tcp", [(None, "ACCEPT", False, 1.0)]),
    ],
)
def test_trace_table(
    src: str, dst: str, port: int, proto: str, expected: list[tuple[str | None, str, bool, float]]
) -> None:
    assert summary(src, dst, port, proto) == expected


def test_trace_affinity_and_format() -> None:
    sim = Simulator(RULES, LOCAL)
    out = sim.trace("10.1.0.7", "10.96.0.15", 80)
    assert all(o.recent_set for o in out)
    sep = C.endpoint_chain(spn("sticky"), eps("10.1.0.2")[0])
    (again,) = Simulator(RULES, LOCAL, recent={sep: {"10.1.0.7"}}).trace(
        "10.1.0.7", "10.96.0.15", 80
    )
    assert again.dnat == "10.1.0.2:8080"
    text = format_trace(out)
    assert "p=0.5000 DNAT to 10.1.0.1:8080" in text and "ClientIP affinity" in text
    assert "nat -A SEAWAY-SERVICES" in text


# -- every path into a service chain, against a reference model ---------------------------
#
# Services of each policy kind, reached by cluster IP, node port, external IP and
# load-balancer IP, from a pod (in either cluster CIDR), a pod reaching itself, the node
# and an outside client, under one, two and no --cluster-cidr ranges. The expected outcome
# comes from the rules kube-proxy documents, not from the builder:
# - endpoints: cluster IP -> all, or only local ones with internalTrafficPolicy Local;
#   external -> only local ones with externalTrafficPolicy Local, unless the source is a
#   pod or the node itself (those use every endpoint);
# - masquerade: a pod reaching itself (hairpin); a cluster IP reached from outside the
#   cluster CIDRs (with either internalTrafficPolicy: kube-proxy writes that rule into
#   the internal traffic chain, SVL for Local); external traffic with Cluster policy, and
#   external traffic from the node itself.

POD_A = eps("10.1.0.1", node="node-a")
POD_B = eps("10.2.0.3", node="node-b")
SOURCES = {
    "pod": "10.1.0.7",
    "pod-in-second-cidr": "10.2.0.9",
    "hairpin": "10.1.0.1",
    "node": NODE,
    "outside": "203.0.113.50",
}


class Kind(NamedTuple):
    name: str
    cluster_ip: str
    node_port: int
    external_ip: str
    lb_ip: str
    etp: TrafficPolicy
    itp: TrafficPolicy
    affinity: int | None = None


KINDS = [
    Kind("cl", "10.96.1.1", 30101, "203.0.113.1", "198.51.100.1", "Cluster", "Cluster"),
    Kind("lo", "10.96.1.2", 30102, "203.0.113.2", "198.51.100.2", "Local", "Cluster"),
    Kind("il", "10.96.1.3", 30103, "203.0.113.3", "198.51.100.3", "Cluster", "Local"),
    Kind("ll", "10.96.1.4", 30104, "203.0.113.4", "198.51.100.4", "Local", "Local"),
    Kind("af", "10.96.1.5", 30105, "203.0.113.5", "198.51.100.5", "Cluster", "Cluster", 60),
]
CIDR_SETS = [("10.1.0.0/16",), ("10.1.0.0/16", "10.2.0.0/16"), ()]
PATHS = ("cluster IP", "node port", "external IP", "LB IP")


def _matrix_ruleset(cidrs: tuple[str, ...]) -> Ruleset:
    ports = [
        svc(
            k.name,
            k.cluster_ip,
            POD_A + POD_B,
            node_port=k.node_port,
            external_ips=(k.external_ip,),
            lb_ips=(k.lb_ip,),
            etp=k.etp,
            itp=k.itp,
            affinity=k.affinity,
        )
        for k in KINDS
    ]
    return build_ruleset(snapshot(*ports), BuildConfig(hostname="node-a", cluster_cidrs=cidrs))


RULESETS = {cidrs: _matrix_ruleset(cidrs) for cidrs in CIDR_SETS}


def _expected(
    cidrs: tuple[str, ...], src: str, path: str, kind: Kind
) -> list[tuple[str, bool, float]]:
    in_pod_cidr = any(ipaddress.ip_address(src) in ipaddress.ip_network(c) for c in cidrs)
    if path == "cluster IP":
        targets = POD_A if kind.itp == "Local" else POD_A + POD_B
        masq = bool(cidrs) and not in_pod_cidr
    else:
        from_node = src in LOCAL
        local_only = kind.etp == "Local" and not in_pod_cidr and not from_node
        targets = POD_A if local_only else POD_A + POD_B
        masq = kind.etp == "Cluster" or from_node
    p = round(1 / len(targets), 4)
    return sorted((e.address, masq or e.ip == src, p) for e in targets)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
@pytest.mark.parametrize("who", list(SOURCES))
@pytest.mark.parametrize("cidrs", CIDR_SETS, ids=["one-cidr", "two-cidrs", "no-cidr"])
def test_trace_matrix_every_path_into_a_service(
    cidrs: tuple[str, ...], who: str, kind: Kind, path: str
) -> None:
    dst, port = {
        "cluster IP": (kind.cluster_ip, 80),
        "node port": (NODE, kind.node_port),
        "external IP": (kind.external_ip, 80),
        "LB IP": (kind.lb_ip, 80),
    }[path]
    src = SOURCES[who]
    out = Simulator(RULESETS[cidrs], LOCAL).trace(src, dst, port)
    assert abs(sum(o.probability for o in out) - 1.0) < 1e-9
    assert all(o.verdict == "ACCEPT" for o in out)
    got = sorted((str(o.dnat), o.masquerade, round(o.probability, 4)) for o in out)
    assert got == _expected(cidrs, src, path, kind)
