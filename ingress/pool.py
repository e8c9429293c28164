"""Keep-alive pool of upstream connections, one FIFO per endpoint (aiohttp-connector style).

Idle connections sit in a deque of (connection, release epoch). Checkout takes the oldest
live one and drops stale ones (closed by the peer) on the way; release appends. One lazy
cleanup timer per pool set, running only while something is idle, advances the epoch
every idle_timeout/2 and closes connections idle for at least idle_timeout (at most
1.5 x idle_timeout). The hot path reads no clock. The timer comes from an injected
`call_later`, so tests fire it by hand.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # (they import this module; compiled, a concrete type is a direct call)
    from ingress.pipelining import PipelinedConnection
    from ingress.upstream import UpstreamConnection


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Timers(Protocol):
    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle: ...


class EndpointPool:
    """Idle keep-alive connections to one endpoint."""

    __slots__ = (
        "_idle",
        "_owner",
        "closed",
        "hits",
        "key",
        "memo_hits",
        "memo_misses",
        "misses",
        "opened",
        "pipeline_pause",
        "pipelining",
    )

    def __init__(self, owner: PoolSet, key: tuple[str, int]) -> None:
        self.key = key
        self._owner = owner
        self._idle: deque[tuple[UpstreamConnection, int]] = deque()
        # The connection a pipelinable request went to last (see ingress/upstream.py).
        self.pipelining: PipelinedConnection | None = None
        # Pipelinable requests still to send one per connection, after a batch broke.
        self.pipeline_pause = 0
        # Responses whose head repeated the connection's last one (ingress/upstream.py).
        self.memo_hits = 0
        self.memo_misses = 0
        # For the request metrics (ingress/stats.py): acquire() found an idle connection
        # or not (take_counts), and upstream connections made and lost (counted by the
        # connections: open = the difference).
        self.hits = 0
        self.misses = 0
        self.opened = 0
        self.closed = 0

    def __len__(self) -> int:
        return len(self._idle)

    def acquire(self) -> UpstreamConnection | None:
        """The oldest idle live connection, or None (stale ones are closed on the way)."""
        idle = self._idle
        while idle:
            conn = idle.popleft()[0]
            if conn.reusable():
                self.hits += 1
                return conn
            conn.close()
        self.misses += 1
        return None

    def take_counts(self) -> tuple[int, int]:
        """(hits, misses) since the last call."""
        counts = (self.hits, self.misses)
        self.hits = self.misses = 0
        return counts

    def release(self, conn: UpstreamConnection) -> None:
        """Return a connection after a complete exchange; closed if the pool is full."""
        owner = self._owner
        if len(self._idle) >= owner.max_idle or not conn.reusable():
            conn.close()
            return
        self._idle.append((conn, owner.epoch))
        if owner.timer is None:
            owner.arm()

    def discard(self, conn: UpstreamConnection) -> None:
        """Forget a connection the peer closed while it was idle."""
        for i, (c, _) in enumerate(self._idle):
            if c is conn:
                del self._idle[i]
                return

    def expire(self, oldest_kept: int) -> None:
        idle = self._idle
        while idle and (idle[0][1] < oldest_kept or not idle[0][0].reusable()):
            idle.popleft()[0].close()

    def close_all(self) -> None:
        self.pipelining = None
        while self._idle:
            self._idle.popleft()[0].close()


class PoolSet:
    """The pools of every endpoint, keyed by (ip, port), with one lazy cleanup timer.

    A pool, once created, stays (connections keep a reference to theirs): one small
    object per endpoint ever used.
    """

    __slots__ = ("_pools", "epoch", "idle_timeout", "max_idle", "timer", "timers")

    def __init__(self, timers: Timers, max_idle: int, idle_timeout: float) -> None:
        self.timers = timers
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.epoch = 0
        self._pools: dict[tuple[str, int], EndpointPool] = {}
        self.timer: TimerHandle | None = None

    def get(self, key: tuple[str, int]) -> EndpointPool:
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = EndpointPool(self, key)
        return pool

    def memo_counts(self) -> tuple[int, int]:
        """(hits, misses) of the repeated-head memo over every endpoint."""
        pools = self._pools.values()
        return sum(p.memo_hits for p in pools), sum(p.memo_misses for p in pools)

    def endpoints(self) -> list[EndpointPool]:
        return list(self._pools.values())

    def open_count(self) -> int:
        """Upstream connections open now (made and not yet lost)."""
        return sum(p.opened - p.closed for p in self._pools.values())

    def idle_count(self) -> int:
        return sum(len(p) for p in self._pools.values())

    def arm(self) -> None:
        if self.timer is None:
            self.timer = self.timers.call_later(self.idle_timeout / 2, self.tick)

    def tick(self) -> None:
        """Advance the epoch; close what idled two full epochs (>= idle_timeout)."""
        self.timer = None
        self.epoch += 1
        oldest_kept = self.epoch - 2
        idle = False
        for pool in self._pools.values():
            pool.expire(oldest_kept)
            idle = idle or bool(len(pool))
        if idle:
            self.arm()

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for pool in self._pools.values():
            pool.close_all()
        self._pools.clear()
