"""BoundedFrequencyRunner with a fake clock (no sleeps), and one SyncRunner test."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable

import pytest

from discovery.runner import BoundedFrequencyRunner, SyncRunner


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(
    min_interval: float = 1.0,
    max_interval: float = 60.0,
    retry_interval: float = 5.0,
) -> tuple[BoundedFrequencyRunner, FakeClock]:
    clock = FakeClock()
    return BoundedFrequencyRunner(min_interval, max_interval, retry_interval, clock), clock


def run_once(
    runner: BoundedFrequencyRunner, clock: FakeClock, ok: bool = True, took: float = 0
) -> None:
    assert runner.due()
    runner.started()
    clock.now += took
    runner.finished(ok)


def simulate(
    runner: BoundedFrequencyRunner,
    clock: FakeClock,
    kicks: Iterable[float],
    until: float,
    duration: float = 0.0,
    fail_at: Iterable[int] = (),
) -> list[float]:
    """Drive the runner like SyncRunner does: jump the clock to the next kick or the next
    due run, whichever is first. Returns the start times of the runs."""
    pending_kicks = sorted(kicks)
    failing = set(fail_at)
    starts: list[float] = []
    while True:
        next_kick = pending_kicks[0] if pending_kicks else math.inf
        next_run = runner.next_run()
        if min(next_kick, next_run) > until:
            return starts
        if next_kick <= next_run:
            clock.now = max(clock.now, next_kick)
            pending_kicks.pop(0)
            runner.kick()
            continue
        clock.now = max(clock.now, next_run)
        runner.started()
        starts.append(clock.now)
        clock.now += duration
        runner.finished(len(starts) - 1 not in failing)


def test_nothing_due_before_a_kick_then_immediately() -> None:
    runner, _ = make()
    assert not runner.due()
    assert runner.next_run() == 100.0 + 60.0
    runner.kick()
    assert runner.due()
    assert runner.delay() == 0.0


def test_bursts_coalesce_into_one_run() -> None:
    runner, clock = make()
    for _ in range(50):
        runner.kick()
    run_once(runner, clock)
    assert not runner.pending
    assert not runner.due()
    assert runner.runs == 1


def test_min_interval_respected() -> None:
    runner, clock = make(min_interval=2.0)
    runner.kick()
    run_once(runner, clock, took=0.5)  # started at 100.0, finished at 100.5
    clock.now = 101.0
    runner.kick()
    assert not runner.due()
    assert runner.next_run() == 102.0
    assert runner.delay() == 1.0
    clock.now = 102.0
    assert runner.due()


def test_kick_long_after_min_interval_runs_at_once() -> None:
    runner, clock = make(min_interval=2.0)
    runner.kick()
    run_once(runner, clock)
    clock.now = 110.0
    runner.kick()
    assert runner.due()


def test_simulated_burst_min_interval() -> None:
    runner, clock = make(min_interval=1.0, max_interval=1000.0)
    kicks = [100.0 + i * 0.1 for i in range(35)]  # a kick every 100 ms for 3.5 s
    starts = simulate(runner, clock, kicks, until=110.0)
    assert starts == [100.0, 101.0, 102.0, 103.0, 104.0]


def test_max_interval_forces_runs_without_kicks() -> None:
    runner, clock = make(min_interval=1.0, max_interval=30.0)
    starts = simulate(runner, clock, kicks=[100.0], until=200.0, duration=2.0)
    # Each periodic run is max_interval after the previous one finished.
    assert starts == [100.0, 132.0, 164.0, 196.0]


def test_max_interval_zero_disables_periodic_runs() -> None:
    runner, clock = make(min_interval=1.0, max_interval=0)
    assert simulate(runner, clock, kicks=[100.0], until=10_000.0) == [100.0]


def test_retry_after_failure() -> None:
    runner, clock = make(min_interval=1.0, max_interval=60.0, retry_interval=5.0)
    runner.kick()
    run_once(runner, clock, ok=False, took=0.5)  # failed, finished at 100.5
    assert runner.failures == 1 and runner.consecutive_failures == 1
    assert runner.next_run() == 105.5
    clock.now = 105.0
    assert not runner.due()
    clock.now = 105.5
    run_once(runner, clock, ok=True)
    assert runner.consecutive_failures == 0
    # Success clears the retry: next is the periodic run.
    assert runner.next_run() == 105.5 + 60.0


def test_retry_never_sooner_than_min_interval() -> None:
    runner, clock = make(min_interval=10.0, max_interval=60.0, retry_interval=1.0)
    runner.kick()
    run_once(runner, clock, ok=False)
    assert runner.next_run() == 110.0


def test_repeated_failures_keep_retrying() -> None:
    runner, clock = make(min_interval=1.0, max_interval=1000.0, retry_interval=3.0)
    starts = simulate(runner, clock, kicks=[100.0], until=112.0, fail_at=[0, 1, 2])
    assert starts == [100.0, 103.0, 106.0, 109.0]
    assert runner.failures == 3 and runner.consecutive_failures == 0


def test_kick_during_run_leads_to_another_run_after_it() -> None:
    runner, clock = make(min_interval=1.0)
    runner.kick()
    runner.started()
    assert runner.next_run() == math.inf  # never two at once
    clock.now = 100.3
    runner.kick()
    assert not runner.due()
    clock.now = 100.4
    runner.finished(True)
    assert runner.pending
    assert runner.next_run() == 101.0  # min_interval after the start
    clock.now = 101.0
    run_once(runner, clock)
    assert not runner.due()


def test_kick_during_long_run_runs_right_after() -> None:
    runner, clock = make(min_interval=1.0)
    runner.kick()
    runner.started()
    runner.kick()
    clock.now = 105.0
    runner.finished(True)
    assert runner.due()


def test_state_errors_and_bad_intervals() -> None:
    runner, _ = make()
    with pytest.raises(RuntimeError):
        runner.finished(True)
    runner.started()
    with pytest.raises(RuntimeError):
        runner.started()
    with pytest.raises(ValueError, match="max_interval"):
        BoundedFrequencyRunner(10.0, 5.0)
    with pytest.raises(ValueError):
        BoundedFrequencyRunner(-1.0, 5.0)


def test_sync_runner_runs_on_kick_and_retries_failures() -> None:
    async def main() -> list[str]:
        calls: list[str] = []
        first_ok = asyncio.Event()
        second_ok = asyncio.Event()

        async def sync() -> None:
            calls.append("call")
            if len(calls) == 1:
                raise RuntimeError("boom")  # logged and retried
            if not first_ok.is_set():
                first_ok.set()
            else:
                second_ok.set()

        runner = SyncRunner(sync, min_interval=0.001, max_interval=60.0, retry_interval=0.001)
        task = asyncio.create_task(runner.run())
        try:
            runner.kick()
            await asyncio.wait_for(first_ok.wait(), 10)
            assert runner.state.failures == 1
            runner.kick()
            await asyncio.wait_for(second_ok.wait(), 10)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        return calls

    assert asyncio.run(main()) == ["call", "call", "call"]
