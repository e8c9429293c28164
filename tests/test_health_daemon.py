"""Endpoint health through `seaway run` (userspace L4): two Services, each with two `seaway
echo` endpoints and one that refuses connections. "web" has active TCP checks (annotation
seaway.dev/health-check-interval): its refusing endpoint fails them and leaves rotation.
"api" has none: its refusing endpoint (another address) is ejected by passive outlier
detection after 5 failed connects. /status.json and /metrics show both."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support import free_port, http_get, seaway, wait_for_port, wait_until

CLUSTER_IP = "127.0.79.1"


def manifests(name: str, port: int, addrs: list[tuple[str, int]], annotations: str) -> str:
    eps = "".join(f"- addresses: [{ip}]\n  conditions: {{ready: true}}\n" for ip, _ in addrs)
    return f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
  annotations: {{{annotations}}}
spec:
  clusterIP: {CLUSTER_IP}
  ports: [{{name: http, port: {port}, targetPort: http}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-abc
  namespace: default
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, port: {addrs[0][1]}, protocol: TCP}}]
endpoints:
{eps}"""


@pytest.fixture
def backends() -> Iterator[list[tuple[str, int]]]:
    """Two `seaway echo` processes, and a third address of the same port that refuses."""
    port = free_port()
    addrs = [(f"127.0.80.{i}", port) for i in (1, 2, 3)]
    with ExitStack() as stack:
        for i, (ip, p) in enumerate(addrs[:2], start=1):
            stack.enter_context(seaway(["echo", "--listen", f"{ip}:{p}", "--name", f"b{i}"]))
        for ip, p in addrs[:2]:
            wait_for_port(ip, p)
        yield addrs


def exchange(port: int) -> bytes:
    with socket.create_connection((CLUSTER_IP, port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(65536)


def test_active_and_passive_health_in_status_and_metrics(
    tmp_path: Path, backends: list[tuple[str, int]]
) -> None:
    web_port, api_port = free_port(CLUSTER_IP), free_port(CLUSTER_IP)
    checks = '"seaway.dev/health-check-interval": "200ms", "seaway.dev/health-check-timeout": "1s"'
    (tmp_path / "web.yaml").write_text(manifests("web", web_port, backends, checks))
    api_refusing = ("127.0.80.4", backends[2][1])  # (health is per address: not web's)
    (tmp_path / "api.yaml").write_text(
        manifests("api", api_port, [*backends[:2], api_refusing], "")
    )
    metrics = free_port()
    args = ["run", "-c", str(tmp_path), "--proxy-mode", "userspace",
            "--healthz-bind-address", f"127.0.0.1:{free_port()}",
            "--metrics-bind-address", f"127.0.0.1:{metrics}",
            "--http-bind-address", f"127.0.0.1:{free_port()}", "--workers", "1"]
    refusing = f"{backends[2][0]}:{backends[2][1]}"

    def endpoints(service: str) -> dict[str, dict[str, object]]:
        doc = json.loads(http_get("127.0.0.1", metrics, "/status.json")[1])
        (port,) = [p for p in doc["service_ports"] if p["service"] == service]
        return {e["address"]: e for e in port["endpoints"]}

    with seaway(args):
        wait_for_port(CLUSTER_IP, api_port)
        wait_until(lambda: endpoints("web")[refusing]["health"] == "failing", 15,
                   "web's refusing endpoint failing its checks")
        web = endpoints("web")
        assert [web[f"{ip}:{p}"]["health"] for ip, p in backends[:2]] == ["passing"] * 2
        api_bad = f"{api_refusing[0]}:{api_refusing[1]}"
        assert endpoints("api")[api_bad]["health"] is None  # not checked: no annotation
        for _ in range(20):  # each failed connect moves on to a live endpoint
            assert exchange(api_port).startswith(b"HTTP/1.1 200 ")
            assert exchange(web_port).startswith(b"HTTP/1.1 200 ")
        assert endpoints("api")[api_bad]["ejected"] == [
            {"proxy": "userspace", "reason": "connect", "processes": 1}
        ]
        assert endpoints("web")[refusing]["ejected"] == []  # never tried: checks took it out
        text = http_get("127.0.0.1", metrics, "/metrics")[1].decode()
        assert "seaway_health_check_failing_endpoints 1.0" in text
        assert (
            'seaway_l4_outlier_ejections_total{namespace="default",service="api",'
            f'port="http",endpoint="{api_bad}",reason="connect"}} 1'
        ) in text
