"""Real kernel tests: seaway programs iptables in a node namespace; real connections from
the node, from pods and from an outside client. Root only; every namespace, process and
rule is removed even on failure."""

from __future__ import annotations

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
    NODE_IP,
    REPO,
    UDP_PORT,
    Cluster,
    manifest,
)

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces and iptables"),
]

FLAGS = ("--cluster-cidr", CLUSTER_CIDR, "--hostname-override", "node-a")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster(pods=3)
    try:
        c.open()
        yield c
    finally:
        c.close()


@pytest.fixture(autouse=True)
def clean_rules(cluster: Cluster) -> Iterator[None]:
    yield
    cluster.seaway("cleanup", check=False)
    cluster.exec(cluster.node, "conntrack", "-F", check=False)


@pytest.fixture
def config_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="seaway-ipt-") as d:
        yield Path(d)


def write(path: Path, services: list[dict[str, object]]) -> str:
    path.write_text(manifest(services))
    return str(path)


def names(answers: list[str]) -> list[str]:
    return [a.split()[0] for a in answers]


@pytest.mark.parametrize("flavor", ["legacy", "nft"])
def test_cluster_ip_node_port_and_hairpin(cluster: Cluster, config_dir: Path, flavor: str) -> None:
    cfg = write(
        config_dir / "web.yaml",
        [{"name": "web", "ip": "10.96.0.10", "endpoints": [0, 1, 2], "nodePort": 30080}],
    )
    out = cluster.seaway(
        "apply", "-c", cfg, "--proxy-mode", "iptables", "--iptables-flavor", flavor, *FLAGS
    )
    assert "applied 1 service ports, 3 endpoints" in out.stdout and f"{flavor} flavor" in out.stdout
    assert "SEAWAY-SERVICES" in cluster.save(flavor)

    # ClusterIP from the node: spread over every endpoint
    from_node = names(cluster.answers(cluster.node, "10.96.0.10", 80, count=40))
    assert set(from_node) == {"pod0", "pod1", "pod2"}

    # ClusterIP from a pod: source kept, except hairpin (itself) which is masqueraded
    seen = {}
    for a in cluster.answers(cluster.pods[1], "10.96.0.10", 80, count=40):
        name, peer = a.split()
        seen[name] = peer
    assert set(seen) == {"pod0", "pod1", "pod2"}
    assert seen["pod0"] == cluster.pod_ip(1) and seen["pod2"] == cluster.pod_ip(1)
    assert seen["pod1"] == cluster.gateway(1)  # hairpin: masqueraded to the node

    # NodePort from the outside client: served and masqueraded
    for a in cluster.answers(cluster.client, NODE_IP, 30080, count=10):
        name, peer = a.split()
        assert peer == cluster.gateway(int(name[3:]))


@pytest.mark.parametrize("flavor", ["legacy", "nft"])
def test_node_port_masquerade_by_traffic_policy(
    cluster: Cluster, config_dir: Path, flavor: str
) -> None:
    """The paths into a service chain other than its cluster IP: a node port with Cluster
    policy masquerades everyone, with Local policy it keeps the source and serves outside
    clients from local endpoints only (pods from all)."""
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
    cluster.seaway("apply", "-c", cfg, "--iptables-flavor", flavor, *FLAGS)

    # Cluster policy: from a pod and from the outside client, always masqueraded
    for ns in (cluster.pods[2], cluster.client):
        got = {}
        for a in cluster.answers(ns, NODE_IP, 30050, count=30):
            name, peer = a.split()
            got[name] = peer
        assert got == {"pod0": cluster.gateway(0), "pod1": cluster.gateway(1)}, ns

    # Local policy: the outside client reaches only the local endpoint, source kept
    for a in cluster.answers(cluster.client, NODE_IP, 30051, count=10):
        assert a.split() == ["pod0", CLIENT_IP]
    # ... a pod reaches every endpoint, source kept
    got = {}
    for a in cluster.answers(cluster.pods[2], NODE_IP, 30051, count=30):
        name, peer = a.split()
        got[name] = peer
    assert got == {"pod0": cluster.pod_ip(2), "pod1": cluster.pod_ip(2)}


def test_no_endpoints_is_refused_at_once(cluster: Cluster, config_dir: Path) -> None:
    cfg = write(
        config_dir / "empty.yaml",
        [{"name": "empty", "ip": "10.96.0.20", "endpoints": [], "nodePort": 30020}],
    )
    cluster.seaway("apply", "-c", cfg, "--iptables-flavor", "nft", *FLAGS)
    for ns, host, port in (
        (cluster.pods[0], "10.96.0.20", 80),
        (cluster.node, "10.96.0.20", 80),
        (cluster.client, NODE_IP, 30020),
    ):
        (res,) = cluster.connect(ns, host, port)
        assert res["ok"] is False and res["error"] == "ConnectionRefusedError", (ns, res)


def test_client_ip_affinity_sticks(cluster: Cluster, config_dir: Path) -> None:
    cfg = write(
        config_dir / "sticky.yaml",
        [{"name": "sticky", "ip": "10.96.0.30", "endpoints": [0, 1, 2], "affinity": 60}],
    )
    cluster.seaway("apply", "-c", cfg, "--iptables-flavor", "nft", *FLAGS)
    for ns in (cluster.pods[0], cluster.pods[2], cluster.node):
        got = set(names(cluster.answers(ns, "10.96.0.30", 80, count=15)))
        assert len(got) == 1, (ns, got)


