"""Userspace L4 UDP proxy with real sockets on loopback and a fake clock."""

from __future__ import annotations

import asyncio
import socket

from proxy.userspace.dataplane import UserspaceDataplane
from proxy.userspace.listeners import ListenerKey
from proxy.userspace.udp import UdpListener

from .helpers import (
    FakeClock,
    changed,
    dataplane,
    free_port,
    loopback_ip,
    run,
    service_port,
    snapshot,
    wait_until,
)


class UdpEcho(asyncio.DatagramProtocol):
    """Answers `name:` + payload to whoever sent it."""

    def __init__(self, name: str) -> None:
        self.name = name.encode()
        self.transport: asyncio.DatagramTransport | None = None
        self.peers: list[tuple[str, int]] = []

    def factory(self) -> UdpEcho:
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.peers.append(addr)
        assert self.transport is not None
        self.transport.sendto(self.name + b":" + data, addr)


async def _echoes(n: int) -> list[tuple[UdpEcho, int]]:
    loop = asyncio.get_running_loop()
    out = []
    for i in range(n):
        proto = UdpEcho(f"u{i}")
        transport, _ = await loop.create_datagram_endpoint(
            proto.factory, local_addr=("127.0.0.1", 0)
        )
        out.append((proto, transport.get_extra_info("sockname")[1]))

    return out


class UdpClient(asyncio.DatagramProtocol):
    """A client socket on 127.0.0.1 whose answers arrive in a queue."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.answers: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.answers.put_nowait((data, addr))

    def send(self, payload: bytes, ip: str, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(payload, (ip, port))

    async def ask(self, payload: bytes, ip: str, port: int) -> tuple[bytes, tuple[str, int]]:
        self.send(payload, ip, port)
        return await asyncio.wait_for(self.answers.get(), 5)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _client() -> UdpClient:
    proto = UdpClient()
    await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: proto, local_addr=("127.0.0.1", 0)
    )
    return proto


def _listener(dp: UserspaceDataplane, ip: str, port: int) -> UdpListener:
    handle = dp._listeners[ListenerKey("UDP", ip, port)]
    return handle.protocol  # type: ignore[union-attr]


def test_udp_round_robin_association_reuse_and_reply_address() -> None:
    async def main() -> None:
        echoes = await _echoes(3)
        ip = loopback_ip()
        port = free_port(ip, socket.SOCK_DGRAM)
        dp = dataplane()
        await dp.start()
        clients = [await _client() for _ in range(3)]
        try:
            eps = [("127.0.0.1", p) for _, p in echoes]
            snap = snapshot(service_port("dns", ip, port, eps, protocol="UDP"))
            await dp.sync(snap, changed(snap))
            first = []
            for c in clients:
                data, addr = await c.ask(b"q", ip, port)
                assert addr == (ip, port)  # the reply comes from the service address
                first.append(data)
            assert first == [b"u0:q", b"u1:q", b"u2:q"]
            # each client stays on its association (same endpoint, same upstream socket)
            for c, expected in zip(clients, first, strict=True):
                for _ in range(3):
                    data, _ = await c.ask(b"q", ip, port)
                    assert data == expected
            assert len(_listener(dp, ip, port).associations) == 3
            for proto, _ in echoes:
                assert len(set(proto.peers)) == 1 and len(proto.peers) == 4
        finally:
            for c in clients:
                c.close()
            await dp.stop()
            for proto, _ in echoes:
                assert proto.transport is not None
                proto.transport.close()

    run(main())


def test_udp_idle_association_expires_with_fake_clock() -> None:
    async def main() -> None:
        echoes = await _echoes(2)
        ip = loopback_ip()
        port = free_port(ip, socket.SOCK_DGRAM)
        clock = FakeClock()
        dp = dataplane(clock, udp_idle_timeout=30)
        await dp.start()
        c = await _client()
        try:
            eps = [("127.0.0.1", p) for _, p in echoes]
            snap = snapshot(service_port("dns", ip, port, eps, protocol="UDP"))
            await dp.sync(snap, changed(snap))
            listener = _listener(dp, ip, port)
            assert (await c.ask(b"a", ip, port))[0] == b"u0:a"

            clock.now += 20
            dp.sweep()
            assert len(listener.associations) == 1  # 20s idle: kept
            assert (await c.ask(b"b", ip, port))[0] == b"u0:b"  # refreshes it
            clock.now += 25
            dp.sweep()
            assert len(listener.associations) == 1  # 25s since last use: kept

            clock.now += 31
            dp.sweep()
            assert listener.associations == {}  # idle past the timeout: gone
            # the same client now gets a new association, on the next endpoint
            assert (await c.ask(b"c", ip, port))[0] == b"u1:c"
            assert len(listener.associations) == 1
        finally:
            c.close()
            await dp.stop()
            for proto, _ in echoes:
                assert proto.transport is not None
                proto.transport.close()

    run(main())


def test_udp_no_endpoints_drops_and_config_change_applies() -> None:
    async def main() -> None:
        echoes = await _echoes(1)
        ip = loopback_ip()
        port = free_port(ip, socket.SOCK_DGRAM)
        dp = dataplane()
        await dp.start()
        c = await _client()
        try:
            snap = snapshot(service_port("dns", ip, port, [], protocol="UDP"))
            await dp.sync(snap, changed(snap))
            listener = _listener(dp, ip, port)
            c.send(b"lost", ip, port)
            await wait_until(lambda: listener.dropped == 1, "the datagram to be dropped")
            snap2 = snapshot(
                service_port("dns", ip, port, [("127.0.0.1", echoes[0][1])], protocol="UDP"),
                generation=2,
            )
            await dp.sync(snap2, changed(snap2))
            assert _listener(dp, ip, port) is listener  # same socket, new endpoints
            data, _ = await c.ask(b"found", ip, port)
            assert data == b"u0:found"  # the first datagram was dropped, not queued
            assert echoes[0][0].peers and len(echoes[0][0].peers) == 1
        finally:
            c.close()
            await dp.stop()
            for proto, _ in echoes:
                assert proto.transport is not None
                proto.transport.close()

    run(main())


def test_udp_refused_endpoint_ends_association() -> None:
    async def main() -> None:
        echoes = await _echoes(1)
        dead = free_port("127.0.0.1", socket.SOCK_DGRAM)
        ip = loopback_ip()
        port = free_port(ip, socket.SOCK_DGRAM)
        dp = dataplane()
        await dp.start()
        c = await _client()
        try:
            eps = [("127.0.0.1", dead), ("127.0.0.1", echoes[0][1])]  # dead one first
            snap = snapshot(service_port("dns", ip, port, eps, protocol="UDP"))
            await dp.sync(snap, changed(snap))
            listener = _listener(dp, ip, port)
            # the first datagram goes to the dead endpoint; the ICMP refusal ends that
            # association, so the client's next datagram reaches the live endpoint
            c.send(b"lost", ip, port)
            await wait_until(lambda: listener.target.picker.balancer._next == 1, "the first pick")
            await wait_until(lambda: not listener.associations, "the refusal to end it")
            data, _ = await c.ask(b"hello", ip, port)
            assert data == b"u0:hello"
            assert [a.endpoint.port for a in listener.associations.values()] == [echoes[0][1]]
        finally:
            c.close()
            await dp.stop()
            for proto, _ in echoes:
                assert proto.transport is not None
                proto.transport.close()

    run(main())
