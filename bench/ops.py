"""What request metrics and the access log cost on the L7 hot path, on varied traffic.

    python3 bench/ops.py [--duration 5] [--rounds 3] [--base DIR] [--peers]

wrk sends requests that differ like real clients' do (paths with ids, query strings,
cookies, user agents: 20,000 distinct heads per wrk thread, more than any cache of
seaway's holds) through seaway's L7 proxy (bench/seaway_l7.py, one worker) to one nginx
backend whose responses differ too (the URI in the body, a request id header). Targets,
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

ROOT = Path(__file__).resolve().parent.parent

# Builds 20,000 distinct requests per thread at start; each request takes the next.
VARIED_LUA = r"""
local reqs = {}
local n = 0
local agents = {"Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
  "Mozilla/5.0 (Macintosh) Safari/605.1.15", "curl/8.5.0", "okhttp/4.12.0",
  "python-requests/2.32.3"}
function init(args)
  local seed = tonumber(tostring({}):match("0x(%x+)"), 16) or 1
  math.randomseed(seed)
  for i = 1, 20000 do
    local id = math.random(1, 10000000)
    local kind = i % 4
    local path
    if kind == 0 then path = "/api/users/" .. id .. "?fields=name,email&page=" .. (i % 50)
    elseif kind == 1 then path = "/static/app." .. (id % 997) .. ".js?v=" .. (id % 31)
    elseif kind == 2 then path = "/search?q=item" .. id .. "&sort=price&from=" .. (i % 100)
    else path = "/orders/" .. id .. "/items/" .. (i % 9) end
    local headers = {["Cookie"] = "sid=" .. string.format("%x", id * 7919) .. "; theme=dark",
      ["User-Agent"] = agents[(i % #agents) + 1],
      ["Accept"] = "application/json, text/plain, */*",
      ["X-Request-Id"] = string.format("%08x-%04x", id, i)}
    reqs[i] = wrk.format("GET", path, headers)
  end
  n = math.random(1, 20000)
end
function request()
  n = n + 1
  if n > 20000 then n = 1 end
  return reqs[n]
end
"""


def backend(procs: Processes, port: int) -> int:
    """nginx answering with the request URI and a fresh request id: every response differs."""
    server = """        location / {
            add_header X-Request-Id $request_id;
            return 200 "{\\"uri\\": \\"$request_uri\\", \\"id\\": \\"$request_id\\"}";
        }"""
    return start_nginx(procs, "backend", port, server).pid


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
        script = procs.write("varied.lua", VARIED_LUA)
        be = free_port()
        backend(procs, be)
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
                    args.threads, args.duration, extra=["-s", script],
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
