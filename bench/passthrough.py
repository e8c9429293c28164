"""TLS passthrough: what peeking at ClientHellos costs the connections seaway terminates,
and what relaying costs, next to haproxy doing the same SNI relay.

Every client connection is new (TLS handshake, one GET, close), since passthrough acts
per connection. Peers, all on 127.0.0.1, driven in turn for several rounds:

- seaway terminates web.test, no host uses passthrough (flag off): the baseline;
- seaway terminates web.test while pass.test uses passthrough: the cost of the peek;
- seaway relays pass.test to the pod (nginx terminating TLS itself);
- haproxy relays pass.test (`mode tcp`, `req_ssl_sni`), the reference for the relay;
- the pod directly (no proxy): the floor.

Both seaways run as `seaway run -c DIR --workers 1`; nginx and haproxy with one worker
or thread. Clients are Python ssl processes (`--clients`); on a shared machine their
rate says little, so the table also gives the CPU time the proxy process used per
connection (from /proc), and the ratios that matter are taken within one run.

    python3 bench/passthrough.py                    # 2 rounds x 4 s, 4 client processes
    python3 bench/passthrough.py --rounds 3 --duration 6 --clients 6
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
import multiprocessing  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

from bench.common import (  # noqa: E402
    HOST,
    Processes,
    cpu_times,
    free_port,
    require,
    start_nginx,
    wait_port,
)

BASE = "seaway terminate"
PEEK = "seaway terminate+peek"
RELAY = "seaway relay"
HAPROXY = "haproxy relay"
DIRECT = "pod direct"


def _indent(pem: bytes) -> str:
    return "\n".join("    " + line for line in pem.decode().strip().splitlines())


def manifests(pod_port: int, web_port: int, svc_ports: tuple[int, int],
              pem: tuple[bytes, bytes]) -> str:
    def service(name: str, ip: str, port: int, target: int) -> str:
        return f"""apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  clusterIP: {ip}
  ports: [{{name: p, port: {port}, targetPort: {target}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}-1, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
ports: [{{name: p, port: {target}, protocol: TCP}}]
endpoints: [{{addresses: [{HOST}], conditions: {{ready: true}}}}]
---
"""

    return (
        service("pod", "127.0.81.1", svc_ports[0], pod_port)
        + service("web", "127.0.81.2", svc_ports[1], web_port)
        + f"""apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata: {{name: web-tls, namespace: default}}
stringData:
  tls.crt: |
{_indent(pem[0])}
  tls.key: |
{_indent(pem[1])}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: pass
  namespace: default
  annotations: {{nginx.ingress.kubernetes.io/ssl-passthrough: "true"}}
spec:
  rules:
  - host: pass.test
    http: {{paths: [{{path: /, pathType: Prefix,
                     backend: {{service: {{name: pod, port: {{number: {svc_ports[0]}}}}}}}}}]}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: web, namespace: default}}
spec:
  tls: [{{hosts: [web.test], secretName: web-tls}}]
  rules:
  - host: web.test
    http: {{paths: [{{path: /, pathType: Prefix,
                     backend: {{service: {{name: web, port: {{number: {svc_ports[1]}}}}}}}}}]}}
"""
    )


def start_seaway(procs: Processes, name: str, config_dir: str, https: int,
                 passthrough: bool) -> int:
    argv = [
        sys.executable, "-m", "proxy.app.cli", "run", "-c", config_dir,
        "--proxy-mode", "userspace", "--watch-ingress-without-class", "--workers", "1",
        "--http-bind-address", f"{HOST}:{free_port()}",
        "--https-bind-address", f"{HOST}:{https}",
        "--metrics-bind-address", f"{HOST}:0", "--healthz-bind-address", f"{HOST}:0",
    ]  # fmt: skip
    if passthrough:
        argv.append("--enable-ssl-passthrough")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = procs.start(argv, env=env, log=f"{name}.log")
    wait_port(HOST, https, proc=proc, timeout=30)
    return proc.pid


def start_haproxy(procs: Processes, port: int, pod_port: int) -> int:
    require("haproxy")
    conf = f"""
global
    nbthread 1
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind {HOST}:{port}
    tcp-request inspect-delay 5s
    tcp-request content accept if {{ req_ssl_hello_type 1 }}
    use_backend pods if {{ req_ssl_sni -i pass.test }}
backend pods
    server pod {HOST}:{pod_port}
"""
    proc = procs.start(["haproxy", "-f", procs.write("haproxy.cfg", conf)], log="haproxy.log")
    wait_port(HOST, port, proc=proc)
    return proc.pid


def _client(port: int, sni: str, seconds: float, out: multiprocessing.Queue[int]) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    request = f"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode()
    done = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with socket.create_connection((HOST, port)) as raw, ctx.wrap_socket(
            raw, server_hostname=sni
        ) as tls:
            tls.sendall(request)
            while tls.recv(65536):
                pass
        done += 1
    out.put(done)


def drive(port: int, sni: str, seconds: float, clients: int, pid: int) -> tuple[float, float]:
    """(connections/s, proxy CPU microseconds per connection)."""
    queue: multiprocessing.Queue[int] = multiprocessing.Queue()
    before = sum(cpu_times(pid))
    workers = [multiprocessing.Process(target=_client, args=(port, sni, seconds, queue))
               for _ in range(clients)]
    for w in workers:
        w.start()
    total = sum(queue.get() for _ in workers)
    for w in workers:
        w.join()
    used = sum(cpu_times(pid)) - before
    return total / seconds, (used / total * 1e6 if total else 0.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=float, default=4.0, help="seconds per run (default 4)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds (default 2)")
    ap.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    args = ap.parse_args()
    from ingress import selfsigned

    with Processes() as procs:
        pod_pem = selfsigned.generate("pod", ["pass.test"])
        web_pem = selfsigned.generate("seaway web", ["web.test"])
        pod_port, web_port = free_port(), free_port()
        with open(procs.write("pod.crt", ""), "wb") as f:
            f.write(pod_pem[0])
        with open(procs.write("pod.key", ""), "wb") as f:
            f.write(pod_pem[1])
        pod = (
            f"        ssl_certificate {procs.path('pod.crt')};\n"
            f"        ssl_certificate_key {procs.path('pod.key')};\n"
            '        location / { return 200 "pod"; }'
        )
        pod_pid = start_nginx(procs, "pod", pod_port, pod, listen=" ssl").pid
        start_nginx(procs, "web", web_port, '        location / { return 200 "web"; }')
        svc_ports = (free_port("127.0.81.1"), free_port("127.0.81.2"))
        os.makedirs(procs.path("conf"), exist_ok=True)
        text = manifests(pod_port, web_port, svc_ports, web_pem)
        procs.write("conf/app.yaml", text)
        base_https, peek_https, haproxy_port = free_port(), free_port(), free_port()
        os.makedirs(procs.path("conf-off"), exist_ok=True)
        procs.write("conf-off/app.yaml", text)
        base_pid = start_seaway(procs, "seaway-off", procs.path("conf-off"), base_https, False)
        peek_pid = start_seaway(procs, "seaway-on", procs.path("conf"), peek_https, True)
        haproxy_pid = start_haproxy(procs, haproxy_port, pod_port)
        targets = {
            BASE: (base_https, "web.test", base_pid),
            PEEK: (peek_https, "web.test", peek_pid),
            RELAY: (peek_https, "pass.test", peek_pid),
            HAPROXY: (haproxy_port, "pass.test", haproxy_pid),
            DIRECT: (pod_port, "pass.test", pod_pid),
        }
        for port, sni, pid in targets.values():  # warm up, and check each answers
            drive(port, sni, 0.5, 1, pid)
        results: dict[str, list[tuple[float, float]]] = {n: [] for n in targets}
        order = list(targets)
        for rnd in range(args.rounds):
            for name in order if rnd % 2 == 0 else reversed(order):
                port, sni, pid = targets[name]
                results[name].append(drive(port, sni, args.duration, args.clients, pid))
        print(f"load: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} CPUs; "
              f"{args.rounds} rounds x {args.duration:g}s, {args.clients} client processes")
        print(f"{'target':<24}{'conn/s':>10}{'proxy CPU us/conn':>20}")
        mean = {n: (statistics.mean(r[0] for r in rs), statistics.mean(r[1] for r in rs))
                for n, rs in results.items()}
        for name, (rate, cpu) in mean.items():
            print(f"{name:<24}{rate:>10.0f}{cpu:>20.0f}")
        print(f"\npeek cost on terminated connections: CPU {mean[PEEK][1] / mean[BASE][1]:.2f}x, "
              f"rate {mean[PEEK][0] / mean[BASE][0]:.2f}x (with / without passthrough hosts)")
        print(f"relay vs haproxy: CPU per connection {mean[RELAY][1] / mean[HAPROXY][1]:.2f}x, "
              f"rate {mean[RELAY][0] / mean[HAPROXY][0]:.2f}x")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
