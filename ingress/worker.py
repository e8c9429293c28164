"""Entry point of a worker process: `python -m ingress.worker FD INDEX` (see workers.py)."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys

import uvloop

from ingress.apply import L7State
from ingress.workers import read_config

log = logging.getLogger("ingress.worker")


async def serve(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_connection(sock=sock)
    state = L7State(asyncio.get_running_loop())
    try:
        while True:
            config = await read_config(reader)
            if config is None:
                break
            try:
                await state.apply(config)
            except Exception:
                log.exception("worker: config generation %d failed", config.table.generation)
    finally:
        await state.close()
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
