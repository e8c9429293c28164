"""Health probing on an event loop, for the two pure schedulers that own a timer wheel:
a process's HealthRegistry (probes of ejected endpoints, proxy/outlier.py) and the
daemon's ActiveChecks (proxy/active_checks.py).

`ProbeDriver` keeps one loop timer for the wheel, armed only while it holds a timer (the
next busy tick), asks what is due, sends those probes as short tasks (at most MAX_PROBES
at once; the rest wait their turn) and hands each result back. `HealthRunner` drives a
HealthRegistry and logs its ejections and returns, once each.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

from proxy.outlier import HealthEvent, HealthRegistry, Probe
from proxy.probes import probe
from proxy.timer_wheel import TimerWheel

log = logging.getLogger("seaway.outlier")

MAX_PROBES = 256  # probes in flight per driver
_LATE = 0.001  # seconds past a wheel tick to wake up (a loop timer may fire a hair early)

P = TypeVar("P")
K = TypeVar("K", bound=Hashable)
ProbeFn = Callable[[str, tuple[str, int], str, float], Awaitable[bool]]


class ProbeDriver(Generic[P, K]):
    """Runs `due()` at the wheel's busy ticks; sends each due item with `send`, and gives
    `done(item, passed)` the result."""

    __slots__ = ("_at", "_done", "_due", "_queue", "_send", "_tasks", "_timer", "loop", "wheel")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        wheel: TimerWheel[K],
        due: Callable[[], Sequence[P]],
        send: Callable[[P], Awaitable[bool]],
        done: Callable[[P, bool], None],
    ) -> None:
        self.loop = loop
        self.wheel = wheel
        self._due = due
        self._send = send
        self._done = done
        self._timer: asyncio.TimerHandle | None = None
        self._at = math.inf
        self._tasks: set[asyncio.Task[None]] = set()
        self._queue: deque[P] = deque()

    def arm(self) -> None:
        """Wake up when the wheel's next timer is due (earlier than now armed: re-arm)."""
        at = self.wheel.next_wakeup()
        if at is None or at >= self._at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._at = at
        self._timer = self.loop.call_at(at + _LATE, self._run)

    def _run(self) -> None:
        self._timer = None
        self._at = math.inf
        self._queue.extend(self._due())
        self._start()
        self.arm()

    def _start(self) -> None:
        while self._queue and len(self._tasks) < MAX_PROBES:
            task = self.loop.create_task(self._probe(self._queue.popleft()))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _probe(self, item: P) -> None:
        try:
            ok = await self._send(item)
        except Exception:  # a probe must never take the driver down
            log.exception("health probe %r failed", item)
            ok = False
        self._done(item, ok)
        self.arm()
        self.loop.call_soon(self._start)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._at = math.inf
        self._queue.clear()
        for task in list(self._tasks):
            task.cancel()


def log_event(event: HealthEvent) -> None:
    if event.what == "returned":
        log.info("%s", event.message())
    else:
        log.warning("%s", event.message())


class HealthRunner:
    """A process's HealthRegistry on its loop: probes of ejected endpoints, and logs."""

    __slots__ = ("driver", "registry")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, registry: HealthRegistry, send: ProbeFn = probe
    ) -> None:
        self.registry = registry

        def send_probe(p: Probe) -> Awaitable[bool]:
            return send(p.how, p.address, p.path, p.timeout)

        self.driver: ProbeDriver[Probe, tuple[str, tuple[str, int]]] = ProbeDriver(
            loop, registry.wheel, registry.tick, send_probe, registry.probed
        )
        registry.wake = self.driver.arm
        registry.on_event = log_event

    def close(self) -> None:
        self.driver.close()
        self.registry.wake = None
