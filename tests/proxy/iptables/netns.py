"""A throwaway cluster in network namespaces, for the kernel tests and bench/sync.py.

node (routes, runs seaway) -- veth -- pod0..podN (10.1.<i>.1, a backend each)
node -- veth -- client (192.168.77.2, "outside")
With `ipv6=True` every link also has IPv6 addresses (pods fd00:1:<i>::1, node fd00:77::1,
client fd00:77::2) and the node forwards IPv6 too; backends answer on both families.
Everything is created with unique names (pid) and removed by `close()`, which is safe to
call after a partial set-up.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

REPO = Path(__file__).resolve().parents[3]
NODE_IP = "192.168.77.1"
CLIENT_IP = "192.168.77.2"
CLUSTER_CIDR = "10.1.0.0/16"
NODE_IP6 = "fd00:77::1"
CLIENT_IP6 = "fd00:77::2"
CLUSTER_CIDR6 = "fd00:1::/32"  # pods fd00:1:<i>::1
TCP_PORT = 8080
UDP_PORT = 5353

BACKEND = r"""
import socket, sys, threading
name = sys.argv[1]
def udp(family, host):
    u = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    u.bind((host, @UDP@))
    while True:
        data, peer = u.recvfrom(2048)
        u.sendto(f"{name} {peer[0]}".encode(), peer)
def tcp(family, host):
    s = socket.socket(family)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, @TCP@))
    s.listen(512)
    while True:
        c, peer = s.accept()
        try:
            c.sendall(f"{name} {peer[0]}\n".encode())
        finally:
            c.close()
