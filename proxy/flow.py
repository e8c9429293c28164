"""Read-side flow control of a transport: several independent reasons to stop reading.

Reading resumes only when every reason is gone (a pipelined request waiting, an upstream
not connected yet, an upstream whose write buffer is above its high-water mark, ...).
Shared by the L7 protocol and the userspace L4 proxy (proxy/userspace/tcp.py), each with
its own reason bits. A transport already closing is never paused or resumed.
"""

from __future__ import annotations

import asyncio
from typing import Final, cast

PIPELINE: Final = 1  # a request is waiting for the one before it to be answered
CONNECTING: Final = 2  # body bytes arrived while no upstream is bound yet
UPSTREAM: Final = 4  # the upstream's write buffer is above its high-water mark
UPGRADE: Final = 8  # an Upgrade request waits for the backend's 101


class ReadFlow:
    __slots__ = ("closed", "reasons", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.reasons = 0
        self.closed = False

    def pause(self, reason: int) -> None:
        if not self.reasons and not self.closed and not self.transport.is_closing():
            self.transport.pause_reading()
        self.reasons |= reason

    def resume(self, reason: int) -> None:
        if self.reasons & reason:
            self.reasons &= ~reason
            if not self.reasons and not self.closed and not self.transport.is_closing():
                self.transport.resume_reading()

    def resume_all(self) -> None:
        if self.reasons:
            self.reasons = 0
            if not self.closed:
                self.transport.resume_reading()


def unbound_flow() -> ReadFlow:
    """A ReadFlow for a protocol whose transport is not there yet (before
    connection_made): closed, so it never pauses or resumes anything."""
    flow = ReadFlow(cast(asyncio.Transport, None))
    flow.closed = True
    return flow
