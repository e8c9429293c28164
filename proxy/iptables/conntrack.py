"""Which UDP conntrack entries to delete after an iptables sync: the shared rule
(proxy/conntrack.py) for the IPv4 service ports this dataplane programs."""

from __future__ import annotations

from collections.abc import Mapping

from discovery.snapshot import ServicePortInfo, ServicePortName
from proxy import conntrack


def stale_udp_entries(
    old: Mapping[ServicePortName, ServicePortInfo],
    new: Mapping[ServicePortName, ServicePortInfo],
) -> list[tuple[str, ...]]:
    """conntrack argument lists (after `conntrack`) to run, deduplicated, in order."""
    return conntrack.stale_udp_entries(old, new, families=(4,))