for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    threading.Thread(target=udp, args=(family, host), daemon=True).start()
    threading.Thread(target=tcp, args=(family, host), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
""".replace("@UDP@", str(UDP_PORT)).replace("@TCP@", str(TCP_PORT))

# Client: N connections (tcp) or datagrams (udp), one JSON line per try:
# {"ok": true, "answer": "pod1 10.1.0.254"} or {"ok": false, "error": "...", "ms": 3.1}
# Optional: source port (udp), timeout, source address.
CLIENT = r"""
import json, socket, sys, time
proto, host, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sport = int(sys.argv[5]) if len(sys.argv) > 5 else 0
timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 3.0
src = sys.argv[7] if len(sys.argv) > 7 else ""
family = socket.AF_INET6 if ":" in host else socket.AF_INET
for _ in range(count):
    t = time.monotonic()
    try:
        if proto == "tcp":
            source = (src, 0) if src else None
            with socket.create_connection((host, port), timeout=timeout,
                                          source_address=source) as c:
                data = c.recv(200)
        else:
            with socket.socket(family, socket.SOCK_DGRAM) as u:
                u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                u.bind((src or ("::" if family == socket.AF_INET6 else "0.0.0.0"), sport))
                u.settimeout(timeout)
                u.sendto(b"hi", (host, port))
                data, _ = u.recvfrom(200)
        print(json.dumps({"ok": True, "answer": data.decode().strip()}), flush=True)
    except OSError as e:
        print(json.dumps({"ok": False, "error": type(e).__name__,
                          "ms": (time.monotonic() - t) * 1000}), flush=True)
"""


def sh(*argv: str, check: bool = True, input: bytes | None = None) -> str:
    p = subprocess.run(argv, capture_output=True, input=input, check=False)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: rc {p.returncode}: {p.stderr.decode().strip()}")
    return p.stdout.decode()


class Cluster:
    def __init__(self, pods: int = 3, tag: str = "", ipv6: bool = False) -> None:
        pid = os.getpid()
        self.ipv6 = ipv6
        self.node = f"sw{tag}{pid}n"
        self.client = f"sw{tag}{pid}c"
        self.pods = [f"sw{tag}{pid}p{i}" for i in range(pods)]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.created: list[str] = []

    # -- lifecycle ----------------------------------------------------------------
    def open(self) -> Cluster:
        for ns in [self.node, self.client, *self.pods]:
            sh("ip", "netns", "add", ns)
            self.created.append(ns)
        self.exec(self.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # Rejects are ICMP errors, which the kernel rate-limits per peer (a burst of 6,
        # then one a second): tests send many in a row and must see every one.
        self.exec(self.node, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
        for ns in [self.node, self.client, *self.pods]:
            self.exec(ns, "ip", "link", "set", "lo", "up")
        self._veth(self.node, "toclient", self.client, "eth0", NODE_IP, CLIENT_IP, 24)
        self.exec(self.client, "ip", "route", "add", "default", "via", NODE_IP)
        for i, pod in enumerate(self.pods):
            self._veth(self.node, f"topod{i}", pod, "eth0", self.gateway(i), self.pod_ip(i), 24)
            self.exec(pod, "ip", "route", "add", "default", "via", self.gateway(i))
        # the node needs a route for service IPs before nat OUTPUT rewrites them
        self.exec(self.node, "ip", "route", "add", "default", "via", CLIENT_IP)
        if self.ipv6:
            self._ipv6_links()
        for i, pod in enumerate(self.pods):
            p = subprocess.Popen(
                ["ip", "netns", "exec", pod, sys.executable, "-c", BACKEND, f"pod{i}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            self.procs.append(p)
            assert p.stdout is not None
            if p.stdout.readline().strip() != b"ready":
                raise RuntimeError(f"backend in {pod} did not start")
        return self

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        self.procs.clear()
        for ns in reversed(self.created):
            sh("ip", "netns", "del", ns, check=False)
        self.created.clear()

    def _ipv6_links(self) -> None:
        """IPv6 addresses on the links made above (nodad: usable at once), forwarding on
        the node, and the same routes as for IPv4."""
        self.exec(self.node, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        self.exec(self.node, "sysctl", "-qw", "net.ipv6.icmp.ratelimit=0")  # as for IPv4
        links = [(self.node, "toclient", NODE_IP6), (self.client, "eth0", CLIENT_IP6)]
        for i, pod in enumerate(self.pods):
            links += [(self.node, f"topod{i}", self.gateway6(i)), (pod, "eth0", self.pod_ip6(i))]
        for ns, dev, ip in links:
            self.exec(ns, "ip", "-6", "addr", "add", f"{ip}/64", "dev", dev, "nodad")
        self.exec(self.client, "ip", "-6", "route", "add", "default", "via", NODE_IP6)
        for i, pod in enumerate(self.pods):
            self.exec(pod, "ip", "-6", "route", "add", "default", "via", self.gateway6(i))
        self.exec(self.node, "ip", "-6", "route", "add", "default", "via", CLIENT_IP6)

    def _veth(self, a: str, a_if: str, b: str, b_if: str, a_ip: str, b_ip: str, plen: int) -> None:
        sh("ip", "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b)
        self.exec(a, "ip", "addr", "add", f"{a_ip}/{plen}", "dev", a_if)
        self.exec(b, "ip", "addr", "add", f"{b_ip}/{plen}", "dev", b_if)
        self.exec(a, "ip", "link", "set", a_if, "up")
        self.exec(b, "ip", "link", "set", b_if, "up")

    # -- helpers ------------------------------------------------------------------
    @staticmethod
    def pod_ip(i: int) -> str:
        return f"10.1.{i}.1"

    @staticmethod
    def gateway(i: int) -> str:
        return f"10.1.{i}.254"

    @staticmethod
    def pod_ip6(i: int) -> str:
        return str(ipaddress.IPv6Address(f"fd00:1:{i}::1"))  # canonical, as peers print it

    @staticmethod
    def gateway6(i: int) -> str:
        return str(ipaddress.IPv6Address(f"fd00:1:{i}::fe"))

    def exec(self, ns: str, *argv: str, check: bool = True, input: bytes | None = None) -> str:
        return sh("ip", "netns", "exec", ns, *argv, check=check, input=input)

    def seaway(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            ["ip", "netns", "exec", self.node, sys.executable, "-m", "proxy.app.cli", *args],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=False,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        if check and p.returncode != 0:
            raise RuntimeError(f"seaway {' '.join(args)}: rc {p.returncode}: {p.stderr}")
        return p

    def connect(
        self,
        ns: str,
        host: str,
        port: int,
        count: int = 1,
        proto: str = "tcp",
        sport: int = 0,
        timeout: float = 3.0,
        src: str = "",
    ) -> list[dict[str, object]]:
        argv = (proto, host, str(port), str(count), str(sport), str(timeout), src)
        out = self.exec(ns, sys.executable, "-c", CLIENT, *argv)
        return [json.loads(line) for line in out.splitlines()]

    def answers(
        self, ns: str, host: str, port: int, count: int = 1, proto: str = "tcp", sport: int = 0
    ) -> list[str]:
        res = self.connect(ns, host, port, count, proto, sport)
        bad = [r for r in res if not r["ok"]]
        assert not bad, f"{ns} -> {host}:{port}/{proto}: {bad[:3]}"
        return [str(r["answer"]) for r in res]

    def save(self, flavor: str) -> str:
        return self.exec(self.node, f"iptables-{flavor}-save", check=False)


def wait_until(pred: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(pred) and pred():
            return True
        time.sleep(0.02)
    return False


def manifest(services: Sequence[dict[str, object]]) -> str:
    """YAML (JSON is YAML) for services: dicts with name, ip, port, proto, endpoints
    (pod indexes), and optional nodePort, affinity, etp (externalTrafficPolicy), remote
    (pod indexes whose endpoint is on node-b rather than node-a), ips (the cluster IPs of
    a dual-stack or IPv6 service: a slice per family, pods at pod_ip / pod_ip6), lb
    (load-balancer IPs; type LoadBalancer), ranges (loadBalancerSourceRanges), hc
    (healthCheckNodePort), zones (pod index -> zone) and distribution
    (trafficDistribution)."""
    docs: list[dict[str, object]] = []
    for s in services:
        ips = cast(list[str], s.get("ips", [s.get("ip")]))
        spec: dict[str, object] = {
            "clusterIP": ips[0],
            "clusterIPs": ips,
            "ports": [
                {
                    "name": "p",
                    "port": s.get("port", 80),
                    "targetPort": s.get("target", TCP_PORT),
                    "protocol": s.get("proto", "TCP"),
                    **({"nodePort": s["nodePort"]} if "nodePort" in s else {}),
                }
            ],
        }
        if "nodePort" in s:
            spec["type"] = "NodePort"
        if "lb" in s:
            spec["type"] = "LoadBalancer"
        for key, field in (
            ("etp", "externalTrafficPolicy"),
            ("ranges", "loadBalancerSourceRanges"),
            ("hc", "healthCheckNodePort"),
            ("distribution", "trafficDistribution"),
        ):
            if key in s:
                spec[field] = s[key]
        if s.get("affinity"):
            spec["sessionAffinity"] = "ClientIP"
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": s["affinity"]}}
        service: dict[str, object] = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": s["name"], "namespace": "default"},
            "spec": spec,
        }
        if "lb" in s:
            lbs = cast(list[str], s["lb"])
            service["status"] = {"loadBalancer": {"ingress": [{"ip": ip} for ip in lbs]}}
        docs.append(service)
        zones = cast(dict[int, str], s.get("zones", {}))
        remote = cast(list[int], s.get("remote", []))
        families = sorted({"IPv6" if ":" in ip else "IPv4" for ip in ips})
        for family in families:
            pod_ip = Cluster.pod_ip6 if family == "IPv6" else Cluster.pod_ip
            docs.append(
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "name": f"{s['name']}-{family.lower()}",
                        "namespace": "default",
                        "labels": {"kubernetes.io/service-name": s["name"]},
                    },
                    "addressType": family,
                    "ports": [
                        {
                            "name": "p",
                            "port": s.get("target", TCP_PORT),
                            "protocol": s.get("proto", "TCP"),
                        }
                    ],
                    "endpoints": [
                        {
                            "addresses": [pod_ip(int(i))],
                            "nodeName": "node-b" if i in remote else "node-a",
                            **({"zone": zones[i]} if i in zones else {}),
                        }
                        for i in cast(list[int], s.get("endpoints", []))
                    ],
                }
            )
    return "\n---\n".join(json.dumps(d) for d in docs) + "\n"
