"""Runs a process's HealthRegistry (proxy/outlier.py) on its event loop: one loop timer for
the registry's timer wheel (armed only while some endpoint is ejected), probes of ejected
endpoints as short tasks (at most MAX_PROBES at once; the rest wait their turn), and one
log line per ejection and per return.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable

from proxy.outlier import HealthEvent, HealthRegistry, Probe
from proxy.probes import probe

log = logging.getLogger("seaway.outlier")

MAX_PROBES = 256  # probes in flight per process
_LATE = 0.001  # seconds past a wheel tick to wake up (a loop timer may fire a hair early)

ProbeFn = Callable[[str, tuple[str, int], str, float], Awaitable[bool]]


def log_event(event: HealthEvent) -> None:
    if event.what == "returned":
        log.info("%s", event.message())
    else:
        log.warning("%s", event.message())


class HealthRunner:
    __slots__ = ("_at", "_queue", "_send", "_tasks", "_timer", "loop", "registry")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, registry: HealthRegistry, send: ProbeFn = probe
    ) -> None:
        self.loop = loop
        self.registry = registry
        self._send = send
        self._timer: asyncio.TimerHandle | None = None
        self._at = math.inf
        self._tasks: set[asyncio.Task[None]] = set()
        self._queue: deque[Probe] = deque()
        registry.wake = self.arm
        registry.on_event = log_event

    def arm(self) -> None:
        """Wake up when the wheel's next timer is due (earlier than now armed: re-arm)."""
        at = self.registry.wheel.next_wakeup()
        if at is None or at >= self._at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._at = at
        self._timer = self.loop.call_at(at + _LATE, self._run)

    def _run(self) -> None:
        self._timer = None
        self._at = math.inf
        for p in self.registry.tick():
            self._queue.append(p)
        self._start_probes()
        self.arm()

    def _start_probes(self) -> None:
        while self._queue and len(self._tasks) < MAX_PROBES:
            task = self.loop.create_task(self._probe(self._queue.popleft()))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _probe(self, p: Probe) -> None:
        try:
            ok = await self._send(p.how, p.address, p.path, p.timeout)
        except Exception:  # a probe must never take the runner down
            log.exception("probe of %s failed", p.address)
            ok = False
        self.registry.probed(p, ok)
        self.arm()
        self.loop.call_soon(self._start_probes)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._at = math.inf
        self._queue.clear()
        for task in list(self._tasks):
            task.cancel()
        self.registry.wake = None
