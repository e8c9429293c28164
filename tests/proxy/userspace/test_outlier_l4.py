"""Passive health at L4 on real sockets: an endpoint that refuses connections, or a black
hole that lets connects hang (a listener whose accept queue is full: the kernel drops
the SYNs), is ejected after 5 failed connects, and new connections stop trying it (no
more connect failures are counted for it); connections keep being served by the others
meanwhile (a failed connect moves on to the next endpoint). The ejection is in the L4
metrics; an endpoint that listens again is back through its TCP probe."""

from __future__ import annotations

import asyncio
import socket

import pytest

from proxy.health_metrics import EJECTED, EJECTIONS
from proxy.userspace.stats import FAILURES, L4
from tests.proxy.userspace.helpers import (
    NamedBackend,
    changed,
    dataplane,
    free_port,
    loopback_ip,
    request,
    run,
    service_port,
    snapshot,
    wait_until,
)


def failures(dp: object, endpoint: str) -> int:
    rows = dp.collect().rows(L4)  # type: ignore[attr-defined]
    return sum(int(v[FAILURES]) for k, v in rows.items() if k[-1] == endpoint)


@pytest.mark.parametrize("kind", ["refusing", "black hole"])
def test_a_failing_endpoint_is_ejected_for_new_connections(kind: str) -> None:
    async def go() -> None:
        dp = dataplane(connect_timeout=0.3)
        await dp.start()
        a, b = NamedBackend("a"), NamedBackend("b")
        held: list[socket.socket] = []
        if kind == "refusing":
            bad = ("127.0.0.1", free_port("127.0.0.1"))
        else:
            hole = socket.socket()
            hole.bind(("127.0.0.1", 0))
            hole.listen(0)
            filler = socket.create_connection(hole.getsockname())  # the queue is full now
            held += [hole, filler]
            bad = hole.getsockname()
        bad_text = f"{bad[0]}:{bad[1]}"
        try:
            ip = loopback_ip()
            port = free_port(ip)
            snap = snapshot(service_port("web", ip, port, [await a.start(), await b.start(), bad]))
            await dp.sync(snap, changed(snap))
            for _ in range(24):
                answer = await request(ip, port)
                assert answer in (b"a:hi", b"b:hi")  # the failed connect moved on
            assert dp.health is not None
            assert [rec.address for _, rec in dp.health.ejected()] == [bad]
            failed = failures(dp, bad_text)
            assert failed == 5
            for _ in range(24):
                assert await request(ip, port) in (b"a:hi", b"b:hi")
            assert failures(dp, bad_text) == failed  # not tried any more
            totals = dp.collect()
            key = ("default", "web", "", bad_text, "connect")
            assert totals.rows(EJECTIONS) == {key: [1.0]}
            assert totals.gauge_rows(EJECTED) == {key: [1.0]}
            if kind == "refusing":  # it listens again: a TCP probe brings it back
                back = NamedBackend("c")
                back.server = await asyncio.start_server(back._handle, *bad)
                await wait_until(lambda: not dp.health.ejected(), "the endpoint back", 10.0)
                answers = {await request(ip, port) for _ in range(6)}
                assert b"c:hi" in answers
                back.close()
        finally:
            a.close()
            b.close()
            for s in held:
                s.close()
            await dp.stop()

    run(go(), timeout=30)
