"""First-packet cost (root): new TCP connections per second through one cluster IP with
few and with many other services loaded, nftables mode and iptables mode side by side.

Only the first packet of a connection walks the NAT rules (conntrack handles the rest),
so a connection-per-request load measures that walk: wrk with `Connection: close` in one
pod, nginx in another, the probe service's cluster IP in between. iptables mode matches
the destination against one rule per service in turn; nftables mode looks it up in a
verdict map, so its rate should not fall as services are added. The probe service sorts
last (namespace "zz"): the worst case of iptables' walk, as for any service that sorts
late. Everything runs in network namespaces this script creates and removes.

    sudo python3 bench/first_packet.py                         # 100 and 10,000 services
    sudo python3 bench/first_packet.py --services 100,1000,10000 --seconds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import parse_wrk
from bench.sync import MODES, big_yaml, cleanup
from tests.proxy.iptables.netns import CLUSTER_CIDR, Cluster

PROBE_IP = "10.95.0.1"
NGINX_PORT = 8081


def probe_yaml(pod_ip: str) -> str:
    return (
        "apiVersion: v1\nkind: Service\nmetadata: {name: zz-probe, namespace: zz}\n"
        f"spec:\n  clusterIP: {PROBE_IP}\n  ports: [{{name: http, port: 80, targetPort: "
        f"{NGINX_PORT}, protocol: TCP}}]\n---\napiVersion: discovery.k8s.io/v1\n"
        "kind: EndpointSlice\nmetadata: {name: zz-probe-a, namespace: zz, labels: "
        "{kubernetes.io/service-name: zz-probe}}\naddressType: IPv4\n"
        f"ports: [{{name: http, port: {NGINX_PORT}, protocol: TCP}}]\n"
        f"endpoints:\n- addresses: [{pod_ip}]\n  nodeName: node-a\n"
    )


def start_nginx(cluster: Cluster, tmp: Path) -> subprocess.Popen[bytes]:
    d = tmp / "nginx"
    d.mkdir()
    conf = d / "nginx.conf"
    conf.write_text(
        f"""worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
    uwsgi_temp_path {d}; scgi_temp_path {d};
    server {{
        listen {NGINX_PORT} reuseport backlog=4096;
        location / {{ return 200 "ok"; }}
    }}
}}
"""
    )
    proc = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            cluster.pods[1],
            "nginx",
            "-c",
            str(conf),
            "-p",
            str(d),
            "-e",
            f"{d}/error.log",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cluster.procs.append(proc)  # stopped by cluster.close()
    return proc


def tune(cluster: Cluster) -> None:
    """Room for tens of thousands of short connections: every port for the client, TIME_WAIT
    reuse, and short-lived TIME_WAIT conntrack entries in the node."""
    client = cluster.pods[0]
    cluster.exec(client, "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535")
    cluster.exec(client, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1")
    cluster.exec(cluster.pods[1], "sysctl", "-qw", "net.core.somaxconn=4096")
    cluster.exec(
        cluster.node, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_timeout_time_wait=1"
    )


def rate(cluster: Cluster, seconds: float, connections: int) -> tuple[float, int]:
    cluster.exec(cluster.node, "conntrack", "-F", check=False)
    out = cluster.exec(
        cluster.pods[0],
        "wrk",
        "--latency",
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{seconds:g}s",
        "-H",
        "Connection: close",
        f"http://{PROBE_IP}/",
    )
    res = parse_wrk(out)
    return res.rps, res.errors


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--services", default="100,10000", help="comma-separated service counts")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated modes")
    ap.add_argument("--seconds", type=float, default=3.0, help="wrk duration per round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per case (median)")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/first_packet.py needs root (network namespaces)", file=sys.stderr)
        return 1
    counts = [int(x) for x in args.services.split(",")]
    modes = [x for x in args.modes.split(",") if x]
    print(
        f"bench/first_packet.py on {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}: "
        f"wrk -c {args.connections} 'Connection: close', {args.seconds:g} s x {args.rounds}"
    )
    cluster = Cluster(pods=2, tag="f")
    rates: dict[str, dict[int, float]] = {m: {} for m in modes}
    try:
        cluster.open()
        tune(cluster)
        with tempfile.TemporaryDirectory(prefix="seaway-fp-") as d:
            tmp = Path(d)
            start_nginx(cluster, tmp)
            paths = {}
            for n in counts:
                paths[n] = tmp / f"svc-{n}.yaml"
                paths[n].write_text(big_yaml(n - 1, 2) + "---\n" + probe_yaml(cluster.pod_ip(1)))
            # Every case once per round, so a load that comes and goes on a shared machine
            # lands on all of them alike.
            got: dict[tuple[str, int], list[tuple[float, int]]] = {}
            for _ in range(args.rounds):
                for n in counts:
                    for mode in modes:
                        cluster.seaway(
                            "apply",
                            "-c",
                            str(paths[n]),
                            *MODES[mode],
                            "--cluster-cidr",
                            CLUSTER_CIDR,
                        )
                        got.setdefault((mode, n), []).append(
                            rate(cluster, args.seconds, args.connections)
                        )
                        cleanup(cluster, mode)
            for n in counts:
                for mode in modes:
                    runs = got[(mode, n)]
                    rates[mode][n] = statistics.median(r for r, _ in runs)
                    errors = sum(e for _, e in runs)
                    print(
                        f"  {mode:15} {n:>6} services: {rates[mode][n]:>8,.0f} new "
                        f"connections/s (rounds: {', '.join(f'{r:,.0f}' for r, _ in runs)}"
                        f"{f'; {errors} errors' if errors else ''})",
                        flush=True,
                    )
        low, high = min(counts), max(counts)
        for mode in modes:
            fall = rates[mode][high] / rates[mode][low]
            print(f"  {mode:15} {high:,} / {low:,} services: {fall:.2f}x")
        if "nftables" in rates:
            for mode in modes:
                if mode != "nftables":
                    print(
                        f"  nftables / {mode} at {high:,} services: "
                        f"{rates['nftables'][high] / rates[mode][high]:.2f}x"
                    )
    finally:
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
