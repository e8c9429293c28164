"""Churn under load, for real: `seaway run` on manifest files serving an Ingress over
three `seaway echo` backends while wrk keeps 16 keep-alive connections busy. Meanwhile
the EndpointSlice file is rewritten every 200 ms (endpoints leave and come back), the
daemon is told to re-read its files (SIGHUP) twice, and one backend is killed outright
(SIGKILL: the kernel resets its connections; it stays listed in some of the rewrites, so
connects to it are refused). Not one request may fail: no non-2xx answer, no socket
error. What makes that hold is the retry rule (ingress/retry.py): a GET whose pooled
connection was reset, or whose connect was refused, goes to another endpoint."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support import (
    REPO,
    free_port,
    http_get,
    seaway,
    stop_process,
    wait_for_port,
    wait_until,
)

CLUSTER_IP = "127.0.79.1"
BACKENDS = ("127.0.79.11", "127.0.79.12", "127.0.79.13")
# Endpoint sets the file cycles through (the last backend, killed midway, stays in some).
SETS = ((0, 1, 2), (0, 1), (1, 2), (0, 2), (0, 1, 2), (2, 0))


def manifests(cluster_port: int) -> str:
    return f"""apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec:
  clusterIP: {CLUSTER_IP}
  ports: [{{name: http, port: {cluster_port}, targetPort: http}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: web, namespace: default}}
spec:
  defaultBackend: {{service: {{name: web, port: {{name: http}}}}}}
"""


def endpoints(port: int, which: tuple[int, ...], generation: int) -> str:
    eps = "".join(f"- addresses: [{BACKENDS[i]}]\n  conditions: {{ready: true}}\n"
                  for i in which)
    return f"""apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: default
  labels: {{kubernetes.io/service-name: web}}
  annotations: {{rewrite: "{generation}"}}
addressType: IPv4
ports: [{{name: http, port: {port}, protocol: TCP}}]
endpoints:
{eps}"""


def _count(pattern: str, text: str) -> int:
    m = re.search(pattern, text)
    return sum(int(x) for x in m.groups()) if m else 0


@pytest.mark.skipif(subprocess.run(["which", "wrk"], capture_output=True).returncode != 0,
                    reason="wrk is not installed")
def test_no_failed_request_while_endpoints_churn_the_daemon_reloads_and_a_backend_dies(
    tmp_path: Path,
) -> None:
    port = free_port(BACKENDS[0])
    http = free_port()
    (tmp_path / "web.yaml").write_text(manifests(free_port(CLUSTER_IP)))
    eps_file = tmp_path / "eps.yaml"
    eps_file.write_text(endpoints(port, (0, 1, 2), 0))
    with ExitStack() as stack:
        procs = [stack.enter_context(seaway(["echo", "--listen", f"{ip}:{port}", "--name",
                                             f"b{i}"]))
                 for i, ip in enumerate(BACKENDS)]
        for ip in BACKENDS:
            wait_for_port(ip, port)
        log = stack.enter_context(open(tmp_path / "seaway.log", "w"))  # (not a pipe: never full)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "proxy.app.cli", "run", "-c", str(tmp_path),
             "--watch-ingress-without-class", "--workers", "1",
             "--http-bind-address", f"127.0.0.1:{http}",
             "--metrics-bind-address", f"127.0.0.1:{free_port()}",
             "--healthz-bind-address", "127.0.0.1:0"],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=log,
            stderr=subprocess.STDOUT, text=True,
        )
        stack.callback(stop_process, daemon)
        wait_until(lambda: _serves(http), 20, "the proxy to serve the Ingress")
        load = subprocess.Popen(
            ["wrk", "-t", "2", "-c", "16", "-d", "5s", f"http://127.0.0.1:{http}/churn"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        began = time.monotonic()
        step = killed = 0
        hups = []
        while load.poll() is None:
            time.sleep(0.2)
            step += 1
            eps_file.write_text(endpoints(port, SETS[step % len(SETS)], step))
            elapsed = time.monotonic() - began
            if (elapsed > 1.0 and not hups) or (elapsed > 3.0 and len(hups) == 1):
                daemon.send_signal(signal.SIGHUP)
                hups.append(elapsed)
            if elapsed > 2.0 and not killed:
                procs[2].kill()  # SIGKILL: its connections are reset by the kernel
                killed = step
        out, _ = load.communicate(timeout=30)
        assert daemon.poll() is None
    requests = _count(r"(\d+) requests in", out)
    non_2xx = _count(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = _count(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                           r"timeout (\d+)", out)
    assert len(hups) == 2 and killed and step >= 15, (hups, killed, step)
    assert requests > 500, out
    assert (non_2xx, socket_errors) == (0, 0), out + (tmp_path / "seaway.log").read_text()[-3000:]


def _serves(port: int) -> bool:
    try:
        return http_get("127.0.0.1", port, "/ready", timeout=2)[0] == 200
    except OSError:
        return False