def test_partial_sync_endpoint_removal_and_udp_conntrack(
    cluster: Cluster, config_dir: Path
) -> None:
    def services(tcp_eps: list[int], udp_eps: list[int]) -> list[dict[str, object]]:
        return [
            {"name": "tcp", "ip": "10.96.0.40", "endpoints": tcp_eps},
            {
                "name": "dns",
                "ip": "10.96.0.41",
                "port": 53,
                "target": UDP_PORT,
                "proto": "UDP",
                "endpoints": udp_eps,
            },
        ]

    first = write(config_dir / "a.yaml", services([0, 1], [0, 1]))
    driver = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            cluster.node,
            sys.executable,
            "-m",
            "tests.proxy.iptables.sync_driver",
            "nft",
            CLUSTER_CIDR,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert driver.stdin is not None and driver.stdout is not None

        def sync(path: str) -> dict[str, object]:
            assert driver.stdin is not None and driver.stdout is not None
            driver.stdin.write(path + "\n")
            driver.stdin.flush()
            import json

            report: dict[str, object] = json.loads(driver.stdout.readline())
            assert "error" not in report, report
            return report

        assert sync(first)["full"] is True
        assert set(names(cluster.answers(cluster.pods[2], "10.96.0.40", 80, count=30))) == {
            "pod0",
            "pod1",
        }
        # one UDP "flow" from a fixed source port: pinned to one endpoint by conntrack
        (udp1,) = names(
            cluster.answers(cluster.pods[2], "10.96.0.41", 53, proto="udp", sport=40000)
        )
        again = names(
            cluster.answers(cluster.pods[2], "10.96.0.41", 53, count=3, proto="udp", sport=40000)
        )
        assert set(again) == {udp1}
        remaining = 1 - int(udp1[3:])

        second = write(config_dir / "b.yaml", services([1], [remaining]))
        report = sync(second)
        assert report["full"] is False
        assert isinstance(report["conntrack_deleted"], int) and report["conntrack_deleted"] >= 1
        assert set(names(cluster.answers(cluster.pods[2], "10.96.0.40", 80, count=20))) == {"pod1"}
        # same source port: the stale entry was deleted, so the flow moves to the survivor
        after = names(cluster.answers(cluster.pods[2], "10.96.0.41", 53, proto="udp", sport=40000))
        assert after == [f"pod{remaining}"]
    finally:
        if driver.stdin:
            driver.stdin.close()
        driver.kill()
        driver.wait()


@pytest.mark.parametrize("flavor", ["legacy", "nft"])
def test_reapply_rewrites_only_the_chains_that_differ(
    cluster: Cluster, config_dir: Path, flavor: str
) -> None:
    """A second apply reads seaway's nat chains back (iptables-save spells some rules
    differently: comment order, probabilities, MARK, recent) and leaves the equal ones
    alone; a chain someone changed is written again."""
    cfg = write(
        config_dir / "two.yaml",
        [
            {"name": "web", "ip": "10.96.0.60", "endpoints": [0, 1, 2], "nodePort": 30060},
            {"name": "sticky", "ip": "10.96.0.61", "endpoints": [0, 1], "affinity": 60},
        ],
    )
    args = ("apply", "-c", cfg, "--iptables-flavor", flavor, *FLAGS)

    def written() -> tuple[int, int]:
        out = cluster.seaway(*args).stdout
        m = re.search(r"(\d+) chains written, (\d+) deleted", out)
        assert m is not None
        # ip6tables too (no IPv6 service here: its fixed chains; then only filter's)
        assert re.search(r"^ip6tables: applied 0 service ports, 0 endpoints", out, re.M), out
        return int(m.group(1)), int(m.group(2))

    # 8 per-service chains, 4 fixed nat chains, 4 filter chains.
    assert written() == (16, 0)
    assert written() == (4, 0)  # only the filter chains, which are always written

    web_sep = next(
        line.split()[1]
        for line in cluster.save(flavor).splitlines()
        if line.startswith("-A SEAWAY-SEP-") and "10.1.0." in line and "web" in line
    )
    cluster.exec(
        cluster.node, f"iptables-{flavor}", "-t", "nat", "-I", web_sep, "1", "-j", "RETURN"
    )
    assert written() == (5, 0)
    assert f"-A {web_sep} -j RETURN" not in cluster.save(flavor)
    from_node = names(cluster.answers(cluster.node, "10.96.0.60", 80, count=40))
    assert set(from_node) == {"pod0", "pod1", "pod2"}


def test_cleanup_leaves_nothing_in_either_flavor(cluster: Cluster, config_dir: Path) -> None:
    cfg = write(
        config_dir / "web.yaml",
        [{"name": "web", "ip": "10.96.0.50", "endpoints": [0], "nodePort": 30050}],
    )
    before = {f: cluster.save(f) for f in ("legacy", "nft")}
    for flavor in ("legacy", "nft"):
        cluster.seaway("apply", "-c", cfg, "--iptables-flavor", flavor, *FLAGS)
        assert "SEAWAY" in cluster.save(flavor)
    out = cluster.seaway("cleanup").stdout
    assert "legacy: removed" in out and "nft: removed" in out
    for flavor in ("legacy", "nft"):
        text = cluster.save(flavor)
        assert "SEAWAY" not in text, text
        assert before[flavor].count("\n-A") == text.count("\n-A")
    # and the service is gone: the cluster IP is no longer translated
    # (nothing answers on the unrouted cluster IP: a short timeout is enough to tell)
    (res,) = cluster.connect(cluster.pods[0], "10.96.0.50", 80, timeout=0.5)
    assert res["ok"] is False
