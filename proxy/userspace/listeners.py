"""Which sockets the userspace proxy should listen on, and how to get there. Pure logic.

A listener is identified by (protocol, ip, port) and serves one service port. From a
Snapshot and the host's local addresses we compute the desired set; `diff_listeners`
turns (current, desired) into what to open, close and re-point, so listeners of
unchanged ports are never touched.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from discovery.snapshot import ServicePortInfo, ServicePortName

ListenProtocol = Literal["TCP", "UDP"]
ANY_V4 = "0.0.0.0"
ANY_V6 = "::"


class ListenerKey(NamedTuple):
    protocol: ListenProtocol
    ip: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{self.protocol.lower()}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class DesiredListeners:
    listeners: dict[ListenerKey, ServicePortName] = field(default_factory=dict)
    # Service ports with a protocol the userspace proxy does not serve (SCTP).
    skipped: tuple[ServicePortName, ...] = ()
    # (key, the service port that keeps it, the one that lost it)
    conflicts: tuple[tuple[ListenerKey, ServicePortName, ServicePortName], ...] = ()
    # Load-balancer IP listeners of services with loadBalancerSourceRanges: the CIDRs
    # (of the listener's family) a client must be in. Absent: anyone.
    sources: dict[ListenerKey, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ListenerDiff:
    open: tuple[tuple[ListenerKey, ServicePortName], ...] = ()
    close: tuple[ListenerKey, ...] = ()
    retarget: tuple[tuple[ListenerKey, ServicePortName], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.open or self.close or self.retarget)


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def nodeport_ips(
    cidrs: Sequence[str], local: Iterable[str], protocol: ListenProtocol
) -> tuple[str, ...]:
    """The addresses NodePorts listen on, of both families (each service port uses those
    of its cluster IPs' families).

    With CIDRs: every local address inside one of them. Without: TCP binds the wildcards;
    UDP binds each local address (not link-local), so replies leave from the address the
    client sent to (a wildcard UDP socket would let the kernel pick the source).
    """
    if not cidrs:
        if protocol == "TCP":
            return (ANY_V4, ANY_V6)
        return tuple(sorted(ip for ip in local if not ipaddress.ip_address(ip).is_link_local))
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    out = []
    for ip in local:
        addr = ipaddress.ip_address(ip)
        if addr.is_link_local:
            continue
        if any(addr.version == n.version and addr in n for n in nets):
            out.append(ip)
    return tuple(sorted(out))


def bindable_cluster_ips(ports: Iterable[ServicePortInfo]) -> frozenset[str]:
    """Cluster IPs of TCP/UDP service ports that are not loopback (those are local)."""
    return frozenset(
        ip
        for sp in ports
        if sp.protocol in ("TCP", "UDP")
        for ip in sp.cluster_ips
        if not is_loopback(ip)
    )


def desired_listeners(
    ports: Mapping[ServicePortName, ServicePortInfo],
    is_local: Callable[[str], bool],
    nodeport_tcp: Sequence[str],
    nodeport_udp: Sequence[str],
) -> DesiredListeners:
    """Every (protocol, ip, port) to listen on, and the service port it serves.

    Cluster IPs, external IPs and load-balancer IPs get a listener when they are local
    (`is_local`); node ports get one per nodeport address of a family the service has a
    cluster IP of. When two service ports claim the same listener, the first in name order
    keeps it and the clash is reported. Load-balancer IP listeners carry the service's
    loadBalancerSourceRanges of their family.
    """
    listeners: dict[ListenerKey, ServicePortName] = {}
    skipped: list[ServicePortName] = []
    conflicts: list[tuple[ListenerKey, ServicePortName, ServicePortName]] = []
    sources: dict[ListenerKey, tuple[str, ...]] = {}

    def claim(key: ListenerKey, name: ServicePortName) -> None:
        owner = listeners.get(key)
        if owner is None:
            listeners[key] = name
        elif owner != name:
            conflicts.append((key, owner, name))

    for name in sorted(ports):
        sp = ports[name]
        proto = sp.protocol
        if proto != "TCP" and proto != "UDP":
            skipped.append(name)
            continue
        for ip in (*sp.cluster_ips, *sp.external_ips):
            if is_local(ip):
                claim(ListenerKey(proto, ip, sp.port), name)
        ranges = sp.load_balancer_source_ranges
        for ip in sp.load_balancer_ips:
            if is_local(ip):
                key = ListenerKey(proto, ip, sp.port)
                claim(key, name)
                v6 = ":" in ip
                mine = tuple(r for r in ranges if (":" in r) == v6)
                if mine and listeners[key] == name:
                    sources[key] = mine
        if sp.node_port:
            families = {":" in ip for ip in sp.cluster_ips}
            for ip in nodeport_tcp if proto == "TCP" else nodeport_udp:
                if (":" in ip) in families:
                    claim(ListenerKey(proto, ip, sp.node_port), name)
    return DesiredListeners(listeners, tuple(skipped), tuple(conflicts), sources)


class SourceRanges:
    """loadBalancerSourceRanges of one listener: does a client address fall inside?"""

    __slots__ = ("_nets", "cidrs")

    def __init__(self, cidrs: Sequence[str]) -> None:
        self.cidrs = tuple(cidrs)
        self._nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]

    def permits(self, client_ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(client_ip.partition("%")[0])
        except ValueError:
            return False
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self._nets if net.version == addr.version)


def diff_listeners(
    current: Mapping[ListenerKey, ServicePortName],
    desired: Mapping[ListenerKey, ServicePortName],
) -> ListenerDiff:
    """What to open, close, and re-point to another service port (sorted, deterministic)."""
    opened = tuple(sorted((k, v) for k, v in desired.items() if k not in current))
    closed = tuple(sorted(k for k in current if k not in desired))
    retarget = tuple(sorted((k, v) for k, v in desired.items() if k in current and current[k] != v))
    return ListenerDiff(opened, closed, retarget)
