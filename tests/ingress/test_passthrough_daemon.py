"""ingress-nginx's e2e test of --enable-ssl-passthrough, ported: `seaway run` as a real
daemon on files, nginx as the pod (terminating TLS with its own certificate), curl as
the client.

Upstream: kubernetes/ingress-nginx test/e2e/settings/ssl_passthrough.go,
"[Flag] enable-ssl-passthrough":
- "should enable ssl-passthrough-proxy-port on a different port": with the flag, plain
  HTTP still answers (404 for an unknown host). seaway has no internal proxy port (its
  HTTPS listener reads the ClientHello itself), so only the 404 part applies.
- "should pass unknown traffic to default backend and handle known traffic": the
  annotated host's TLS goes to the pod, which answers 200; the host without the
  annotation (same Service) is terminated by the controller, which speaks plain HTTP to
  the pod's TLS port. Upstream expects that to fail with a 404 from its httpbun pod;
  nginx as the pod answers 400 ("The plain HTTP request was sent to HTTPS port"), which
  is what this port checks, with the certificate each client saw.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from ingress import selfsigned
from tests.ingress.l7kit import nginx_server
from tests.support import free_port, seaway, wait_for_port

pytestmark = [
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
]

CLUSTER_IP = "127.0.79.1"
HOST = "testpassthrough.com"
HOST_BAD = "noannotationnopassthrough.com"


def _indent(pem: bytes) -> str:
    return "\n".join("    " + line for line in pem.decode().strip().splitlines())


def tls_secret(name: str, pem: tuple[bytes, bytes]) -> str:
    return f"""apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata: {{name: {name}, namespace: default}}
stringData:
  tls.crt: |
{_indent(pem[0])}
  tls.key: |
{_indent(pem[1])}
"""


def ingress(name: str, host: str, secret: str, service_port: int, annotations: str) -> str:
    return f"""apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  namespace: default
  annotations: {{{annotations}}}
spec:
  tls: [{{hosts: [{host}], secretName: {secret}}}]
  rules:
  - host: {host}
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {{service: {{name: echopass, port: {{number: {service_port}}}}}}}
"""


def manifests(pod_port: int, service_port: int, pems: dict[str, tuple[bytes, bytes]]) -> str:
    service = f"""apiVersion: v1
kind: Service
metadata: {{name: echopass, namespace: default}}
spec:
  clusterIP: {CLUSTER_IP}
  ports: [{{name: https, port: {service_port}, targetPort: https}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: echopass-1
  namespace: default
  labels: {{kubernetes.io/service-name: echopass}}
addressType: IPv4
ports: [{{name: https, port: {pod_port}, protocol: TCP}}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {{ready: true}}
"""
    return "---\n".join(
        [
            service,
            tls_secret(HOST, pems["pass"]),
            tls_secret(HOST_BAD, pems["bad"]),
            ingress("echopass", HOST, HOST, service_port,
                    '"nginx.ingress.kubernetes.io/ssl-passthrough": "true"'),
            ingress("echobad", HOST_BAD, HOST_BAD, service_port, ""),
        ]
    )


def curl(host: str, port: int) -> tuple[int, str]:
    """(status, CN of the certificate shown) of GET https://host:port/ resolved to
    127.0.0.1 (curl --resolve: SNI is `host`)."""
    argv = ["curl", "-sk", "-v", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
            "--resolve", f"{host}:{port}:127.0.0.1", f"https://{host}:{port}/"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    cn = next((ln.split("CN=", 1)[1].split(",")[0].strip() for ln in done.stderr.splitlines()
               if "subject:" in ln and "CN=" in ln), "")
    return int(done.stdout or 0), cn


def test_pass_unknown_traffic_to_default_backend_and_handle_known_traffic(
    tmp_path: Path,
) -> None:
    """ssl_passthrough.go: 'should pass unknown traffic to default backend and handle
    known traffic' (and the 404 of 'should enable ssl-passthrough-proxy-port')."""
    pems = {
        "pod": selfsigned.generate("the pod", [HOST]),  # what the pod itself serves
        "pass": selfsigned.generate("seaway for testpassthrough.com", [HOST]),
        "bad": selfsigned.generate("seaway for noannotation", [HOST_BAD]),
    }
    pod_port, service_port = free_port(), free_port(CLUSTER_IP)
    http_port, https_port = free_port(), free_port()
    (tmp_path / "app.yaml").write_text(manifests(pod_port, service_port, pems))
    pod = (
        f"listen 127.0.0.1:{pod_port} ssl; ssl_certificate {{dir}}/tls.crt; "
        "ssl_certificate_key {dir}/tls.key; location / { return 200 'passthrough ok'; }"
    )
    args = [
        "run", "-c", str(tmp_path), "--proxy-mode", "userspace",
        "--watch-ingress-without-class", "--enable-ssl-passthrough",
        "--healthz-bind-address", f"127.0.0.1:{free_port()}",
        "--metrics-bind-address", f"127.0.0.1:{free_port()}",
        "--http-bind-address", f"127.0.0.1:{http_port}",
        "--https-bind-address", f"127.0.0.1:{https_port}", "--workers", "1",
    ]  # fmt: skip
    files = {"tls.crt": pems["pod"][0], "tls.key": pems["pod"][1]}
    with nginx_server(pod_port, pod, files=files), seaway(args) as proc:
        wait_for_port("127.0.0.1", https_port)
        assert curl(HOST, https_port) == (200, "the pod")
        assert curl(HOST_BAD, https_port) == (400, "seaway for noannotation")
        status = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: something",
             f"http://127.0.0.1:{http_port}/"], capture_output=True, text=True, timeout=30,
        ).stdout
        assert status == "404"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
