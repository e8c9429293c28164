"""Kernel tests of iptables mode for topology, loadBalancerSourceRanges, health-check node
ports and IPv6, in network namespaces with IPv4 and IPv6 addresses: seaway programs the
node namespace, real connections come from pods, the node and an outside client. Root
only; every namespace, process and rule is removed even on failure."""

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

from tests.proxy.iptables.netns import (
    CLIENT_IP,
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
from tests.support import free_port

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces and iptables"),
]

FLAGS = ("--cluster-cidr", f"{CLUSTER_CIDR},{CLUSTER_CIDR6}", "--hostname-override", "node-a")
LB_IP = "203.0.113.10"  # routed to the node by the client's default route, never beyond
OUTSIDER = "192.168.77.3"  # a second address of the client, outside the source ranges


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster(pods=3, tag="f", ipv6=True)
    try:
        c.open()
        c.exec(c.client, "ip", "addr", "add", f"{OUTSIDER}/24", "dev", "eth0")
        yield c
    finally:
        c.close()


@pytest.fixture(autouse=True)
def clean_rules(cluster: Cluster) -> Iterator[None]:
    yield
    cluster.seaway("cleanup", check=False)
    cluster.exec(cluster.node, "conntrack", "-F", check=False)
    cluster.exec(cluster.node, "conntrack", "-F", "-f", "ipv6", check=False)


@pytest.fixture
def config_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="seaway-ipt-") as d:
        yield Path(d)


def write(path: Path, services: list[dict[str, object]]) -> str:
    path.write_text(manifest(services))
    return str(path)


def names(answers: list[str]) -> set[str]:
    return {a.split()[0] for a in answers}


def apply(cluster: Cluster, cfg: str, *extra: str, flavor: str = "nft") -> str:
    return cluster.seaway("apply", "-c", cfg, "--iptables-flavor", flavor, *FLAGS, *extra).stdout


def test_topology_choice(cluster: Cluster, config_dir: Path) -> None:
    """trafficDistribution PreferClose: the endpoints of this node's zone (--node-zone),
    every endpoint when the zone has none or is unknown; PreferSameNode: this node's."""
    zones = {0: "z1", 1: "z1", 2: "z2"}
    cfg = write(
        config_dir / "zoned.yaml",
        [{"name": "zoned", "ip": "10.96.0.80", "endpoints": [0, 1, 2], "zones": zones,
          "distribution": "PreferClose"}],
    )
    expect = {"z1": {"pod0", "pod1"}, "z2": {"pod2"}, "z9": {"pod0", "pod1", "pod2"}}
    for zone, pods in expect.items():
        apply(cluster, cfg, "--node-zone", zone)
        got = names(cluster.answers(cluster.pods[0], "10.96.0.80", 80, count=30))
        assert got == pods, zone
    apply(cluster, cfg)  # no zone known: no topology
    assert len(names(cluster.answers(cluster.node, "10.96.0.80", 80, count=30))) == 3

    same_node = write(
        config_dir / "node.yaml",
        [{"name": "zoned", "ip": "10.96.0.80", "endpoints": [0, 1, 2], "zones": zones,
          "remote": [0, 2], "distribution": "PreferSameNode"}],
    )
    apply(cluster, same_node, "--node-zone", "z2")
    assert names(cluster.answers(cluster.pods[2], "10.96.0.80", 80, count=20)) == {"pod1"}


