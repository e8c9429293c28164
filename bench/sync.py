"""Kernel sync benchmark (root): nftables mode and iptables mode (both flavors) side by side,
full sync end to end and live one-endpoint-change latency, with ratios.

Everything runs in private network namespaces this script creates and removes
(tests/proxy/iptables/netns.py: a node that routes, two backend pods, a client).

1. Full sync: `seaway apply -c big.yaml --proxy-mode MODE` of N services x M endpoints
   from one YAML file, timed end to end (process start to exit), on an empty table and
   again on a table already holding the same rules; plus seaway's own parse/build/apply.
2. Live change: `seaway run -c DIR --proxy-mode MODE` with N services in DIR (N-1 in
   one file, the probe service in its own file); the probe's EndpointSlice is rewritten to
   point at the other pod, and a client inside the node namespace connects to the probe's
   cluster IP in a loop: latency = first answer from the new pod - time the file was written.

Modes: nftables, iptables-nft, iptables-legacy (iptables mode with that flavor).

    sudo python3 bench/sync.py                    # 1,000 and 10,000 x 2 and 10, every mode
    sudo python3 bench/sync.py --services 10000 --endpoints 2 --modes nftables,iptables-nft
    sudo python3 bench/sync.py --plot bench/sync.png   # 1,000 / 10,000 / 30,000 x 2, drawn
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.proxy.iptables.netns import CLUSTER_CIDR, REPO, TCP_PORT, Cluster

PROBE_IP = "10.95.0.1"
POLLER = r"""
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
last = None
while True:
    try:
        with socket.create_connection((host, port), timeout=0.05) as c:
            name = c.recv(100).decode().split()[0]
    except OSError as e:
        name = type(e).__name__
    if name != last:
        print(f"{time.monotonic():.6f} {name}", flush=True)
        last = name
    time.sleep(0.002)
