"""Which UDP conntrack entries to delete after an iptables sync of one family: the rule
both kernel modes share (proxy/conntrack.py)."""

from __future__ import annotations

from collections.abc import Mapping

from discovery.snapshot import ServicePortInfo, ServicePortName
from proxy import conntrack
from proxy.iptables.family import IPV4, Family


def stale_udp_entries(
    old: Mapping[ServicePortName, ServicePortInfo],
    new: Mapping[ServicePortName, ServicePortInfo],
    family: Family = IPV4,
) -> list[tuple[str, ...]]:
    """conntrack argument lists (after `conntrack`, without the family option the Applier
    adds) to run for one family's entries, deduplicated, in order."""
    return conntrack.stale_udp_entries(old, new, family.version)
