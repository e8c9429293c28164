"""The daemon's active health checks on its loop (the pure part: proxy/active_checks.py):
`update` follows every Snapshot, probes go out through one ProbeDriver, and `on_change`
hears the set of endpoints down whenever it changes (the daemon hands it to the L4 proxy
and to every L7 worker). Each endpoint going down or coming back is logged once."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from discovery.snapshot import Snapshot
from proxy.active_checks import ActiveChecks, Check, check_targets
from proxy.health_runner import ProbeDriver, ProbeFn
from proxy.outlier import Address, endpoint_text
from proxy.probes import probe

log = logging.getLogger("seaway.health")


class ActiveChecker:
    __slots__ = ("_send", "checks", "driver", "on_change")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_change: Callable[[frozenset[Address]], None],
        send: ProbeFn = probe,
        rng: random.Random | None = None,
    ) -> None:
        self.on_change = on_change
        self._send = send
        self.checks = ActiveChecks(loop.time, rng)
        self.driver: ProbeDriver[Check, Address] = ProbeDriver(
            loop, self.checks.wheel, self.checks.due, self._probe, self._result
        )

    def update(self, snapshot: Snapshot) -> None:
        """Check what the Snapshot's annotated Services name, from now on."""
        if self.checks.set_targets(check_targets(snapshot)):
            self.on_change(frozenset(self.checks.down))
        self.driver.arm()

    def _probe(self, check: Check) -> Awaitable[bool]:
        s = check.spec
        return self._send(s.how, check.address, s.path, s.timeout)

    def _result(self, check: Check, ok: bool) -> None:
        if not self.checks.record(check, ok):
            return
        s = check.spec
        what = f"GET {s.path}" if s.path else "TCP connect"
        ep = endpoint_text(check.address)
        if ok:
            log.info("endpoint %s passed %d health checks (%s): back in rotation", ep,
                     s.healthy, what)
        else:
            log.warning("endpoint %s failed %d health checks in a row (%s): out of rotation",
                        ep, s.unhealthy, what)
        self.on_change(frozenset(self.checks.down))

    def close(self) -> None:
        self.driver.close()
