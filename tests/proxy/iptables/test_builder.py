"""Golden rule text for representative services, plus structural checks."""

from __future__ import annotations

import random
from dataclasses import replace

from proxy.iptables import chains as C
from proxy.iptables.builder import (
    LARGE_CLUSTER_ENDPOINTS,
    BuildConfig,
    RuleBuilder,
    build_ruleset,
)
from tests.proxy.iptables.helpers import check_jumps, eps, normalised, snapshot, spn, svc

CFG = BuildConfig(hostname="node-a", cluster_cidrs=("10.1.0.0/16",))


def names(name: str, *ips: str, port: str = "", proto: str = "TCP") -> dict[str, str]:
    n = spn(name, port, proto)  # type: ignore[arg-type]
    svc_c, svl_c, ext_c = C.policy_chains(n)
    out = {"SVC": svc_c, "SVL": svl_c, "EXT": ext_c}
    for i, ip in enumerate(ips):
        out[f"SEP{i}"] = C.endpoint_chain(n, eps(ip)[0])
    return out


def test_chain_names_are_stable_hashed_and_short() -> None:
    n = spn("web", "http")
    assert C.service_chain(n) == C.service_chain(spn("web", "http"))
    assert C.service_chain(n) != C.service_chain(spn("web", "https"))
    assert C.service_chain(n) != C.service_chain(spn("web", "http", "UDP"))
    assert C.service_chain(n).startswith("SEAWAY-SVC-")
    assert len(C.endpoint_chain(n, eps("10.1.0.1")[0])) <= 28
    # user text never reaches a chain name
    evil = spn("a;b -j ACCEPT", "x y")
    assert all(c.isalnum() or c == "-" for c in C.service_chain(evil))


def test_golden_cluster_ip_three_endpoints_with_node_port() -> None:
    rs = build_ruleset(
        snapshot(
            svc(
                "web",
                "10.96.0.10",
                eps("10.1.0.1", "10.1.0.2", "10.1.0.3"),
                port_name="http",
                node_port=30080,
            )
        ),
        CFG,
    )
    check_jumps(rs)
    n = names("web", "10.1.0.1", "10.1.0.2", "10.1.0.3", port="http")
    nat = normalised(rs)["nat"]
    assert nat[C.SERVICES] == [
        f'-A SEAWAY-SERVICES -m comment --comment "default/web:http cluster IP" '
        f"-d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j {n['SVC']}",
        '-A SEAWAY-SERVICES -m comment --comment "seaway service nodeports_ NOTE: this must '
        'be the last rule in this chain" -m addrtype --dst-type LOCAL -j SEAWAY-NODEPORTS',
    ]
    assert nat[C.NODEPORTS] == [
        f'-A SEAWAY-NODEPORTS -m comment --comment "default/web:http node port" '
        f"-p tcp -m tcp --dport 30080 -j {n['EXT']}",
    ]
    assert nat[n["SVC"]] == [
        f'-A {n["SVC"]} -m comment --comment "default/web:http cluster IP" ! -s 10.1.0.0/16 '
        "-j SEAWAY-MARK-MASQ",
        f'-A {n["SVC"]} -m comment --comment "default/web:http -> 10.1.0.1:8080" '
        f"-m statistic --mode random --probability 0.3333333333 -j {n['SEP0']}",
        f'-A {n["SVC"]} -m comment --comment "default/web:http -> 10.1.0.2:8080" '
        f"-m statistic --mode random --probability 0.5000000000 -j {n['SEP1']}",
        f'-A {n["SVC"]} -m comment --comment "default/web:http -> 10.1.0.3:8080" -j {n["SEP2"]}',
    ]
    assert nat[n["SEP1"]] == [
        f'-A {n["SEP1"]} -m comment --comment "default/web:http" -s 10.1.0.2/32 '
        "-j SEAWAY-MARK-MASQ",
        f'-A {n["SEP1"]} -m comment --comment "default/web:http" -p tcp -j DNAT '
        "--to-destination 10.1.0.2:8080",
    ]
    assert nat[n["EXT"]] == [
        f'-A {n["EXT"]} -m comment --comment "masquerade traffic for default/web:http '
        'external destinations" -j SEAWAY-MARK-MASQ',
        f"-A {n['EXT']} -j {n['SVC']}",
    ]
    assert nat[C.POSTROUTING] == [
        "-A SEAWAY-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A SEAWAY-POSTROUTING -j MARK --xor-mark 0x4000",
        '-A SEAWAY-POSTROUTING -m comment --comment "seaway service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully",
    ]
    assert nat[C.MARK_MASQ] == ["-A SEAWAY-MARK-MASQ -j MARK --or-mark 0x4000"]
    # nothing to reject
    assert C.SERVICES not in normalised(rs)["filter"]
    assert set(nat) == {
        C.SERVICES,
        C.NODEPORTS,
        C.POSTROUTING,
        C.MARK_MASQ,
        n["SVC"],
        n["EXT"],
        n["SEP0"],
        n["SEP1"],
        n["SEP2"],
    }


