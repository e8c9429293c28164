"""Real kernel tests of the nftables mode: seaway programs its tables in a node namespace;
real connections from the node, from pods and from an outside client, over IPv4 and
IPv6. Root only; every namespace, process and table is removed even on failure."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.command import Result, run_command
from proxy.nftables import names as N
from proxy.nftables.applier import NftApplier
from proxy.nftables.builder import BuildConfig, build_tables
from proxy.nftables.render import render_full
from proxy.nftables.simulator import Simulator
from proxy.nftables.table import diff
from tests.proxy.iptables.netns import (
    CLIENT_IP,
    CLIENT_IP6,
    CLUSTER_CIDR,
    CLUSTER_CIDR6,
    NODE_IP,
    NODE_IP6,
    REPO,
    UDP_PORT,
    Cluster,
    manifest,
    wait_until,
)
from tests.proxy.iptables.test_kernel import names, write
from tests.proxy.nftables.test_builder import CFG as LAYOUT_CFG
from tests.proxy.nftables.test_builder import layout_snapshot

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces and nft"),
]

CIDRS = f"{CLUSTER_CIDR},{CLUSTER_CIDR6}"
FLAGS = ("--proxy-mode", "nftables", "--cluster-cidr", CIDRS, "--hostname-override", "node-a")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster(pods=3, tag="n", ipv6=True)
    try:
        c.open()
        yield c
    finally:
        c.close()


@pytest.fixture(autouse=True)
def clean_tables(cluster: Cluster) -> Iterator[None]:
    yield
    cluster.seaway("cleanup", "--proxy-mode", "nftables", check=False)
    cluster.exec(cluster.node, "conntrack", "-F", check=False)
    cluster.exec(cluster.node, "conntrack", "-F", "-f", "ipv6", check=False)


@pytest.fixture
def config_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="seaway-nft-") as d:
        yield Path(d)


def answers_by_pod(cluster: Cluster, ns: str, host: str, port: int, count: int) -> dict[str, str]:
    got: dict[str, str] = {}
    for a in cluster.answers(ns, host, port, count=count):
        name, peer = a.split()
        got[name] = peer
    return got


def in_node(cluster: Cluster):  # type: ignore[no-untyped-def]
    def run(argv, stdin=None) -> Result:  # type: ignore[no-untyped-def]
        return run_command(["ip", "netns", "exec", cluster.node, *argv], stdin)

    return run


def tables(cluster: Cluster) -> str:
    return cluster.exec(cluster.node, "nft", "list", "tables")


def test_cluster_ip_node_port_and_hairpin(cluster: Cluster, config_dir: Path) -> None:
    cfg = write(
        config_dir / "web.yaml",
        [{"name": "web", "ip": "10.96.0.10", "endpoints": [0, 1, 2], "nodePort": 30080}],
    )
    out = cluster.seaway("apply", "-c", cfg, *FLAGS).stdout
    assert "applied 1 service ports, 3 endpoints" in out and "(nftables, full)" in out
    assert "table ip seaway" in tables(cluster) and "table ip6 seaway" in tables(cluster)

    # ClusterIP from the node: spread over every endpoint, masqueraded
    got = answers_by_pod(cluster, cluster.node, "10.96.0.10", 80, 40)
    assert got == {f"pod{i}": cluster.gateway(i) for i in range(3)}

    # ClusterIP from a pod: source kept, except hairpin (itself) which is masqueraded
    got = answers_by_pod(cluster, cluster.pods[1], "10.96.0.10", 80, 40)
    assert got == {"pod0": cluster.pod_ip(1), "pod1": cluster.gateway(1), "pod2": cluster.pod_ip(1)}

    # NodePort from the outside client: served and masqueraded
    for a in cluster.answers(cluster.client, NODE_IP, 30080, count=10):
        name, peer = a.split()
        assert peer == cluster.gateway(int(name[3:]))


def test_node_port_masquerade_by_traffic_policy(cluster: Cluster, config_dir: Path) -> None:
    cfg = write(
        config_dir / "np.yaml",
        [
            {"name": "np", "ip": "10.96.0.50", "endpoints": [0, 1], "nodePort": 30050},
            {
                "name": "local",
                "ip": "10.96.0.51",
                "endpoints": [0, 1],
                "remote": [1],
                "nodePort": 30051,
                "etp": "Local",
            },
        ],
    )
    cluster.seaway("apply", "-c", cfg, *FLAGS)
    # Cluster policy: from a pod and from the outside client, always masqueraded
    for ns in (cluster.pods[2], cluster.client):
        got = answers_by_pod(cluster, ns, NODE_IP, 30050, 30)
        assert got == {"pod0": cluster.gateway(0), "pod1": cluster.gateway(1)}, ns
    # Local policy: the outside client reaches only the local endpoint, source kept
    for a in cluster.answers(cluster.client, NODE_IP, 30051, count=10):
        assert a.split() == ["pod0", CLIENT_IP]
    # ... a pod reaches every endpoint, source kept; the node itself is masqueraded
    got = answers_by_pod(cluster, cluster.pods[2], NODE_IP, 30051, 30)
    assert got == {"pod0": cluster.pod_ip(2), "pod1": cluster.pod_ip(2)}
    got = answers_by_pod(cluster, cluster.node, NODE_IP, 30051, 30)
    assert got == {"pod0": cluster.gateway(0), "pod1": cluster.gateway(1)}


def test_no_endpoints_and_unknown_ports_are_refused_at_once(
    cluster: Cluster, config_dir: Path
) -> None:
    cfg = write(
        config_dir / "empty.yaml",
        [
            {"name": "empty", "ip": "10.96.0.20", "endpoints": [], "nodePort": 30020},
            {"name": "web", "ip": "10.96.0.21", "endpoints": [0]},
        ],
    )
    cluster.seaway("apply", "-c", cfg, *FLAGS)
    for ns, host, port in (
        (cluster.pods[0], "10.96.0.20", 80),
        (cluster.node, "10.96.0.20", 80),
        (cluster.client, NODE_IP, 30020),
        (cluster.pods[0], "10.96.0.21", 81),  # a port the cluster IP does not have
    ):
        (res,) = cluster.connect(ns, host, port)
        assert res["ok"] is False and res["error"] == "ConnectionRefusedError", (ns, host, res)


def test_client_ip_affinity_sticks(cluster: Cluster, config_dir: Path) -> None:
    cfg = write(
        config_dir / "sticky.yaml",
        [{"name": "sticky", "ip": "10.96.0.30", "endpoints": [0, 1, 2], "affinity": 60}],
    )
    cluster.seaway("apply", "-c", cfg, *FLAGS)
    for ns in (cluster.pods[0], cluster.pods[2], cluster.node):
        got = set(names(cluster.answers(ns, "10.96.0.30", 80, count=15)))
        assert len(got) == 1, (ns, got)


def test_partial_sync_endpoint_removal_and_udp_conntrack(
    cluster: Cluster, config_dir: Path
) -> None:
    def services(tcp_eps: list[int], udp_eps: list[int]) -> list[dict[str, object]]:
        return [
            {"name": "tcp", "ip": "10.96.0.40", "endpoints": tcp_eps, "nodePort": 30040},
            {
                "name": "dns",
                "ip": "10.96.0.41",
                "port": 53,
                "target": UDP_PORT,
                "proto": "UDP",
                "endpoints": udp_eps,
            },
        ]

    argv = ["ip", "netns", "exec", cluster.node, sys.executable, "-m"]
    driver = subprocess.Popen(
        [*argv, "tests.proxy.nftables.sync_driver", CIDRS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:

        def sync(path: str) -> dict[str, object]:
            assert driver.stdin is not None and driver.stdout is not None
            driver.stdin.write(path + "\n")
            driver.stdin.flush()
            report: dict[str, object] = json.loads(driver.stdout.readline())
            assert "error" not in report, report
            return report

        assert sync(write(config_dir / "a.yaml", services([0, 1], [0, 1])))["kind"] == "full"
        got = set(names(cluster.answers(cluster.pods[2], "10.96.0.40", 80, count=30)))
        assert got == {"pod0", "pod1"}
        # one UDP "flow" from a fixed source port: pinned to one endpoint by conntrack
        (udp1,) = names(
            cluster.answers(cluster.pods[2], "10.96.0.41", 53, proto="udp", sport=40000)
        )
        again = names(
            cluster.answers(cluster.pods[2], "10.96.0.41", 53, count=3, proto="udp", sport=40000)
        )
        assert set(again) == {udp1}
        remaining = 1 - int(udp1[3:])

        report = sync(write(config_dir / "b.yaml", services([1], [remaining])))
        assert report["kind"] == "partial"
        assert isinstance(report["conntrack_deleted"], int) and report["conntrack_deleted"] >= 1
        # only elements and the tcp service's endpoint chain (used by its node port)
        nft = str(report["nft"])
        assert "table" not in nft.split("ip seaway", 1)[0] and "external-" not in nft, nft
        assert re.findall(r"^(?:add|delete|flush) (\w+)", nft, re.M) and all(
            kind in ("element", "chain", "rule")
            for kind in re.findall(r"^(?:add|delete|flush) (\w+)", nft, re.M)
        )
        got = set(names(cluster.answers(cluster.pods[2], "10.96.0.40", 80, count=20)))
        assert got == {"pod1"}
        got = set(names(cluster.answers(cluster.client, NODE_IP, 30040, count=10)))
        assert got == {"pod1"}
        # same source port: the stale entry was deleted, so the flow moves to the survivor
        after = names(cluster.answers(cluster.pods[2], "10.96.0.41", 53, proto="udp", sport=40000))
        assert after == [f"pod{remaining}"]
    finally:
        if driver.stdin:
            driver.stdin.close()
        driver.kill()
        driver.wait()


def test_load_balancer_source_ranges(cluster: Cluster, config_dir: Path) -> None:
    """Traffic to a load-balancer IP from outside loadBalancerSourceRanges is dropped;
    the same service's cluster IP and node port are not filtered (as in kube-proxy)."""
    lb = "198.51.100.7"

    def apply_ranges(*cidrs: str) -> None:
        service = {
            "name": "lb",
            "ip": "10.96.0.70",
            "endpoints": [0],
            "nodePort": 30070,
            "lb": [lb],
            "ranges": list(cidrs),
        }
        cluster.seaway("apply", "-c", write(config_dir / "lb.yaml", [service]), *FLAGS)

    apply_ranges("192.168.77.0/24", "10.99.0.0/16")
    assert names(cluster.answers(cluster.client, lb, 80, count=3)) == ["pod0"] * 3
    apply_ranges("10.99.0.0/16")  # a partial change of the firewall elements (read back)
    (res,) = cluster.connect(cluster.client, lb, 80, timeout=0.5)
    assert res["ok"] is False and res["error"] == "TimeoutError", res
    assert names(cluster.answers(cluster.client, NODE_IP, 30070)) == ["pod0"]
    assert names(cluster.answers(cluster.pods[1], "10.96.0.70", 80)) == ["pod0"]
    # a pod outside the ranges is dropped too (the ranges are about sources, not paths)
    (res,) = cluster.connect(cluster.pods[1], lb, 80, timeout=0.5)
    assert res["ok"] is False


