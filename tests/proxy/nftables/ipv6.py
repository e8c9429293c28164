"""IPv6 for the kernel tests' namespace cluster (tests/proxy/iptables/netns.py): addresses
on every link, routes, and a TCP backend on [::]:8080 in each pod (answering like the
IPv4 one: "podN PEER"). Processes join the cluster's list, so `close()` stops them."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.proxy.iptables.netns import TCP_PORT, Cluster

NODE6 = "fd50::1"
CLIENT6 = "fd50::2"
CLUSTER_CIDR6 = "fd01::/16"

BACKEND6 = r"""
import socket, sys
name = sys.argv[1]
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind(("::", @TCP@))
s.listen(512)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    try:
        c.sendall(f"{name} {peer[0]}\n".encode())
    finally:
        c.close()
""".replace("@TCP@", str(TCP_PORT))


def pod_ip6(i: int) -> str:
    return f"fd01:{i:x}::1" if i else "fd01::1"


def gateway6(i: int) -> str:
    return f"fd01:{i:x}::fe" if i else "fd01::fe"


def add_ipv6(c: Cluster) -> None:
    for ns in [c.node, c.client, *c.pods]:
        c.exec(ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0")
        c.exec(ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
    c.exec(c.node, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    c.exec(c.node, "ip", "-6", "addr", "add", f"{NODE6}/64", "dev", "toclient", "nodad")
    c.exec(c.client, "ip", "-6", "addr", "add", f"{CLIENT6}/64", "dev", "eth0", "nodad")
    c.exec(c.client, "ip", "-6", "route", "add", "default", "via", NODE6)
    c.exec(c.node, "ip", "-6", "route", "add", "default", "via", CLIENT6)
    for i, pod in enumerate(c.pods):
        c.exec(c.node, "ip", "-6", "addr", "add", f"{gateway6(i)}/64", "dev", f"topod{i}", "nodad")
        c.exec(pod, "ip", "-6", "addr", "add", f"{pod_ip6(i)}/64", "dev", "eth0", "nodad")
        c.exec(pod, "ip", "-6", "route", "add", "default", "via", gateway6(i))
        p = subprocess.Popen(
            ["ip", "netns", "exec", pod, sys.executable, "-c", BACKEND6, f"pod{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        c.procs.append(p)
        assert p.stdout is not None
        if p.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"IPv6 backend in {pod} did not start")


def manifest6(name: str, ip: str, endpoints: list[int], node_port: int | None = None) -> str:
    """An IPv6 single-stack Service and its EndpointSlice (pods by index, on node-a)."""
    port: dict[str, object] = {"name": "p", "port": 80, "targetPort": TCP_PORT, "protocol": "TCP"}
    spec: dict[str, object] = {"clusterIP": ip, "ipFamilies": ["IPv6"], "ports": [port]}
    if node_port is not None:
        port["nodePort"] = node_port
        spec["type"] = "NodePort"
    docs = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": spec,
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-1",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": "IPv6",
            "ports": [{"name": "p", "port": TCP_PORT, "protocol": "TCP"}],
            "endpoints": [{"addresses": [pod_ip6(i)], "nodeName": "node-a"} for i in endpoints],
        },
    ]
    return "\n---\n".join(json.dumps(d) for d in docs) + "\n"
