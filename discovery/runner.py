"""When to sync: kube-proxy's BoundedFrequencyRunner, and its asyncio driver.

`BoundedFrequencyRunner` is the pure state machine (no asyncio, injected clock):
- kicks coalesce: any number of kicks before a run starts cause one run;
- at most one run start per `min_interval` (a kick soon after a run waits);
- at least one run per `max_interval` after the previous one finished, kicked or not
  (`max_interval` <= 0 or infinite: no periodic runs);
- after a failed run, another one `retry_interval` later (still no sooner than
  `min_interval` after the failed run started);
- a kick during a run causes another run after it.
Before the first run nothing is due until a kick (or `max_interval` after creation).

`SyncRunner` drives it on an event loop: `kick()` from any callback, `await run()` until
cancelled; an exception from the sync function is logged and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class BoundedFrequencyRunner:
    """Pure scheduling state: ask `due()` / `delay()`, report `started()` / `finished()`."""

    __slots__ = (
        "_clock",
        "_created",
        "_last_finish",
        "_last_start",
        "_pending",
        "_retry_at",
        "_running",
        "consecutive_failures",
        "failures",
        "max_interval",
        "min_interval",
        "retry_interval",
        "runs",
    )

    def __init__(
        self,
        min_interval: float,
        max_interval: float,
        retry_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if min_interval < 0 or retry_interval < 0:
            raise ValueError("min_interval and retry_interval must be >= 0")
        if 0 < max_interval < min_interval:
            raise ValueError(
                f"max_interval ({max_interval}) must be >= min_interval ({min_interval})"
            )
        self.min_interval = min_interval
        self.max_interval = max_interval if max_interval > 0 else math.inf
        self.retry_interval = retry_interval
        self._clock = clock
        self._created = clock()
        self._last_start: float | None = None
        self._last_finish: float | None = None
        self._retry_at: float | None = None
        self._pending = False
        self._running = False
        self.runs = 0
        self.failures = 0
        self.consecutive_failures = 0

    @property
    def running(self) -> bool:
        return self._running

    @property
    def pending(self) -> bool:
        """A kick is waiting for a run to start."""
        return self._pending

    def kick(self) -> None:
        """Ask for a run; cheap, and any number of kicks before it starts count as one."""
        self._pending = True

    def next_run(self) -> float:
        """Clock time at which the next run is due (math.inf while a run is going on)."""
        if self._running:
            return math.inf
        since = self._created if self._last_finish is None else self._last_finish
        due = since + self.max_interval
        earliest = -math.inf if self._last_start is None else self._last_start + self.min_interval
        if self._pending:
            due = min(due, earliest)
        if self._retry_at is not None:
            due = min(due, max(self._retry_at, earliest))
        return due

    def delay(self) -> float:
        """Seconds from now until the next run is due (0 when due, inf when running)."""
        return max(0.0, self.next_run() - self._clock())

    def due(self) -> bool:
        return self.next_run() <= self._clock()

    def started(self) -> None:
        """A run starts now; kicks from here on cause another run after it."""
        if self._running:
            raise RuntimeError("a run is already in progress")
        self._running = True
        self._pending = False
        self._last_start = self._clock()

    def finished(self, ok: bool) -> None:
        """The run ended, successfully or not (a failure schedules a retry)."""
        if not self._running:
            raise RuntimeError("no run in progress")
        self._running = False
        now = self._last_finish = self._clock()
        self.runs += 1
        if ok:
            self._retry_at = None
            self.consecutive_failures = 0
        else:
            self._retry_at = now + self.retry_interval
            self.failures += 1
            self.consecutive_failures += 1


class SyncRunner:
    """Runs `sync` on the event loop under BoundedFrequencyRunner's rules."""

    __slots__ = ("_sync", "_wake", "state")

    def __init__(
        self,
        sync: Callable[[], Awaitable[None]],
        min_interval: float,
        max_interval: float,
        retry_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sync = sync
        self.state = BoundedFrequencyRunner(min_interval, max_interval, retry_interval, clock)
        self._wake = asyncio.Event()

    def kick(self) -> None:
        """Request a sync (safe to call from any callback on the loop's thread)."""
        self.state.kick()
        self._wake.set()

    async def run(self) -> None:
        """Sync whenever due, until cancelled."""
        state = self.state
        wake = self._wake
        while True:
            wake.clear()
            delay = state.delay()
            if delay > 0:
                if math.isinf(delay):
                    await wake.wait()
                else:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow
                    # a cancellation that arrives as the wait completes (see kube_watch.py)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await wake.wait()
                continue
            state.started()
            try:
                await self._sync()
            except Exception:
                state.finished(False)
                log.exception(
                    "sync failed (%d in a row); next attempt in %.2fs",
                    state.consecutive_failures,
                    state.delay(),
                )
            except BaseException:  # cancelled: leave the state consistent, then stop
                state.finished(False)
                raise
            else:
                state.finished(True)
