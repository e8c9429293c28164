"""The contract between the daemon and each dataplane (userspace L4, iptables, nftables, L7)."""

from __future__ import annotations

from typing import Protocol

from discovery.snapshot import ServicePortName, Snapshot


class Dataplane(Protocol):
    """A dataplane makes a Snapshot real.

    `sync` receives every Snapshot the runner builds, plus the service ports that changed
    since the previous successful sync (the whole set on the first call), so it can do a
    partial sync. Raising from `sync` makes the runner retry and the next call must then
    do a full sync: a dataplane keeps its own "last sync failed" flag for that.
    """

    name: str

    async def start(self) -> None: ...

    async def sync(self, snapshot: Snapshot, changed: frozenset[ServicePortName]) -> None: ...

    async def stop(self) -> None: ...
