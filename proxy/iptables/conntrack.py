"""Pure: which UDP conntrack entries to delete after a sync (as kube-proxy does).

UDP has no connection end, so a flow keeps going to a removed endpoint until its
conntrack entry expires; and packets sent while a service had no endpoints leave entries
that keep them from being DNATed once endpoints appear. Both are deleted.
"""

from __future__ import annotations

from collections.abc import Mapping

from discovery.snapshot import ServicePortInfo, ServicePortName
from proxy.iptables.family import IPV4, Family


def _service_ips(spi: ServicePortInfo, family: Family) -> list[str]:
    return family.ips((*spi.cluster_ips, *spi.external_ips, *spi.load_balancer_ips))


def stale_udp_entries(
    old: Mapping[ServicePortName, ServicePortInfo],
    new: Mapping[ServicePortName, ServicePortInfo],
    family: Family = IPV4,
) -> list[tuple[str, ...]]:
    """conntrack argument lists (after `conntrack`, without the family option the Applier
    adds) to run for one family's entries, deduplicated, in order."""
    out: dict[tuple[str, ...], None] = {}
    for name, before in old.items():
        if before.protocol != "UDP":
            continue
        after = new.get(name)
        keep = {family.ip(e.ip) for e in after.endpoints} if after else set()
        removed = sorted(set(family.ips(e.ip for e in before.endpoints)) - keep)
        for ep_ip in removed:
            for ip in _service_ips(before, family):
                out[("-D", "-p", "udp", "--orig-dst", ip, "--dst-nat", ep_ip)] = None
            if before.node_port is not None:
                port = str(before.node_port)
                out[("-D", "-p", "udp", "--orig-port-dst", port, "--dst-nat", ep_ip)] = None
    for name, after in new.items():
        if after.protocol != "UDP" or not any(family.has(e.ip) for e in after.endpoints):
            continue
        before_spi = old.get(name)
        if before_spi is not None and any(family.has(e.ip) for e in before_spi.endpoints):
            continue
        for ip in _service_ips(after, family):
            out[("-D", "-p", "udp", "--orig-dst", ip)] = None
        if after.node_port is not None and family.ips(after.cluster_ips):
            out[("-D", "-p", "udp", "--orig-port-dst", str(after.node_port))] = None
    return list(out)
