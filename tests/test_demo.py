"""`seaway demo` end to end: the README's first command, answered by curl."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import pytest

from tests.support import free_port, http_get, seaway, wait_for_port

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def curl(*args: str) -> dict[str, object]:
    out = subprocess.run(["curl", "-sS", "-m", "5", *args], capture_output=True, text=True,
                         check=True, timeout=10).stdout
    answer: dict[str, object] = json.loads(out)
    return answer


def test_demo_serves_l4_l7_udp_and_health() -> None:
    http, healthz, metrics = free_port(), free_port(), free_port()
    args = ["demo", "--http-bind-address", f"127.0.0.1:{http}",
            "--healthz-bind-address", f"127.0.0.1:{healthz}",
            "--metrics-bind-address", f"127.0.0.1:{metrics}"]
    with seaway(args) as proc:
        assert proc.stdout is not None
        banner = ""
        for line in proc.stdout:
            banner += line
            if "Ctrl-C stops everything" in line:
                break
        assert "seaway demo is up" in banner, banner
        assert f"127.0.0.1:{http}" in banner

        # L4 round robin over the three ready web pods; the terminating one never answers.
        names = [curl("127.0.10.1:8000/")["name"] for _ in range(6)]
        assert sorted(set(names)) == ["web-1", "web-2", "web-3"]
        assert names[:3] != names[3:6] or len(set(names[:3])) == 3
        assert curl("127.0.0.1:30080/x")["name"] in {"web-1", "web-2", "web-3"}
        # ClientIP affinity on api: one pod for this client.
        assert len({curl("127.0.10.2:8000/")["name"] for _ in range(4)}) == 1

        # L7: host and path routing, wildcard host, default backend.
        assert curl("-H", "Host: demo.localhost", f"127.0.0.1:{http}/api/users")["name"] in {
            "api-1", "api-2"}
        assert str(curl("-H", "Host: demo.localhost", f"127.0.0.1:{http}/")["name"]).startswith(
            "web-")
        assert str(curl("-H", "Host: shop.apps.localhost", f"127.0.0.1:{http}/")["name"]
                   ).startswith("api-")
        assert str(curl("-H", "Host: other.example", f"127.0.0.1:{http}/")["name"]).startswith(
            "web-")

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(b"ping", ("127.0.10.3", 5353))
            assert s.recv(100).endswith(b":ping")

        wait_for_port("127.0.0.1", healthz)
        status, body = http_get("127.0.0.1", healthz, "/readyz")
        assert status == 200 and json.loads(body)["ready"] is True
        status, body = http_get("127.0.0.1", metrics, "/metrics")
        assert status == 200 and b"kubeproxy_sync_proxy_rules_duration_seconds" in body
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
