"""Userspace L4: loadBalancerSourceRanges on load-balancer IP listeners (TCP and UDP),
and IPv6 listeners (cluster IP, NodePort wildcard), with real sockets on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import pytest

from discovery.snapshot import EndpointInfo, ServicePortInfo
from proxy.userspace.listeners import ListenerKey, SourceRanges, desired_listeners

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
)


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")


def with_lb(spi: ServicePortInfo, lb: str, ranges: tuple[str, ...]) -> ServicePortInfo:
    return dataclasses.replace(spi, load_balancer_ips=(lb,), load_balancer_source_ranges=ranges)


def test_source_ranges_permit() -> None:
    r = SourceRanges(("127.0.0.1/32", "10.0.0.0/8", "fd00::/64"))
    assert r.permits("127.0.0.1") and r.permits("10.9.9.9") and r.permits("fd00::5")
    assert r.permits("::ffff:10.1.2.3")  # an IPv4 client on a dual-stack socket
    assert not r.permits("127.0.0.2") and not r.permits("fd01::1") and not r.permits("x")


def test_desired_listeners_carry_ranges_of_the_lb_ips_family() -> None:
    spi = with_lb(
        service_port("lb", "127.0.0.10", 80, []),
        "127.0.0.20",
        ("127.0.0.1/32", "fd00::/64"),
    )
    d = desired_listeners({spi.name: spi}, lambda ip: True, (), ())
    assert d.sources == {ListenerKey("TCP", "127.0.0.20", 80): ("127.0.0.1/32",)}
    only_v6 = dataclasses.replace(spi, load_balancer_source_ranges=("fd00::/64",))
    assert desired_listeners({spi.name: only_v6}, lambda ip: True, (), ()).sources == {}


async def _connect_from(src: str, ip: str, port: int) -> bytes:
    """Send b"x" from source address `src`; what came back (b"" when reset or closed)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    sock.bind((src, 0))
    try:
        await loop.sock_connect(sock, (ip, port))
        await loop.sock_sendall(sock, b"x")
        return await asyncio.wait_for(loop.sock_recv(sock, 100), 5)
    except ConnectionResetError:
        return b""
    finally:
        sock.close()


def test_tcp_lb_ip_listener_resets_clients_outside_the_ranges() -> None:
    async def main() -> None:
        backend = NamedBackend("b0")
        await backend.start()
        cluster_ip, lb_ip = loopback_ip(), loopback_ip()
        port = free_port(lb_ip)
        dp = dataplane()
        await dp.start()
        try:
            base = service_port("lb", cluster_ip, port, [("127.0.0.1", backend.port)])
            snap = snapshot(with_lb(base, lb_ip, ("127.0.0.1/32",)))
            await dp.sync(snap, changed(snap))
            assert await _connect_from("127.0.0.1", lb_ip, port) == b"b0:x"
            assert await _connect_from("127.0.0.2", lb_ip, port) == b""
            # the cluster IP of the same service is not restricted
            assert await _connect_from("127.0.0.2", cluster_ip, port) == b"b0:x"
            assert backend.connections == 2
            # ranges changed to let 127.0.0.2 in, then lifted altogether
            snap = snapshot(with_lb(base, lb_ip, ("127.0.0.2/32",)), generation=2)
            await dp.sync(snap, changed(snap))
            assert await _connect_from("127.0.0.2", lb_ip, port) == b"b0:x"
            assert await _connect_from("127.0.0.1", lb_ip, port) == b""
            snap = snapshot(with_lb(base, lb_ip, ()), generation=3)
            await dp.sync(snap, changed(snap))
            assert await _connect_from("127.0.0.1", lb_ip, port) == b"b0:x"
        finally:
            await dp.stop()
            backend.close()

    run(main())


class _Echo(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(b"echo:" + data, addr)


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.answer.done():
            self.answer.set_result(data)


async def _udp_from(src: str, ip: str, port: int) -> bytes | None:
    """One datagram from source address `src`; the answer, or None when none came."""
    client = _Client()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: client, local_addr=(src, 0)
    )
    try:
        transport.sendto(b"x", (ip, port))
        return await asyncio.wait_for(client.answer, 0.5)
    except TimeoutError:
        return None
    finally:
        transport.close()


def test_udp_lb_ip_listener_drops_datagrams_from_outside_the_ranges() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        echo = _Echo()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: echo, local_addr=("127.0.0.1", 0)
        )
        backend_port = transport.get_extra_info("sockname")[1]
        lb_ip = loopback_ip()
        port = free_port(lb_ip, socket.SOCK_DGRAM)
        dp = dataplane()
        await dp.start()
        try:
            base = service_port(
                "dns", loopback_ip(), port, [("127.0.0.1", backend_port)], protocol="UDP"
            )
            snap = snapshot(with_lb(base, lb_ip, ("127.0.0.1/32",)))
            await dp.sync(snap, changed(snap))
            assert await _udp_from("127.0.0.1", lb_ip, port) == b"echo:x"
            assert await _udp_from("127.0.0.3", lb_ip, port) is None  # dropped, silently
        finally:
            await dp.stop()
            transport.close()

    run(main())


@needs_ipv6
def test_ipv6_cluster_ip_and_node_port_listeners() -> None:
    """A dual-stack service: its IPv6 (loopback) cluster IP gets a listener, its node port
    the IPv6 wildcard beside the IPv4 one; an IPv4-only service gets no IPv6 wildcard."""

    async def main() -> None:
        backend = NamedBackend("b6")
        await backend.start("::1")
        port, node_port = free_port("127.0.0.1"), free_port("127.0.0.1")
        dp = dataplane()
        await dp.start()
        try:
            spi = service_port("web", "::1", port, [], node_port=node_port)
            eps = (EndpointInfo("::1", backend.port),)
            spi = dataclasses.replace(
                spi, cluster_ips=(loopback_ip(), "::1"), endpoints=eps, all_endpoints=eps
            )
            v4_only = service_port("old", loopback_ip(), port, [], node_port=free_port("127.0.0.1"))
            snap = snapshot(spi, v4_only)
            await dp.sync(snap, changed(snap))
            keys = set(dp.listening())
            assert ListenerKey("TCP", "::1", port) in keys
            assert ListenerKey("TCP", "::", node_port) in keys
            assert ListenerKey("TCP", "0.0.0.0", node_port) in keys
            assert ListenerKey("TCP", "::", v4_only.node_port or 0) not in keys
            assert await request("::1", port, b"a") == b"b6:a"
            assert await request("::1", node_port, b"b") == b"b6:b"
            assert await request("127.0.0.1", node_port, b"c") == b"b6:c"  # IPv4 in, IPv6 out
        finally:
            await dp.stop()
            backend.close()

    run(main())
