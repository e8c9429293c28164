"""The per-service-port state listeners point at: which endpoints, how to pick one."""

from __future__ import annotations

from collections.abc import Callable

from discovery.snapshot import ServicePortInfo, ServicePortName
from proxy.balancer import Picker


class ServiceTarget:
    """One service port as the proxy sees it. Updated in place on config changes, so
    listeners and open connections keep their reference while new connections see the
    new endpoints at once."""

    __slots__ = ("clock", "info", "name", "picker")

    def __init__(self, info: ServicePortInfo, clock: Callable[[], float]) -> None:
        self.name: ServicePortName = info.name
        self.info = info
        self.clock = clock
        self.picker = Picker(info.endpoints, info.session_affinity_timeout, clock)

    def update(self, info: ServicePortInfo) -> None:
        self.info = info
        self.picker.update(info.endpoints)
        self.picker.set_affinity(info.session_affinity_timeout, self.clock)

    def expire(self) -> None:
        if self.picker.affinity is not None:
            self.picker.affinity.expire()
