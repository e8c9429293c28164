"""Active health checks, the pure part: which endpoint to check when, and what the results
say (opt-in per Service: the seaway.dev/health-check-* annotations, model
discovery.model.EndpointHealth).

One timer wheel holds every endpoint's next check, so 10,000 endpoints cost 10,000 dict
entries and one loop timer, not 10,000 tasks. A new endpoint's first check comes at a
random point of its interval (endpoints added together are not checked together), and
every next one an interval later, jittered by +-JITTER. An endpoint starts healthy (it
is ready in Kubernetes' eyes); `unhealthy_threshold` failed checks in a row make it
down, `healthy_threshold` passes in a row make it healthy again (haproxy's fall/rise).
A check is a TCP connect, or `GET path` when the Service names one (2xx-3xx pass), within
the timeout (proxy/probes.py sends it).

The daemon runs the checks once for all its proxies (proxy/active_checker.py) and hands
the set of down endpoints to the L4 proxy and to every L7 worker, whose balancers skip
them (proxy/outlier.py: and spread over all when more than half are down). Pure: the
clock and the random source are injected.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from discovery.model import EndpointHealth
from discovery.snapshot import Snapshot
from proxy.outlier import HTTP_GET, TCP, Address
from proxy.timer_wheel import TimerWheel

JITTER = 0.1
TICK = 0.1
SLOTS = 4096


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """How one endpoint is checked: `how` TCP or HTTP_GET (proxy/outlier.py names)."""

    how: str
    path: str
    interval: float
    timeout: float
    healthy: int
    unhealthy: int

    @classmethod
    def of(cls, health: EndpointHealth) -> CheckSpec:
        how = HTTP_GET if health.check_path else TCP
        return cls(how, health.check_path, health.check_interval, health.check_timeout,
                   health.healthy_threshold, health.unhealthy_threshold)


def check_targets(snapshot: Snapshot) -> dict[Address, CheckSpec]:
    """Every endpoint to check: the usable endpoints of each Service port whose Service
    turned active checks on (an address in two such Services: the first by name wins)."""
    out: dict[Address, CheckSpec] = {}
    for name in sorted(snapshot.service_ports):
        info = snapshot.service_ports[name]
        health = info.load_balancing.health
        if not health.active or info.protocol != "TCP":
            continue
        spec = CheckSpec.of(health)
        for ep in info.endpoints:
            out.setdefault((ep.ip, ep.port), spec)
    return out


@dataclass(frozen=True, slots=True)
class Check:
    """One check to send now."""

    address: Address
    spec: CheckSpec


class ActiveChecks:
    __slots__ = ("busy", "checks", "clock", "down", "failed", "rng", "specs", "streaks", "wheel")

    def __init__(self, clock: Callable[[], float], rng: random.Random | None = None) -> None:
        self.clock = clock
        self.rng = rng or random.Random()
        self.wheel: TimerWheel[Address] = TimerWheel(TICK, SLOTS, clock())
        self.specs: dict[Address, CheckSpec] = {}
        self.streaks: dict[Address, int] = {}  # > 0: passes in a row; < 0: failures
        self.down: set[Address] = set()
        self.busy: set[Address] = set()  # checks out now
        self.checks = 0  # results so far, and how many of them failed (metrics)
        self.failed = 0

    def set_targets(self, specs: Mapping[Address, CheckSpec]) -> bool:
        """Check these endpoints from now on; True when that changed the down set (an
        endpoint that is no longer checked is not down)."""
        now = self.clock()
        for addr in [a for a in self.specs if a not in specs]:
            del self.specs[addr]
            self.streaks.pop(addr, None)
            self.busy.discard(addr)
            self.wheel.cancel(addr)
        for addr, spec in specs.items():
            if addr not in self.specs:  # new: its first check somewhere in its interval
                self.wheel.schedule(addr, now + self.rng.random() * spec.interval)
            self.specs[addr] = spec
        gone = {a for a in self.down if a not in specs}
        self.down -= gone
        return bool(gone)

    def due(self) -> list[Check]:
        """The checks whose time came (each answered with `record`)."""
        out = []
        for addr in self.wheel.advance(self.clock()):
            spec = self.specs.get(addr)
            if spec is not None:
                self.busy.add(addr)
                out.append(Check(addr, spec))
        return out

    def record(self, check: Check, ok: bool) -> bool:
        """A check's result; True when the endpoint went down or came back up."""
        addr = check.address
        spec = self.specs.get(addr)
        if spec is None or addr not in self.busy:
            return False  # no longer checked
        self.busy.discard(addr)
        interval = spec.interval * (1.0 - JITTER + 2.0 * JITTER * self.rng.random())
        self.wheel.schedule(addr, self.clock() + interval)
        self.checks += 1
        streak = self.streaks.get(addr, 0)
        if ok:
            streak = max(streak, 0) + 1
        else:
            self.failed += 1
            streak = min(streak, 0) - 1
        self.streaks[addr] = streak
        if ok and addr in self.down and streak >= spec.healthy:
            self.down.discard(addr)
            return True
        if not ok and addr not in self.down and -streak >= spec.unhealthy:
            self.down.add(addr)
            return True
        return False

    def state(self, addr: Address) -> str | None:
        """"passing", "failing" (down), or None (not checked), for the status page."""
        if addr not in self.specs:
            return None
        return "failing" if addr in self.down else "passing"
