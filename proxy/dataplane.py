"""The contract between the daemon and each dataplane (userspace L4, iptables, nftables, L7)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from discovery.snapshot import ServicePortName, Snapshot
from proxy.counters import Family, Totals


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


@runtime_checkable
class Draining(Protocol):
    """A dataplane that can shut down gracefully: on SIGTERM the daemon calls `drain`
    (stop accepting, let what is in flight finish within the grace period) before `stop`."""

    async def drain(self) -> None: ...


@runtime_checkable
class Counting(Protocol):
    """A dataplane that counts traffic (proxy/counters.py): `collect` returns its totals so
    far, `families` says how to read them as Prometheus metrics."""

    def collect(self) -> Totals: ...

    def families(self) -> tuple[Family, ...]: ...


@runtime_checkable
class Checked(Protocol):
    """A proxy whose balancers take the active health checks' verdicts (the userspace L4
    proxy, the L7 workers): the daemon runs the checks once (proxy/active_checker.py) and
    hands every one of these the set of endpoints failing them whenever it changes.
    Kernel-mode rules do not take them (README: "How seaway decides an endpoint is bad")."""

    def set_health_verdicts(self, down: frozenset[tuple[str, int]]) -> None: ...
