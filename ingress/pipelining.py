"""Upstream pipelining (`--upstream-pipelining N`, off by default).

A GET without body that finds the connection a GET went to earlier in the same loop
iteration, its head still queued in the Outbox, joins it (up to N exchanges): the heads go
out in one write, and the backend's answers often come back in one read. Only a
connection whose last response was small (upstream.SMALL_RESPONSE) takes them: with large
responses the bytes cost more than the packets, and pipelining would only add copies and
waits; and after a batch broke, the endpoint gets its next PAUSE_AFTER_BREAK requests one
per connection. Later exchanges wait in `_queue`; when a response ends, the next exchange
takes the connection (`release`). While exchanges wait, each read is cut where the
current response ends (ingress/framing.py), so every client gets only its own response's
bytes. If the connection closes, times out or fails, or a response asks to close it, the
waiting exchanges get a retryable failure: they are GETs whose response has not begun,
retried once on a fresh connection (ingress/exchange.py).

`PipelinedConnection` is used only when N > 1: the plain UpstreamConnection does none of
this bookkeeping.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final, cast

from ingress.framing import ResponseFramer
from ingress.outbox import Outbox
from ingress.pool import EndpointPool
from ingress.request import RequestState
from ingress.upstream import ResponseSink, UpstreamConnection

# After a batch broke (the connection closed with requests waiting, which must be sent
# again), this many pipelinable requests to that endpoint go one per connection: a
# backend that closes connections often pays for every batch it breaks.
PAUSE_AFTER_BREAK: Final = 256


class PipelinedConnection(UpstreamConnection):
    __slots__ = ("_batch", "_framer", "_pipe_generation", "_queue")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: EndpointPool,
        timeout: float,
        outbox: Outbox | None = None,
    ) -> None:
        super().__init__(loop, pool, timeout, outbox)
        self.bufferable = False  # (its data_received cuts responses apart)
        # Exchanges waiting for their turn (None: one whose client left; its turn closes
        # the connection), the Outbox list holding this iteration's request heads, the
        # Outbox generation that list belongs to (-1: nothing may join), the cutter.
        self._queue: deque[ResponseSink | None] = deque()
        self._batch: list[bytes] | None = None
        self._pipe_generation = -1
        self._framer = ResponseFramer()

    def attach(self, ex: ResponseSink, head: bytes, pipeline: bool = False) -> None:
        """Start an exchange, or queue it behind the current one (`pipeline`: a GET
        without body, which later GETs of this loop iteration may join; on a connection
        that `can_pipeline`, it waits its turn)."""
        if self.exchange is not None:
            assert self._batch is not None and pipeline
            self._ticks += 1
            self._batch.append(head)  # goes out in the same write as the others
            self._queue.append(ex)
            return
        self._begin(ex)
        assert self.transport is not None
        if pipeline:
            self._batch = self.outbox.batch(self.transport, head)
            self._pipe_generation = -1 if self._batch is None else self.outbox.generation
            self._framer.start()
        else:
            self._pipe_generation = -1
            self.outbox.write(self.transport, head)
        self._arm()

    def can_pipeline(self, generation: int, depth: int) -> bool:
        """Whether a GET may join this connection now: its current exchange is a GET whose
        head is still queued in this Outbox generation, with room for one more."""
        return (
            self._pipe_generation == generation
            and self.exchange is not None
            and not self.closed
            and len(self._queue) + 1 < depth
        )

    def data_received(self, data: bytes) -> None:
        if self._queue and self.exchange is not None and not self.upgraded:
            self._ticks += 1
            self._pipelined(data)
        else:
            super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._queue:
            self.closed = True
            self._fail_waiting()
        super().connection_lost(exc)

    def release(self) -> None:
        if self._queue:
            self.exchange = None
            if self.keep_alive and not self.closed and self._next():
                return
            self._fail_waiting()
        super().release()

    def abandon(self, ex: ResponseSink) -> None:
        if ex is self.exchange or not self._queue:
            self.close()
            return
        queue = self._queue
        for i, waiting in enumerate(queue):
            if waiting is ex:
                queue[i] = None  # its turn will close the connection
                return

    def _upgraded(self, ex: ResponseSink, pieces: list[bytes]) -> None:
        if self._queue:
            self._fail(ex)  # a 101 to a pipelined GET: the connection is no longer HTTP
            return
        super()._upgraded(ex, pieces)

    def _next(self) -> bool:
        """Hand the connection to the next waiting exchange (False: it left meanwhile)."""
        ex = self._queue.popleft()
        if ex is None:
            return False
        self._begin(ex)
        self._framer.start()
        if self.paused:
            self.resume_reading()
        if ex.client_paused():
            self.pause_reading()
        return True

    def _fail_waiting(self) -> None:
        """Every waiting exchange fails before its response began: retryable."""
        waiting = list(self._queue)
        self._queue.clear()
        self.pool.pipeline_pause = PAUSE_AFTER_BREAK
        for ex in waiting:
            if ex is not None:
                ex.failed(502, True)

    def _pipelined(self, data: bytes) -> None:
        """A read while exchanges wait: cut it where each response ends."""
        framer = self._framer
        while True:
            ex = cast(ResponseSink, self.exchange)
            n = framer.feed(data)
            if not (framer.ended or framer.interim):
                self._received(data, ex)
                return
            part, data = data[:n], data[n:]
            if framer.interim:  # a 1xx head: the same exchange's final response follows
                framer.start()
                self._received(part, ex)
                if not data or self.exchange is None:
                    return
                continue
            completed = self._completed
            self._received(part, ex)
            if self._completed == completed:
                # llhttp did not end the response where the framer did: never guess.
                if not self.closed:
                    self._fail(ex)
                return
            framer.start()
            if not self._next_part(data):
                return

    def _next_part(self, rest: bytes) -> bool:
        """After a response ended inside a read: whether `rest` needs the framer (True);
        else it was handled here (nothing left, the last exchange's own bytes, or bytes
        nobody asked for)."""
        if not rest:
            return False
        ex = self.exchange
        if ex is None:
            self.close()  # bytes nobody asked for: never reuse this connection
            return False
        if not self._queue:
            self._received(rest, ex)  # the last exchange of the batch: its own bytes
            return False
        return True


def pick_connection(
    pool: EndpointPool, req: RequestState, depth: int, generation: int
) -> tuple[PipelinedConnection | None, bool]:
    """The connection for `req` on a pipelining context, and whether it is pipelined: a
    busy connection it may join, else a pooled one (None: connect)."""
    pipeline = req.method == b"GET" and req.upgrade is None and not req.has_body
    if pipeline and pool.pipeline_pause:
        pool.pipeline_pause -= 1  # a batch broke here lately
        pipeline = False
    if pipeline:
        joined = pool.pipelining
        if joined is not None and joined.can_pipeline(generation, depth):
            return joined, True
    conn = cast(PipelinedConnection | None, pool.acquire())
    if conn is not None and pipeline and conn.small:
        pool.pipelining = conn
    return conn, pipeline and conn is not None
