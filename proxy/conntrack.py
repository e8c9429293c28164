"""Pure: which UDP conntrack entries to delete after a sync (as kube-proxy does), and
deleting them through an injected Runner.

UDP has no connection end, so a flow keeps going to a removed endpoint until its
conntrack entry expires; and packets sent while a service had no endpoints leave entries
that keep them from being DNATed once endpoints appear. Both are deleted. IPv6 entries
are addressed with `-f ipv6` (conntrack lists IPv4 only by default).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence

from discovery.snapshot import ServicePortInfo, ServicePortName
from proxy.command import Runner, first_lines

log = logging.getLogger(__name__)

# Above this many deletions, list UDP entries once and delete only those that can match.
LIST_THRESHOLD = 20
_ORIG = re.compile(r"dst=(\S+) sport=\d+ dport=(\d+)")

FAMILIES = (4, 6)


def _family(ip: str) -> int:
    return 6 if ":" in ip else 4


def _flag(family: int) -> tuple[str, ...]:
    return ("-f", "ipv6") if family == 6 else ()


def _service_ips(spi: ServicePortInfo, family: int) -> list[str]:
    ips = (*spi.cluster_ips, *spi.external_ips, *spi.load_balancer_ips)
    return [ip for ip in ips if _family(ip) == family]


def stale_udp_entries(
    old: Mapping[ServicePortName, ServicePortInfo],
    new: Mapping[ServicePortName, ServicePortInfo],
    families: Iterable[int] = FAMILIES,
) -> list[tuple[str, ...]]:
    """conntrack argument lists (after `conntrack`) to run, deduplicated, in order."""
    out: dict[tuple[str, ...], None] = {}
    fams = tuple(families)
    for name, before in old.items():
        if before.protocol != "UDP":
            continue
        after = new.get(name)
        keep = {e.ip for e in after.endpoints} if after else set()
        for fam in fams:
            flag = _flag(fam)
            gone = sorted({e.ip for e in before.endpoints if _family(e.ip) == fam} - keep)
            for ep_ip in gone:
                for ip in _service_ips(before, fam):
                    out[("-D", *flag, "-p", "udp", "--orig-dst", ip, "--dst-nat", ep_ip)] = None
                if before.node_port is not None:
                    port = str(before.node_port)
                    args = ("-D", *flag, "-p", "udp", "--orig-port-dst", port, "--dst-nat", ep_ip)
                    out[args] = None
    for name, after in new.items():
        if after.protocol != "UDP" or not after.endpoints:
            continue
        before_spi = old.get(name)
        if before_spi is not None and before_spi.endpoints:
            continue
        for fam in fams:
            if not any(_family(e.ip) == fam for e in after.endpoints):
                continue
            flag = _flag(fam)
            for ip in _service_ips(after, fam):
                out[("-D", *flag, "-p", "udp", "--orig-dst", ip)] = None
            if after.node_port is not None:
                out[("-D", *flag, "-p", "udp", "--orig-port-dst", str(after.node_port))] = None
    return list(out)


def _may_match(args: tuple[str, ...], dsts: set[str], ports: set[str]) -> bool:
    if "--orig-dst" in args:
        return args[args.index("--orig-dst") + 1] in dsts
    if "--orig-port-dst" in args:
        return args[args.index("--orig-port-dst") + 1] in ports
    return True


def clear_entries(entries: Sequence[tuple[str, ...]], run: Runner) -> int:
    """Run `conntrack` for each argument list; returns how many ran without error (rc 1,
    no matching entry, is not an error). Many deletions: list UDP entries once first and
    skip those that cannot match anything."""
    if not entries:
        return 0
    if len(entries) > LIST_THRESHOLD:
        dsts: set[str] = set()
        ports: set[str] = set()
        for fam in sorted({6 if "ipv6" in e else 4 for e in entries}):
            r = run(["conntrack", "-L", *_flag(fam), "-p", "udp"])
            text = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
            for m in _ORIG.finditer(text):
                dsts.add(m.group(1))
                ports.add(m.group(2))
        entries = [e for e in entries if _may_match(e, dsts, ports)]
    done = 0
    for args in entries:
        r = run(["conntrack", *args])
        if r.rc in (0, 1):
            done += 1
        else:
            log.warning(
                "conntrack %s failed (rc %d): %s", " ".join(args), r.rc, first_lines(r.stderr)
            )
    return done
