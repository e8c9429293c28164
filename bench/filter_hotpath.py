"""The Python cost of route filters per exchange, without sockets: bench/hotpath.py's
harness on routes with ingress-nginx annotations, against the same route without.

    python3 bench/filter_hotpath.py [--exchanges 40000] [--rounds 5]
        [--only rewrite+cors+affinity,...] [--profile VARIANT]
        [--instructions [--keep DIR]]

The traffic is bench/varied.lua's clients mode: the varied requests of bench/hotpath.py
from browsers of a web app on another origin that come back (every request carries an
Origin, 5% are CORS preflights, 10% come from new clients and the other 90% carry a
sticky cookie the route set, besides their own cookies). Each variant is the Ingress
bench/filters.py runs for it (bench/seaway_l7.py's snapshot), compiled and given its
plans as a worker does. Prints CPU microseconds per exchange (process time), the median
of the rounds, and the ratio to "plain" (no annotation). `--profile VARIANT` prints
cProfile's top functions for that variant instead (compiled modules are one entry each:
for inside them, use --instructions). `--instructions` counts instructions per
exchange instead (valgrind's callgrind, counting only inside the measured loop, as
bench/hotpath.py --instructions does), which the other processes of a shared machine do
not change; `--keep DIR` keeps each variant's callgrind file there for callgrind_annotate
(--inclusive=yes shows what each function costs with what it calls).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from functools import reduce
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.filters import VARIANTS, chosen  # noqa: E402
from bench.hotpath import CONNECTIONS, Loop, varied, wire  # noqa: E402
from bench.seaway_l7 import bench_snapshot  # noqa: E402
from ingress.context import ProxyContext  # noqa: E402
from ingress.filters.runtime import attach_plans  # noqa: E402
from ingress.route_match import CompiledTable, compile_table  # noqa: E402
from ingress.settings import HttpSettings  # noqa: E402
from ingress.translate_ingress import translate_ingresses  # noqa: E402

BACKEND = ("127.0.0.1", 9000)
NEW_CLIENTS = 10  # percent (as bench/varied.lua's clients mode)
PREFLIGHTS = 5
ORIGIN = b"Origin: https://app.example.com\r\n"


def table_of(variant: str) -> CompiledTable:
    annotations, extra = VARIANTS[variant]
    path = extra[extra.index("--path") + 1] if "--path" in extra else "/"
    named = dict(a.split("=", 1) for a in annotations)
    snap = bench_snapshot([BACKEND], annotations=named, path=path)
    return compile_table(translate_ingresses(snap).table)


def sticky_cookie(table: CompiledTable) -> bytes | None:
    """A sticky cookie as the route sets it (a random key, the backend's tag), if any."""
    for result in table:
        plan = result.plan
        sticky = getattr(plan, "sticky", None)
        if sticky is not None:
            return b"; %s=%016x|%s" % (sticky.name, random.getrandbits(64), sticky.tag)
    return None


def clients(
    pairs: list[tuple[bytes, bytes]], cookie: bytes | None, seed: int = 2
) -> list[tuple[bytes, bytes | None]]:
    """`pairs` made into the clients mode's requests (a preflight has no response: the
    proxy answers it, or the backend's answer is the pair's)."""
    rnd = random.Random(seed)
    out: list[tuple[bytes, bytes | None]] = []
    for req, resp in pairs:
        head = req[:-2] + ORIGIN + b"\r\n"
        if cookie is not None and rnd.randrange(100) >= NEW_CLIENTS:
            at = head.index(b"\r\n", head.index(b"\r\nCookie: ") + 2)
            head = head[:at] + cookie + head[at:]
        if rnd.randrange(100) < PREFLIGHTS:
            head = b"OPTIONS" + head[3:-2]
            head += b"Access-Control-Request-Method: POST\r\n"
            head += b"Access-Control-Request-Headers: content-type\r\n\r\n"
        out.append((head, resp))
    return out


def run(variant: str, pairs: list[tuple[bytes, bytes]], exchanges: int) -> float:
    """CPU seconds for `exchanges` requests through seaway's hot path on `variant`."""
    loop = Loop()
    table = table_of(variant)
    ctx = ProxyContext(loop, HttpSettings(), table)  # type: ignore[arg-type]
    ctx.settings = attach_plans(table, ctx)
    traffic = clients(pairs, sticky_cookie(table))
    conns = wire(ctx, loop, BACKEND)
    n = len(traffic)
    start = time.process_time()

    def exchange(_: None, i: int) -> None:
        req, resp = traffic[i % n]
        client = conns[i % CONNECTIONS]
        client.data_received(req)
        loop.iteration_end()
        ex = client.exchange
        if ex is None:  # answered by the proxy (a preflight)
            return
        assert ex.conn is not None and resp is not None, "not forwarded"
        ex.conn.data_received(resp)
        loop.iteration_end()

    reduce(exchange, range(exchanges), None)  # (see --instructions)
    spent = time.process_time() - start
    assert all(c.exchange is None and not c.closing for c in conns)
    return spent


def instructions(wanted: list[str], exchanges: int, keep: str) -> int:
    """Instructions per exchange of each variant, each run in callgrind with collection on
    only inside functools.reduce (the measured loop; setup is not counted)."""
    exchanges = min(exchanges, 5000)  # (callgrind runs ~50x slower)
    print(f"{'variant':24}{'instructions':>13}{'vs plain':>10}")
    counts: dict[str, float] = {}
    for variant in wanted:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(keep or tmp) / f"{variant}.callgrind"
            argv = [
                "valgrind", "--tool=callgrind", "--collect-atstart=no",
                "--toggle-collect=functools_reduce", f"--callgrind-out-file={out}",
                sys.executable, __file__, "--exchanges", str(exchanges), "--counted", variant,
            ]  # fmt: skip
            subprocess.run(argv, check=True, capture_output=True)
            text = out.read_text()
        summary = next(ln for ln in text.splitlines() if ln.startswith("summary:"))
        counts[variant] = int(summary.split()[1]) / exchanges
        print(f"{variant:24}{counts[variant]:>13,.0f}{counts[variant] / counts['plain']:>9.2f}x")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--exchanges", type=int, default=40000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--only", default="", help=f"comma-separated, of: {', '.join(VARIANTS)}")
    p.add_argument("--profile", default="", help="cProfile this variant instead")
    p.add_argument(
        "--instructions", action="store_true", help="instructions per exchange (callgrind)"
    )
    p.add_argument("--keep", default="", help="with --instructions: keep callgrind files here")
    p.add_argument("--counted", default="", help=argparse.SUPPRESS)  # (inside valgrind)
    args = p.parse_args()
    pairs = varied(4096)
    if args.counted:
        run(args.counted, pairs, args.exchanges)
        return 0
    if args.profile:
        if args.profile not in VARIANTS:
            p.error(f"unknown variant {args.profile}")
        prof = cProfile.Profile()
        prof.enable()
        run(args.profile, pairs, args.exchanges)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        return 0
    wanted = chosen(p, args.only)
    if args.instructions:
        return instructions(wanted, args.exchanges, args.keep)
    spent: dict[str, list[float]] = {v: [] for v in wanted}
    for _ in range(args.rounds):  # variants alternate within every round
        for v in wanted:
            spent[v].append(run(v, pairs, args.exchanges))
    plain = statistics.median(spent["plain"])
    print(f"{'variant':24}{'us/exchange':>12}{'vs plain':>10}")
    for v in wanted:
        med = statistics.median(spent[v])
        print(f"{v:24}{med / args.exchanges * 1e6:>12.2f}{med / plain:>9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
