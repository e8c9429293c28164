"""The source of `seaway proxy`: its objects in memory, and active health checks.

With `--health-path`, every backend gets `GET PATH` every interval (plain HTTP/1.1, a
fresh connection, `Connection: close`). A backend whose check fails FALL times in a row
(no connection, no answer within the timeout, a status outside 200-399) is marked not
ready in its EndpointSlice, so no new request or connection goes to it; RISE passes in a
row make it ready again (haproxy's defaults). Nothing else marks a backend down: without
--health-path every backend stays ready, and a refused connect is simply retried on the
next backend (L4 and L7 both do). When every backend is down there is no usable
endpoint: HTTP answers 503 and L4 refuses connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from discovery.store import Store
from proxy.app.proxy_objects import Backend, ProxySpec, proxy_objects

log = logging.getLogger("seaway.health")

RISE = 2
FALL = 3
SOURCE_ID = "seaway-proxy"


class HealthState:
    """Up or down per backend from consecutive check results (rise/fall). Pure."""

    __slots__ = ("_fall", "_rise", "_streak", "down")

    def __init__(self, backends: tuple[Backend, ...], rise: int = RISE, fall: int = FALL):
        self._rise = rise
        self._fall = fall
        self.down: set[Backend] = set()
        self._streak = dict.fromkeys(backends, 0)  # >0: passes in a row, <0: failures

    def first(self, backend: Backend, ok: bool) -> None:
        """The first check of a backend decides at once (nothing has been sent to it)."""
        self._streak[backend] = self._rise if ok else -self._fall
        if not ok:
            self.down.add(backend)

    def record(self, backend: Backend, ok: bool) -> bool:
        """One check result; True when the backend changed state."""
        streak = self._streak.get(backend, 0)
        streak = max(streak, 0) + 1 if ok else min(streak, 0) - 1
        self._streak[backend] = streak
        if ok and backend in self.down and streak >= self._rise:
            self.down.discard(backend)
            return True
        if not ok and backend not in self.down and -streak >= self._fall:
            self.down.add(backend)
            return True
        return False


async def http_check(backend: Backend, path: str, timeout: float) -> bool:
    """GET path on a fresh connection: True for a status 200-399 within the timeout."""
    ip, port = backend
    host = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: seaway-health-check\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(ip, port)
            writer.write(request)
            line = await reader.readline()
    except (OSError, TimeoutError):
        return False
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    parts = line.split(None, 2)
    return len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1][:1] in (b"2", b"3")


Check = Callable[[Backend, str, float], Awaitable[bool]]


class ProxySource:
    """The daemon's source for `seaway proxy`: the objects of a ProxySpec, kept in step
    with the backends' health."""

    def __init__(
        self,
        spec: ProxySpec,
        health_path: str = "",
        interval: float = 5.0,
        timeout: float = 2.0,
        check: Check = http_check,
    ) -> None:
        self.spec = spec
        self.health_path = health_path
        self.interval = interval
        self.timeout = timeout
        self.check = check
        self.health = HealthState(spec.backends)
        self.checks = 0  # rounds done (tests wait on it)
        self._store: Store | None = None

    async def run(self, store: Store, ready: Callable[[], None]) -> None:
        self._store = store
        if self.health_path:  # backends down at start are not ready from the first sync
            backends = self.spec.backends
            for backend, ok in zip(backends, await self._check_all(), strict=True):
                self.health.first(backend, ok)
                if not ok:
                    log.warning("backend %s:%d is down (health check %s)", *backend,
                                self.health_path)
            self.checks += 1
        self._publish()
        ready()
        if not self.health_path:
            await asyncio.Event().wait()  # nothing changes until the daemon stops
        while True:
            await asyncio.sleep(self.interval)
            await self._round()

    async def _check_all(self) -> list[bool]:
        return await asyncio.gather(
            *(self.check(b, self.health_path, self.timeout) for b in self.spec.backends)
        )

    async def _round(self) -> None:
        changed = False
        for backend, ok in zip(self.spec.backends, await self._check_all(), strict=True):
            if self.health.record(backend, ok):
                changed = True
                state = "up" if ok else "down"
                log.warning("backend %s:%d is %s (health check %s)", *backend, state,
                            self.health_path)
        self.checks += 1
        if changed:
            self._publish()

    def _publish(self) -> None:
        assert self._store is not None
        down = frozenset(self.health.down)
        self._store.replace_source(SOURCE_ID, proxy_objects(self.spec, down))

    def status(self) -> dict[str, Any]:
        """For the status page (proxy/app/status.py documents the keys)."""
        listen = "{}:{}".format(*self.spec.listen)
        kind = "TCP" if self.spec.l4 else "HTTPS" if self.spec.tls else "HTTP"
        return {
            "kind": "static",
            "state": "degraded" if self.health.down else "ok",
            "path": f"seaway proxy: {kind} {listen} -> " + ", ".join(
                f"{ip}:{port}" for ip, port in self.spec.backends
            ),
            "health_path": self.health_path,
            "down": [f"{ip}:{port}" for ip, port in sorted(self.health.down)],
        }
