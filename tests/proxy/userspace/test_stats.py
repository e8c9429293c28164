"""Connection metrics of the userspace L4 proxy (proxy/userspace/stats.py), real sockets."""

from __future__ import annotations

import asyncio
import contextlib

from proxy.counters import Key
from proxy.userspace.stats import (
    ACTIVE,
    BYTES_IN,
    BYTES_OUT,
    CONNECTIONS,
    DATAGRAMS_IN,
    DATAGRAMS_OUT,
    FAILURES,
    L4,
)

from .helpers import (
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
from .test_udp import _client, _echoes


def key(name: str, endpoint: str, protocol: str = "TCP") -> Key:
    return ("default", name, "", protocol, endpoint)


def test_tcp_connections_bytes_failures_and_active_per_endpoint() -> None:
    async def main() -> None:
        backend = NamedBackend("b")
        await backend.start()
        dead = free_port("127.0.0.1")
        ip = loopback_ip()
        port = free_port(ip)
        dp = dataplane()
        await dp.start()
        try:
            eps = [("127.0.0.1", dead), ("127.0.0.1", backend.port)]
            snap = snapshot(service_port("web", ip, port, eps))
            await dp.sync(snap, changed(snap))
            for payload in (b"one", b"two"):
                assert await request(ip, port, payload) == b"b:" + payload
            live = f"127.0.0.1:{backend.port}"
            rows = dp.collect().rows(L4)

            def live_row() -> list[float]:
                return dp.collect().rows(L4)[key("web", live)]

            await wait_until(lambda: dp.collect().gauge_rows(ACTIVE) == {}, "both closed")
            row = live_row()
            assert row[CONNECTIONS] == 2 and row[FAILURES] == 0
            assert row[BYTES_IN] == len(b"one") + len(b"two")
            assert row[BYTES_OUT] == len(b"b:one") + len(b"b:two")
            assert rows[key("web", f"127.0.0.1:{dead}")][FAILURES] >= 1

            # An open connection is active until it closes, and its bytes count live.
            reader, writer = await asyncio.open_connection(ip, port)
            writer.write(b"held")
            assert await reader.read(100) == b"b:held"
            totals = dp.collect()
            assert totals.gauge_rows(ACTIVE)[key("web", live)] == [1]
            assert totals.rows(L4)[key("web", live)][BYTES_IN] == 3 + 3 + 4
            writer.close()
            await wait_until(lambda: dp.collect().gauge_rows(ACTIVE) == {}, "closed")

            # No endpoint at all: refused, counted with endpoint "".
            empty = snapshot(service_port("web", ip, port, []), generation=2)
            await dp.sync(empty, changed(empty))
            reader, writer = await asyncio.open_connection(ip, port)
            with contextlib.suppress(ConnectionResetError):
                assert await reader.read(100) == b""  # reset at once
            writer.close()
            await wait_until(
                lambda: dp.collect().rows(L4).get(key("web", ""), [0, 0])[FAILURES] == 1,
                "the refusal counted",
            )
        finally:
            await dp.stop()
            backend.close()

    run(main())


def test_udp_datagrams_and_bytes_each_way() -> None:
    async def main() -> None:
        ((echo, echo_port),) = await _echoes(1)
        ip = loopback_ip()
        port = free_port(ip)
        dp = dataplane()
        await dp.start()
        client = await _client()
        try:
            snap = snapshot(service_port("dns", ip, port, [("127.0.0.1", echo_port)], "UDP"))
            await dp.sync(snap, changed(snap))
            for payload in (b"a", b"bb", b"ccc"):
                answer, _ = await client.ask(payload, ip, port)
                assert answer == b"u0:" + payload
            totals = dp.collect()
            row = totals.rows(L4)[key("dns", f"127.0.0.1:{echo_port}", "UDP")]
            assert row[CONNECTIONS] == 1  # one association for this client
            assert (row[DATAGRAMS_IN], row[DATAGRAMS_OUT]) == (3, 3)
            assert (row[BYTES_IN], row[BYTES_OUT]) == (6, 6 + 3 * len(b"u0:"))
            assert totals.gauge_rows(ACTIVE)[key("dns", f"127.0.0.1:{echo_port}", "UDP")] == [1]
            assert echo.peers
        finally:
            client.close()
            await dp.stop()

    run(main())
