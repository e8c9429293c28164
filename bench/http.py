"""L7 forwarding benchmark: seaway vs nginx vs haproxy in front of the same nginx backend.

    python3 bench/http.py [--duration 5] [--rounds 2] [--workers 1]

Every proxy forwards to one nginx backend (1 worker) with upstream keep-alive; the backend
is also measured directly. wrk drives each target in turn, alternating, for several
rounds; the table shows the median per target and scenario, and ratios against nginx:
  small   small responses (2 bytes), 64 keep-alive connections
  64k     64 KiB responses, 64 connections
  c256    small responses, 256 connections
seaway runs as bench/seaway_l7.py (hand-built Snapshot, IngressDataplane on uvloop), with
its defaults ("seaway") and with `--upstream-pipelining 8` ("seaway-p8": GETs that arrive
together share one upstream connection; off by default, see the README).
"cpu us" is the CPU time (user + system) the target's processes spent per request: on a
shared machine it is steadier than requests/s, and for a proxy that saturates its one core
it is what bounds requests/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

# Run as a script, Python puts bench/ first on sys.path, where http.py and discovery.py
# would shadow the stdlib `http` and the `discovery` package: put the repo root there.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.common import (  # noqa: E402
    HOST,
    Processes,
    WrkResult,
    free_port,
    haproxy,
    ratio,
    require,
    run_wrk_measured,
    start_nginx,
    wait_port,
)

SCENARIOS = {
    "small": ("/", 64),
    "64k": ("/big", 64),
    "c256": ("/", 256),
}


def backend_nginx(procs: Processes, port: int) -> int:
    """nginx answering / with 2 bytes and /big with 64 KiB, keep-alive forever."""
    d = procs.path(f"backend-{port}")
    os.makedirs(d, exist_ok=True)
    os.chmod(procs.tmpdir, 0o755)  # nginx workers run as nobody and must read /big
    os.chmod(d, 0o755)
    with open(os.path.join(d, "big"), "wb") as f:
        f.write(b"x" * 65536)
    server = f"""        location = /big {{ root {d}; }}
        location / {{ return 200 "ok"; }}"""
    return start_nginx(procs, "backend", port, server).pid


def nginx_proxy(procs: Processes, port: int, backend: int) -> int:
    """nginx as a reverse proxy: 1 worker, HTTP/1.1 upstream keep-alive."""
    upstream = f"    upstream be {{ server {HOST}:{backend}; keepalive 256; }}"
    server = """        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_buffering on;
            proxy_buffers 16 16k;  # 64 KiB responses stay in memory (no temp files)
            proxy_max_temp_file_size 0;
        }"""
    return start_nginx(procs, "proxy", port, server, http=upstream).pid


PIPELINING = 8  # the "seaway-p8" target's --upstream-pipelining


def seaway(procs: Processes, port: int, backend: int, workers: int, pipelining: int = 1) -> int:
    script = str(Path(__file__).resolve().parent / "seaway_l7.py")
    argv = [sys.executable, script, "--listen", f"{HOST}:{port}"]
    argv += ["--backend", f"{HOST}:{backend}", "--workers", str(workers)]
    argv += ["--upstream-pipelining", str(pipelining)]
    proc = procs.start(argv, log=f"seaway-{port}.log")
    wait_port(HOST, port, proc=proc)
    return proc.pid


def median(results: list[WrkResult]) -> WrkResult:
    cpu = [r.cpu_us for r in results if r.cpu_us is not None]
    return WrkResult(
        statistics.median(r.rps for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
        cpu_us=statistics.median(cpu) if cpu else None,
    )


def cpu(r: WrkResult) -> str:
    return f"{r.cpu_us:.1f}" if r.cpu_us is not None else "-"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--workers", type=int, default=1, help="seaway worker processes")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--only", default="", help="comma-separated scenarios (default: all)")
    args = p.parse_args()
    require("nginx", "haproxy", "wrk")
    scenarios = [s for s in SCENARIOS if not args.only or s in args.only.split(",")]
    with Processes() as procs:
        be = free_port()
        pids = {"backend": backend_nginx(procs, be)}
        ports = {
            "seaway": free_port(),
            "seaway-p8": free_port(),
            "nginx": free_port(),
            "haproxy": free_port(),
        }
        pids["seaway"] = seaway(procs, ports["seaway"], be, args.workers)
        pids["seaway-p8"] = seaway(procs, ports["seaway-p8"], be, args.workers, PIPELINING)
        pids["nginx"] = nginx_proxy(procs, ports["nginx"], be)
        pids["haproxy"] = haproxy(procs, ports["haproxy"], [(HOST, be)], "http", threads=1).pid
        ports["backend"] = be
        results: dict[tuple[str, str], list[WrkResult]] = {}
        for rnd in range(args.rounds):
            for scen in scenarios:
                path, conns = SCENARIOS[scen]
                order = list(ports) if rnd % 2 == 0 else list(reversed(ports))
                for target in order:
                    url = f"http://{HOST}:{ports[target]}{path}"
                    r = run_wrk_measured(
                        url, pids[target], conns, threads=args.threads, duration=args.duration
                    )
                    results.setdefault((scen, target), []).append(r)
                    print(
                        f"round {rnd + 1} {scen:6} {target:9} {r.rps:10.0f} req/s "
                        f"p50 {r.p50_ms:7.2f} ms p99 {r.p99_ms:7.2f} ms errors {r.errors} "
                        f"cpu {cpu(r)} us/req",
                        flush=True,
                    )
        print()
        print(
            f"median of {args.rounds} rounds, {args.duration:g}s each, "
            f"seaway workers={args.workers}"
        )
        print(
            f"{'scenario':8}{'target':10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'errors':>8}{'cpu us':>8}{'rps/nginx':>11}{'p99/nginx':>11}"
        )
        for scen in scenarios:
            ng = median(results[(scen, "nginx")])
            for target in ports:
                m = median(results[(scen, target)])
                print(
                    f"{scen:8}{target:10}{m.rps:>10.0f}{m.p50_ms:>9.2f}{m.p99_ms:>9.2f}"
                    f"{m.errors:>8}{cpu(m):>8}{ratio(m.rps, ng.rps):>11}"
                    f"{ratio(m.p99_ms, ng.p99_ms):>11}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
