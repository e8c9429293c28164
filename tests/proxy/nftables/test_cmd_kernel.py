"""`seaway rules` and `seaway trace` in nftables mode, end to end (real process, real
manifest; no root)."""

from __future__ import annotations

from pathlib import Path

from tests.proxy.iptables.netns import manifest
from tests.proxy.iptables.test_cmd_kernel import config, seaway


def test_rules_prints_both_tables(tmp_path: Path) -> None:
    p = seaway("rules", "-c", config(tmp_path), "--proxy-mode", "nftables")
    assert p.returncode == 0, p.stderr
    text = p.stdout
    assert text.startswith("add table ip seaway\ndelete table ip seaway\ntable ip seaway {")
    assert "table ip6 seaway {" in text
    assert "10.96.0.10 . tcp . 80 : goto pick-tcp-2" in text
    assert "10.96.0.11 . tcp . 80 : goto reject-chain" in text


def test_trace_ipv4_and_ipv6(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    p = seaway(
        "trace",
        "-c",
        cfg,
        "--proxy-mode",
        "nftables",
        "--src",
        "10.1.0.7",
        "--dst",
        "10.96.0.10:80",
        "--node-ip",
        "192.168.50.1",
    )
    assert p.returncode == 0, p.stderr
    assert "p=0.5000 DNAT to 10.1.0.1:8080" in p.stdout
    assert "ip services: ip daddr . meta l4proto . th dport vmap @service-ips" in p.stdout
    six = tmp_path / "six.yaml"
    six.write_text(
        manifest([{"name": "six", "ips": ["fd00:96::10"], "endpoints": [0], "nodePort": 30090}])
    )
    p = seaway(
        "trace",
        "-c",
        str(six),
        "--proxy-mode",
        "nftables",
        "--src",
        "2001:db8::1",
        "--dst",
        "[fd50::1]:30090",
        "--node-ip",
        "fd50::1",
    )
    assert p.returncode == 0, p.stderr
    assert "DNAT to [fd00:1::1]:8080, masqueraded" in p.stdout


def test_trace_errors_and_modes(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    p = seaway(
        "trace", "-c", cfg, "--proxy-mode", "nftables", "--src", "10.1.0.7", "--dst", "[fd00::1]:80"
    )
    assert p.returncode == 2 and "both of one family" in p.stderr
    p = seaway("rules", "-c", cfg, "--proxy-mode", "userspace")
    assert p.returncode == 1 and "iptables or nftables" in p.stderr
