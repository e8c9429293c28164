"""`seaway run` as a real daemon with worker processes: --proxy-protocol, and
ingress-nginx's use-proxy-protocol switched on in a ConfigMap file while it runs (new
connections follow; one without the header is then closed)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support import free_port, seaway, wait_for_port, wait_until

BACKEND = ("127.0.79.1", 9079)
FILES = """apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ports: [{name: http, port: 80, targetPort: 9079}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 9079, protocol: TCP}]
endpoints: [{addresses: [127.0.79.1], conditions: {ready: true}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: app, namespace: default}
spec:
  rules:
  - host: app.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"""
CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata: {name: ingress-nginx-controller, namespace: ingress-nginx}
data: {use-proxy-protocol: "%s"}
"""
REQUEST = b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"
HEADER = b"PROXY TCP4 198.51.100.20 10.0.0.1 40000 80\r\n"


@pytest.fixture
def echo() -> Iterator[None]:
    with seaway(["echo", "--listen", f"{BACKEND[0]}:{BACKEND[1]}", "--name", "web"]):
        wait_for_port(*BACKEND)
        yield


def ask(port: int, header: bytes) -> dict[str, str] | None:
    """The headers the echo backend got, or None when the proxy closed unanswered."""
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(header + REQUEST)
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:  # closed with the request unread: a reset
            assert not data
    if not data:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    headers: dict[str, str] = json.loads(body)["headers"]
    return {k.lower(): v for k, v in headers.items()}


def answered(port: int, header: bytes = b"") -> bool:
    """Whether a request after `header` gets the backend's 200 (while the daemon starts,
    a worker may still answer 503: its Service's endpoints not there yet)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(header + REQUEST)
        return s.recv(65536).startswith(b"HTTP/1.1 200")


def daemon(tmp_path: Path, http: int, *extra: str) -> list[str]:
    return [
        "run", "-c", str(tmp_path), "--proxy-mode", "userspace", "--workers", "2",
        "--watch-ingress-without-class", "--http-bind-address", f"127.0.0.1:{http}",
        "--healthz-bind-address", f"127.0.0.1:{free_port()}",
        "--metrics-bind-address", f"127.0.0.1:{free_port()}", *extra,
    ]  # fmt: skip


def test_proxy_protocol_flag_with_worker_processes(tmp_path: Path, echo: None) -> None:
    (tmp_path / "app.yaml").write_text(FILES)
    http = free_port()
    with seaway(daemon(tmp_path, http, "--proxy-protocol")):
        wait_for_port("127.0.0.1", http)
        wait_until(
            lambda: all(answered(http, HEADER) for _ in range(6)), what="the Ingress served"
        )
        for _ in range(6):  # connections land on both workers
            got = ask(http, HEADER)
            assert got is not None and got["x-forwarded-for"] == "198.51.100.20"
            assert ask(http, b"") is None


def test_configmap_switches_proxy_protocol_at_runtime(tmp_path: Path, echo: None) -> None:
    (tmp_path / "app.yaml").write_text(FILES)
    configmap = tmp_path / "configmap.yaml"
    configmap.write_text(CONFIGMAP % "false")
    http = free_port()
    args = daemon(tmp_path, http, "--configmap", "ingress-nginx/ingress-nginx-controller")
    with ExitStack() as stack:
        stack.enter_context(seaway(args))
        wait_for_port("127.0.0.1", http)
        # (several in a row: connections land on either worker)
        wait_until(lambda: all(answered(http) for _ in range(6)), what="the Ingress served")
        got = ask(http, b"")
        assert got is not None and got["x-forwarded-for"] == "127.0.0.1"
        configmap.write_text(CONFIGMAP % "true")
        wait_until(lambda: ask(http, b"") is None, what="use-proxy-protocol applied")
        for _ in range(6):
            got = ask(http, HEADER)
            assert got is not None and got["x-forwarded-for"] == "198.51.100.20"
            assert got["x-forwarded-port"] == "80"  # ingress-nginx's: the PROXY port
            assert ask(http, b"") is None
