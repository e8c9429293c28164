"""Fixtures of the L7 proxy tests (the router's tests need none of them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ingress.gwconfkit import Rig
from tests.ingress.l7kit import LoopThread


@pytest.fixture(scope="module")
def lt() -> Iterator[LoopThread]:
    """One background uvloop per test module, for the proxy and its backends."""
    loop_thread = LoopThread()
    try:
        yield loop_thread
    finally:
        loop_thread.stop()


@pytest.fixture(scope="module")
def rig(lt: LoopThread) -> Iterator[Rig]:
    """The Gateway API conformance rig: echo pods and seaway on loopback (gwconfkit)."""
    r = Rig(lt)
    try:
        yield r
    finally:
        r.close()
