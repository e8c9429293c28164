"""The reference model both kernel modes' trace matrices check their simulators against:
services of every policy kind, reached by cluster IP, node port, external IP and
load-balancer IP, from a pod (in either cluster CIDR), a pod reaching itself, the node and
an outside client, under one, two and no --cluster-cidr ranges. The expected outcome
comes from the rules kube-proxy documents, not from a builder:
- endpoints: cluster IP -> all, or only local ones with internalTrafficPolicy Local;
  external -> only local ones with externalTrafficPolicy Local, unless the source is a
  pod or the node itself (those use every endpoint);
- masquerade: a pod reaching itself (hairpin); a cluster IP reached from outside the
  cluster CIDRs (with either internalTrafficPolicy); external traffic with Cluster
  policy, and external traffic from the node itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Container, Sequence
from typing import NamedTuple, Protocol

from discovery.model import TrafficPolicy
from discovery.snapshot import ServicePortInfo
from tests.proxy.iptables.helpers import eps, svc

NODE = "192.168.50.1"
POD_A = eps("10.1.0.1", node="node-a")
POD_B = eps("10.2.0.3", node="node-b")
SOURCES = {
    "pod": "10.1.0.7",
    "pod-in-second-cidr": "10.2.0.9",
    "hairpin": "10.1.0.1",
    "node": NODE,
    "outside": "203.0.113.50",
}


class Kind(NamedTuple):
    name: str
    cluster_ip: str
    node_port: int
    external_ip: str
    lb_ip: str
    etp: TrafficPolicy
    itp: TrafficPolicy
    affinity: int | None = None


KINDS = [
    Kind("cl", "10.96.1.1", 30101, "203.0.113.1", "198.51.100.1", "Cluster", "Cluster"),
    Kind("lo", "10.96.1.2", 30102, "203.0.113.2", "198.51.100.2", "Local", "Cluster"),
    Kind("il", "10.96.1.3", 30103, "203.0.113.3", "198.51.100.3", "Cluster", "Local"),
    Kind("ll", "10.96.1.4", 30104, "203.0.113.4", "198.51.100.4", "Local", "Local"),
    Kind("af", "10.96.1.5", 30105, "203.0.113.5", "198.51.100.5", "Cluster", "Cluster", 60),
    Kind("al", "10.96.1.6", 30106, "203.0.113.6", "198.51.100.6", "Local", "Local", 60),
]
CIDR_SETS = [("10.1.0.0/16",), ("10.1.0.0/16", "10.2.0.0/16"), ()]
CIDR_IDS = ["one-cidr", "two-cidrs", "no-cidr"]
PATHS = ("cluster IP", "node port", "external IP", "LB IP")


def service_ports() -> list[ServicePortInfo]:
    return [
        svc(
            k.name,
            k.cluster_ip,
            POD_A + POD_B,
            node_port=k.node_port,
            external_ips=(k.external_ip,),
            lb_ips=(k.lb_ip,),
            etp=k.etp,
            itp=k.itp,
            affinity=k.affinity,
        )
        for k in KINDS
    ]


def destination(kind: Kind, path: str) -> tuple[str, int]:
    return {
        "cluster IP": (kind.cluster_ip, 80),
        "node port": (NODE, kind.node_port),
        "external IP": (kind.external_ip, 80),
        "LB IP": (kind.lb_ip, 80),
    }[path]


def expected(
    cidrs: tuple[str, ...], src: str, path: str, kind: Kind, local: Container[str]
) -> list[tuple[str, bool, float]]:
    """Sorted (endpoint address, masqueraded, probability) of a new connection."""
    in_pod_cidr = any(ipaddress.ip_address(src) in ipaddress.ip_network(c) for c in cidrs)
    if path == "cluster IP":
        targets = POD_A if kind.itp == "Local" else POD_A + POD_B
        masq = bool(cidrs) and not in_pod_cidr
    else:
        from_node = src in local
        local_only = kind.etp == "Local" and not in_pod_cidr and not from_node
        targets = POD_A if local_only else POD_A + POD_B
        masq = kind.etp == "Cluster" or from_node
    p = round(1 / len(targets), 4)
    return sorted((e.address, masq or e.ip == src, p) for e in targets)


class Outcome(Protocol):
    """What both simulators report of one outcome."""

    @property
    def probability(self) -> float: ...
    @property
    def verdict(self) -> str: ...
    @property
    def masquerade(self) -> bool: ...
    @property
    def dnat(self) -> str | None: ...


def check(
    trace: Callable[[str, str, int], Sequence[Outcome]],
    cidrs: tuple[str, ...],
    who: str,
    kind: Kind,
    path: str,
    local: Container[str],
) -> None:
    """One case of the matrix: `trace(src, dst, port)` gives what the model expects."""
    dst, port = destination(kind, path)
    src = SOURCES[who]
    out = trace(src, dst, port)
    assert abs(sum(o.probability for o in out) - 1.0) < 1e-9
    assert all(o.verdict == "ACCEPT" for o in out)
    got = sorted((str(o.dnat), o.masquerade, round(o.probability, 4)) for o in out)
    assert got == expected(cidrs, src, path, kind, local)