"""


def service_yaml(i: int, ip: str, endpoints: list[str]) -> str:
    eps = "".join(f"- addresses: [{e}]\n  nodeName: node-a\n" for e in endpoints)
    return (
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: svc{i}, namespace: bench}}\n"
        f"spec:\n  clusterIP: {ip}\n  ports: [{{name: http, port: 80, targetPort: {TCP_PORT}, "
        f"protocol: TCP}}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        f"metadata: {{name: svc{i}-a, namespace: bench, labels: "
        f"{{kubernetes.io/service-name: svc{i}}}}}\naddressType: IPv4\n"
        f"ports: [{{name: http, port: {TCP_PORT}, protocol: TCP}}]\nendpoints:\n{eps}"
    )


def big_yaml(n: int, m: int, first: int = 0) -> str:
    docs = []
    for i in range(first, n):
        ip = f"10.{96 + i // 65536}.{(i // 256) % 256}.{i % 256}"
        eps = [f"10.{128 + i // 256 % 64}.{i % 256}.{j + 1}" for j in range(m)]
        docs.append(service_yaml(i, ip, eps))
    return "---\n".join(docs)


MODES: dict[str, tuple[str, ...]] = {
    "nftables": ("--proxy-mode", "nftables"),
    "iptables-nft": ("--proxy-mode", "iptables", "--iptables-flavor", "nft"),
    "iptables-legacy": ("--proxy-mode", "iptables", "--iptables-flavor", "legacy"),
}


def cleanup(cluster: Cluster, mode: str) -> None:
    cluster.seaway("cleanup", "--proxy-mode", MODES[mode][1], check=False)


def apply(cluster: Cluster, path: str, mode: str) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of seaway and the tools it ran, seaway's line). CPU time
    holds still when other work on a shared machine slows the wall clock down."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = cluster.seaway("apply", "-c", path, *MODES[mode], "--cluster-cidr", CLUSTER_CIDR)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, out.stdout.strip()


def seaway_times(line: str) -> str:
    m = re.search(r"parse ([\d.]+) s, build ([\d.]+) s, apply ([\d.]+) s", line)
    return f"parse {m.group(1)} build {m.group(2)} apply {m.group(3)}" if m else line


def bench_full(
    cluster: Cluster, tmp: Path, n: int, m: int, modes: list[str], runs: int
) -> dict[str, dict[str, float]]:
    """Per mode: median seconds on an empty table and re-applying the same, wall clock and
    CPU. The modes take turns within each run, so a load that comes and goes on a shared
    machine lands on all of them alike."""
    path = tmp / f"big-{n}-{m}.yaml"
    if not path.exists():
        path.write_text(big_yaml(n, m))
    cases = ("empty table", "re-apply")
    wall: dict[tuple[str, str], list[float]] = {(md, c): [] for md in modes for c in cases}
    cpu: dict[tuple[str, str], list[float]] = {(md, c): [] for md in modes for c in cases}
    last: dict[tuple[str, str], str] = {}
    for _ in range(runs):
        for mode in modes:
            cleanup(cluster, mode)
            # The kernel frees a deleted table's objects after the command returns (RCU):
            # let that finish before the clock starts.
            time.sleep(1)
            for case in cases:
                took, used, last[(mode, case)] = apply(cluster, str(path), mode)
                wall[(mode, case)].append(took)
                cpu[(mode, case)].append(used)
            cleanup(cluster, mode)
    out: dict[str, dict[str, float]] = {}
    for mode in modes:
        figures = out[mode] = {}
        for case in cases:
            w, c = wall[(mode, case)], cpu[(mode, case)]
            med = statistics.median(w)
            print(
                f"  full sync {mode:15} {n:>6} x {m:<2}  {case:11}: median {med:.2f} s "
                f"(min {min(w):.2f}), CPU {statistics.median(c):.2f} s  "
                f"[{seaway_times(last[(mode, case)])}]",
                flush=True,
            )
            figures[case] = statistics.median(w)
            figures[f"{case} CPU"] = statistics.median(c)
    return out


# Milestones of a daemon start, as its log (asctime: wall clock, milliseconds) shows them;
# after the last one the first sync runs, and traffic flows once its rules are committed.
START_PHASES = (
    ("interpreter + imports", "open files limit"),
    ("daemon set-up", "seaway starting"),
    ("files parsed", "source finished its initial load"),
)


def log_time(line: str) -> float | None:
    """The wall-clock time of a daemon log line (None if it has none)."""
    m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ", line)
    if m is None:
        return None
    return time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000


def start_phases(log_text: str, started: float, traffic: float) -> str:
    """Where a daemon start's time went: each milestone's share, then traffic."""
    parts, last = [], started
    for label, marker in START_PHASES:
        line = next((x for x in log_text.splitlines() if marker in x), None)
        at = log_time(line) if line else None
        if at is None:
            continue
        parts.append(f"{label} {at - last:.2f}")
        last = at
    parts.append(f"first sync to traffic {traffic - last:.2f}")
    return ", ".join(parts)


def bench_live(
    cluster: Cluster, tmp: Path, n: int, m: int, mode: str, changes: int, logs: Path
) -> tuple[float, float]:
    """(Seconds from daemon start to traffic through the probe, median seconds from an
    EndpointSlice file written to traffic reaching the new pod)."""
    conf = tmp / f"live-{n}-{m}-{mode}"
    conf.mkdir()
    (conf / "big.yaml").write_text(big_yaml(n, m, first=1))
    probe = conf / "probe.yaml"

    def write_probe(pod: int) -> float:
        tmpfile = conf / ".probe.tmp"
        tmpfile.write_text(service_yaml(0, PROBE_IP, [cluster.pod_ip(pod)]))
        t = time.monotonic()
        os.replace(tmpfile, probe)
        return t

    write_probe(0)
    log = open(logs / f"daemon-{n}-{m}-{mode}.log", "w+")  # noqa: SIM115 (closed in finally)
    started_wall, started = time.time(), time.monotonic()
    daemon = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            cluster.node,
            sys.executable,
            "-m",
            "proxy.app.cli",
            "run",
            "-c",
            str(conf),
            *MODES[mode],
            "--cluster-cidr",
            CLUSTER_CIDR,
            "--hostname-override",
            "node-a",
            "--metrics-bind-address",
            "127.0.0.1:0",
            "--healthz-bind-address",
            "127.0.0.1:0",
            "--min-sync-period",
            "0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    poller = subprocess.Popen(
        ["ip", "netns", "exec", cluster.node, sys.executable, "-c", POLLER, PROBE_IP, "80"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert poller.stdout is not None
        while True:
            stamp, name = poller.stdout.readline().split()
            if name == "pod0":
                break
            if daemon.poll() is not None:
                raise RuntimeError(f"daemon exited: see {log.name}")
        start_s = float(stamp) - started
        # Traffic flows once the nat table is committed; the first sync still has the
        # filter table and the restore's exit to go. A change written before it ends
        # would measure the rest of the first sync too.
        deadline = time.monotonic() + 60
        while "synced generation 1:" not in Path(log.name).read_text():
            if time.monotonic() > deadline:
                raise RuntimeError(f"first sync did not finish: see {log.name}")
            time.sleep(0.05)
        phases = start_phases(Path(log.name).read_text(), started_wall, started_wall + start_s)
        print(
            f"  live       {mode:15} {n:>6} x {m:<2}  daemon start to traffic: {start_s:.2f} s "
            f"[{phases}]",
            flush=True,
        )
        latencies = []
        for k in range(changes):
            target = (k + 1) % 2
            written = write_probe(target)
            while True:
                stamp, name = poller.stdout.readline().split()
                if name == f"pod{target}":
                    latencies.append(float(stamp) - written)
                    break
            time.sleep(0.3)
        log.flush()
        log.seek(0)
        partial = re.findall(r"partial sync: .*?build (\d+) ms, apply (\d+) ms", log.read())
        syncs = ", ".join(f"{b}+{a}" for b, a in partial[-changes:])
        print(
            f"  live       {mode:15} {n:>6} x {m:<2}  endpoint change -> traffic: median "
            f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
            f"over {changes} changes (partial syncs build+apply ms: {syncs})",
            flush=True,
        )
        return start_s, statistics.median(latencies)
    finally:
        poller.kill()
        poller.wait()
        daemon.terminate()
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        cleanup(cluster, mode)


def kube_proxy_text(n: int, m: int, comments: bool = True, hint: bool = False) -> str:
    """A kube-proxy-shaped nat restore (SERVICES, SVC, SEP with comments and statistic)."""
    import hashlib

    def h(prefix: str, key: str) -> str:
        return prefix + hashlib.sha256(key.encode()).hexdigest()[:16].upper()

    chains, rules = [":SEAWAY-SERVICES - [0:0]", ":SEAWAY-MARK-MASQ - [0:0]"], []
    for i in range(n):
        svc = h("SEAWAY-SVC-", str(i))
        chains.append(f":{svc} - [0:0]")
        cip = f"10.{96 + i // 65536}.{(i // 256) % 256}.{i % 256}"
        c = f'-m comment --comment "ns/svc{i}:http cluster IP" ' if comments else ""
        rules.append(f"-A SEAWAY-SERVICES {c}-d {cip}/32 -p tcp -m tcp --dport 80 -j {svc}")
        for j in range(m):
            sep = h("SEAWAY-SEP-", f"{i}-{j}")
            chains.append(f":{sep} - [0:0]")
            ip = f"10.{128 + i // 256 % 64}.{i % 256}.{j + 1}"
            st = (
                f"-m statistic --mode random --probability {1 / (m - j):.10f} " if j < m - 1 else ""
            )
            rules.append(f"-A {svc} {c}{st}-j {sep}")
            rules.append(f"-A {sep} {c}-s {ip}/32 -j SEAWAY-MARK-MASQ")
            rules.append(f"-A {sep} {c}-p tcp -m tcp -j DNAT --to-destination {ip}:8080")
    head = ["*nat", "-Z"] if hint else ["*nat"]
    return "\n".join([*head, *chains, *rules, "COMMIT", ""])


def bench_restore_shapes(cluster: Cluster, sizes: list[int], max_quadratic: int) -> None:
    """Why iptables-nft-restore --noflush is slow, measured on kube-proxy-shaped input."""
    import resource

    def timed(argv: list[str], text: str) -> str:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        cluster.exec(cluster.node, *argv, input=text.encode())
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        user, sys_ = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
        for flavor in ("legacy", "nft"):
            for table in ("nat", "filter"):
                cluster.exec(cluster.node, f"iptables-{flavor}", "-t", table, "-F", check=False)
                cluster.exec(cluster.node, f"iptables-{flavor}", "-t", table, "-X", check=False)
        return f"{wall:6.2f} s (user {user:.2f}, sys {sys_:.2f})"

    for n in sizes:
        plain = kube_proxy_text(n, 2)
        print(f"  restore shapes, {n} services x 2 endpoints ({plain.count(chr(10))} lines):")
        cases = [
            ("legacy --noflush", ["iptables-legacy-restore", "--noflush"], plain),
            ("nft flush mode (no --noflush)", ["iptables-nft-restore"], plain),
            (
                "nft --noflush + '-Z' first (seaway)",
                ["iptables-nft-restore", "--noflush"],
                kube_proxy_text(n, 2, hint=True),
            ),
            (
                "nft --noflush + '-Z', no comments",
                ["iptables-nft-restore", "--noflush"],
                kube_proxy_text(n, 2, comments=False, hint=True),
            ),
        ]
        if n <= max_quadratic:
            cases.insert(
                1, ("nft --noflush (kube-proxy)", ["iptables-nft-restore", "--noflush"], plain)
            )
        for label, argv, text in cases:
            print(f"    {label:38} {timed(argv, text)}", flush=True)


def ratios(results: dict[str, dict[str, float]], what: str) -> None:
    """Per mode, a daemon start (process start to traffic) over `seaway apply` of the
    same config on an empty table; then nftables' figures over each iptables flavor's."""
    for mode, figures in results.items():
        if figures.get("empty table") and "daemon start" in figures:
            print(
                f"  ratio daemon start / apply, {mode} ({what}): "
                f"{figures['daemon start'] / figures['empty table']:.2f}x "
                f"({figures['daemon start']:.2f} s / {figures['empty table']:.2f} s)",
                flush=True,
            )
    base = results.get("nftables")
    if base is None:
        return
    for mode, figures in results.items():
        if mode == "nftables":
            continue
        parts = [
            f"{key} {base[key] / figures[key]:.2f}x"
            for key in figures
            if key in base and figures[key] > 0
        ]
        print(f"  ratio nftables / {mode} ({what}): {', '.join(parts)}", flush=True)


PLOT_SERVICES = (1000, 10000, 30000)


def plot(path: str, data: dict[str, dict[int, tuple[float, float, float]]], m: int) -> None:
    """Full-sync time (wall clock, and dashed the CPU time, which a busy machine does not
    stretch) and live-change latency against service count, one line per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (full_ax, live_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for mode, points in data.items():
        ns = sorted(points)
        (line,) = full_ax.plot(ns, [points[n][0] for n in ns], marker="o", label=mode)
        full_ax.plot(
            ns, [points[n][2] for n in ns], linestyle="--", color=line.get_color(), alpha=0.6
        )
        live_ax.plot(ns, [points[n][1] * 1000 for n in ns], marker="o", label=mode)
    full_ax.set(
        title=f"seaway apply, N services x {m} endpoints",
        xlabel="services",
        ylabel="seconds, end to end (dashed: CPU)",
    )
    live_ax.set(
        title="one endpoint change, file to traffic",
        xlabel="services",
        ylabel="milliseconds (median)",
    )
    for ax in (full_ax, live_ax):
        ax.set_xscale("log")
        ax.set_xticks(list(PLOT_SERVICES), [f"{n:,}" for n in PLOT_SERVICES])
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"  plot written to {path}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--services", default="1000,10000", help="comma-separated N values")
    ap.add_argument("--endpoints", default="2,10", help="comma-separated M values")
    ap.add_argument(
        "--modes",
        default=",".join(MODES),
        help=f"comma-separated, from {', '.join(MODES)} (default: all, side by side)",
    )
    ap.add_argument("--runs", type=int, default=3, help="full-sync repetitions (median)")
    ap.add_argument("--changes", type=int, default=5, help="live endpoint changes per case")
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--skip-live", action="store_true")
    ap.add_argument(
        "--plot",
        metavar="FILE.png",
        help=f"run {', '.join(f'{n:,}' for n in PLOT_SERVICES)} services x 2 endpoints (or "
        "--services / the first --endpoints) in every mode and draw full-sync time and "
        "live-change latency against service count (needs matplotlib: pip install "
        "'.[bench]')",
    )
    ap.add_argument(
        "--restore-shapes",
        metavar="N[,N]",
        help="only compare raw restores of kube-proxy-shaped rules (legacy, nft, nft with "
        "seaway's fix) at these sizes",
    )
    ap.add_argument(
        "--max-quadratic",
        type=int,
        default=4000,
        help="largest N for the plain nft --noflush case (quadratic; 10,000 takes ~60 s)",
    )
    ap.add_argument("--log-dir", help="keep the daemon logs here (default: a temporary dir)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/sync.py needs root (network namespaces, iptables, nft)", file=sys.stderr)
        return 1
    modes = [x for x in args.modes.split(",") if x]
    unknown = [x for x in modes if x not in MODES]
    if unknown:
        print(f"bench/sync.py: unknown mode(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    if args.plot:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            print("bench/sync.py --plot needs matplotlib: pip install '.[bench]'", file=sys.stderr)
            return 1
    services = [int(x) for x in args.services.split(",")]
    endpoints = [int(x) for x in args.endpoints.split(",")]
    if args.plot:
        if args.services == ap.get_default("services"):
            services = list(PLOT_SERVICES)
        endpoints = endpoints[:1] if args.endpoints != ap.get_default("endpoints") else [2]
    iptables = subprocess.run(["iptables", "--version"], capture_output=True, text=True)
    nft = subprocess.run(["nft", "--version"], capture_output=True, text=True)
    print(
        f"bench/sync.py on {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} "
        f"({iptables.stdout.strip()}; {nft.stdout.strip()}; kernel {os.uname().release})"
    )
    # Every seaway process below starts from bytecode, as an installed seaway does (with
    # PYTHONDONTWRITEBYTECODE set, each would otherwise compile ~140 modules first).
    for package in ("discovery", "proxy", "ingress"):
        compileall.compile_dir(str(REPO / package), quiet=1)
    cluster = Cluster(pods=2, tag="b")
    drawn: dict[str, dict[int, tuple[float, float, float]]] = {mode: {} for mode in modes}
    try:
        cluster.open()
        if args.restore_shapes:
            sizes = [int(x) for x in args.restore_shapes.split(",")]
            bench_restore_shapes(cluster, sizes, args.max_quadratic)
            return 0
        with tempfile.TemporaryDirectory(prefix="seaway-bench-") as d:
            tmp = Path(d)
            logs = Path(args.log_dir) if args.log_dir else tmp
            logs.mkdir(parents=True, exist_ok=True)
            for n in services:
                for m in endpoints:
                    results: dict[str, dict[str, float]] = {mode: {} for mode in modes}
                    if not args.skip_full:
                        full = bench_full(cluster, tmp, n, m, modes, args.runs)
                        for mode, figures in full.items():
                            results[mode].update(figures)
                    for mode in modes:
                        figures = results[mode]
                        if not args.skip_live:
                            figures["daemon start"], figures["live change"] = bench_live(
                                cluster, tmp, n, m, mode, args.changes, logs
                            )
                        drawn[mode][n] = (
                            figures.get("empty table", 0.0),
                            figures.get("live change", 0.0),
                            figures.get("empty table CPU", 0.0),
                        )
                    ratios(results, f"{n} x {m}")
        if args.plot:
            plot(args.plot, drawn, endpoints[0])
    finally:
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
