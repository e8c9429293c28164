"""The cyclic GC is off during a daemon's start and its objects are frozen after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from proxy.app.startup_gc import StartupGc


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    was = gc.isenabled()
    yield
    gc.unfreeze()
    if was:
        gc.enable()
    else:
        gc.disable()


def test_paused_until_settled_then_the_start_objects_are_frozen() -> None:
    gc.enable()
    gc.unfreeze()
    startup = StartupGc()
    startup.pause()
    assert not gc.isenabled()
    kept = [[i] for i in range(1000)]  # what a start loads and keeps
    startup.settle()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(kept)
    startup.settle()  # idempotent: nothing more frozen, still on
    assert gc.isenabled()


def test_without_freeze_only_pauses() -> None:
    gc.enable()
    gc.unfreeze()
    startup = StartupGc(freeze=False)
    startup.pause()
    assert not gc.isenabled()
    startup.settle()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    startup = StartupGc()
    startup.pause()
    startup.settle()
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0