def test_probabilities_are_one_over_n_minus_i() -> None:
    ips = [f"10.1.0.{i}" for i in range(1, 6)]
    rs = build_ruleset(snapshot(svc("five", "10.96.0.5", eps(*ips))), CFG)
    rules = rs.tables["nat"][C.service_chain(spn("five"))]
    probs = [r.split("--probability ")[1].split()[0] for r in rules if "--probability" in r]
    assert probs == ["0.2000000000", "0.2500000000", "0.3333333333", "0.5000000000"]
    assert "statistic" not in rules[-1]


def test_no_endpoints_rejects_in_filter_and_writes_no_nat_chain() -> None:
    rs = build_ruleset(
        snapshot(
            svc(
                "empty",
                "10.96.0.12",
                (),
                proto="UDP",
                port=53,
                node_port=30053,
                external_ips=("192.0.2.1",),
            )
        ),
        CFG,
    )
    check_jumps(rs)
    t = normalised(rs)
    assert t["filter"][C.SERVICES] == [
        '-A SEAWAY-SERVICES -m comment --comment "default/empty has no endpoints" '
        "-d 10.96.0.12/32 -p udp -m udp --dport 53 -j REJECT",
    ]
    assert t["filter"][C.EXTERNAL_SERVICES] == [
        '-A SEAWAY-EXTERNAL-SERVICES -m comment --comment "default/empty has no endpoints" '
        "-d 192.0.2.1/32 -p udp -m udp --dport 53 -j REJECT",
        '-A SEAWAY-EXTERNAL-SERVICES -m comment --comment "default/empty has no endpoints" '
        "-m addrtype --dst-type LOCAL -p udp -m udp --dport 30053 -j REJECT",
    ]
    assert not any(c.startswith(("SEAWAY-SVC-", "SEAWAY-SEP-")) for c in t["nat"])
    assert C.NODEPORTS not in t["nat"]  # empty chains are dropped by normalised()


def test_session_affinity_uses_recent_per_endpoint() -> None:
    rs = build_ruleset(
        snapshot(svc("s", "10.96.0.11", eps("10.1.0.1", "10.1.0.2"), affinity=600)), CFG
    )
    check_jumps(rs)
    n = names("s", "10.1.0.1", "10.1.0.2")
    rules = rs.tables["nat"][n["SVC"]]
    assert rules[1] == (
        f'-A {n["SVC"]} -m comment --comment "default/s -> 10.1.0.1:8080" -m recent --name '
        f"{n['SEP0']} --mask 255.255.255.255 --rsource --rcheck --seconds 600 --reap "
        f"-j {n['SEP0']}"
    )
    assert "--rcheck" in rules[2] and n["SEP1"] in rules[2]
    assert rs.tables["nat"][n["SEP1"]][1] == (
        f'-A {n["SEP1"]} -m comment --comment "default/s" -p tcp -m recent --name {n["SEP1"]} '
        "--mask 255.255.255.255 --rsource --set -j DNAT --to-destination 10.1.0.2:8080"
    )


def test_external_traffic_policy_local() -> None:
    local = eps("10.1.0.1", node="node-a") + eps("10.1.0.2", node="node-b")
    rs = build_ruleset(
        snapshot(
            svc("l", "10.96.0.13", local, node_port=30081, etp="Local", lb_ips=("198.51.100.1",))
        ),
        CFG,
    )
    check_jumps(rs)
    n = names("l", "10.1.0.1", "10.1.0.2")
    nat = rs.tables["nat"]
    assert nat[n["EXT"]] == (
        f'-A {n["EXT"]} -m comment --comment "pod traffic for default/l external destinations"'
        f" -s 10.1.0.0/16 -j {n['SVC']}",
        f'-A {n["EXT"]} -m comment --comment "masquerade LOCAL traffic for default/l external '
        'destinations" -m addrtype --src-type LOCAL -j SEAWAY-MARK-MASQ',
        f'-A {n["EXT"]} -m comment --comment "route LOCAL traffic for default/l external '
        f'destinations" -m addrtype --src-type LOCAL -j {n["SVC"]}',
        f"-A {n['EXT']} -j {n['SVL']}",
    )
    # the local chain has only the endpoint on node-a, without a statistic match
    assert nat[n["SVL"]] == (
        f'-A {n["SVL"]} -m comment --comment "default/l -> 10.1.0.1:8080" -j {n["SEP0"]}',
    )
    assert any("198.51.100.1/32" in r and n["EXT"] in r for r in nat[C.SERVICES])


