"""Userspace L4 TCP proxy with real sockets on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import socket
from typing import cast

import pytest

from proxy.app.options import Options
from proxy.userspace.listeners import ListenerKey
from proxy.userspace.tcp import BACKPRESSURE, WRITE_HIGH, ClientSide, UpstreamSide

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


async def _backends(n: int) -> list[NamedBackend]:
    out = [NamedBackend(f"b{i}") for i in range(n)]
    for b in out:
        await b.start()
    return out


def test_round_robin_over_three_backends() -> None:
    async def main() -> None:
        backends = await _backends(3)
        ip = loopback_ip()
        port = free_port(ip)
        dp = dataplane()
        await dp.start()
        try:
            snap = snapshot(
                service_port("web", ip, port, [("127.0.0.1", b.port) for b in backends])
            )
            await dp.sync(snap, changed(snap))
            answers = [await request(ip, port, b"x") for _ in range(6)]
            assert answers == [b"b0:x", b"b1:x", b"b2:x", b"b0:x", b"b1:x", b"b2:x"]
        finally:
            await dp.stop()
            for b in backends:
                b.close()

    run(main())


def test_dead_endpoint_is_skipped() -> None:
    async def main() -> None:
        backends = await _backends(2)
        dead = free_port("127.0.0.1")  # nothing listens there
        ip = loopback_ip()
        port = free_port(ip)
        dp = dataplane()
        await dp.start()
        try:
            eps = [
                ("127.0.0.1", backends[0].port),
                ("127.0.0.1", dead),
                ("127.0.0.1", backends[1].port),
            ]
            snap = snapshot(service_port("web", ip, port, eps))
            await dp.sync(snap, changed(snap))
            answers = [await request(ip, port, b"x") for _ in range(6)]
            assert set(answers) == {b"b0:x", b"b1:x"}
            assert backends[0].connections + backends[1].connections == 6
        finally:
            await dp.stop()
            for b in backends:
                b.close()

    run(main())


def test_a_connect_that_hangs_or_is_refused_moves_to_the_next_endpoint() -> None:
    """A failed connect tries the next endpoint, not one tried before (kube-proxy's
    userspace proxier did the same: tryConnect over the endpoints): one endpoint refuses,
    one never completes the handshake (its accept queue is full: SYNs are dropped) and
    is given up on after the connect timeout; the client's first bytes, sent while the
    proxy was still connecting, reach the live backend whole."""

    async def main() -> None:
        (live,) = await _backends(1)
        full = socket.socket()
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        queued = []
        for _ in range(8):  # fill its accept queue: later connects hang
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(full.getsockname())
            queued.append(c)
        ip = loopback_ip()
        port = free_port(ip)
        dp = dataplane(connect_timeout=0.3)
        await dp.start()
        try:
            eps = [
                ("127.0.0.1", free_port("127.0.0.1")),
                full.getsockname(),
                ("127.0.0.1", live.port),
            ]
            snap = snapshot(service_port("web", ip, port, eps))
            await dp.sync(snap, changed(snap))
            answers = [await request(ip, port, b"early-%d" % i) for i in range(3)]
            assert answers == [b"b0:early-%d" % i for i in range(3)]
            assert live.connections == 3
        finally:
            await dp.stop()
            live.close()
            for c in queued:
                c.close()
            full.close()

    run(main())


async def _expect_reset_or_eof(ip: str, port: int) -> None:
    reader, writer = await asyncio.open_connection(ip, port)
    try:
        writer.write(b"hello")
        # the proxy closes at once: EOF or RST, never data and never a hang
        try:
            data = await asyncio.wait_for(reader.read(100), 5)
        except ConnectionResetError:
            data = b""
        assert data == b""
    finally:
        writer.close()


def test_no_endpoints_closes_at_once() -> None:
    async def main() -> None:
        ip = loopback_ip()
        port = free_port(ip)
        dp = dataplane()
        await dp.start()
        try:
            snap = snapshot(service_port("empty", ip, port, []))
            await dp.sync(snap, changed(snap))
            await _expect_reset_or_eof(ip, port)
        finally:
            await dp.stop()

    run(main())


def test_all_endpoints_dead_closes() -> None:
    async def main() -> None:
        ip = loopback_ip()
        port = free_port(ip)
        dead = [("127.0.0.1", free_port("127.0.0.1")) for _ in range(2)]
        dp = dataplane()
        await dp.start()
        try:
            snap = snapshot(service_port("dead", ip, port, dead))
            await dp.sync(snap, changed(snap))
            await _expect_reset_or_eof(ip, port)
        finally:
            await dp.stop()

    run(main())


def test_config_change_keeps_open_connection_and_removed_endpoint_gets_nothing_new() -> None:
    async def main() -> None:
        backends = await _backends(3)
        ip = loopback_ip()
        port = free_port(ip)
        dp = dataplane()
        await dp.start()
        try:
            eps = [("127.0.0.1", b.port) for b in backends]
            snap = snapshot(service_port("web", ip, port, eps))
            await dp.sync(snap, changed(snap))
            key = ListenerKey("TCP", ip, port)
            listener = dp._listeners[key]

            reader, writer = await asyncio.open_connection(ip, port)
            writer.write(b"one")
            assert await reader.read(100) == b"b0:one"

            # b0 goes away from the endpoints: its open connection keeps working,
            # new connections only go to b1 and b2
            snap2 = snapshot(service_port("web", ip, port, eps[1:]), generation=2)
            await dp.sync(snap2, changed(snap2))
            assert dp._listeners[key] is listener  # unchanged listener untouched
            writer.write(b"two")
            assert await reader.read(100) == b"b0:two"
            answers = {await request(ip, port, b"x") for _ in range(4)}
            assert answers == {b"b1:x", b"b2:x"}
            assert backends[0].connections == 1
            writer.write(b"three")
            assert await reader.read(100) == b"b0:three"
            writer.close()
        finally:
            await dp.stop()
            for b in backends:
                b.close()

    run(main())


def test_removed_port_closes_listener_but_not_connections() -> None:
    async def main() -> None:
        (backend,) = await _backends(1)
        ip = loopback_ip()
        port, other_port = free_port(ip), free_port(ip)
        dp = dataplane()
        await dp.start()
        try:
            web = service_port("web", ip, port, [("127.0.0.1", backend.port)])
            other = service_port("other", ip, other_port, [("127.0.0.1", backend.port)])
            snap = snapshot(web, other)
            await dp.sync(snap, changed(snap))
            kept = dp._listeners[ListenerKey("TCP", ip, other_port)]
            reader, writer = await asyncio.open_connection(ip, port)
            writer.write(b"a")
            assert await reader.read(100) == b"b0:a"

            snap2 = snapshot(other, generation=2)
            await dp.sync(snap2, frozenset({web.name}))
            assert set(dp.listening()) == {ListenerKey("TCP", ip, other_port)}
            assert dp._listeners[ListenerKey("TCP", ip, other_port)] is kept
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection(ip, port)
            writer.write(b"b")
            assert await reader.read(100) == b"b0:b"
            writer.close()
            assert await request(ip, other_port, b"c") == b"b0:c"
        finally:
            await dp.stop()
            backend.close()

    run(main())


def test_half_close_both_directions() -> None:
    async def main() -> None:
        after_eof: list[bytes] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = await reader.read()  # until the client's EOF
            writer.write(b"got %d" % len(data))
            await writer.drain()
            writer.write_eof()  # our direction ends too
            writer.close()

        async def handle_server_first(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            writer.write(b"bye")
            writer.write_eof()  # server is done talking, still listens
            after_eof.append(await reader.read())
            writer.close()

        s1 = await asyncio.start_server(handle, "127.0.0.1", 0)
        s2 = await asyncio.start_server(handle_server_first, "127.0.0.1", 0)
        ip = loopback_ip()
        p1, p2 = free_port(ip), free_port(ip)
        dp = dataplane()
        await dp.start()
        try:
            snap = snapshot(
                service_port("a", ip, p1, [("127.0.0.1", s1.sockets[0].getsockname()[1])]),
                service_port("b", ip, p2, [("127.0.0.1", s2.sockets[0].getsockname()[1])]),
            )
            await dp.sync(snap, changed(snap))

            # client half-closes; the answer still comes back
            reader, writer = await asyncio.open_connection(ip, p1)
            writer.write(b"x" * 100_000)
            writer.write_eof()
            assert await reader.read() == b"got 100000"
            writer.close()

            # server half-closes; the client can still send
            reader, writer = await asyncio.open_connection(ip, p2)
            assert await reader.read() == b"bye"  # EOF reached
            writer.write(b"still here")
            writer.write_eof()
            await wait_until(lambda: bool(after_eof), "server to see the client's data")
            assert after_eof == [b"still here"]
            writer.close()
        finally:
            await dp.stop()
            s1.close()
            s2.close()

    run(main())


def test_large_transfer_to_slow_reader_is_bounded() -> None:
    size = 24 * 1024 * 1024
    blob = hashlib.sha256(b"seed").digest() * (size // 32)

    async def main() -> None:
        sent = [0]

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            view = memoryview(blob)
            for i in range(0, size, 65536):
                writer.write(view[i : i + 65536])
                await writer.drain()
                sent[0] = i + 65536
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        ip = loopback_ip()
        port = free_port(ip)
        dp = dataplane()
        await dp.start()
        try:
            snap = snapshot(
                service_port("big", ip, port, [("127.0.0.1", server.sockets[0].getsockname()[1])])
            )
            await dp.sync(snap, changed(snap))
            reader, writer = await asyncio.open_connection(ip, port, limit=65536)
            client = cast(asyncio.Transport, writer.transport)
            client.pause_reading()  # a reader that does not read (yet)
            conns = dp._conns
            assert conns is not None
            await wait_until(lambda: len(conns.open) == 1, "the proxied connection")
            (conn,) = conns.open
            assert isinstance(conn, ClientSide)
            await wait_until(
                lambda: (
                    conn.up is not None
                    and conn.up.gate is not None
                    and bool(conn.up.gate.reasons & BACKPRESSURE)
                ),
                "backpressure to reach the upstream side",
            )
            assert conn.transport is not None
            # the proxy holds at most its high-water mark plus one read chunk
            assert conn.transport.get_write_buffer_size() <= WRITE_HIGH + 256 * 1024
            assert sent[0] < size  # the backend is being held back

            client.resume_reading()
            got = hashlib.sha256()
            total = 0
            while chunk := await reader.read(1 << 20):
                got.update(chunk)
                total += len(chunk)
            assert total == size
            assert got.digest() == hashlib.sha256(blob).digest()
            writer.close()
        finally:
            await dp.stop()
            server.close()

    run(main(), timeout=60)


def test_client_ip_affinity_sticks() -> None:
    async def main() -> None:
        backends = await _backends(3)
        ip = loopback_ip()
        port = free_port(ip)
        dp = dataplane()
        await dp.start()
        try:
            eps = [("127.0.0.1", b.port) for b in backends]
            snap = snapshot(service_port("sticky", ip, port, eps, affinity=60))
            await dp.sync(snap, changed(snap))
            answers = {await request(ip, port, b"x") for _ in range(5)}
            assert answers == {b"b0:x"}
        finally:
            await dp.stop()
            for b in backends:
                b.close()

    run(main())


def test_stop_closes_listeners_and_connections() -> None:
    async def main() -> None:
        (backend,) = await _backends(1)
        ip = loopback_ip()
        port = free_port(ip)
        dp = dataplane()
        await dp.start()
        snap = snapshot(service_port("web", ip, port, [("127.0.0.1", backend.port)]))
        await dp.sync(snap, changed(snap))
        reader, writer = await asyncio.open_connection(ip, port)
        writer.write(b"a")
        assert await reader.read(100) == b"b0:a"
        await dp.stop()
        with contextlib.suppress(ConnectionResetError):
            assert await reader.read(100) == b""
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(ip, port)
        writer.close()
        backend.close()

    run(main())


def test_node_port_on_nodeport_addresses() -> None:
    async def main() -> None:
        (backend,) = await _backends(1)
        ip = loopback_ip()
        port = free_port(ip)
        node_port = free_port("127.0.0.1")
        opts = Options(nodeport_addresses=["127.0.0.0/8"])
        dp = dataplane(options=opts, local_addresses=lambda: frozenset({"127.0.0.1", "192.0.2.9"}))
        await dp.start()
        try:
            web = service_port("web", ip, port, [("127.0.0.1", backend.port)], node_port=node_port)
            snap = snapshot(web)
            await dp.sync(snap, changed(snap))
            assert dp.listening() == {
                ListenerKey("TCP", ip, port): web.name,
                ListenerKey("TCP", "127.0.0.1", node_port): web.name,
            }
            assert await request("127.0.0.1", node_port, b"n") == b"b0:n"
        finally:
            await dp.stop()
            backend.close()

    run(main())


def test_close_propagates_both_ways() -> None:
    async def main() -> None:
        events: list[str] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            first = await reader.read(100)
            if first == b"you close":
                writer.close()  # server ends the connection
                events.append("server closed")
                return
            writer.write(b"ok")
            await writer.drain()
            events.append("eof" if await reader.read() == b"" else "data?")
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        ip = loopback_ip()
        port = free_port(ip)
        dp = dataplane()
        await dp.start()
        try:
            eps = [("127.0.0.1", server.sockets[0].getsockname()[1])]
            snap = snapshot(service_port("web", ip, port, eps))
            await dp.sync(snap, changed(snap))
            conns = dp._conns
            assert conns is not None

            reader, writer = await asyncio.open_connection(ip, port)
            writer.write(b"hello")
            assert await reader.read(100) == b"ok"
            writer.close()  # client goes away: the backend sees its EOF
            await wait_until(lambda: events == ["eof"], "the backend to see the close")
            await wait_until(lambda: not conns.open, "the proxy to drop the connection")

            reader, writer = await asyncio.open_connection(ip, port)
            writer.write(b"you close")
            assert await reader.read(100) == b""  # the client sees the backend's close
            writer.close()
            await wait_until(lambda: not conns.open, "the proxy to drop the connection")
            assert events == ["eof", "server closed"]
        finally:
            await dp.stop()
            server.close()

    run(main())


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this host")
def test_ipv6_cluster_ip() -> None:
    async def main() -> None:
        (backend,) = await _backends(1)
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            port = s.getsockname()[1]
        dp = dataplane()
        await dp.start()
        try:
            snap = snapshot(service_port("v6", "::1", port, [("127.0.0.1", backend.port)]))
            await dp.sync(snap, changed(snap))
            assert await request("::1", port, b"6") == b"b0:6"
        finally:
            await dp.stop()
            backend.close()

    run(main())


def test_closed_connections_are_freed_without_the_garbage_collector() -> None:
    def alive() -> int:
        return sum(isinstance(o, ClientSide | UpstreamSide) for o in gc.get_objects())

    async def main() -> None:
        (backend,) = await _backends(1)
        ip = loopback_ip()
        port = free_port(ip)
        dp = dataplane()
        await dp.start()
        gc.collect()
        gc.disable()  # only reference counting frees objects now: a cycle would stay
        try:
            snap = snapshot(service_port("web", ip, port, [("127.0.0.1", backend.port)]))
            await dp.sync(snap, changed(snap))
            for _ in range(20):
                assert await request(ip, port, b"x") == b"b0:x"
            await wait_until(lambda: alive() == 0, "every proxied connection to be freed")
        finally:
            gc.enable()
            await dp.stop()
            backend.close()

    run(main())
