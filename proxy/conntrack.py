"""Pure: which UDP conntrack entries to delete after a sync (as kube-proxy does), and
deleting them through an injected Runner. Shared by both kernel modes.

UDP has no connection end, so a flow keeps going to a removed endpoint until its
conntrack entry expires; and packets sent while a service had no endpoints leave entries
that keep them from being DNATed once endpoints appear. Both are deleted, per family:
IPv6 entries are addressed with `-f ipv6` (conntrack lists IPv4 only by default).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from discovery.snapshot import ServicePortInfo, ServicePortName
from proxy.command import Runner, first_lines

log = logging.getLogger(__name__)

# Above this many deletions, list UDP entries once and delete only those that can match.
LIST_THRESHOLD = 20
_ORIG = re.compile(r"dst=(\S+) sport=\d+ dport=(\d+)")


@lru_cache(maxsize=65536)
def _canonical_v6(ip: str) -> str:
    try:
        return ipaddress.IPv6Address(ip).compressed
    except ValueError:
        return ip


def _ips(ips: Iterable[str], family: int) -> list[str]:
    """The addresses of one family (4 or 6), IPv6 in canonical form."""
    if family == 4:
        return [ip for ip in ips if ":" not in ip]
    return [_canonical_v6(ip) for ip in ips if ":" in ip]


def _service_ips(spi: ServicePortInfo) -> tuple[str, ...]:
    return (*spi.cluster_ips, *spi.external_ips, *spi.load_balancer_ips)


def _has(ip: str, family: int) -> bool:
    return (":" in ip) == (family == 6)


def stale_udp_entries(
    old: Mapping[ServicePortName, ServicePortInfo],
    new: Mapping[ServicePortName, ServicePortInfo],
    family: int = 4,
) -> list[tuple[str, ...]]:
    """conntrack argument lists (after `conntrack`, without the family option that
    `clear_entries` adds) to run for one family's entries, deduplicated, in order."""
    out: dict[tuple[str, ...], None] = {}
    for name, before in old.items():
        if before.protocol != "UDP":
            continue
        after = new.get(name)
        keep = set(_ips((e.ip for e in after.endpoints), family)) if after else set()
        removed = sorted(set(_ips((e.ip for e in before.endpoints), family)) - keep)
        service_ips = _ips(_service_ips(before), family)
        for ep_ip in removed:
            for ip in service_ips:
                out[("-D", "-p", "udp", "--orig-dst", ip, "--dst-nat", ep_ip)] = None
            if before.node_port is not None:
                port = str(before.node_port)
                out[("-D", "-p", "udp", "--orig-port-dst", port, "--dst-nat", ep_ip)] = None
    for name, after in new.items():
        if after.protocol != "UDP" or not any(_has(e.ip, family) for e in after.endpoints):
            continue
        before_spi = old.get(name)
        if before_spi is not None and any(_has(e.ip, family) for e in before_spi.endpoints):
            continue
        for ip in _ips(_service_ips(after), family):
            out[("-D", "-p", "udp", "--orig-dst", ip)] = None
        if after.node_port is not None and _ips(after.cluster_ips, family):
            out[("-D", "-p", "udp", "--orig-port-dst", str(after.node_port))] = None
    return list(out)


def command(args: Sequence[str], family: int = 4) -> list[str]:
    """`conntrack ARGS` for one family's entries (`-f ipv6` after the command letter)."""
    flag = ("-f", "ipv6") if family == 6 else ()
    return ["conntrack", *args[:1], *flag, *args[1:]]


def _may_match(args: tuple[str, ...], dsts: set[str], ports: set[str]) -> bool:
    if "--orig-dst" in args:
        return args[args.index("--orig-dst") + 1] in dsts
    if "--orig-port-dst" in args:
        return args[args.index("--orig-port-dst") + 1] in ports
    return True


def clear_entries(entries: Sequence[tuple[str, ...]], run: Runner, family: int = 4) -> int:
    """Run `conntrack` for each argument list; returns how many ran without error (rc 1,
    no matching entry, is not an error). Many deletions: list the family's UDP entries
    once first and skip those that cannot match anything."""
    if not entries:
        return 0
    if len(entries) > LIST_THRESHOLD:
        r = run(command(["-L", "-p", "udp"], family))
        text = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
        dsts: set[str] = set()
        ports: set[str] = set()
        for m in _ORIG.finditer(text):
            dsts.add(m.group(1))
            ports.add(m.group(2))
        entries = [e for e in entries if _may_match(e, dsts, ports)]
    done = 0
    for args in entries:
        r = run(command(args, family))
        if r.rc in (0, 1):
            done += 1
        else:
            log.warning(
                "conntrack %s failed (rc %d): %s", " ".join(args), r.rc, first_lines(r.stderr)
            )
    return done
