"""ReadFlow: pause reasons do not undo each other (fake transport, no I/O)."""

from __future__ import annotations

import asyncio
from typing import cast

from proxy.flow import ReadFlow
from proxy.userspace.tcp import BACKPRESSURE, CONNECTING


class FakeTransport:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.closing = False

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")

    def is_closing(self) -> bool:
        return self.closing


def gate() -> tuple[ReadFlow, FakeTransport]:
    t = FakeTransport()
    return ReadFlow(cast(asyncio.Transport, t)), t


def test_two_reasons_resume_only_when_both_clear() -> None:
    g, t = gate()
    g.pause(CONNECTING)
    g.pause(BACKPRESSURE)
    g.resume(CONNECTING)
    assert t.calls == ["pause"]
    g.resume(BACKPRESSURE)
    assert t.calls == ["pause", "resume"]


def test_repeated_pause_and_unknown_resume_are_no_ops() -> None:
    g, t = gate()
    g.pause(BACKPRESSURE)
    g.pause(BACKPRESSURE)
    g.resume(CONNECTING)
    assert t.calls == ["pause"]
    g.resume(BACKPRESSURE)
    g.resume(BACKPRESSURE)
    assert t.calls == ["pause", "resume"]


def test_closing_transport_is_left_alone() -> None:
    g, t = gate()
    g.pause(BACKPRESSURE)
    t.closing = True
    g.resume(BACKPRESSURE)
    assert t.calls == ["pause"]
    assert g.reasons == 0