def test_topology_choice(cluster: Cluster, config_dir: Path) -> None:
    """trafficDistribution PreferClose, resolved in the Snapshot: the cluster IP goes to
    the endpoints of this node's zone (--node-zone), every endpoint when it has none."""
    zones = {0: "z1", 1: "z1", 2: "z2"}
    cfg = write(
        config_dir / "zoned.yaml",
        [
            {
                "name": "zoned",
                "ip": "10.96.0.85",
                "endpoints": [0, 1, 2],
                "zones": zones,
                "distribution": "PreferClose",
            }
        ],
    )
    for zone, pods in {
        "z1": {"pod0", "pod1"},
        "z2": {"pod2"},
        "z9": {"pod0", "pod1", "pod2"},
    }.items():
        cluster.seaway("apply", "-c", cfg, *FLAGS, "--node-zone", zone)
        assert set(names(cluster.answers(cluster.pods[0], "10.96.0.85", 80, count=30))) == pods


def test_ipv6_cluster_ip_hairpin_and_node_port(cluster: Cluster, config_dir: Path) -> None:
    cfg = write(
        config_dir / "six.yaml",
        [{"name": "six", "ips": ["fd00:96::10"], "endpoints": [0, 1], "nodePort": 30090}],
    )
    out = cluster.seaway("apply", "-c", cfg, *FLAGS).stdout
    assert "applied 1 service ports, 2 endpoints" in out
    pod6, gw6 = cluster.pod_ip6, cluster.gateway6
    got = answers_by_pod(cluster, cluster.pods[2], "fd00:96::10", 80, 30)
    assert got == {"pod0": pod6(2), "pod1": pod6(2)}
    got = answers_by_pod(cluster, cluster.pods[0], "fd00:96::10", 80, 30)
    assert got == {"pod0": gw6(0), "pod1": pod6(0)}  # hairpin masqueraded
    got = answers_by_pod(cluster, cluster.client, NODE_IP6, 30090, 20)
    assert got == {"pod0": gw6(0), "pod1": gw6(1)}
    got = answers_by_pod(cluster, cluster.node, "fd00:96::10", 80, 20)
    assert got == {"pod0": gw6(0), "pod1": gw6(1)}
    assert CLIENT_IP6 not in got.values()
    # the IPv4 table holds nothing of this service
    assert "fd00:96::10" not in cluster.exec(cluster.node, "nft", "list", "table", "ip", "seaway")


