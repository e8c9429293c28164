"""Client address sets (CIDRs) for allow/deny lists and rate-limit exemptions. Pure.

The address is the client's as its listener decides it (ingress/client_address.py: the
peer, unless a PROXY header or a trusted forwarded-for header says otherwise), as bytes;
an IPv4 address mapped into IPv6 (``::ffff:10.0.0.1``, what a dual-stack socket reports)
counts as the IPv4 one. Verdicts are remembered per address
(bounded), so a returning client costs one dict lookup.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
VERDICTS_SIZE = 4096


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """The networks of CIDRs or bare addresses (raises ValueError on a bad one)."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


def client_address(raw: bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(raw.decode("latin-1").partition("%")[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class AddressSet:
    """Whether a client address is in some CIDRs."""

    __slots__ = ("_known", "networks")

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks = parse_networks(cidrs)
        self._known: dict[bytes, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, raw: object) -> bool:
        assert isinstance(raw, bytes)
        known = self._known.get(raw)
        if known is None:
            addr = client_address(raw)
            known = addr is not None and any(addr in net for net in self.networks)
            if len(self._known) >= VERDICTS_SIZE:
                self._known.clear()
            self._known[raw] = known
        return known


class SourceFilter:
    """ingress-nginx's allow/deny lists: an address in ``deny`` is refused; with an
    ``allow`` list, an address outside it is refused too (the template writes the deny
    lines first, then allow lines and ``deny all``)."""

    __slots__ = ("allow", "deny")

    def __init__(self, allow: Iterable[str], deny: Iterable[str]) -> None:
        self.allow = AddressSet(allow)
        self.deny = AddressSet(deny)

    def allows(self, client_ip: bytes) -> bool:
        if self.deny and client_ip in self.deny:
            return False
        return not self.allow or client_ip in self.allow
