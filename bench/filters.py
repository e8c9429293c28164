"""What route filters cost: seaway with one Ingress, plain and with annotations, side by
side on the varied traffic of bench/http.py, in front of one nginx backend.

    python3 bench/filters.py [--duration 5] [--rounds 3] [--only plain,cors,...]
        [--baseline DIR] [--traffic clients|varied] [--collect-cookies]

Traffic (`--traffic`): "clients" (the default) is bench/http.py's varied requests from
browsers of a web app on another origin that come back (bench/varied.lua's clients mode):
every request carries an Origin, 5% are CORS preflights, 10% come from new clients and
the other 90% send back a sticky cookie the route set (on a route without affinity,
none). "varied" is bench/http.py's varied scenario as it is: no Origin, and every request
a new client to a route with cookie affinity (an endpoint to pin, a cookie to set).
The returning clients' sticky cookies are fetched from each variant before the rounds
(`sticky_jar`: 64 new clients, the cookies the route set them) and handed to wrk, which
then parses no answer. `--collect-cookies` makes wrk collect them from the answers
instead, as it did before: its Lua response callback then builds a table of every
header of every answer, about 1.4 us of wrk's CPU per request more on a route that adds
the CORS fields than on a plain one, on the cores the proxy uses (the "wrk us" column
shows it), which no real client puts on a proxy's machine.

Every variant is its own seaway process (bench/seaway_l7.py) serving the same Ingress
with other annotations; wrk drives each in turn, the order alternating every round.
The table shows the median per variant and its ratios to "plain" (requests/s, and CPU
time per request, which on a shared machine is steadier). `--baseline DIR` adds
"plain-base": DIR's seaway (another checkout, e.g. the commit before filters ran at
request time) serving the plain Ingress, for a before/after of routes without filters.

Variants: plain (no annotation), nginx-mode (ingress-nginx's controller name: its
ConfigMap defaults become the listener's filters, HSTS on HTTPS only, so plain-HTTP
requests take the plain path), and one or more annotations: rewrite (rewrite-target with
a regex path), cors, affinity (cookie), rewrite+cors+affinity (issue 11's case), hash-by,
limit-rps (a limit never reached: the bookkeeping only), allowlist, timeouts.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.common import (  # noqa: E402
    HOST,
    Processes,
    WrkResult,
    free_port,
    ratio,
    require,
    run_wrk_measured,
    wait_port,
)
from bench.http import LUA, _num, backend_nginx, median  # noqa: E402

REWRITE = ["use-regex=true", "rewrite-target=/$1"]
VARIANTS: dict[str, tuple[list[str], list[str]]] = {
    # name -> (annotations, other seaway_l7.py arguments)
    "plain": ([], []),
    "nginx-mode": ([], ["--ingress-nginx"]),
    "rewrite": (REWRITE, ["--path", "/(.*)"]),
    "cors": (["enable-cors=true"], []),
    "affinity": (["affinity=cookie"], []),
    "rewrite+cors+affinity": (
        [*REWRITE, "enable-cors=true", "affinity=cookie"],
        ["--path", "/(.*)"],
    ),
    "hash-by": (["upstream-hash-by=$request_uri"], []),
    "limit-rps": (["limit-rps=1000000"], []),
    "allowlist": (["whitelist-source-range=127.0.0.0/8"], []),
    "timeouts": (["proxy-read-timeout=30"], []),
}

# --traffic -> bench/varied.lua's arguments
TRAFFIC: dict[str, list[str]] = {"clients": ["/", "clients"], "varied": ["/"]}
STICKY = "INGRESSCOOKIE="  # (bench/varied.lua's: ingress-nginx's default cookie name)


def chosen(p: argparse.ArgumentParser, only: str) -> list[str]:
    """The variants `--only` names (all by default), "plain" first whatever it says."""
    wanted = only.split(",") if only else list(VARIANTS)
    unknown = [v for v in wanted if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s): {', '.join(unknown)}")
    if "plain" not in wanted:
        wanted.insert(0, "plain")
    return wanted


def seaway(procs: Processes, script: Path, port: int, backend: int, extra: list[str]) -> int:
    argv = [sys.executable, str(script), "--listen", f"{HOST}:{port}"]
    argv += ["--backend", f"{HOST}:{backend}", *extra]
    proc = procs.start(argv, log=f"seaway-{port}.log")
    wait_port(HOST, port, proc=proc)
    return proc.pid




def sticky_jar(port: int, clients: int = 64) -> list[str]:
    """The sticky cookies ("INGRESSCOOKIE=KEY|TAG") the route on `port` sets for `clients`
    new clients of the clients traffic (an Origin, no cookie); none on a route without
    cookie affinity."""
    jar = []
    for i in range(clients):
        with socket.create_connection((HOST, port), timeout=10) as sock:
            sock.sendall(
                f"GET /jar/{i} HTTP/1.1\r\nHost: {HOST}\r\nOrigin: https://app.example.com\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            answer = b""
            while b"\r\n\r\n" not in answer:
                got = sock.recv(65536)
                if not got:
                    break
                answer += got
        for line in answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            value = value.strip()
            if name.lower() == "set-cookie" and value.startswith(STICKY):
                jar.append(value.split(";", 1)[0])
    return jar


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (median shown)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--only", default="", help=f"comma-separated, of: {', '.join(VARIANTS)}")
    p.add_argument("--baseline", default="", help="another checkout: adds plain-base")
    p.add_argument(
        "--traffic",
        choices=TRAFFIC,
        default="clients",
        help="clients: returning browsers with an Origin and the sticky cookie (default); "
        "varied: bench/http.py's varied scenario, every request a new client",
    )
    p.add_argument(
        "--collect-cookies",
        action="store_true",
        help="clients traffic: wrk collects the sticky cookies from the answers (parsing "
        "every answer's header fields in Lua) instead of being given them",
    )
    args = p.parse_args()
    wanted = chosen(p, args.only)
    require("nginx", "wrk")
    here = Path(__file__).resolve().parent / "seaway_l7.py"
    results: dict[str, list[WrkResult]] = {}
    with Processes() as procs:
        be = free_port()
        be_pid = backend_nginx(procs, be)
        ports: dict[str, int] = {}
        pids: dict[str, int] = {}
        if args.baseline:
            base = Path(args.baseline).resolve() / "bench" / "seaway_l7.py"
            ports["plain-base"] = free_port()
            pids["plain-base"] = seaway(procs, base, ports["plain-base"], be, [])
        for name in wanted:
            annotations, extra = VARIANTS[name]
            ports[name] = free_port()
            argv = [*extra, *(x for a in annotations for x in ("--annotation", a))]
            pids[name] = seaway(procs, here, ports[name], be, argv)
        lua_args = {name: TRAFFIC[args.traffic] for name in ports}
        if args.traffic == "clients" and not args.collect_cookies:
            for name, port in ports.items():
                cookies = sticky_jar(port)
                jar = Path(procs.path(f"jar-{port}.txt"))
                jar.write_text("".join(c + "\n" for c in cookies))
                lua_args[name] = [*TRAFFIC["clients"], str(jar)]
                print(f"{name}: {len(cookies)} sticky cookies for the returning clients")
        for rnd in range(args.rounds):
            order = list(ports) if rnd % 2 == 0 else list(reversed(ports))
            for name in order:
                r = run_wrk_measured(
                    f"http://{HOST}:{ports[name]}/",
                    pids[name],
                    args.connections,
                    threads=args.threads,
                    duration=args.duration,
                    extra=["-s", LUA, "--", *lua_args[name]],
                    peer_pid=be_pid,
                )
                results.setdefault(name, []).append(r)
                cpu = f"{r.cpu_us:.1f}" if r.cpu_us is not None else "-"
                print(
                    f"round {rnd + 1} {name:22} {r.rps:9.0f} req/s p99 {r.p99_ms:6.2f} ms "
                    f"errors {r.errors} cpu {cpu} us/req",
                    flush=True,
                )
    plain = median(results["plain"])
    print()
    print(f"median of {args.rounds} rounds, {args.duration:g}s each, {args.traffic} traffic")
    print(
        f"{'variant':24}{'req/s':>9}{'p99 ms':>8}{'errors':>7}{'cpu us':>8}{'usr':>6}{'sys':>6}"
        f"{'rps/plain':>10}{'cpu/plain':>10}{'wrk us':>8}{'backend us':>11}"
    )
    for name, rounds in results.items():
        m = median(rounds)
        cpu_ratio = ratio(m.cpu_us, plain.cpu_us) if m.cpu_us and plain.cpu_us else "-"
        print(
            f"{name:24}{m.rps:>9.0f}{m.p99_ms:>8.2f}{m.errors:>7}{_num(m.cpu_us):>8}"
            f"{_num(m.cpu_user_us):>6}{_num(m.cpu_sys_us):>6}"
            f"{ratio(m.rps, plain.rps):>10}{cpu_ratio:>10}"
            f"{_num(m.client_cpu_us):>8}{_num(m.peer_cpu_us):>11}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