@pytest.mark.parametrize("flavor", ["legacy", "nft"])
def test_load_balancer_source_ranges(cluster: Cluster, config_dir: Path, flavor: str) -> None:
    cfg = write(
        config_dir / "lb.yaml",
        [{"name": "lb", "ip": "10.96.0.90", "endpoints": [0, 1], "nodePort": 30090,
          "lb": [LB_IP], "ranges": [f"{CLIENT_IP}/32"]}],
    )
    apply(cluster, cfg, flavor=flavor)
    # read back, the firewall chain is recognised: a re-apply writes only filter chains
    again = apply(cluster, cfg, flavor=flavor)
    assert re.search(r"rules \(\w+ flavor\), 4 chains written, 0 deleted", again), again
    # inside the ranges: served (Cluster policy: masqueraded to the node)
    got = {}
    for a in cluster.answers(cluster.client, LB_IP, 80, count=20):
        name, peer = a.split()
        got[name] = peer
    assert got == {"pod0": cluster.gateway(0), "pod1": cluster.gateway(1)}
    # outside: dropped (no answer, no reset)
    (res,) = cluster.connect(cluster.client, LB_IP, 80, timeout=0.5, src=OUTSIDER)
    assert res["ok"] is False and res["error"] == "TimeoutError", res
    # the node port is not subject to the ranges, as in kube-proxy
    assert names(cluster.answers(cluster.client, NODE_IP, 30090, count=10)) <= {"pod0", "pod1"}
    (res,) = cluster.connect(cluster.client, NODE_IP, 30090, src=OUTSIDER)
    assert res["ok"] is True, res


