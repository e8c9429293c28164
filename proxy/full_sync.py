"""When a kernel dataplane's next sync must be a full one, on top of failures: every
`period` seconds (an hour, like kube-proxy), to repair what someone else changed in
seaway's rules. Shared by the iptables and nftables dataplanes. Pure: the clock is
injected."""

from __future__ import annotations

import time
from collections.abc import Callable

FULL_SYNC_PERIOD = 3600.0


class PeriodicFullSync:
    """`due()` before each sync (True: force a full one); `synced(full)` after a
    successful one. The period counts from the start of the last full sync."""

    __slots__ = ("_clock", "_last_full", "_started", "period")

    def __init__(
        self, period: float = FULL_SYNC_PERIOD, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.period = period
        self._clock = clock
        self._last_full: float | None = None
        self._started = 0.0

    def due(self) -> bool:
        self._started = now = self._clock()
        return self._last_full is None or now - self._last_full > self.period

    def synced(self, full: bool) -> None:
        if full:
            self._last_full = self._started