# -- the simulator against real traffic ---------------------------------------------------

MATRIX = [
    {"name": "cl", "ip": "10.96.5.1", "endpoints": [0, 1], "remote": [1], "nodePort": 30101},
    {
        "name": "lo",
        "ip": "10.96.5.2",
        "endpoints": [0, 1],
        "remote": [1],
        "nodePort": 30102,
        "etp": "Local",
    },
    {
        "name": "lr",
        "ip": "10.96.5.3",
        "endpoints": [1],
        "remote": [1],
        "nodePort": 30103,
        "etp": "Local",
    },
    {"name": "none", "ip": "10.96.5.4", "endpoints": [], "nodePort": 30104},
    {"name": "af", "ip": "10.96.5.5", "endpoints": [0, 1], "nodePort": 30105, "affinity": 30},
]


def test_trace_matrix_simulator_matches_real_traffic(cluster: Cluster, config_dir: Path) -> None:
    """Every service kind, reached by cluster IP and node port, from the node, a pod, a
    pod reaching itself and the outside client: the simulator's outcomes (which
    endpoints, masqueraded or not, refused or dropped) are what real connections get."""
    cfg = write(config_dir / "matrix.yaml", MATRIX)
    cluster.seaway("apply", "-c", cfg, *FLAGS)
    from discovery.manifest import load_path
    from discovery.snapshot_builder import build_snapshot

    snap = build_snapshot(load_path(cfg).objects())
    local = {NODE_IP, "127.0.0.1", *(cluster.gateway(i) for i in range(3))}
    sim = Simulator(build_tables(snap, BuildConfig("node-a", (CLUSTER_CIDR, CLUSTER_CIDR6))), local)
    pod_of = {cluster.pod_ip(i): f"pod{i}" for i in range(3)}
    sources = {
        cluster.node: NODE_IP,
        cluster.pods[2]: cluster.pod_ip(2),
        cluster.pods[0]: cluster.pod_ip(0),
        cluster.client: CLIENT_IP,
    }
    checked = 0
    for svc_ in MATRIX:
        for dst, port in ((str(svc_["ip"]), 80), (NODE_IP, int(svc_["nodePort"]))):  # type: ignore[call-overload]
            for ns, src in sources.items():
                outcomes = sim.trace(src, dst, port)
                if outcomes[0].verdict != "ACCEPT":
                    assert len(outcomes) == 1
                    # A refusal comes at once, so its wait can be long (a loaded machine
                    # may not run the client for a while); a drop is waited out briefly.
                    drop = outcomes[0].verdict == "DROP"
                    (res,) = cluster.connect(ns, dst, port, timeout=0.5 if drop else 5.0)
                    error = {"REJECT": "ConnectionRefusedError", "DROP": "TimeoutError"}
                    assert res["error"] == error[outcomes[0].verdict], (svc_, ns, dst, port)
                    checked += 1
                    continue
                want = set()
                for o in outcomes:
                    assert o.dnat is not None
                    ip = o.dnat.split(":")[0]
                    peer = cluster.gateway(int(pod_of[ip][3:])) if o.masquerade else src
                    want.add((pod_of[ip], peer))
                count = 1 if svc_["name"] == "af" else 24
                got = {tuple(a.split()) for a in cluster.answers(ns, dst, port, count=count)}
                if svc_["name"] == "af":  # affinity: one of the simulated outcomes
                    assert got <= want, (svc_, ns, dst, port, got, want)
                else:
                    assert got == want, (svc_, ns, dst, port, got, want)
                checked += 1
    assert checked == len(MATRIX) * 2 * len(sources)