def test_health_check_node_port_answers_from_outside(cluster: Cluster, config_dir: Path) -> None:
    """The daemon in iptables mode serves the health-check node port of an
    externalTrafficPolicy Local load balancer; curl asks from the outside client."""
    hc = 32190

    def services(local: list[int], remote: list[int]) -> list[dict[str, object]]:
        return [{"name": "lb", "ip": "10.96.0.91", "endpoints": local + remote, "remote": remote,
                 "nodePort": 30091, "lb": [LB_IP], "etp": "Local", "hc": hc}]

    path = config_dir / "lb.yaml"
    write(path, services([0, 1], [2]))
    log = config_dir / "daemon.log"
    argv = [
        "ip", "netns", "exec", cluster.node, sys.executable, "-m", "proxy.app.cli", "run",
        "-c", str(config_dir), "--proxy-mode", "iptables", "--iptables-flavor", "nft", *FLAGS,
        "--healthz-bind-address", f"127.0.0.1:{free_port()}",
        "--metrics-bind-address", f"127.0.0.1:{free_port()}",
        "--http-bind-address", f"127.0.0.1:{free_port()}", "--workers", "1",
    ]  # fmt: skip
    with open(log, "wb") as out:
        daemon = subprocess.Popen(
            argv, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=out, stderr=out
        )

    def curl() -> tuple[int, dict[str, object]]:
        p = subprocess.run(
            ["ip", "netns", "exec", cluster.client, "curl", "-s", "-m", "2", "-w", "\n%{http_code}",
             f"http://{NODE_IP}:{hc}/healthz"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        body, _, code = p.stdout.rpartition("\n")
        return int(code or 0), (json.loads(body) if body else {})

    try:
        assert wait_until(lambda: curl()[0] == 200, timeout=20), log.read_text()
        status, body = curl()
        assert status == 200 and body["localEndpoints"] == 2, body
        assert body["service"] == {"namespace": "default", "name": "lb"}
        # the service itself works from outside, from the local endpoints only
        assert names(cluster.answers(cluster.client, LB_IP, 80, count=10)) <= {"pod0", "pod1"}
        write(path, services([], [2]))  # the local endpoints leave
        assert wait_until(lambda: curl()[0] == 503, timeout=20), log.read_text()
        assert curl()[1]["localEndpoints"] == 0
    finally:
        daemon.terminate()
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


@pytest.mark.parametrize("flavor", ["legacy", "nft"])
def test_ipv6_cluster_ip_and_node_port(cluster: Cluster, config_dir: Path, flavor: str) -> None:
    """A dual-stack service and an IPv6-only UDP one through ip6tables: cluster IP from a
    pod (source kept, hairpin masqueraded) and from the node, NodePort from outside, UDP;
    the IPv4 side keeps working; a re-apply rewrites only filter chains; cleanup leaves
    nothing in ip6tables."""
    cfg = write(
        config_dir / "dual.yaml",
        [
            {"name": "web", "ips": ["10.96.0.100", "fd00:96::100"], "endpoints": [0, 1, 2],
             "nodePort": 30100},
            {"name": "dns", "ips": ["fd00:96::53"], "port": 53, "target": UDP_PORT,
             "proto": "UDP", "endpoints": [0, 1]},
        ],
    )  # fmt: skip
    out = apply(cluster, cfg, flavor=flavor)
    assert re.search(r"^ip6tables: applied 2 service ports, 5 endpoints", out, re.M), out
    assert "fd00:96::100" in cluster.exec(cluster.node, f"ip6tables-{flavor}-save", "-t", "nat")

    seen = {}
    for a in cluster.answers(cluster.pods[1], "fd00:96::100", 80, count=40):
        name, peer = a.split()
        seen[name] = peer
    assert seen == {
        "pod0": cluster.pod_ip6(1),
        "pod1": cluster.gateway6(1),  # hairpin: masqueraded to the node
        "pod2": cluster.pod_ip6(1),
    }
    assert names(cluster.answers(cluster.node, "fd00:96::100", 80, count=30)) == {
        "pod0",
        "pod1",
        "pod2",
    }
    for a in cluster.answers(cluster.client, NODE_IP6, 30100, count=10):
        name, peer = a.split()
        assert peer == cluster.gateway6(int(name[3:]))  # Cluster policy: masqueraded
    assert names(cluster.answers(cluster.client, NODE_IP, 30100, count=10)) <= {
        "pod0",
        "pod1",
        "pod2",
    }
    udp = cluster.answers(cluster.pods[2], "fd00:96::53", 53, count=5, proto="udp")
    assert {a.split()[1] for a in udp} == {cluster.pod_ip6(2)}

    again = apply(cluster, cfg, flavor=flavor)
    assert re.search(r"^ip6tables: .* 4 chains written, 0 deleted", again, re.M), again
    cluster.seaway("cleanup")
    assert "SEAWAY" not in cluster.exec(cluster.node, f"ip6tables-{flavor}-save")
    (res,) = cluster.connect(cluster.pods[0], "fd00:96::100", 80, timeout=0.5)
    assert res["ok"] is False


def test_ipv6_partial_sync_deletes_stale_udp_conntrack(cluster: Cluster, config_dir: Path) -> None:
    """The daemon's path for ip6tables: a full sync, then a partial one removing an
    endpoint; the IPv6 conntrack entry of the removed endpoint is deleted, so the same UDP
    flow moves to the survivor."""

    def services(endpoints: list[int]) -> list[dict[str, object]]:
        return [{"name": "dns", "ips": ["fd00:96::54"], "port": 53, "target": UDP_PORT,
                 "proto": "UDP", "endpoints": endpoints}]  # fmt: skip

    driver = subprocess.Popen(
        ["ip", "netns", "exec", cluster.node, sys.executable, "-m",
         "tests.proxy.iptables.sync_driver", "nft", f"{CLUSTER_CIDR},{CLUSTER_CIDR6}", "6"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip

    def sync(path: str) -> dict[str, object]:
        assert driver.stdin is not None and driver.stdout is not None
        driver.stdin.write(path + "\n")
        driver.stdin.flush()
        report: dict[str, object] = json.loads(driver.stdout.readline())
        assert "error" not in report, report
        return report

    try:
        assert sync(write(config_dir / "a.yaml", services([0, 1])))["full"] is True
        ask = (cluster.pods[2], "fd00:96::54", 53)
        (first,) = names(cluster.answers(*ask, proto="udp", sport=40001))
        again = names(cluster.answers(*ask, count=3, proto="udp", sport=40001))
        assert again == {first}  # one flow, pinned by conntrack
        remaining = 1 - int(first[3:])
        report = sync(write(config_dir / "b.yaml", services([remaining])))
        assert report["full"] is False and report["conntrack_deleted"] == 1, report
        after = names(cluster.answers(*ask, proto="udp", sport=40001))
        assert after == {f"pod{remaining}"}
    finally:
        if driver.stdin:
            driver.stdin.close()
        driver.kill()
        driver.wait()