def test_external_local_without_local_endpoints_drops_external_traffic_only() -> None:
    rs = build_ruleset(
        snapshot(
            svc("l", "10.96.0.13", eps("10.1.0.2", node="node-b"), node_port=30081, etp="Local")
        ),
        CFG,
    )
    check_jumps(rs)
    n = names("l")
    assert n["SVL"] not in rs.tables["nat"]
    assert rs.tables["nat"][n["EXT"]][-1].endswith(f"-j {n['SVC']}")  # node/pods still served
    assert rs.tables["filter"][C.EXTERNAL_SERVICES] == (
        '-A SEAWAY-EXTERNAL-SERVICES -m comment --comment "default/l has no local endpoints" '
        "-m addrtype --dst-type LOCAL -p tcp -m tcp --dport 30081 -j DROP",
    )


def test_internal_traffic_policy_local() -> None:
    both = eps("10.1.0.1", node="node-a") + eps("10.1.0.2", node="node-b")
    rs = build_ruleset(snapshot(svc("i", "10.96.0.14", both, itp="Local")), CFG)
    check_jumps(rs)
    n = names("i", "10.1.0.1")
    assert any(r.endswith(f"-j {n['SVL']}") for r in rs.tables["nat"][C.SERVICES])
    assert n["SVC"] not in rs.tables["nat"]
    remote_only = build_ruleset(
        snapshot(svc("i", "10.96.0.14", eps("10.1.0.2", node="node-b"), itp="Local")), CFG
    )
    assert remote_only.tables["filter"][C.SERVICES] == (
        '-A SEAWAY-SERVICES -m comment --comment "default/i has no local endpoints" '
        "-d 10.96.0.14/32 -p tcp -m tcp --dport 80 -j DROP",
    )


def test_terminating_fallback_for_local_policy() -> None:
    terminating = replace(eps("10.1.0.1", node="node-a")[0], ready=False, terminating=True)
    rs = build_ruleset(
        snapshot(svc("t", "10.96.0.15", (), itp="Local", all_endpoints=(terminating,))), CFG
    )
    check_jumps(rs)
    assert any(r.endswith(C.local_chain(spn("t"))) for r in rs.tables["nat"][C.SERVICES])


def test_nodeport_addresses_and_no_cluster_cidr() -> None:
    cfg = BuildConfig(hostname="n", nodeport_addresses=("192.168.5.0/24", "10.0.0.7"))
    rs = build_ruleset(snapshot(svc("w", "10.96.0.1", eps("10.1.0.1"))), cfg)
    check_jumps(rs)
    services = rs.tables["nat"][C.SERVICES]
    assert [r.split(" -d ")[1].split()[0] for r in services if "NODEPORTS" in r] == [
        "192.168.5.0/24",
        "10.0.0.7/32",
    ]
    assert not any("MARK-MASQ" in r for r in rs.tables["nat"][C.service_chain(spn("w"))])


def test_several_cluster_cidrs_use_a_nonpod_chain() -> None:
    cfg = BuildConfig(hostname="n", cluster_cidrs=("10.1.0.0/16", "10.2.0.0/16"))
    rs = build_ruleset(snapshot(svc("w", "10.96.0.1", eps("10.1.0.1"))), cfg)
    check_jumps(rs)
    assert rs.tables["nat"][C.NONPOD_MASQ] == (
        "-A SEAWAY-NONPOD-MASQ -s 10.1.0.0/16 -j RETURN",
        "-A SEAWAY-NONPOD-MASQ -s 10.2.0.0/16 -j RETURN",
        "-A SEAWAY-NONPOD-MASQ -j SEAWAY-MARK-MASQ",
    )
    svc_chain = C.service_chain(spn("w"))
    assert rs.tables["nat"][svc_chain][0] == (
        f'-A {svc_chain} -m comment --comment "default/w cluster IP" -j SEAWAY-NONPOD-MASQ'
    )


def test_ipv6_is_left_to_ip6tables() -> None:
    rs = build_ruleset(snapshot(svc("v6", "fd00::1", eps("fd00:1::1"))), CFG)
    check_jumps(rs)
    assert rs.tables["nat"][C.SERVICES][:-1] == ()
    assert rs.endpoints == 0