def test_every_rule_kind_reads_back_equal(cluster: Cluster) -> None:
    """The golden layout (every kind of rule, set and map the builder makes, both
    families), loaded into the kernel and read back with `nft -j`: equal."""
    wanted = build_tables(layout_snapshot(), LAYOUT_CFG)
    applier = NftApplier(in_node(cluster))
    applier.apply(render_full(wanted.values()))
    for family, state in wanted.items():
        have = applier.read(family)
        assert have is not None
        d = diff(have, state)
        assert d.empty(), (family, d.chains, d.sets, d.elements)


def test_reapply_writes_nothing_then_repairs_what_was_changed(
    cluster: Cluster, config_dir: Path
) -> None:
    cfg = write(
        config_dir / "two.yaml",
        [
            {"name": "web", "ip": "10.96.0.60", "endpoints": [0, 1, 2], "nodePort": 30060},
            {"name": "sticky", "ip": "10.96.0.61", "endpoints": [0, 1], "affinity": 60},
        ],
    )
    args = ("apply", "-c", cfg, *FLAGS)

    def counts() -> tuple[str, int, int, int]:
        out = cluster.seaway(*args).stdout
        m = re.search(r"\(nftables, ([\w-]+)\), (\d+) chains written, (\d+) deleted, (\d+) el", out)
        assert m is not None, out
        return m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))

    assert counts()[0] == "full"
    # The sync record proves nothing was committed since: nothing read back or written.
    assert counts() == ("unchanged", 0, 0, 0)
    assert counts() == ("unchanged", 0, 0, 0)
    # someone adds a rule to a seaway chain and deletes an element: two commits, so the
    # record no longer holds and the tables are read back
    node = cluster.node
    cluster.exec(
        node,
        "nft",
        "insert",
        "rule",
        "ip",
        "seaway",
        N.SERVICES,
        "ip",
        "daddr",
        "10.96.0.60",
        "accept",
    )
    cluster.exec(
        node,
        "nft",
        "delete",
        "element",
        "ip",
        "seaway",
        N.endpoints_map("tcp"),
        "{ 10.96.0.60 . 80 . 1 }",
    )
    assert counts() == ("read-back", 1, 0, 1)
    assert counts() == ("unchanged", 0, 0, 0)  # the repair wrote a new record
    # a read-back that finds nothing to change writes the record alone
    cluster.exec(node, "nft", "add", "table", "ip", "someone-else")
    cluster.exec(node, "nft", "delete", "table", "ip", "someone-else")
    assert counts() == ("read-back", 0, 0, 0)
    assert counts() == ("unchanged", 0, 0, 0)
    assert "10.96.0.60 accept" not in cluster.exec(
        node, "nft", "list", "chain", "ip", "seaway", N.SERVICES
    )
    got = set(names(cluster.answers(cluster.node, "10.96.0.60", 80, count=40)))
    assert got == {"pod0", "pod1", "pod2"}


