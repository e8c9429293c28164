"""L7 forwarding benchmark: seaway vs nginx vs haproxy in front of the same nginx backend.

    python3 bench/http.py [--duration 5] [--rounds 3] [--workers 1] [--pipelining 8]
        [--only varied,64k] [--json out.json] [--plot out.png]
    python3 bench/http.py --from-json out.json --plot out.png   # redraw, no run

Every proxy forwards to one nginx backend with upstream keep-alive; the backend is also
measured directly. wrk drives each target in turn, alternating the order every round; the
table shows the median per target and scenario, and ratios against nginx.

Scenarios (the first three are traffic that looks like real clients):
  varied       64 connections; bench/varied.lua changes the path, query, User-Agent,
               X-Request-Id and Cookie of every request, and the backend's answers differ
               too (a per-request X-Request-Id and Set-Cookie, the URI in the body)
  varied-c256  the same with 256 connections
  64k          the same requests, 64 KiB responses
  identical    wrk's default: one identical request over and over, answered with
               identical bytes. It measures the best case for repeated clients (health
               checks, polling) and any cache keyed on exact bytes; it is not a headline.

Targets: seaway (bench/seaway_l7.py: defaults, so no upstream pipelining), nginx (reverse
proxy, upstream keepalive), haproxy (mode http, http-reuse always), floor
(bench/minimal_proxy.py: not seaway, the least a strict uvloop + httptools keep-alive proxy
does, to show what Python on this machine can reach today), backend (nginx alone).
`--workers N` runs N seaway workers, N nginx workers and N haproxy threads (the floor has
one process). `--pipelining N` adds "seaway-pN" with `--upstream-pipelining N`.
`--baseline DIR` adds "seaway-base": DIR/bench/seaway_l7.py, another checkout of seaway
(`git archive REV | tar -x -C DIR`), for a before/after in one run.

Placement: no CPU pinning, the same for every target. wrk (2 threads), the backend and the
proxy under test share the machine's cores as the kernel schedules them; only one proxy
is driven at a time (the others idle). Measured on the 2-core machine: pinning the proxy
to one core and wrk + backend to the other made wrk + backend the bottleneck for every
proxy (nginx 28k req/s instead of 39k, the floor 23k instead of 39k), and pinning only the
proxy changed nothing; so the kernel places them, and the ratios are taken in one run.
On a shared machine other processes take CPU too: a proxy that needs more CPU per request
then loses more than its CPU share alone says; the floor row shows how far that goes.
`--gateway` adds "seaway-gw": the same route from a Gateway and an HTTPRoute (served
on the Gateway's own socket) instead of an Ingress, and prints its ratio to the
Ingress-routed seaway.

"cpu us" is the CPU time (user + system, from /proc) the target's processes spent per
request; "usr"/"sys" split it. On a shared machine it is steadier than requests/s, and for
a proxy that saturates its core it is what bounds requests/s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from dataclasses import asdict
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

REPO = Path(__file__).resolve().parent.parent
LUA = str(REPO / "bench" / "varied.lua")

# name -> (path wrk asks for, connections, varied.lua prefix or None for wrk's default)
SCENARIOS: dict[str, tuple[str, int, str | None]] = {
    "varied": ("/", 64, "/"),
    "varied-c256": ("/", 256, "/"),
    "64k": ("/", 64, "/big/"),
    "identical": ("/same", 64, None),
}


def backend_nginx(procs: Processes, port: int) -> int:
    """nginx answering /big/* with 64 KiB, /same with 2 bytes, and anything else with the
    URI in the body; every answer but /same's carries a per-request id (and, for small
    answers, a per-request Set-Cookie), as application servers' answers do."""
    d = procs.path(f"backend-{port}")
    os.makedirs(d, exist_ok=True)
    os.chmod(procs.tmpdir, 0o755)  # nginx workers run as nobody and must read /big
    os.chmod(d, 0o755)
    with open(os.path.join(d, "big"), "wb") as f:
        f.write(b"x" * 65536)
    server = f"""        root {d};
        location ^~ /big/ {{
            add_header X-Request-Id $request_id;
            try_files /big =404;
        }}
        location = /same {{ return 200 "ok"; }}
        location / {{
            add_header X-Request-Id $request_id;
            add_header Set-Cookie "sid=$request_id; Path=/; HttpOnly";
            return 200 "ok $request_uri\\n";
        }}"""
    return start_nginx(procs, "backend", port, server).pid


def nginx_proxy(procs: Processes, port: int, backend: int, workers: int) -> int:
    """nginx as a reverse proxy: HTTP/1.1 upstream keep-alive."""
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
    return start_nginx(procs, "proxy", port, server, http=upstream, workers=workers).pid


def floor_proxy(procs: Processes, port: int, backend: int, buffered: bool = False) -> int:
    """bench/minimal_proxy.py: the floor (not seaway; see its docstring)."""
    script = str(Path(__file__).resolve().parent / "minimal_proxy.py")
    argv = [sys.executable, script, "--listen", f"{HOST}:{port}", "--backend", f"{HOST}:{backend}"]
    argv += ["--buffered"] if buffered else []
    proc = procs.start(argv, log=f"floor-{port}.log")
    wait_port(HOST, port, proc=proc)
    return proc.pid


def seaway(
    procs: Processes,
    port: int,
    backend: int,
    workers: int,
    pipelining: int = 1,
    checkout: Path = REPO,
    gateway: bool = False,
) -> int:
    """bench/seaway_l7.py of `checkout` (its code: the script puts its own root first)."""
    script = str(checkout / "bench" / "seaway_l7.py")
    argv = [sys.executable, script, "--listen", f"{HOST}:{port}"]
    argv += ["--backend", f"{HOST}:{backend}", "--workers", str(workers)]
    argv += ["--upstream-pipelining", str(pipelining)] + (["--gateway"] if gateway else [])
    proc = procs.start(argv, log=f"seaway-{port}.log")
    wait_port(HOST, port, proc=proc)
    return proc.pid


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def median(results: list[WrkResult]) -> WrkResult:
    return WrkResult(
        statistics.median(r.rps for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
        cpu_us=_median([r.cpu_us for r in results]),
        cpu_user_us=_median([r.cpu_user_us for r in results]),
        cpu_sys_us=_median([r.cpu_sys_us for r in results]),
        client_cpu_us=_median([r.client_cpu_us for r in results]),
        peer_cpu_us=_median([r.peer_cpu_us for r in results]),
    )


def _num(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def wrk_extra(scenario: str) -> list[str]:
    prefix = SCENARIOS[scenario][2]
    return [] if prefix is None else ["-s", LUA, "--", prefix]


Results = dict[str, dict[str, list[WrkResult]]]  # scenario -> target -> rounds
# scenario -> seaway target -> summed (request hits, misses, response hits, misses)
Memos = dict[str, dict[str, list[int]]]


def memo_counts(procs: Processes, port: int, pid: int) -> list[int]:
    """The exact-bytes memo counters of a seaway target so far (SIGUSR1: it prints them)."""
    log = procs.path(f"seaway-{port}.log")
    os.kill(pid, signal.SIGUSR1)
    for _ in range(50):
        time.sleep(0.02)
        with open(log) as f:
            lines = [ln for ln in f.read().splitlines() if ln.startswith("memos ")]
        if lines and len(lines) > memo_counts.seen.get(port, 0):
            memo_counts.seen[port] = len(lines)
            return [int(x) for x in lines[-1].split()[1:]]
    return [0, 0, 0, 0]


memo_counts.seen = {}  # type: ignore[attr-defined]


def run(args: argparse.Namespace, scenarios: list[str], memos: Memos) -> Results:
    require("nginx", "haproxy", "wrk")
    results: Results = {}
    with Processes() as procs:
        be = free_port()
        pids = {"backend": backend_nginx(procs, be)}
        ports = {"seaway": free_port()}
        pids["seaway"] = seaway(procs, ports["seaway"], be, args.workers)
        if args.baseline:
            ports["seaway-base"] = free_port()
            pids["seaway-base"] = seaway(
                procs, ports["seaway-base"], be, args.workers, checkout=Path(args.baseline)
            )
        if args.pipelining > 1:
            name = f"seaway-p{args.pipelining}"
            ports[name] = free_port()
            pids[name] = seaway(procs, ports[name], be, args.workers, args.pipelining)
        if args.gateway:
            ports["seaway-gw"] = free_port()
            pids["seaway-gw"] = seaway(procs, ports["seaway-gw"], be, args.workers, gateway=True)
        ports["nginx"] = free_port()
        pids["nginx"] = nginx_proxy(procs, ports["nginx"], be, args.workers)
        ports["haproxy"] = free_port()
        pids["haproxy"] = haproxy(
            procs, ports["haproxy"], [(HOST, be)], "http", threads=args.workers
        ).pid
        if not args.no_floor:
            ports["floor"] = free_port()
            pids["floor"] = floor_proxy(procs, ports["floor"], be)
        if args.floor_buffered:
            ports["floor-buf"] = free_port()
            pids["floor-buf"] = floor_proxy(procs, ports["floor-buf"], be, buffered=True)
        ports["backend"] = be
        for rnd in range(args.rounds):
            for scen in scenarios:
                path, conns, _ = SCENARIOS[scen]
                order = list(ports) if rnd % 2 == 0 else list(reversed(ports))
                for target in order:
                    memo = target.startswith("seaway")
                    before = memo_counts(procs, ports[target], pids[target]) if memo else []
                    r = run_wrk_measured(
                        f"http://{HOST}:{ports[target]}{path}",
                        pids[target],
                        conns,
                        threads=args.threads,
                        duration=args.duration,
                        extra=wrk_extra(scen),
                    )
                    results.setdefault(scen, {}).setdefault(target, []).append(r)
                    if memo:
                        after = memo_counts(procs, ports[target], pids[target])
                        sums = memos.setdefault(scen, {}).setdefault(target, [0, 0, 0, 0])
                        for i, (a, b) in enumerate(zip(after, before, strict=True)):
                            sums[i] += a - b
                    print(
                        f"round {rnd + 1} {scen:11} {target:10} {r.rps:9.0f} req/s "
                        f"p50 {r.p50_ms:6.2f} ms p99 {r.p99_ms:6.2f} ms errors {r.errors} "
                        f"cpu {_num(r.cpu_us)} us/req",
                        flush=True,
                    )
    return results


def table(results: Results, header: str) -> None:
    print()
    print(header)
    print(
        f"{'scenario':12}{'target':11}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
        f"{'cpu us':>8}{'usr':>6}{'sys':>6}{'rps/nginx':>10}{'p99/nginx':>10}"
    )
    for scen, targets in results.items():
        ng = median(targets["nginx"])
        for target, rounds in targets.items():
            m = median(rounds)
            print(
                f"{scen:12}{target:11}{m.rps:>9.0f}{m.p50_ms:>8.2f}{m.p99_ms:>8.2f}"
                f"{m.errors:>7}{_num(m.cpu_us):>8}{_num(m.cpu_user_us):>6}"
                f"{_num(m.cpu_sys_us):>6}{ratio(m.rps, ng.rps):>10}"
                f"{ratio(m.p99_ms, ng.p99_ms):>10}"
            )
    if any("floor" in targets for targets in results.values()):
        print("floor: minimal proxy (bench/minimal_proxy.py), not seaway: the least a strict")
        print("       uvloop + httptools keep-alive proxy does, on this machine, in this run")
    for scen, targets in results.items():
        if "seaway-gw" in targets:
            gw, ing = median(targets["seaway-gw"]), median(targets["seaway"])
            print(
                f"{scen}: HTTPRoute vs Ingress: req/s {ratio(gw.rps, ing.rps)}, "
                f"p99 {ratio(gw.p99_ms, ing.p99_ms)}, cpu us/req "
                f"{_num(gw.cpu_us)} vs {_num(ing.cpu_us)}"
            )


def memo_table(memos: Memos) -> None:
    """The hit rate of every exact-bytes memo that remains (ingress/http1.py: repeated
    request; ingress/upstream.py: repeated response head), per scenario."""
    print()
    print("exact-bytes memos (seaway, the daemon's worker): hit rate")
    print(f"{'scenario':12}{'target':11}{'requests':>10}{'responses':>11}")
    for scen, targets in memos.items():
        for target, (rh, rm, sh, sm) in targets.items():
            req = f"{100 * rh / (rh + rm):.1f}%" if rh + rm else "-"
            resp = f"{100 * sh / (sh + sm):.1f}%" if sh + sm else "-"
            print(f"{scen:12}{target:11}{req:>10}{resp:>11}")


def plot(results: Results, path: str, title: str) -> None:
    """Requests/s and p50/p99 per target and scenario, side by side (needs matplotlib:
    `pip install -e '.[bench]'`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("--plot needs matplotlib: pip install -e '.[bench]'")
    scenarios = list(results)
    targets = list(dict.fromkeys(t for s in scenarios for t in results[s]))
    medians = {(s, t): median(results[s][t]) for s in scenarios for t in results[s]}
    fig, (rps_ax, lat_ax) = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.8 / len(targets)
    for i, target in enumerate(targets):
        xs = [n + (i - (len(targets) - 1) / 2) * width for n in range(len(scenarios))]
        rows = [medians.get((s, target)) for s in scenarios]
        label = "floor: minimal proxy" if target == "floor" else target
        bars = rps_ax.bar(xs, [r.rps if r else 0 for r in rows], width, label=label)
        color = bars.patches[0].get_facecolor()
        lat_ax.bar(xs, [r.p99_ms if r else 0 for r in rows], width, color=color, alpha=0.35)
        lat_ax.bar(xs, [r.p50_ms if r else 0 for r in rows], width, color=color, label=label)
    for ax in (rps_ax, lat_ax):
        ax.set_xticks(range(len(scenarios)), scenarios)
        ax.grid(axis="y", alpha=0.3)
    rps_ax.set_ylabel("requests/s (median)")
    rps_ax.set_title("throughput")
    lat_ax.set_ylabel("ms")
    lat_ax.set_title("latency: p50 (solid), p99 (light)")
    rps_ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}")


def _load(path: str) -> tuple[Results, str]:
    with open(path) as f:
        doc = json.load(f)
    results = {
        s: {t: [WrkResult(**r) for r in rounds] for t, rounds in targets.items()}
        for s, targets in doc["results"].items()
    }
    return results, str(doc["title"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (median shown)")
    p.add_argument("--workers", type=int, default=1, help="seaway and nginx workers")
    p.add_argument("--pipelining", type=int, default=1, help="add seaway-pN (N > 1)")
    p.add_argument(
        "--gateway", action="store_true", help="add seaway-gw: the route from an HTTPRoute"
    )
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--baseline", default="", help="another seaway checkout: adds a seaway-base row")
    p.add_argument(
        "--no-floor", action="store_true", help="leave out the floor (bench/minimal_proxy.py)"
    )
    p.add_argument(
        "--floor-buffered",
        action="store_true",
        help="add floor-buf: the floor reading responses into a reused buffer",
    )
    p.add_argument("--only", default="", help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    p.add_argument("--json", default="", help="write every round's figures here")
    p.add_argument("--from-json", default="", help="read figures from here instead of running")
    p.add_argument("--plot", default="", help="draw requests/s and p50/p99 into this PNG")
    args = p.parse_args()
    if args.from_json:
        results, title = _load(args.from_json)
    else:
        wanted = args.only.split(",") if args.only else list(SCENARIOS)
        unknown = [s for s in wanted if s not in SCENARIOS]
        if unknown:
            p.error(f"unknown scenario(s): {', '.join(unknown)}")
        memos: Memos = {}
        results = run(args, wanted, memos)
        title = (
            f"median of {args.rounds} rounds, {args.duration:g}s each, "
            f"workers={args.workers} (seaway, nginx; haproxy threads)"
        )
        if args.json:
            with open(args.json, "w") as f:
                doc = {
                    "title": title,
                    "results": {
                        s: {t: [{**asdict(r), "raw": ""} for r in rs] for t, rs in ts.items()}
                        for s, ts in results.items()
                    },
                    "memos": memos,
                }
                json.dump(doc, f, indent=1)
    table(results, title)
    if not args.from_json:
        memo_table(memos)
    if args.plot:
        plot(results, args.plot, f"bench/http.py: {title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