def test_comment_text_is_sanitised() -> None:
    bad = svc("w", "10.96.0.1", eps("10.1.0.1"), port_name='a"b;$(x)')
    rs = build_ruleset(snapshot(bad), CFG)
    check_jumps(rs)
    assert "default/w:a_b___x_ cluster IP" in rs.tables["nat"][C.SERVICES][0]


def test_large_cluster_mode_drops_endpoint_comments() -> None:
    n = LARGE_CLUSTER_ENDPOINTS // 2 + 1
    ports = [
        svc(f"s{i}", f"10.96.{i // 250}.{i % 250 + 1}", eps("10.1.0.1", "10.1.0.2"))
        for i in range(n)
    ]
    rs = build_ruleset(snapshot(*ports), CFG)
    check_jumps(rs)
    sep = C.endpoint_chain(spn("s0"), eps("10.1.0.1")[0])
    assert "comment" not in rs.tables["nat"][sep][0]
    assert rs.endpoints == 2 * n
    per_service = [
        r
        for c, rules in rs.tables["nat"].items()
        if c.startswith(("SEAWAY-SVC-", "SEAWAY-SEP-"))
        for r in rules
    ]
    assert per_service and not any("comment" in r for r in per_service)
    assert rs.tables["nat"][C.SERVICES][0] == (
        f"-A SEAWAY-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j "
        f"{C.service_chain(spn('s0'))}"
    )
    # the fixed chains keep theirs
    assert "comment" in rs.tables["nat"][C.SERVICES][-1]


def test_rule_builder_reuses_unchanged_fragments() -> None:
    a = svc("a", "10.96.0.1", eps("10.1.0.1"))
    b = svc("b", "10.96.0.2", eps("10.1.0.2"))
    builder = RuleBuilder(CFG)
    first = builder.build(snapshot(a, b))
    b2 = svc("b", "10.96.0.2", eps("10.1.0.3"))
    second = builder.build(snapshot(a, b2), frozenset({b2.name}))
    a_chain = C.service_chain(a.name)
    assert second.tables["nat"][a_chain] is first.tables["nat"][a_chain]
    b_chain = C.service_chain(b.name)
    assert second.tables["nat"][b_chain] != first.tables["nat"][b_chain]
    old_sep = C.endpoint_chain(b.name, b.endpoints[0])
    assert old_sep in first.tables["nat"] and old_sep not in second.tables["nat"]
    # equal but rebuilt ServicePortInfo objects still reuse the fragment
    third = builder.build(snapshot(svc("a", "10.96.0.1", eps("10.1.0.1")), b2))
    assert third.tables["nat"][a_chain] is first.tables["nat"][a_chain]
    # a removed service disappears
    fourth = builder.build(snapshot(a))
    assert b_chain not in fourth.tables["nat"]
    check_jumps(fourth)


def test_incremental_builds_equal_fresh_builds() -> None:
    """Endpoint changes patch the last Ruleset; anything else assembles again. Either
    way the result is exactly what a fresh build of the same Snapshot gives."""
    rng = random.Random(7)
    ports = {
        f"s{i}": svc(f"s{i}", f"10.96.0.{i + 1}", eps(f"10.1.0.{i + 1}"), node_port=30000 + i)
        for i in range(20)
    }
    builder = RuleBuilder(CFG)
    previous = builder.build(snapshot(*ports.values()))
    patched = 0
    for step in range(200):
        name = f"s{rng.randrange(25)}"
        what = rng.choice(["endpoints", "endpoints", "endpoints", "none", "ip", "remove"])
        i = int(name[1:])
        if what == "remove":
            ports.pop(name, None)
        elif what == "none":
            ports[name] = svc(name, f"10.96.0.{i + 1}", (), node_port=30000 + i)
        else:
            ip = f"10.96.{1 if what == 'ip' and rng.random() < 0.5 else 0}.{i + 1}"
            ips = [f"10.1.{rng.randrange(3)}.{rng.randrange(1, 9)}" for _ in range(3)]
            ports[name] = svc(name, ip, eps(*sorted(set(ips))), node_port=30000 + i)
        snap = snapshot(*ports.values(), generation=step + 2)
        got = builder.build(snap)
        patched += got.tables["nat"][C.SERVICES] is previous.tables["nat"][C.SERVICES]
        fresh = build_ruleset(snap, CFG)
        assert normalised(got) == normalised(fresh), (step, name, what)
        assert (got.service_ports, got.endpoints) == (fresh.service_ports, fresh.endpoints)
        check_jumps(got)
        previous = got
    assert patched > 20  # the patch path was exercised
