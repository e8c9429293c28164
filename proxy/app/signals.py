"""What each signal does to a running daemon (`seaway run`, `seaway proxy`, `seaway demo`).

  SIGTERM, SIGINT  graceful shutdown: /readyz turns 503, listeners close, requests and
                   connections in flight get --shutdown-grace-period to finish, then
                   exit 0. The same signal again: stop at once.
  SIGHUP           re-read the manifest files now (the file source; a no-op otherwise).
  SIGUSR1          reopen the access log (after logrotate moved it), in every worker.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Protocol

log = logging.getLogger("seaway")


class Controllable(Protocol):
    def hurry(self) -> None: ...

    def reload_source(self) -> None: ...

    def reopen_logs(self) -> None: ...


def install(loop: asyncio.AbstractEventLoop, daemon: Controllable, stop: asyncio.Event) -> None:
    def on_stop(signum: int) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("%s again: stopping without waiting for requests in flight", name)
            daemon.hurry()
            return
        log.info("%s: shutting down gracefully (send it again to stop at once)", name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_stop, signum)
    loop.add_signal_handler(signal.SIGHUP, daemon.reload_source)
    loop.add_signal_handler(signal.SIGUSR1, daemon.reopen_logs)
