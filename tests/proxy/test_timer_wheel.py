"""The timer wheel: never early, at most a tick late, O(1) work per timer (counted), and
10,000 jittered timers spread over the ticks instead of firing together."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from proxy.timer_wheel import TimerWheel


def test_fires_after_its_deadline_never_before() -> None:
    w: TimerWheel[str] = TimerWheel(tick=0.1, slots=16)
    w.schedule("a", 0.55)
    assert w.advance(0.5) == []
    assert w.advance(0.59) == []  # the tick after 0.55 is 0.6
    assert w.advance(0.6) == ["a"]
    assert w.advance(10.0) == []
    assert len(w) == 0


def test_a_deadline_in_the_past_fires_at_the_next_tick() -> None:
    w: TimerWheel[str] = TimerWheel(tick=0.1, slots=16, now=5.0)
    w.schedule("late", 1.0)
    assert w.advance(5.05) == []
    assert w.advance(5.1) == ["late"]


def test_rescheduling_moves_and_cancel_removes() -> None:
    w: TimerWheel[str] = TimerWheel(tick=1.0, slots=8)
    w.schedule("a", 3.0)
    w.schedule("b", 3.0)
    w.schedule("a", 5.0)
    assert w.cancel("b")
    assert not w.cancel("b")
    assert w.advance(4.0) == []
    assert "a" in w and w.deadline("a") == 5.0
    assert w.advance(5.0) == ["a"]


def test_timers_beyond_one_turn_wait_their_round() -> None:
    w: TimerWheel[str] = TimerWheel(tick=1.0, slots=4)
    w.schedule("far", 10.0)  # the same bucket as 2.0 and 6.0
    w.schedule("near", 2.0)
    assert w.advance(2.0) == ["near"]
    assert w.advance(6.0) == []
    assert w.advance(9.0) == []
    assert w.advance(10.0) == ["far"]


def test_a_long_gap_fires_everything_due_once() -> None:
    w: TimerWheel[int] = TimerWheel(tick=1.0, slots=4)
    for i in range(10):
        w.schedule(i, float(i + 1))
    fired = w.advance(100.0)
    assert sorted(fired) == list(range(10))
    assert w.examined == 10  # one pass over each bucket, not 100 ticks' worth


def test_ten_thousand_endpoints_cost_constant_work_per_timer() -> None:
    """10,000 health checks every 5 s (jittered +-10%) for 60 s of simulated time: every
    check fires about 12 times, each timer entry is looked at about once per firing, and
    no tick carries much more than its share (the jitter spreads the first checks)."""
    rng = random.Random(7)
    interval, tick, n = 5.0, 0.1, 10_000
    w: TimerWheel[int] = TimerWheel(tick=tick, slots=1024)
    for i in range(n):
        w.schedule(i, rng.random() * interval)
    fires: Counter[int] = Counter()
    per_tick: list[int] = []
    now = 0.0
    while now < 60.0:
        now = round(now + tick, 6)
        due = w.advance(now)
        per_tick.append(len(due))
        for i in due:
            fires[i] += 1
            w.schedule(i, now + interval * (0.9 + 0.2 * rng.random()))
    assert len(fires) == n
    assert min(fires.values()) >= 11 and max(fires.values()) <= 13
    assert w.examined == w.fired  # slots cover the interval: no entry is looked at twice
    share = n * tick / interval  # 200 checks per tick on average
    assert max(per_tick) < 2 * share


def test_next_wakeup_names_the_next_busy_tick() -> None:
    w: TimerWheel[str] = TimerWheel(tick=0.5, slots=8)
    assert w.next_wakeup() is None
    w.schedule("a", 2.2)
    assert w.next_wakeup() == pytest.approx(2.5)
    w.schedule("b", 0.7)
    assert w.next_wakeup() == pytest.approx(1.0)
