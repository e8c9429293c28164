"""Active health checks, the pure scheduler (proxy/active_checks.py) with an injected clock:
thresholds both ways, first checks spread over the interval, targets from the Snapshot's
annotated Services, and 10,000 endpoints on one wheel with the timer work counted."""

from __future__ import annotations

import random
from collections import Counter

from discovery.model import EndpointHealth, LoadBalancing
from discovery.snapshot import EndpointInfo, ServicePortInfo, ServicePortName, Snapshot
from proxy.active_checks import ActiveChecks, CheckSpec, check_targets
from proxy.outlier import HTTP_GET, TCP

SPEC = CheckSpec(HTTP_GET, "/healthz", 5.0, 1.0, healthy=2, unhealthy=3)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def step(checks: ActiveChecks, clock: Clock, seconds: float, ok: bool) -> list[bool]:
    """Run `seconds` of checks answering `ok`; the state changes seen."""
    changes = []
    end = clock.now + seconds
    while clock.now < end:
        clock.now = round(clock.now + 0.1, 6)
        for check in checks.due():
            changes.append(checks.record(check, ok))
    return [c for c in changes if c]


def test_down_after_unhealthy_threshold_and_back_after_healthy_threshold() -> None:
    clock = Clock()
    checks = ActiveChecks(clock, random.Random(1))
    a = ("10.0.0.1", 80)
    checks.set_targets({a: SPEC})
    step(checks, clock, 6, True)
    assert checks.state(a) == "passing" and checks.checks == 1
    seen = 0
    while a not in checks.down:
        step(checks, clock, 0.1, False)
        seen = checks.failed
    assert seen == 3
    assert checks.state(a) == "failing"
    before = checks.checks
    while a in checks.down:
        step(checks, clock, 0.1, True)
    assert checks.checks - before == 2


def test_a_pass_breaks_a_failure_streak() -> None:
    clock = Clock()
    checks = ActiveChecks(clock, random.Random(2))
    a = ("10.0.0.1", 80)
    checks.set_targets({a: SPEC})
    results = [False, False, True, False, False, True, False, False]
    for ok in results:
        while True:
            clock.now = round(clock.now + 0.1, 6)
            due = checks.due()
            if due:
                checks.record(due[0], ok)
                break
    assert a not in checks.down


def test_endpoints_no_longer_checked_are_not_down() -> None:
    clock = Clock()
    checks = ActiveChecks(clock, random.Random(3))
    a, b = ("10.0.0.1", 80), ("10.0.0.2", 80)
    checks.set_targets({a: SPEC, b: SPEC})
    step(checks, clock, 20, False)
    assert checks.down == {a, b}
    assert checks.set_targets({b: SPEC})  # a changed the down set
    assert checks.down == {b} and len(checks.wheel) + len(checks.busy) == 1


def test_targets_come_from_annotated_services_only() -> None:
    def port(name: str, health: EndpointHealth, ips: list[str]) -> ServicePortInfo:
        eps = tuple(EndpointInfo(ip, 8080) for ip in ips)
        return ServicePortInfo(
            name=ServicePortName("default", name, "", "TCP"), cluster_ips=("10.96.0.1",),
            port=80, protocol="TCP", load_balancing=LoadBalancing(health=health),
            all_endpoints=eps, endpoints=eps,
        )

    checked = EndpointHealth(check_interval=5.0)
    by_path = EndpointHealth(check_interval=2.0, check_path="/ready")
    snap = Snapshot(generation=1, service_ports={
        p.name: p for p in (
            port("plain", EndpointHealth(), ["10.0.0.1"]),
            port("tcp", checked, ["10.0.0.2", "10.0.0.3"]),
            port("http", by_path, ["10.0.0.4"]),
        )
    })
    targets = check_targets(snap)
    assert set(targets) == {("10.0.0.2", 8080), ("10.0.0.3", 8080), ("10.0.0.4", 8080)}
    assert targets[("10.0.0.2", 8080)].how == TCP
    assert targets[("10.0.0.4", 8080)] == CheckSpec(HTTP_GET, "/ready", 2.0, 2.0, 2, 3)


def test_ten_thousand_endpoints_on_one_wheel() -> None:
    """10,000 endpoints checked every 5 s for a simulated minute: about 12 checks each,
    first checks spread over the first interval, and the wheel looks at each timer entry
    once per check (no scan of every endpoint per tick)."""
    clock = Clock()
    checks = ActiveChecks(clock, random.Random(4))
    targets = {(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 80): SPEC for i in range(10_000)}
    checks.set_targets(targets)
    per_check: Counter[tuple[str, int]] = Counter()
    first_second: list[int] = []
    ticks = 0
    while clock.now < 160.0:
        clock.now = round(clock.now + 0.1, 6)
        ticks += 1
        due = checks.due()
        if clock.now <= 101.0:
            first_second.append(len(due))
        for check in due:
            per_check[check.address] += 1
            checks.record(check, True)
    assert len(per_check) == 10_000
    assert min(per_check.values()) >= 11 and max(per_check.values()) <= 13
    assert checks.wheel.examined == checks.wheel.fired == checks.checks
    assert max(first_second) < 2 * 10_000 * 0.1 / SPEC.interval  # spread, not all at once
    assert ticks == 600
