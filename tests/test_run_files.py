"""`seaway run -c DIR` as a real daemon: file changes, a broken file, deletion, SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support import free_port, http_get, seaway, wait_for_port, wait_until

CLUSTER_IP = "127.0.77.1"


def service_yaml(port: int) -> str:
    return f"""apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec:
  clusterIP: {CLUSTER_IP}
  ports: [{{name: http, port: {port}, targetPort: http}}]
"""


@pytest.fixture
def backends() -> Iterator[list[tuple[str, int]]]:
    """Three `seaway echo` processes on distinct loopback addresses, one port."""
    port = free_port()
    addrs = [(f"127.0.78.{i}", port) for i in (1, 2, 3)]
    with ExitStack() as stack:
        for i, (ip, p) in enumerate(addrs, start=1):
            stack.enter_context(seaway(["echo", "--listen", f"{ip}:{p}", "--name", f"b{i}"]))
        for ip, p in addrs:
            wait_for_port(ip, p)
        yield addrs


def endpoints_yaml(addrs: list[tuple[str, int]]) -> str:
    eps = "".join(f"- addresses: [{ip}]\n  conditions: {{ready: true}}\n" for ip, _ in addrs)
    return f"""apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: default
  labels: {{kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{{name: http, port: {addrs[0][1]}, protocol: TCP}}]
endpoints:
{eps}"""


def names_seen(port: int, n: int) -> set[str]:
    seen = set()
    for _ in range(n):
        status, body = http_get(CLUSTER_IP, port, "/")
        assert status == 200
        seen.add(json.loads(body)["name"])
    return seen


def serves(port: int) -> bool:
    try:
        with socket.create_connection((CLUSTER_IP, port), timeout=1):
            return True
    except OSError:
        return False


def test_daemon_follows_files(tmp_path: Path, backends: list[tuple[str, int]]) -> None:
    svc_port = free_port(CLUSTER_IP)
    (tmp_path / "svc.yaml").write_text(service_yaml(svc_port))
    eps_file = tmp_path / "eps.yaml"
    eps_file.write_text(endpoints_yaml(backends[:2]))
    healthz = free_port()
    args = ["run", "-c", str(tmp_path), "--proxy-mode", "userspace",
            "--healthz-bind-address", f"127.0.0.1:{healthz}",
            "--metrics-bind-address", f"127.0.0.1:{free_port()}",
            "--http-bind-address", f"127.0.0.1:{free_port()}", "--workers", "1"]
    with seaway(args) as proc:
        wait_for_port(CLUSTER_IP, svc_port)
        assert names_seen(svc_port, 6) == {"b1", "b2"}

        # A new endpoint set in the file: b3 replaces b1.
        eps_file.write_text(endpoints_yaml(backends[1:]))
        wait_until(lambda: names_seen(svc_port, 4) == {"b2", "b3"}, what="b3 in rotation")

        # A broken file is reported by name and the last good objects keep serving.
        eps_file.write_text(endpoints_yaml(backends[1:]).replace("addressType: IPv4",
                                                                "addressType: IPv5"))
        status, _ = http_get("127.0.0.1", healthz, "/readyz")
        assert status == 200
        assert names_seen(svc_port, 4) == {"b2", "b3"}

        # Deleting the Service's file closes its listener.
        (tmp_path / "svc.yaml").unlink()
        wait_until(lambda: not serves(svc_port), what="listener closed")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert proc.stderr is not None
        log = proc.stderr.read()
        assert "eps.yaml" in log and "addressType" in log, log[-2000:]
