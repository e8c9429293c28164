"""Balancers side by side: round robin, least request and EWMA in one seaway (one
Service per balancer, same three backends), driven by wrk in turn. (Maglev is about
which endpoint a key goes to, not load: wrk's one client IP would all go to one.)

    python3 bench/balancers.py                       # 2 rounds x 4 s, 32 connections
    python3 bench/balancers.py --rounds 3 --duration 6

Scenarios:
  equal     three equal backends: what a balancer costs (requests/s, CPU per request)
  one-slow  one of the three answers 20 ms late: p99 and the share the slow one gets
The backends are small uvloop servers, one process each, answering "ok" after their
delay, counting what they serve. seaway runs as `seaway run -c FILE --workers 1`; each
balancer is a Service with its `seaway.dev/load-balancer` annotation behind its own host.
Every process is stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402

from bench.common import (  # noqa: E402
    HOST,
    Processes,
    WrkResult,
    free_port,
    require,
    run_wrk_measured,
    wait_port,
)

POLICIES = ("round-robin", "least-request", "ewma")
SLOW_MS = 20.0

# ---------------------------------------------------------------- backend process


class _Delayed(asyncio.Protocol):
    served = 0

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        for _ in range(data.count(b"\r\n\r\n")):
            if data.startswith(b"GET /__count"):
                body = str(_Delayed.served).encode()
                self.t.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            elif self.delay:
                asyncio.get_running_loop().call_later(self.delay, self._answer)
            else:
                self._answer()

    def _answer(self) -> None:
        if not self.t.is_closing():
            _Delayed.served += 1
            self.t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


async def _serve(port: int, delay_ms: float) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_server(lambda: _Delayed(delay_ms / 1000), HOST, port, backlog=1024)
    await asyncio.Event().wait()


# ---------------------------------------------------------------- seaway


def manifest(port: int) -> str:
    """One Service per balancer over the same three backends (127.0.0.1-3:port), one
    host each."""
    docs = []
    rules = []
    for policy in POLICIES:
        docs.append(f"""apiVersion: v1
kind: Service
metadata:
  name: {policy}
  namespace: default
  annotations: {{seaway.dev/load-balancer: {policy}}}
spec:
  clusterIP: 10.96.1.{POLICIES.index(policy) + 1}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {policy}-1, namespace: default, labels: {{kubernetes.io/service-name: {policy}}}}}
addressType: IPv4
ports: [{{name: http, port: {port}, protocol: TCP}}]
endpoints: [{{addresses: [127.0.0.1]}}, {{addresses: [127.0.0.2]}}, {{addresses: [127.0.0.3]}}]
""")
        backend = f"{{service: {{name: {policy}, port: {{number: 80}}}}}}"
        rules.append(f"  - host: {policy}.test\n    http: {{paths: [{{path: /, "
                     f"pathType: Prefix, backend: {backend}}}]}}")
    ingress = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: bench, " \
        "namespace: default}\nspec:\n  rules:\n" + "\n".join(rules) + "\n"
    return "---\n".join([*docs, ingress])


def start_seaway(procs: Processes, port: int, backend_port: int) -> int:
    os.makedirs(procs.path("manifests"), exist_ok=True)
    path = procs.write("manifests/bench.yaml", manifest(backend_port))
    argv = [
        sys.executable, "-m", "proxy.app.cli", "run", "-c", path, "--proxy-mode", "userspace",
        "--workers", "1", "--watch-ingress-without-class",
        "--http-bind-address", f"{HOST}:{port}",
        "--metrics-bind-address", "127.0.0.1:0", "--healthz-bind-address", "127.0.0.1:0",
    ]  # fmt: skip
    proc = procs.start(argv, env={**os.environ, "PYTHONPATH": str(ROOT)}, log="seaway.log")
    wait_port(HOST, port, proc=proc)
    return proc.pid


def start_backends(procs: Processes, port: int, delays: list[float]) -> list[int]:
    pids = []
    for i, delay in enumerate(delays):
        argv = [sys.executable, "-m", "bench.balancers", "--backend", f"127.0.0.{i + 1}",
                str(port), str(delay)]
        proc = procs.start(argv, env={**os.environ, "PYTHONPATH": str(ROOT)},
                           log=f"backend-{i}.log")
        wait_port(f"127.0.0.{i + 1}", port, proc=proc)
        pids.append(proc.pid)
    return pids


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--backend", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.backend:
        import uvloop

        host, port, delay = args.backend
        global HOST
        HOST = host
        uvloop.run(_serve(int(port), float(delay)))
        return 0
    require("wrk")
    for scenario, delays in (("equal", [0.0, 0.0, 0.0]), ("one-slow", [0.0, 0.0, SLOW_MS])):
        with Processes() as procs:
            bport, port = free_port(), free_port()
            start_backends(procs, bport, delays)
            pid = start_seaway(procs, port, bport)
            results: dict[str, list[tuple[WrkResult, float]]] = {p: [] for p in POLICIES}
            for rnd in range(args.rounds):
                for policy in POLICIES if rnd % 2 == 0 else reversed(POLICIES):
                    before = [_count(i, bport) for i in range(3)]
                    r = run_wrk_measured(f"http://{HOST}:{port}/", pid, args.connections,
                                         duration=args.duration,
                                         extra=["-H", f"Host: {policy}.test"])
                    after = [_count(i, bport) for i in range(3)]
                    done = [a - b for a, b in zip(after, before, strict=True)]
                    results[policy].append((r, done[2] / max(1, sum(done))))
            report(scenario, results, args)
    return 0


def _count(i: int, port: int) -> int:
    with socket.create_connection((f"127.0.0.{i + 1}", port), timeout=5) as s:
        s.sendall(b"GET /__count HTTP/1.1\r\nHost: x\r\n\r\n")
        data = s.recv(1000)
    return int(data.rpartition(b"\r\n\r\n")[2])


def report(scenario: str, results: dict[str, list[tuple[WrkResult, float]]],
           args: argparse.Namespace) -> None:
    print(f"\n{scenario}: median over {args.rounds} rounds x {args.duration:g}s, "
          f"{args.connections} connections"
          + (f"; backend 3 answers {SLOW_MS:g} ms late" if scenario == "one-slow" else ""))
    print(f"{'balancer':<16}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}"
          f"{'to backend 3':>14}{'req/s vs rr':>13}")
    base = statistics.median(r.rps for r, _ in results["round-robin"])
    for policy, runs in results.items():
        rps = statistics.median(r.rps for r, _ in runs)
        cpu = statistics.median(r.cpu_us or 0.0 for r, _ in runs)
        print(f"{policy:<16}{rps:>9.0f}{statistics.median(r.p50_ms for r, _ in runs):>9.2f}"
              f"{statistics.median(r.p99_ms for r, _ in runs):>9.2f}{cpu:>12.1f}"
              f"{statistics.median(s for _, s in runs):>13.0%}{rps / base:>12.2f}x")


if __name__ == "__main__":
    sys.exit(main())
