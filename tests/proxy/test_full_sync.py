"""The hourly full sync both kernel dataplanes share (proxy/full_sync.py)."""

from __future__ import annotations

from proxy.full_sync import PeriodicFullSync


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_first_sync_is_full_then_one_per_period_from_its_start() -> None:
    clock = Clock()
    periodic = PeriodicFullSync(period=60.0, clock=clock)
    assert periodic.due()
    clock.now += 5  # the full sync took 5 s
    periodic.synced(full=True)
    clock.now = 1059.0
    assert not periodic.due()
    periodic.synced(full=False)
    clock.now = 1060.5  # 60 s after the start of the last full sync
    assert periodic.due()
    periodic.synced(full=True)
    clock.now = 1100.0
    assert not periodic.due()


def test_a_sync_that_was_not_full_does_not_reset_the_period() -> None:
    clock = Clock()
    periodic = PeriodicFullSync(period=60.0, clock=clock)
    assert periodic.due()
    periodic.synced(full=False)  # forced, but it failed over to nothing full
    clock.now += 1
    assert periodic.due()
