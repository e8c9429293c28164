"""--bind-cluster-ips: cluster IPs (IPv4 and IPv6) on a dummy link, in a network namespace
(root only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a network namespace"),
]


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"seaway-l4-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_cluster_ips_bound_to_dummy_interface_and_removed_on_stop(netns: str) -> None:
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "tests.proxy.userspace.netns_probe"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["addresses_1"] == ["10.96.0.10"]
    assert out["listening_1"] == ["tcp://0.0.0.0:30080", "tcp://10.96.0.10:80"]
    assert out["via_cluster_ip"] == "b0:x"
    assert out["via_node_port"] == "b0:y"
    assert out["addresses_2"] == ["10.96.0.11"]
    assert out["listening_2"] == ["tcp://10.96.0.11:80"]
    assert out["via_new_ip"] == "b0:z"
    assert out["addresses_3"] == ["fd00:96::10"]
    assert out["listening_3"] == ["tcp://[fd00:96::10]:80"]
    assert out["via_ipv6"] == "b0:v6"
    assert out["exists_after_stop"] is False
