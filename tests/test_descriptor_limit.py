"""Out of file descriptors, for real: `seaway run` under a hard limit of 1,024 open files
(as many containers get) and 1,500 idle clients. While it cannot accept, the worker must
not spin (CPU under half a core, read from /proc) nor flood its log; once the clients
leave it serves again within 3 s. And at start the soft limit is raised to the hard one.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support import REPO, free_port, http_get, seaway, stop_process, wait_for_port, wait_until

CLIENTS = 1500
LIMIT = 1024
TICKS = os.sysconf("SC_CLK_TCK")

MANIFEST = """\
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec:
  clusterIP: 10.96.0.50
  ports: [{{name: http, port: 80, targetPort: {port}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels: {{kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{{name: http, port: {port}, protocol: TCP}}]
endpoints:
- addresses: [127.0.0.1]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: web, namespace: default}}
spec:
  defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def soft_nofile(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open files limit in /proc")


def start_seaway(tmp: Path, args: list[str], soft: int, hard: int) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    log = open(tmp / "seaway.log", "w")  # noqa: SIM115 (the child writes it; closed by GC)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return subprocess.Popen(
        [sys.executable, "-m", "proxy.app.cli", "run", *args],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True, preexec_fn=limit,
    )


@pytest.fixture
def backend() -> Iterator[int]:
    port = free_port()
    with seaway(["echo", "--listen", f"127.0.0.1:{port}", "--name", "web"]):
        wait_for_port("127.0.0.1", port)
        yield port


def test_out_of_descriptors_no_spin_small_log_and_service_resumes(
    tmp_path: Path, backend: int
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < CLIENTS + 200:
        pytest.skip(f"this test opens {CLIENTS} sockets; the hard open files limit is {hard}")
    if soft < CLIENTS + 200:  # our side of the idle connections
        resource.setrlimit(resource.RLIMIT_NOFILE, (CLIENTS + 200, hard))
    (tmp_path / "web.yaml").write_text(MANIFEST.format(port=backend))
    http, metrics = free_port(), free_port()
    args = ["-c", str(tmp_path / "web.yaml"), "--watch-ingress-without-class",
            "--workers", "1", "--max-connections", "0",
            "--http-bind-address", f"127.0.0.1:{http}",
            "--metrics-bind-address", f"127.0.0.1:{metrics}", "--healthz-bind-address",
            "127.0.0.1:0"]
    proc = start_seaway(tmp_path, args, LIMIT, LIMIT)
    log = tmp_path / "seaway.log"
    clients: list[socket.socket] = []
    try:
        wait_until(lambda: _serves(http), 20, "the proxy to serve")
        with ExitStack() as stack:
            for _ in range(CLIENTS):
                clients.append(stack.enter_context(socket.create_connection(
                    ("127.0.0.1", http), timeout=5)))
            wait_until(lambda: "pausing accepts" in log.read_text(), 10, "accepts to pause")
            size_before = log.stat().st_size
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(1.5)
            cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
            grown = log.stat().st_size - size_before
            assert proc.poll() is None
            clients.clear()
        left = time.monotonic()  # every client closed: descriptors free up
        status, _ = http_get("127.0.0.1", http, "/", timeout=5)
        back_in = time.monotonic() - left
        _, exported = http_get("127.0.0.1", metrics, "/metrics")
        text = log.read_text()
    finally:
        stop_process(proc)  # type: ignore[arg-type]
    assert cpu < 0.5, f"the worker used {cpu:.0%} of a core while it could not accept"
    assert grown < 2048, f"the log grew {grown} bytes in 1.5 s of exhaustion"
    assert text.count("Too many open files") <= 2, text[-3000:]
    assert status == 200 and back_in < 3.0, (status, back_in)
    assert "accepts failed meanwhile" in text  # the episode's closing line, with its count
    assert metric(exported, "seaway_accept_pauses_total") >= 1
    assert metric(exported, "seaway_accept_exhausted_total") >= 1


def metric(exported: bytes, name: str) -> float:
    for line in exported.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def _serves(port: int) -> bool:
    try:
        return http_get("127.0.0.1", port, "/", timeout=2)[0] == 200
    except OSError:
        return False


def test_soft_open_files_limit_is_raised_to_the_hard_limit_at_start(
    tmp_path: Path, backend: int
) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= 512:
        pytest.skip(f"the hard open files limit ({hard}) leaves nothing to raise")
    target = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    (tmp_path / "web.yaml").write_text(MANIFEST.format(port=backend))
    http = free_port()
    args = ["-c", str(tmp_path / "web.yaml"), "--watch-ingress-without-class",
            "--workers", "2", "--http-bind-address", f"127.0.0.1:{http}",
            "--metrics-bind-address", "127.0.0.1:0", "--healthz-bind-address", "127.0.0.1:0"]
    proc = start_seaway(tmp_path, args, 512, target)
    try:
        wait_until(lambda: _serves(http), 20, "the proxy to serve")
        assert soft_nofile(proc.pid) == target
        # the worker process (started by the main thread) inherits the raised limit
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert children, "the second worker process"
        assert all(soft_nofile(int(c)) == target for c in children)
    finally:
        stop_process(proc)  # type: ignore[arg-type]
    text = (tmp_path / "seaway.log").read_text()
    assert f"open files limit: soft 512 raised to the hard limit {target}" in text
    assert f"max connections per worker {(target - 100) // 2}" in text
