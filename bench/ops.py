"""What request metrics and the access log cost on the L7 hot path, on varied traffic.

    python3 bench/ops.py [--duration 5] [--rounds 3] [--base DIR] [--peers]

wrk sends requests that differ like real clients' do (bench/varied.lua: path, query,
User-Agent, X-Request-Id and Cookie change on every request) through seaway's L7 proxy
(bench/seaway_l7.py, one worker) to one nginx backend whose responses differ too
(bench/http.py's: the URI in the body, a request id and a cookie per answer). Targets,
run in turn, alternating order, for several rounds:
  off          --no-request-metrics: nothing counted, no access log
  metrics      the default: request metrics on
  access-log   metrics on and the access log (combined format) written to a file
  base         (--base DIR) bench/seaway_l7.py of another checkout, e.g. main
  nginx, nginx-log   (--peers) nginx as the proxy, access_log off and on
It prints the median requests/s and CPU time per request, and each ratio to "off" (to
"nginx" for nginx-log).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.common import (  # noqa: E402
    HOST,
    Processes,
    WrkResult,
    free_port,
    require,
    run_wrk_measured,
    start_nginx,
    wait_port,
)
from bench.http import LUA, backend_nginx  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def seaway(procs: Processes, name: str, root: Path, port: int, be: int, extra: list[str]) -> int:
    argv = [sys.executable, str(root / "bench" / "seaway_l7.py"), "--listen", f"{HOST}:{port}",
            "--backend", f"{HOST}:{be}", "--workers", "1", *extra]
    proc = procs.start(argv, log=f"{name}.log")
    wait_port(HOST, port, proc=proc)
    return proc.pid


def nginx_proxy(procs: Processes, port: int, be: int, log: str) -> int:
    upstream = f"    upstream be {{ server {HOST}:{be}; keepalive 256; }}"
    access = f"access_log {log};" if log else "access_log off;"
    server = f"""        {access}
        location / {{
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}"""
    return start_nginx(procs, f"proxy{'-log' if log else ''}", port, server, http=upstream).pid


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--base", metavar="DIR", help="also run DIR/bench/seaway_l7.py ('base')")
    p.add_argument("--peers", action="store_true", help="also nginx with access_log off and on")
    args = p.parse_args()
    require("nginx", "wrk")
    with Processes() as procs:
        be = free_port()
        backend_nginx(procs, be)
        log_path = procs.path("access.log")
        targets = {
            "off": ["--no-request-metrics"],
            "metrics": [],
            "access-log": ["--access-log", log_path],
        }
        pids: dict[str, int] = {}
        ports: dict[str, int] = {}
        for name, extra in targets.items():
            ports[name] = free_port()
            pids[name] = seaway(procs, name, ROOT, ports[name], be, extra)
        if args.base:
            ports["base"] = free_port()
            pids["base"] = seaway(procs, "base", Path(args.base), ports["base"], be, [])
        if args.peers:
            for name, log in (("nginx", ""), ("nginx-log", procs.path("nginx-access.log"))):
                ports[name] = free_port()
                pids[name] = nginx_proxy(procs, ports[name], be, log)
        results: dict[str, list[WrkResult]] = {name: [] for name in ports}
        for rnd in range(args.rounds):
            order = list(ports) if rnd % 2 == 0 else list(reversed(ports))
            for name in order:
                r = run_wrk_measured(
                    f"http://{HOST}:{ports[name]}/", pids[name], args.connections,
                    args.threads, args.duration, extra=["-s", LUA],
                )
                results[name].append(r)
                print(f"round {rnd + 1} {name:11} {r.rps:9.0f} req/s  p99 {r.p99_ms:6.2f} ms  "
                      f"cpu {r.cpu_us or 0:5.1f} us/req  errors {r.errors}", flush=True)
        print(f"\nmedian of {args.rounds} rounds, {args.duration:g}s each, "
              f"{args.connections} connections, varied requests")
        print(f"{'target':12}{'req/s':>10}{'cpu us/req':>12}{'req/s ratio':>13}"
              f"{'cpu ratio':>11}  vs")
        med = {
            name: (statistics.median(r.rps for r in rs),
                   statistics.median(r.cpu_us or 0.0 for r in rs))
            for name, rs in results.items()
        }
        for name, (rps, cpu) in med.items():
            ref = "nginx" if name == "nginx-log" else "off"
            if name == "nginx":
                ref = name
            base_rps, base_cpu = med[ref]
            print(f"{name:12}{rps:>10.0f}{cpu:>12.1f}{rps / base_rps:>13.3f}"
                  f"{(cpu / base_cpu if base_cpu else 0):>11.3f}  {ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
