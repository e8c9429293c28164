"""Keep-alive pool of upstream connections, one FIFO per endpoint (aiohttp-connector style).

Idle connections sit in a deque of (connection, last_used). Checkout takes the oldest
live one and drops stale ones (closed by the peer, or idle longer than the timeout) on
the way; release appends. One lazy cleanup timer per pool set closes connections that
idle too long, re-armed only while something is idle. The loop is injected (`call_at`,
`time`) so tests drive the timer by hand.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol


class Pooled(Protocol):
    """What the pool needs from a connection."""

    def reusable(self) -> bool: ...

    def close(self) -> None: ...


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle: ...


class EndpointPool:
    """Idle keep-alive connections to one endpoint."""

    __slots__ = ("_idle", "_owner", "key")

    def __init__(self, owner: PoolSet, key: tuple[str, int]) -> None:
        self.key = key
        self._owner = owner
        self._idle: deque[tuple[Pooled, float]] = deque()

    def __len__(self) -> int:
        return len(self._idle)

    def acquire(self) -> Pooled | None:
        """The oldest idle live connection, or None (stale ones are closed on the way)."""
        idle = self._idle
        if not idle:
            return None
        now = self._owner.clock.time()
        limit = self._owner.idle_timeout
        while idle:
            conn, last = idle.popleft()
            if conn.reusable() and now - last < limit:
                return conn
            conn.close()
        return None

    def release(self, conn: Pooled) -> None:
        """Return a connection after a complete exchange; closed if the pool is full."""
        if len(self._idle) >= self._owner.max_idle or not conn.reusable():
            conn.close()
            return
        self._idle.append((conn, self._owner.clock.time()))
        self._owner.arm()

    def discard(self, conn: Pooled) -> None:
        """Forget a connection the peer closed while it was idle."""
        for i, (c, _) in enumerate(self._idle):
            if c is conn:
                del self._idle[i]
                return

    def expire(self, now: float) -> None:
        idle = self._idle
        limit = self._owner.idle_timeout
        while idle and (now - idle[0][1] >= limit or not idle[0][0].reusable()):
            idle.popleft()[0].close()

    def close_all(self) -> None:
        while self._idle:
            self._idle.popleft()[0].close()


class PoolSet:
    """The pools of every endpoint, keyed by (ip, port), with one lazy cleanup timer."""

    __slots__ = ("_pools", "_timer", "clock", "idle_timeout", "max_idle")

    def __init__(self, clock: Clock, max_idle: int, idle_timeout: float) -> None:
        self.clock = clock
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self._pools: dict[tuple[str, int], EndpointPool] = {}
        self._timer: TimerHandle | None = None

    def get(self, key: tuple[str, int]) -> EndpointPool:
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = EndpointPool(self, key)
        return pool

    def idle_count(self) -> int:
        return sum(len(p) for p in self._pools.values())

    def arm(self) -> None:
        if self._timer is None:
            when = self.clock.time() + self.idle_timeout
            self._timer = self.clock.call_at(when, self._cleanup)

    def _cleanup(self) -> None:
        self._timer = None
        now = self.clock.time()
        for key, pool in list(self._pools.items()):
            pool.expire(now)
            if not len(pool):
                del self._pools[key]
        if self._pools:
            self.arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for pool in self._pools.values():
            pool.close_all()
        self._pools.clear()
