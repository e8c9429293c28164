"""The cyclic garbage collector around a daemon's start.

A start loads the whole config (10,000 Services and their EndpointSlices: about a
million Python objects, all of them kept) and builds the first Snapshot and ruleset from
it. With the collector on, every full collection walks all of those objects again
(a few tenths of a second each, several times during a start) and frees nothing: the
objects are alive, and nothing in them forms cycles. So the collector is paused from the
daemon's start until its first successful sync, and the objects that then exist are
frozen (`gc.freeze()`: moved to a generation no collection walks; refcounting still
frees them when they are dropped). Later syncs allocate far less, with the collector on.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


class StartupGc:
    """`pause()` when the daemon starts; `settle()` after its first successful sync (or
    when it stops before one). Idempotent; leaves the collector off if it was off.
    `freeze=False` (a daemon inside a test process) only pauses: freezing would keep
    whatever cycles the tests before it left behind."""

    __slots__ = ("_paused", "freeze")

    def __init__(self, freeze: bool = True) -> None:
        self.freeze = freeze
        self._paused = False

    def pause(self) -> None:
        if gc.isenabled():
            gc.disable()
            self._paused = True

    def settle(self) -> None:
        if not self._paused:
            return
        self._paused = False
        if self.freeze:
            gc.freeze()
        gc.enable()
        log.debug("cyclic GC on; %d objects of the start frozen", gc.get_freeze_count())
