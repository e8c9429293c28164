"""Entry point of a worker process: `python -m ingress.worker FD INDEX` (see workers.py).

The worker applies each config the daemon sends, ships its request counts back every
STATS_INTERVAL, and shuts down when told: `Drain` (or SIGTERM) finishes the requests in
flight first; the pipe closing (the daemon is gone) stops it at once. SIGUSR1 reopens
the access log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys

import uvloop

from ingress.apply import L7State
from ingress.workers import STATS_INTERVAL, Drain, HealthVerdicts, encode, read_config

log = logging.getLogger("ingress.worker")


async def _follow(reader: asyncio.StreamReader, state: L7State, drain: asyncio.Event) -> None:
    """Apply configs until the pipe closes or a Drain arrives."""
    while True:
        config = await read_config(reader)
        if config is None:
            return
        if isinstance(config, Drain):
            drain.set()
            return
        if isinstance(config, HealthVerdicts):
            state.set_health_verdicts(config.down)
            continue
        try:
            await state.apply(config)
        except Exception:
            log.exception("worker: config generation %d failed", config.table.generation)


async def _ship_stats(state: L7State, writer: asyncio.StreamWriter) -> None:
    while True:
        await asyncio.sleep(STATS_INTERVAL)
        _send_stats(state, writer)


def _send_stats(state: L7State, writer: asyncio.StreamWriter) -> None:
    delta = state.take_stats()
    if delta and not writer.is_closing():
        writer.write(encode(delta))


async def serve(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_connection(sock=sock)
    loop = asyncio.get_running_loop()
    state = L7State(loop)
    drain = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, drain.set)
    loop.add_signal_handler(signal.SIGUSR1, state.reopen_logs)
    following = loop.create_task(_follow(reader, state, drain))
    shipping = loop.create_task(_ship_stats(state, writer))
    draining = loop.create_task(drain.wait())
    try:
        await asyncio.wait([following, draining], return_when=asyncio.FIRST_COMPLETED)
        if drain.is_set():
            await state.drain()
    finally:
        for task in (following, shipping, draining):
            task.cancel()
        await state.close()
        with contextlib.suppress(OSError):
            _send_stats(state, writer)  # what was counted since the last delta
            await writer.drain()
        writer.close()


def main(argv: list[str]) -> int:
    fd, index = int(argv[0]), argv[1]
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s %(levelname)s worker-{index} %(name)s: %(message)s"
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon stops us by closing the pipe
    uvloop.run(serve(fd))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
