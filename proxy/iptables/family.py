"""One IP family's spelling of the rules: iptables programs IPv4, ip6tables IPv6.

The rule builder is the same for both families; what differs is which addresses belong
to it, how a single host is written (/32 or /128), the recent match's mask, the tools
(iptables-* or ip6tables-*) and the nft family their tables live in (ip or ip6).
IPv6 addresses are written in their canonical form, the one ip6tables-save prints, so a
re-apply recognises the chains it wrote.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Literal

from discovery.snapshot import EndpointInfo

IPFamily = Literal[4, 6]


@lru_cache(maxsize=65536)
def canonical_v6(ip: str) -> str:
    try:
        return ipaddress.IPv6Address(ip).compressed
    except ValueError:
        return ip


class Family:
    """What the builder and the applier need to know about one family."""

    __slots__ = ("host_len", "mask", "nft", "tool_prefix", "version")

    def __init__(self, version: IPFamily) -> None:
        self.version: IPFamily = version
        self.host_len = "/32" if version == 4 else "/128"
        self.mask = "255.255.255.255" if version == 4 else "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        self.tool_prefix = "iptables" if version == 4 else "ip6tables"
        self.nft = "ip" if version == 4 else "ip6"

    def has(self, address: str) -> bool:
        """An address or CIDR of this family."""
        return (":" in address) == (self.version == 6)

    def ip(self, ip: str) -> str:
        return ip if self.version == 4 else canonical_v6(ip)

    def ips(self, ips: Iterable[str]) -> list[str]:
        """The addresses of this family, as written in rules."""
        if self.version == 4:
            return [ip for ip in ips if ":" not in ip]
        return [canonical_v6(ip) for ip in ips if ":" in ip]

    def endpoints(self, endpoints: tuple[EndpointInfo, ...]) -> tuple[EndpointInfo, ...]:
        """The endpoints of this family (the same tuple when all are)."""
        if self.version == 4:
            kept = tuple([e for e in endpoints if ":" not in e.ip])
        else:
            kept = tuple([e for e in endpoints if ":" in e.ip])
        return endpoints if len(kept) == len(endpoints) else kept

    def cidrs(self, cidrs: Iterable[str]) -> tuple[str, ...]:
        """CIDRs (or bare addresses, made host routes) of this family, as written in rules."""
        out = []
        for c in cidrs:
            if not self.has(c):
                continue
            if "/" not in c:
                out.append(self.host(c))
            elif self.version == 6:
                out.append(str(ipaddress.IPv6Network(c, strict=False)))
            else:
                out.append(c)
        return tuple(out)

    def host(self, ip: str) -> str:
        """A single address as a match: 10.0.0.1/32, fd00::1/128."""
        if self.version == 4:
            return ip + "/32"
        return canonical_v6(ip) + "/128"

    def address(self, ip: str, port: int) -> str:
        """ip:port as DNAT --to-destination takes it ([ip]:port for IPv6)."""
        return f"{ip}:{port}" if self.version == 4 else f"[{canonical_v6(ip)}]:{port}"


IPV4 = Family(4)
IPV6 = Family(6)


def family_of(version: IPFamily) -> Family:
    return IPV4 if version == 4 else IPV6
