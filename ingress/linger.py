"""Lingering close, as nginx's `lingering_close on` (its default).

When seaway answers a request before reading its whole body (413 for a body over the
limit, a refusal) and then closes, closing at once while the client is still sending
makes the kernel answer the client's next segments with a reset: the client's writes fail
with "connection reset by peer", and many clients then report that instead of the answer
they were sent. So, as nginx does, the connection is closed for writing only (FIN after
the answer), and what the client goes on sending is read and dropped until it closes its
side, or nothing came for LINGER_TIMEOUT (nginx `lingering_timeout` 5s), or LINGER_TIME
passed in all (nginx `lingering_time` 30s). Then the socket closes.

The transport's protocol is swapped for `Lingering`, which hands `connection_lost` back to
the connection's own protocol, so its bookkeeping runs once, when the socket is gone.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

LINGER_TIMEOUT = 5.0  # seconds without a byte from the client
LINGER_TIME = 30.0  # seconds in all


class Owner(Protocol):
    def connection_lost(self, exc: Exception | None) -> None: ...


class Lingering(asyncio.Protocol):
    """Reads and drops until the client closes or the time is up."""

    __slots__ = ("_deadline", "_loop", "_owner", "_seen", "_timer", "_transport")

    def __init__(
        self, transport: asyncio.Transport, owner: Owner, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._transport = transport
        self._owner = owner
        self._loop = loop
        now = loop.time()
        self._deadline = now + LINGER_TIME
        self._seen = now
        self._timer: asyncio.TimerHandle | None = loop.call_later(LINGER_TIMEOUT, self._check)

    def data_received(self, data: bytes) -> None:
        self._seen = self._loop.time()  # dropped: the answer is already out

    def eof_received(self) -> bool | None:
        self._transport.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._owner.connection_lost(exc)

    def _check(self) -> None:
        now = self._loop.time()
        quiet_until = self._seen + LINGER_TIMEOUT
        if now >= self._deadline or now >= quiet_until:
            self._timer = None
            self._transport.close()
            return
        self._timer = self._loop.call_later(min(quiet_until, self._deadline) - now, self._check)


def linger(transport: asyncio.Transport, owner: Owner, loop: asyncio.AbstractEventLoop) -> None:
    """Close `transport` the lingering way (module docstring); `owner` (its protocol)
    gets connection_lost when the socket is finally closed."""
    transport.set_protocol(Lingering(transport, owner, loop))
    if transport.can_write_eof():  # TLS cannot half-close: its answer is framed anyway
        transport.write_eof()
    transport.resume_reading()
