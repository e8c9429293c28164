"""Request counts of worker processes reach the daemon, and survive a worker's death.

IngressDataplane with --workers 3 (the daemon plus two processes sharing the port through
SO_REUSEPORT): every request sent is counted once in the daemon's totals, whichever
process served it; a worker killed with SIGKILL and restarted takes nothing away.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from ingress.dataplane import IngressDataplane
from ingress.stats import HTTP, REQUESTS
from proxy.app.options import Options
from tests.ingress import routerkit as k
from tests.ingress.l7kit import HOST, Backend, LoopThread, get, port_info
from tests.support import wait_until


def total(lt: LoopThread, dp: IngressDataplane) -> float:
    async def collect() -> float:
        return sum(row[REQUESTS] for row in dp.collect().rows(HTTP).values())

    return lt.run(collect())


@pytest.mark.slow
def test_counts_from_every_process_add_up_and_survive_a_restart(lt: LoopThread) -> None:
    backend = lt.run(Backend("one").start())
    dp = IngressDataplane(
        Options(http_bind_address=(HOST, 0), https_bind_address=(HOST, 0), workers=3)
        .ingress_config()
    )
    lt.run(dp.start())
    try:
        snap = k.snapshot(
            [k.ingress("a", k.rule("a.test", k.path("/", "web")))],
            [port_info("web", [backend.endpoint])],
        )
        lt.run(dp.sync(snap, frozenset(snap.service_ports)))
        http, _ = dp.addresses()
        assert http is not None
        # Until a second process has served: the worker processes bind once configured.
        sent = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and backend.stats.connections < 2:
            assert get(http[1], "/", host="a.test")[0] == 200
            sent += 1
        for _ in range(60):  # fresh connections: the kernel spreads them over 3 sockets
            assert get(http[1], "/", host="a.test")[0] == 200
            sent += 1
        assert backend.stats.connections >= 2  # more than one process served
        wait_until(lambda: total(lt, dp) == sent, what=f"{sent} requests counted")

        victim = dp.pool.pids()[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in dp.pool.pids(), what="the worker restarted")
        assert total(lt, dp) == sent  # its counts stay
        assert dp.pool.describe()[0]["restarts"] == 1
        for _ in range(20):
            assert get(http[1], "/", host="a.test")[0] == 200
        wait_until(lambda: total(lt, dp) == sent + 20, what="the later requests counted")
    finally:
        lt.run(dp.stop())
        lt.run(backend.close())
