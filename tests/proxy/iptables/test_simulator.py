"""The simulator on fixed rules, then packet-trace tables through generated rulesets."""

from __future__ import annotations

import pytest

from proxy.iptables import chains as C
from proxy.iptables.builder import BuildConfig, Ruleset, build_ruleset
from proxy.iptables.simulator import Simulator, SimulatorError, format_trace, parse_rule
from tests.proxy import trace_model as M
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


# -- every path into a service chain, against the reference model (tests/proxy/trace_model.py)


def _matrix_ruleset(cidrs: tuple[str, ...]) -> Ruleset:
    return build_ruleset(
        snapshot(*M.service_ports()), BuildConfig(hostname="node-a", cluster_cidrs=cidrs)
    )


RULESETS = {cidrs: _matrix_ruleset(cidrs) for cidrs in M.CIDR_SETS}


@pytest.mark.parametrize("path", M.PATHS)
@pytest.mark.parametrize("kind", M.KINDS, ids=[k.name for k in M.KINDS])
@pytest.mark.parametrize("who", list(M.SOURCES))
@pytest.mark.parametrize("cidrs", M.CIDR_SETS, ids=M.CIDR_IDS)
def test_trace_matrix_every_path_into_a_service(
    cidrs: tuple[str, ...], who: str, kind: M.Kind, path: str
) -> None:
    M.check(Simulator(RULESETS[cidrs], LOCAL).trace, cidrs, who, kind, path, LOCAL)
