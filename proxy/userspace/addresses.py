"""Host addresses (which IPs are local) and the dummy interface cluster IPs are bound to.

Both talk to the kernel through pyroute2 (netlink); nothing here is on a hot path.

pyroute2's synchronous IPRoute drives an asyncio loop of its own, so it cannot run in a
thread whose loop is running, and uvloop cannot open netlink sockets: call these functions
from a worker thread (`asyncio.to_thread`); each opens its IPRoute on a private selector
loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pyroute2 costs 0.2 s of CPU to import: only when netlink is used
    from pyroute2 import IPRoute

log = logging.getLogger(__name__)

DUMMY_INTERFACE = "seaway0"
IFA_F_NODAD = 0x02
RTN_LOCAL = 2
# How long to wait for the kernel to install an IPv6 address's local route.
LOCAL_ROUTE_WAIT = 1.0
LOCAL_ROUTE_POLL = 0.005


@contextlib.contextmanager
def _netlink() -> Iterator[IPRoute]:
    from pyroute2 import IPRoute

    loop = asyncio.SelectorEventLoop()
    try:
        with IPRoute(use_event_loop=loop) as ipr:
            yield ipr
    finally:
        loop.close()


def host_addresses() -> frozenset[str]:
    """Every IPv4 and IPv6 address configured on this host's interfaces."""
    out: set[str] = set()
    with _netlink() as ipr:
        for msg in ipr.get_addr():
            addr = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
            if addr:
                out.add(str(addr))
    return frozenset(out)


class DummyInterface:
    """A dummy link holding addresses so the host accepts (and we can bind) them.

    This is what kube-proxy's IPVS mode does with kube-ipvs0. `sync` makes the link's
    addresses exactly the given set (creating the link when needed); `remove` deletes the
    link and with it every address.
    """

    def __init__(self, name: str = DUMMY_INTERFACE) -> None:
        self.name = name

    def _index(self, ipr: IPRoute) -> int | None:
        found = ipr.link_lookup(ifname=self.name)
        return int(found[0]) if found else None

    def _create(self, ipr: IPRoute) -> None:
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            ipr.link("add", ifname=self.name, kind="dummy")
        except NetlinkError as e:
            if e.code != errno.EOPNOTSUPP:
                raise
            # No dummy driver in this kernel (some sandboxes): an empty bridge holds
            # local addresses just as well.
            log.warning("no dummy link support; using an empty bridge for %s", self.name)
            ipr.link("add", ifname=self.name, kind="bridge")

    def exists(self) -> bool:
        with _netlink() as ipr:
            return self._index(ipr) is not None

    def _current(self, ipr: IPRoute, index: int) -> dict[str, int]:
        """Addresses on the link -> prefix length (the kernel's own link-local ones left out)."""
        out: dict[str, int] = {}
        for m in ipr.get_addr(index=index):
            ip = str(m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS"))
            if not ipaddress.ip_address(ip).is_link_local:
                out[ip] = int(m.get("prefixlen"))
        return out

    def addresses(self) -> frozenset[str]:
        with _netlink() as ipr:
            index = self._index(ipr)
            return frozenset() if index is None else frozenset(self._current(ipr, index))

    def sync(self, ips: Iterable[str]) -> None:
        want = {str(ipaddress.ip_address(ip)) for ip in ips}
        with _netlink() as ipr:
            index = self._index(ipr)
            if index is None:
                if not want:
                    return
                self._create(ipr)
                index = self._index(ipr)
                if index is None:
                    raise RuntimeError(f"could not create dummy interface {self.name}")
                log.info("created dummy interface %s", self.name)
            ipr.link("set", index=index, state="up")
            have = self._current(ipr, index)
            added_v6 = []
            for ip in sorted(want - have.keys()):
                if ipaddress.ip_address(ip).version == 4:
                    ipr.addr("add", index=index, address=ip, prefixlen=32)
                else:  # no duplicate address detection, or the address stays tentative
                    ipr.addr("add", index=index, address=ip, prefixlen=128, flags=IFA_F_NODAD)
                    added_v6.append(ip)
                log.debug("bound %s to %s", ip, self.name)
            for ip in added_v6:
                _await_local_route(ipr, ip)
            for ip in sorted(have.keys() - want):
                ipr.addr("del", index=index, address=ip, prefixlen=have[ip])
                log.debug("unbound %s from %s", ip, self.name)

    def remove(self) -> None:
        with _netlink() as ipr:
            index = self._index(ipr)
            if index is not None:
                ipr.link("del", index=index)
                log.info("removed dummy interface %s", self.name)


def _await_local_route(ipr: IPRoute, ip: str) -> None:
    """Wait (bounded) until `ip` routes locally. The kernel installs an IPv6 address's
    local route from a work queue after the netlink answer, even without duplicate address
    detection; until then a connection to it takes the /128 prefix route onto the link and
    fails with EHOSTUNREACH (seen on an empty bridge). IPv4 local routes come at once."""
    from pyroute2.netlink.exceptions import NetlinkError

    deadline = time.monotonic() + LOCAL_ROUTE_WAIT
    while True:
        try:
            routes = ipr.route("get", dst=ip)
        except NetlinkError:
            routes = []
        if any(r.get("type") == RTN_LOCAL for r in routes):
            return
        if time.monotonic() >= deadline:
            log.warning("the local route of %s is not installed after %.1fs", ip, LOCAL_ROUTE_WAIT)
            return
        time.sleep(LOCAL_ROUTE_POLL)
