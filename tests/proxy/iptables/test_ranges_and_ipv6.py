"""loadBalancerSourceRanges and IPv6 in the iptables rules: golden text (kube-proxy's
KUBE-FW-x / KUBE-PROXY-FIREWALL layout; ip6tables spelling) and packet traces."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from proxy.iptables import chains as C
from proxy.iptables.applier import Applier, Result
from proxy.iptables.builder import BuildConfig, build_ruleset
from proxy.iptables.conntrack import stale_udp_entries
from proxy.iptables.family import IPV6
from proxy.iptables.render import render_full
from proxy.iptables.simulator import Simulator
from tests.proxy.iptables.helpers import check_jumps, eps, normalised, snapshot, spn, svc

CFG = BuildConfig(hostname="node-a", cluster_cidrs=("10.1.0.0/16", "fd00:1::/64"))
CFG6 = CFG.for_family(6)
NODE, NODE6 = "192.168.50.1", "fd00:50::1"
LOCAL = {NODE, NODE6, "127.0.0.1", "::1"}
LB = "203.0.113.10"

LB_SVC = svc(
    "lb",
    "10.96.0.20",
    eps("10.1.0.1", "10.1.0.2"),
    lb_ips=(LB,),
    node_port=30020,
    source_ranges=("192.168.77.0/24", "198.51.100.7/32", "fd00:77::/64"),
)


def test_golden_source_ranges() -> None:
    rs = build_ruleset(snapshot(LB_SVC), CFG)
    check_jumps(rs)
    name = spn("lb")
    fw, ext = C.firewall_chain(name), C.external_chain(name)
    nat, filt = normalised(rs)["nat"], normalised(rs)["filter"]
    assert (
        f'-A SEAWAY-SERVICES -m comment --comment "default/lb loadbalancer IP" '
        f"-d {LB}/32 -p tcp -m tcp --dport 80 -j {fw}"
    ) in nat[C.SERVICES]
    # only the IPv4 ranges, each on to the EXT chain; what falls through is not DNATed
    assert nat[fw] == [
        f'-A {fw} -m comment --comment "default/lb loadbalancer IP" -s 192.168.77.0/24 -j {ext}',
        f'-A {fw} -m comment --comment "default/lb loadbalancer IP" -s 198.51.100.7/32 -j {ext}',
    ]
    assert filt[C.PROXY_FIREWALL] == [
        f'-A SEAWAY-PROXY-FIREWALL -m comment --comment "default/lb traffic not accepted by '
        f'{fw}" -d {LB}/32 -p tcp -m tcp --dport 80 -j DROP'
    ]
    # the node port is not subject to the ranges (kube-proxy: "for better or for worse")
    assert nat[C.NODEPORTS] == [
        f'-A SEAWAY-NODEPORTS -m comment --comment "default/lb node port" '
        f"-p tcp -m tcp --dport 30020 -j {ext}"
    ]
    # and the filter chain is hooked where kube-proxy hooks KUBE-PROXY-FIREWALL
    text = render_full(rs, None, nft=False).text
    for builtin in ("INPUT", "FORWARD", "OUTPUT"):
        assert (
            f'-I {builtin} 1 -m conntrack --ctstate NEW -m comment --comment "seaway firewall" '
            "-j SEAWAY-PROXY-FIREWALL"
        ) in text


def test_source_ranges_without_endpoints_or_lb_ip_make_no_firewall() -> None:
    empty = svc("lb", "10.96.0.20", (), lb_ips=(LB,), source_ranges=("192.168.77.0/24",))
    rs = build_ruleset(snapshot(empty), CFG)
    assert C.firewall_chain(spn("lb")) not in rs.tables["nat"]
    assert rs.tables["filter"][C.PROXY_FIREWALL] == ()
    external = rs.tables["filter"][C.EXTERNAL_SERVICES]
    assert any(f"-d {LB}/32" in r and "REJECT" in r for r in external)
    no_lb = svc("lb", "10.96.0.20", eps("10.1.0.1"), source_ranges=("192.168.77.0/24",))
    assert C.firewall_chain(spn("lb")) not in build_ruleset(snapshot(no_lb), CFG).tables["nat"]
    # only IPv6 ranges: the IPv4 load-balancer IP is not restricted (kube-proxy, per family)
    v6_only = svc("lb", "10.96.0.20", eps("10.1.0.1"), lb_ips=(LB,), source_ranges=("fd00::/8",))
    assert C.firewall_chain(spn("lb")) not in build_ruleset(snapshot(v6_only), CFG).tables["nat"]


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("192.168.77.5", {("10.1.0.1:8080", "ACCEPT", True), ("10.1.0.2:8080", "ACCEPT", True)}),
        ("198.51.100.7", {("10.1.0.1:8080", "ACCEPT", True), ("10.1.0.2:8080", "ACCEPT", True)}),
        ("198.51.100.8", {(None, "DROP", False)}),
        ("10.1.0.9", {(None, "DROP", False)}),  # a pod outside the ranges too
    ],
)
def test_trace_source_ranges(src: str, expected: set[tuple[str | None, str, bool]]) -> None:
    sim = Simulator(build_ruleset(snapshot(LB_SVC), CFG), LOCAL)
    out = sim.trace(src, LB, 80)
    assert {(o.dnat, o.verdict, o.masquerade) for o in out} == expected
    # the node port of the same service serves everyone
    assert all(o.dnat for o in sim.trace(src, NODE, 30020))


DUAL = svc(
    "web",
    "",
    (
        *eps("10.1.0.1", node="node-a"),
        *eps("fd00:1:0::1", "fd00:1::2", node="node-a"),
    ),
    cluster_ips=("10.96.0.10", "fd00:96:0::a"),
    node_port=30080,
    affinity=60,
)


def test_golden_ipv6_rules() -> None:
    rs6 = build_ruleset(snapshot(DUAL), CFG6)
    check_jumps(rs6)
    name = spn("web")
    svc_chain = C.service_chain(name)
    sep = C.endpoint_chain(name, eps("fd00:1:0::1")[0])
    nat = normalised(rs6)["nat"]
    assert nat[C.SERVICES] == [
        f'-A SEAWAY-SERVICES -m comment --comment "default/web cluster IP" '
        f"-d fd00:96::a/128 -p tcp -m tcp --dport 80 -j {svc_chain}",
        '-A SEAWAY-SERVICES -m comment --comment "seaway service nodeports_ NOTE: this must '
        'be the last rule in this chain" ! -d ::1/128 -m addrtype --dst-type LOCAL '
        "-j SEAWAY-NODEPORTS",
    ]
    mask = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    assert nat[svc_chain][0] == (
        f'-A {svc_chain} -m comment --comment "default/web cluster IP" ! -s fd00:1::/64 '
        "-j SEAWAY-MARK-MASQ"
    )
    assert nat[svc_chain][1].startswith(
        f'-A {svc_chain} -m comment --comment "default/web -> [fd00:1::1]:8080" '
        f"-m recent --name {sep} --mask {mask} --rsource --rcheck --seconds 60 --reap"
    )
    assert nat[sep] == [
        f'-A {sep} -m comment --comment "default/web" -s fd00:1::1/128 -j SEAWAY-MARK-MASQ',
        f'-A {sep} -m comment --comment "default/web" -p tcp -m recent --name {sep} '
        f"--mask {mask} --rsource --set -j DNAT --to-destination [fd00:1::1]:8080",
    ]
    # no IPv4 in the IPv6 rules, no IPv6 in the IPv4 rules
    text6 = render_full(rs6, None, nft=False).text
    text4 = render_full(build_ruleset(snapshot(DUAL), CFG), None, nft=False).text
    assert "10.96.0.10" not in text6 and "10.1.0.1" not in text6
    assert "fd00" not in text4 and "--to-destination 10.1.0.1:8080" in text4
    assert "ffff" not in text4


def test_trace_ipv6_cluster_ip_and_node_port() -> None:
    sim = Simulator(build_ruleset(snapshot(DUAL), CFG6), LOCAL)
    from_pod = sim.trace("fd00:1::7", "fd00:96::a", 80)
    assert {(o.dnat, o.masquerade) for o in from_pod} == {
        ("[fd00:1::1]:8080", False),
        ("[fd00:1::2]:8080", False),
    }
    assert sum(o.probability for o in from_pod) == pytest.approx(1.0)
    outside = sim.trace("2001:db8::9", NODE6, 30080)
    assert {(o.dnat, o.verdict, o.masquerade) for o in outside} == {
        ("[fd00:1::1]:8080", "ACCEPT", True),
        ("[fd00:1::2]:8080", "ACCEPT", True),
    }
    (loopback,) = sim.trace("::1", "::1", 30080)  # IPv6 loopback node ports never work
    assert loopback.dnat is None


def test_ipv6_nodeport_addresses_and_conntrack_family() -> None:
    cfg = BuildConfig(hostname="n", nodeport_addresses=("192.168.50.0/24", "fd00:50::/64"))
    dispatch4 = build_ruleset(snapshot(DUAL), cfg).tables["nat"][C.SERVICES][-1]
    dispatch6 = build_ruleset(snapshot(DUAL), cfg.for_family(6)).tables["nat"][C.SERVICES][-1]
    assert "-d 192.168.50.0/24 -m addrtype" in dispatch4
    assert "-d fd00:50::/64 -m addrtype" in dispatch6
    udp = svc("dns", "", eps("fd00:1::1", "10.1.0.1"), proto="UDP", cluster_ips=("fd00:96::53",))
    gone = svc("dns", "", eps("10.1.0.1"), proto="UDP", cluster_ips=("fd00:96::53",))
    before, after = snapshot(udp).service_ports, snapshot(gone).service_ports
    assert stale_udp_entries(before, after, IPV6) == [
        ("-D", "-p", "udp", "--orig-dst", "fd00:96::53", "--dst-nat", "fd00:1::1")
    ]
    assert stale_udp_entries(before, after) == []  # nothing of IPv4 went away


def test_ip6tables_tools_and_conntrack_family() -> None:
    calls: list[list[str]] = []

    def run(argv: Sequence[str], stdin: bytes | None = None) -> Result:
        calls.append(list(argv))
        return Result(0, b"", b"")

    v6 = Applier("nft", run, family=6)
    assert v6.tool("restore") == "ip6tables-nft-restore" and v6.tool("iptables") == "ip6tables-nft"
    assert v6.available()
    # without an address (--orig-port-dst) conntrack would assume IPv4: the family is given
    v6.conntrack_delete(("-D", "-p", "udp", "--orig-port-dst", "30053"))
    v6.kernel_state()
    assert ["conntrack", "-D", "-f", "ipv6", "-p", "udp", "--orig-port-dst", "30053"] in calls
    assert ["nft", "list", "chains", "ip6"] in calls
    assert Applier("legacy", run).tool("save") == "iptables-legacy-save"
