"""L4 limits on real sockets: --max-connections refuses (resets) connections beyond it,
--max-endpoint-connections passes over a full endpoint and refuses when all are full;
both free up when connections end. The balancer is the Service's (least request here)."""

from __future__ import annotations

import asyncio

from proxy.acceptor import COUNTERS
from proxy.app.options import Options

from .helpers import (
    NamedBackend,
    changed,
    dataplane,
    free_port,
    loopback_ip,
    run,
    service_port,
    snapshot,
    wait_until,
)


async def open_client(ip: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that got through: it answers once."""
    reader, writer = await asyncio.open_connection(ip, port)
    writer.write(b"x")
    assert (await asyncio.wait_for(reader.read(100), 5)).endswith(b":x")
    return reader, writer


async def refused(ip: str, port: int) -> bool:
    """True when the proxy drops the connection without forwarding (reset or EOF)."""
    try:
        reader, writer = await asyncio.open_connection(ip, port)
    except ConnectionError:
        return True
    try:
        writer.write(b"x")
        return await asyncio.wait_for(reader.read(100), 5) == b""
    except ConnectionError:
        return True
    finally:
        writer.close()


def test_max_connections_resets_new_connections_until_one_ends() -> None:
    async def main() -> None:
        backend = NamedBackend("b0")
        await backend.start()
        ip = loopback_ip()
        port = free_port(ip)
        dp = dataplane(options=Options(max_connections=2))
        await dp.start()
        try:
            snap = snapshot(service_port("web", ip, port, [("127.0.0.1", backend.port)]))
            await dp.sync(snap, changed(snap))
            before = COUNTERS.refused
            first = await open_client(ip, port)
            second = await open_client(ip, port)
            assert await refused(ip, port)
            assert COUNTERS.refused == before + 1
            first[1].close()
            await wait_until(lambda: _open(dp) == 1, "the first connection to end")
            third = await open_client(ip, port)
            for _, writer in (second, third):
                writer.close()
        finally:
            await dp.stop()
            backend.close()

    run(main())


def _open(dp: object) -> int:
    return len(dp._conns.open)  # type: ignore[attr-defined]


def test_endpoint_cap_passes_over_full_endpoints_then_refuses() -> None:
    async def main() -> None:
        backends = [NamedBackend("b0"), NamedBackend("b1")]
        for b in backends:
            await b.start()
        ip = loopback_ip()
        port = free_port(ip)
        dp = dataplane(options=Options(max_endpoint_connections=1))
        await dp.start()
        try:
            eps = [("127.0.0.1", b.port) for b in backends]
            snap = snapshot(service_port("web", ip, port, eps, policy="least-request"))
            await dp.sync(snap, changed(snap))
            before = COUNTERS.endpoint_overflows
            first = await open_client(ip, port)
            second = await open_client(ip, port)
            assert [be.connections for be in backends] == [1, 1]  # one each: the other was full
            assert await refused(ip, port)
            assert COUNTERS.endpoint_overflows == before + 1
            first[1].close()
            await wait_until(lambda: _open(dp) == 1, "the first connection to end")
            third = await open_client(ip, port)
            assert sum(be.connections for be in backends) == 3
            for _, writer in (second, third):
                writer.close()
        finally:
            await dp.stop()
            for b in backends:
                b.close()

    run(main())
