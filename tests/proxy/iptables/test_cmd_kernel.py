"""`seaway rules` and `seaway trace` end to end (real process, real manifest; no root)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.proxy.iptables.netns import REPO, manifest


def seaway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy.app.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )


def config(tmp_path: Path) -> str:
    path = tmp_path / "svc.yaml"
    path.write_text(
        manifest(
            [
                {"name": "web", "ip": "10.96.0.10", "endpoints": [0, 1], "nodePort": 30080},
                {"name": "empty", "ip": "10.96.0.11", "endpoints": []},
            ]
        )
    )
    return str(path)


def test_rules_prints_restore_text(tmp_path: Path) -> None:
    p = seaway("rules", "-c", config(tmp_path), "--proxy-mode", "iptables")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "*nat" and lines.count("COMMIT") == 2
    assert any(line.startswith("-A SEAWAY-SERVICES") and "REJECT" in line for line in lines)
    assert any("--to-destination 10.1.1.1:8080" in line for line in lines)


def test_trace_shows_outcomes(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    p = seaway(
        "trace",
        "-c",
        cfg,
        "--src",
        "10.1.5.5",
        "--dst",
        "10.96.0.10:80",
        "--node-ip",
        "192.168.9.1",
        "--cluster-cidr",
        "10.1.0.0/16",
    )
    assert p.returncode == 0, p.stderr
    assert "outcome 1: p=0.5000 DNAT to 10.1.0.1:8080" in p.stdout
    assert "outcome 2: p=0.5000 DNAT to 10.1.1.1:8080" in p.stdout
    assert "masqueraded" not in p.stdout
    p = seaway(
        "trace",
        "-c",
        cfg,
        "--src",
        "203.0.113.1",
        "--dst",
        "192.168.9.1:30080",
        "--node-ip",
        "192.168.9.1",
    )
    assert p.stdout.count("masqueraded") == 2
    p = seaway(
        "trace",
        "-c",
        cfg,
        "--src",
        "10.1.5.5",
        "--dst",
        "10.96.0.11:80",
        "--node-ip",
        "192.168.9.1",
    )
    assert "outcome 1: p=1.0000 REJECT" in p.stdout


def test_bad_input_is_reported(tmp_path: Path) -> None:
    p = seaway("trace", "-c", config(tmp_path), "--src", "nope", "--dst", "10.96.0.10:80")
    assert p.returncode == 2 and "--src IP and --dst IP:PORT" in p.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: d}\n"
        "spec: {clusterIP: 10.96.0.1, ports: [{port: 70000}]}\n"
    )
    p = seaway("rules", "-c", str(bad))
    assert p.returncode == 1 and "spec.ports[0].port" in p.stderr
    p = seaway("rules", "-c", str(bad), "--proxy-mode", "userspace")
    assert p.returncode == 1 and "--proxy-mode iptables" in p.stderr


def test_rules_and_trace_for_ipv6(tmp_path: Path) -> None:
    path = tmp_path / "dual.yaml"
    path.write_text(
        manifest(
            [{"name": "web", "ips": ["10.96.0.10", "fd00:96::10"], "endpoints": [0, 1]}]
        )
    )
    p = seaway("rules", "-c", str(path))
    assert p.returncode == 0, p.stderr
    v4, _, v6 = p.stdout.partition("# ip6tables-restore input (IPv6)\n")
    assert "--to-destination 10.1.0.1:8080" in v4 and "fd00" not in v4
    assert "-d fd00:96::10/128" in v6 and "--to-destination [fd00:1::1]:8080" in v6
    p = seaway(
        "trace",
        "-c",
        str(path),
        "--src",
        "fd00:1:5::5",
        "--dst",
        "[fd00:96::10]:80",
        "--node-ip",
        "fd00:9::1",
        "--cluster-cidr",
        "10.1.0.0/16,fd00:1::/32",
    )
    assert p.returncode == 0, p.stderr
    assert "outcome 1: p=0.5000 DNAT to [fd00:1::1]:8080" in p.stdout
    assert "outcome 2: p=0.5000 DNAT to [fd00:1:1::1]:8080" in p.stdout
    assert "masqueraded" not in p.stdout
    p = seaway("trace", "-c", str(path), "--src", "10.1.5.5", "--dst", "[fd00:96::10]:80")
    assert p.returncode == 2 and "both of one family" in p.stderr
