"""L4 TCP forwarding: seaway's userspace proxy vs haproxy `mode tcp` vs the backend alone.

Backend: nginx (1 worker) answering `return 200 "ok"`. Peers: haproxy (nbthread 1) and
seaway's UserspaceDataplane (1 process, uvloop). wrk drives each in turn, alternating,
for several rounds; the table shows requests/s, p50 and p99 and the ratio to haproxy.

    python3 bench/l4.py                      # 2 rounds x 5 s, 64 connections, 2 threads
    python3 bench/l4.py --rounds 3 --duration 10
    python3 bench/l4.py --via run            # seaway through `seaway run -c FILE`
    python3 bench/l4.py --close              # a new connection per request

Everything listens on 127.0.0.1 on free ports; every process is stopped at the end,
also on Ctrl-C.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts bench/ first on sys.path, where bench/http.py would
# shadow the standard library's http package: take it off, put the repository on.
_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402

from bench.common import (  # noqa: E402
    HOST,
    Processes,
    WrkResult,
    free_port,
    haproxy,
    nginx_backend,
    print_table,
    ratio,
    run_wrk,
    run_wrk_measured,
    wait_port,
)

DIRECT = "nginx (direct)"
HAPROXY = "haproxy tcp"
SEAWAY = "seaway userspace"

MANIFEST = """\
apiVersion: v1
kind: Service
metadata: {{name: bench, namespace: default}}
spec:
  clusterIP: {ip}
  ports: [{{name: http, port: {port}, targetPort: {backend_port}, protocol: TCP}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: bench-1
  namespace: default
  labels: {{kubernetes.io/service-name: bench}}
addressType: IPv4
ports: [{{name: http, port: {backend_port}, protocol: TCP}}]
endpoints:
- addresses: [{backend_ip}]
  conditions: {{ready: true}}
"""


# ---------------------------------------------------------------- the seaway side


async def _serve(listen: tuple[str, int], backend: tuple[str, int]) -> None:
    from discovery.snapshot import EndpointInfo, ServicePortInfo, ServicePortName, Snapshot
    from proxy.app.options import Options
    from proxy.userspace.dataplane import UserspaceDataplane

    name = ServicePortName("default", "bench", "http", "TCP")
    ep = EndpointInfo(*backend)
    info = ServicePortInfo(
        name=name,
        cluster_ips=(listen[0],),
        port=listen[1],
        protocol="TCP",
        all_endpoints=(ep,),
        endpoints=(ep,),
    )
    dp = UserspaceDataplane(Options().userspace_config(), local_addresses=frozenset)
    await dp.start()
    await dp.sync(Snapshot(generation=1, service_ports={name: info}), frozenset({name}))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await dp.stop()


def serve_main(listen: str, backend: str) -> None:
    import uvloop

    lh, lp = listen.rsplit(":", 1)
    bh, bp = backend.rsplit(":", 1)
    uvloop.run(_serve((lh, int(lp)), (bh, int(bp))))


def start_seaway(
    procs: Processes, port: int, backend_port: int, via: str
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if via == "run":
        # its own directory: the file source watches it, and logs written next to it
        # (nginx, haproxy, seaway's own) would wake the watcher on every line
        os.makedirs(procs.path("manifests"), exist_ok=True)
        manifest = procs.write(
            "manifests/bench.yaml",
            MANIFEST.format(ip=HOST, port=port, backend_ip=HOST, backend_port=backend_port),
        )
        argv = [
            sys.executable, "-m", "proxy.app.cli", "run", "-c", manifest,
            "--proxy-mode", "userspace",
            "--metrics-bind-address", "127.0.0.1:0",
            "--healthz-bind-address", "127.0.0.1:0",
            "--http-bind-address", f"127.0.0.1:{free_port()}",
            "--https-bind-address", f"127.0.0.1:{free_port()}",
            "--workers", "1",
        ]  # fmt: skip
    else:
        argv = [
            sys.executable, "-m", "bench.l4", "--serve",
            f"{HOST}:{port}", f"{HOST}:{backend_port}",
        ]  # fmt: skip
    proc = procs.start(argv, env=env, log="seaway.log")
    try:
        wait_port(HOST, port, timeout=20, proc=proc)
    except (RuntimeError, TimeoutError):
        with open(procs.path("seaway.log")) as f:
            sys.stderr.write(f.read())
        raise
    return proc


# ---------------------------------------------------------------- the bench


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument(
        "--via",
        choices=("script", "run"),
        default="script",
        help="start seaway as a minimal script over a hand-built Snapshot (default) or "
        "as `seaway run -c FILE --proxy-mode userspace`",
    )
    ap.add_argument(
        "--close",
        action="store_true",
        help="send `Connection: close`: a new proxied connection per request",
    )
    ap.add_argument("--serve", nargs=2, metavar=("LISTEN", "BACKEND"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve_main(*args.serve)
        return 0

    with Processes() as procs:
        backend_port = free_port()
        nginx = nginx_backend(procs, backend_port)
        haproxy_port = free_port()
        haproxy_proc = haproxy(procs, haproxy_port, [(HOST, backend_port)], "tcp", threads=1)
        seaway_port = free_port()
        seaway = start_seaway(procs, seaway_port, backend_port, args.via)

        extra = ["-H", "Connection: close"] if args.close else []
        # name -> (port, the process whose CPU per request is measured)
        targets = {
            DIRECT: (backend_port, nginx.pid),
            HAPROXY: (haproxy_port, haproxy_proc.pid),
            SEAWAY: (seaway_port, seaway.pid),
        }
        for port, _ in targets.values():  # warm up
            run_wrk(f"http://{HOST}:{port}/", args.connections, args.threads, 1, extra)

        results: dict[str, list[WrkResult]] = {name: [] for name in targets}
        order = list(targets)
        for rnd in range(args.rounds):
            rows = []
            for name in order if rnd % 2 == 0 else reversed(order):
                port, pid = targets[name]
                url = f"http://{HOST}:{port}/"
                r = run_wrk_measured(url, pid, args.connections, args.threads, args.duration, extra)
                results[name].append(r)
                rows.append((name, r))
            print(f"\nround {rnd + 1}")
            print_table(sorted(rows, key=lambda x: order.index(x[0])), baseline=HAPROXY)

        summary = [(name, _combine(rs)) for name, rs in results.items()]
        print(
            f"\nsummary: mean req/s and CPU, median latency over {args.rounds} rounds x "
            f"{args.duration:g}s, {args.connections} connections, {args.threads} wrk threads"
            + (", Connection: close" if args.close else ", keep-alive")
        )
        print_table(summary, baseline=HAPROXY)
        per_round = [
            s.rps / h.rps for s, h in zip(results[SEAWAY], results[HAPROXY], strict=True) if h.rps
        ]
        s, h = dict(summary)[SEAWAY], dict(summary)[HAPROXY]
        print(
            f"\nseaway / haproxy requests/s: {ratio(s.rps, h.rps)} (per round: "
            + ", ".join(f"{x:.2f}x" for x in per_round)
            + f"; median {statistics.median(per_round):.2f}x)"
        )
        if s.cpu_us and h.cpu_us:
            print(
                f"proxy CPU per request: seaway {s.cpu_us:.1f} us, haproxy {h.cpu_us:.1f} us "
                f"(seaway uses {s.cpu_us / h.cpu_us:.2f}x haproxy's CPU per request)"
            )
    return 0


def _combine(rs: list[WrkResult]) -> WrkResult:
    cpus = [r.cpu_us for r in rs if r.cpu_us is not None]
    return WrkResult(
        rps=statistics.mean(r.rps for r in rs),
        p50_ms=statistics.median(r.p50_ms for r in rs),
        p99_ms=statistics.median(r.p99_ms for r in rs),
        errors=sum(r.errors for r in rs),
        cpu_us=statistics.mean(cpus) if cpus else None,
    )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
