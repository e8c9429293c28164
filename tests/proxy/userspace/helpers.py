"""Shared helpers for the userspace L4 tests: snapshots, backends, a fake clock."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import uvloop

from discovery.model import LoadBalancerPolicy, LoadBalancing
from discovery.snapshot import EndpointInfo, ServicePortInfo, ServicePortName, Snapshot
from proxy.app.options import Options
from proxy.userspace.dataplane import UserspaceDataplane

T = TypeVar("T")

_ips = itertools.count((os.getpid() % 200) * 256 + 10)


def loopback_ip() -> str:
    """A 127.x.y.z address not used by another test of this process."""
    n = next(_ips)
    return f"127.{100 + (n >> 16) % 100}.{(n >> 8) & 255}.{n & 255 or 1}"


def free_port(ip: str, kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def run(coro: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
    """Run a test coroutine on uvloop, as the daemon does (the timeout only guards hangs)."""
    return uvloop.run(asyncio.wait_for(coro, timeout))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def service_port(
    name: str,
    ip: str,
    port: int,
    endpoints: list[tuple[str, int]],
    protocol: str = "TCP",
    node_port: int | None = None,
    affinity: int | None = None,
    policy: LoadBalancerPolicy = "round-robin",
) -> ServicePortInfo:
    """A service port; round robin unless `policy` says otherwise, so tests can predict
    which backend answers."""
    eps = tuple(EndpointInfo(h, p) for h, p in endpoints)
    return ServicePortInfo(
        name=ServicePortName("default", name, "", protocol),  # type: ignore[arg-type]
        cluster_ips=(ip,),
        port=port,
        protocol=protocol,  # type: ignore[arg-type]
        node_port=node_port,
        session_affinity_timeout=affinity,
        load_balancing=LoadBalancing(policy),
        all_endpoints=eps,
        endpoints=eps,
    )


def snapshot(*ports: ServicePortInfo, generation: int = 1) -> Snapshot:
    return Snapshot(generation=generation, service_ports={p.name: p for p in ports})


def changed(snap: Snapshot) -> frozenset[ServicePortName]:
    return frozenset(snap.service_ports)


def dataplane(
    clock: Callable[[], float] | None = None, options: Options | None = None, **kw: Any
) -> UserspaceDataplane:
    kw.setdefault("local_addresses", frozenset)
    return UserspaceDataplane(
        (options or Options()).userspace_config(),
        clock=clock or FakeClock(),
        sweep_interval=0,
        **kw,
    )


# ---------------------------------------------------------------- TCP backends


class NamedBackend:
    """TCP backend: answers each received chunk with `name:` + chunk; records peers."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while data := await reader.read(65536):
                writer.write(self.name.encode() + b":" + data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def start(self, ip: str = "127.0.0.1") -> tuple[str, int]:
        self.server = await asyncio.start_server(self._handle, ip, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return ip, self.port

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def request(ip: str, port: int, payload: bytes = b"hi") -> bytes:
    """One connection, one exchange: returns the answer."""
    reader, writer = await asyncio.open_connection(ip, port)
    try:
        writer.write(payload)
        return await reader.read(65536)
    finally:
        writer.close()


async def wait_until(cond: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Poll a condition (the limit only guards against hangs; no timing is asserted)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def gather(*aws: Awaitable[T]) -> list[T]:
    return list(await asyncio.gather(*aws))
