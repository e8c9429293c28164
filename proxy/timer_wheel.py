"""A hashed timing wheel (Varghese and Lauck, 1987): many timers, one clock tick at a time.

Endpoint health runs a timer per endpoint (the next active check; the next probe or the
return of an ejected endpoint). At 10,000 endpoints a task or a loop timer each would
cost 10,000 sleeping objects and a heap of them; here each timer is one dict entry in
the bucket of its tick (tick number modulo the number of slots), and the owner wakes up
once per busy tick to `advance` the wheel: the keys whose time came are returned, in
tick order. Scheduling and cancelling are O(1); advancing looks at the entries of the
buckets it passes, each entry about once per turn of the wheel (`examined` counts them,
so tests can bound the work without timing anything).

A timer fires at the first `advance` whose time has reached the tick after its deadline
(never early, at most one tick late). One timer per key: scheduling a key again moves
it. Pure: no clock of its own (times are passed in), no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
_EPS = 1e-9  # ticks: 0.6 / 0.1 is 5.999999999999999 in floating point, and means 6


class TimerWheel(Generic[K]):
    __slots__ = ("_buckets", "_slots", "_tick", "_where", "examined", "fired", "tick")

    def __init__(self, tick: float = 0.1, slots: int = 1024, now: float = 0.0) -> None:
        if tick <= 0 or slots < 1:
            raise ValueError("a timer wheel needs a positive tick and at least one slot")
        self.tick = tick
        self._slots = slots
        self._buckets: list[dict[K, int]] = [{} for _ in range(slots)]
        self._where: dict[K, int] = {}  # key -> its deadline tick
        self._tick = math.floor(now / tick + _EPS)  # the last tick advanced to
        self.examined = 0  # entries looked at by advance (work, for tests)
        self.fired = 0

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def schedule(self, key: K, when: float) -> None:
        """Fire `key` once `when` has passed (a deadline in the past: at the next tick)."""
        due = max(math.ceil(when / self.tick - _EPS), self._tick + 1)
        old = self._where.get(key)
        if old is not None:
            if old == due:
                return
            del self._buckets[old % self._slots][key]
        self._where[key] = due
        self._buckets[due % self._slots][key] = due

    def cancel(self, key: K) -> bool:
        due = self._where.pop(key, None)
        if due is None:
            return False
        del self._buckets[due % self._slots][key]
        return True

    def deadline(self, key: K) -> float | None:
        due = self._where.get(key)
        return None if due is None else due * self.tick

    def advance(self, now: float) -> list[K]:
        """The keys whose deadline passed by `now` (in tick order within one turn of the
        wheel); they are removed."""
        target = math.floor(now / self.tick + _EPS)
        start = self._tick
        if target <= start:
            return []
        fired: list[K] = []
        slots = self._slots
        buckets = self._buckets
        where = self._where
        # Past a whole turn, each bucket is looked at once (every entry due by now fires).
        last = target if target - start <= slots else start + slots
        for t in range(start + 1, last + 1):
            bucket = buckets[t % slots]
            if not bucket:
                continue
            self.examined += len(bucket)
            ripe = [k for k, due in bucket.items() if due <= target]
            if len(ripe) > 1:
                ripe.sort(key=bucket.__getitem__)
            for k in ripe:
                del bucket[k]
                del where[k]
            fired += ripe
        self._tick = target
        self.fired += len(fired)
        return fired

    def next_wakeup(self) -> float | None:
        """When the next non-empty bucket comes up (None: no timer). An entry of a later
        turn makes this early, never late: the owner advances and asks again."""
        if not self._where:
            return None
        slots = self._slots
        buckets = self._buckets
        for t in range(self._tick + 1, self._tick + slots + 1):
            if buckets[t % slots]:
                return t * self.tick
        return None  # (unreachable: some bucket holds a timer)