def test_daemon_follows_an_endpoint_change(cluster: Cluster, config_dir: Path) -> None:
    """`seaway run`: the first sync writes the tables, a changed EndpointSlice file is a
    partial sync that moves the traffic."""
    conf = config_dir / "live"
    conf.mkdir()
    svc_file = conf / "svc.yaml"
    svc_file.write_text(manifest([{"name": "live", "ip": "10.96.0.80", "endpoints": [0]}]))
    log = config_dir / "daemon.log"
    argv = ["ip", "netns", "exec", cluster.node, sys.executable, "-m", "proxy.app.cli", "run"]
    flags = ["--metrics-bind-address", "127.0.0.1:0", "--healthz-bind-address", "127.0.0.1:0"]
    with log.open("w") as out:
        daemon = subprocess.Popen(
            [*argv, "-c", str(conf), *FLAGS, *flags, "--min-sync-period", "0"],
            stdout=subprocess.DEVNULL,
            stderr=out,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    try:

        def answer() -> str:
            (res,) = cluster.connect(cluster.pods[2], "10.96.0.80", 80, timeout=2.0)
            return str(res.get("answer", "")).split(" ")[0]

        # generous bounds: they only matter on a machine too loaded to start the daemon
        assert wait_until(lambda: answer() == "pod0", timeout=40), log.read_text()[-2000:]
        tmp = conf / ".svc.tmp"
        tmp.write_text(manifest([{"name": "live", "ip": "10.96.0.80", "endpoints": [1]}]))
        os.replace(tmp, svc_file)
        assert wait_until(lambda: answer() == "pod1", timeout=30), log.read_text()[-2000:]
        # traffic moves once nft has committed; the log line follows right after
        assert wait_until(lambda: "nftables partial sync" in log.read_text(), timeout=10)
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def test_cleanup_leaves_no_table(cluster: Cluster, config_dir: Path) -> None:
    cfg = write(
        config_dir / "web.yaml",
        [{"name": "web", "ip": "10.96.0.90", "endpoints": [0], "nodePort": 30090}],
    )
    cluster.seaway("apply", "-c", cfg, *FLAGS)
    assert "seaway" in tables(cluster)
    out = cluster.seaway("cleanup", "--proxy-mode", "nftables").stdout
    assert "removed table ip seaway" in out and "removed table ip6 seaway" in out
    assert "seaway" not in tables(cluster)
    # and the service is gone: the cluster IP is no longer translated
    (res,) = cluster.connect(cluster.pods[0], "10.96.0.90", 80, timeout=0.5)
    assert res["ok"] is False
    out = cluster.seaway("cleanup", "--proxy-mode", "nftables").stdout
    assert "no table ip seaway" in out
