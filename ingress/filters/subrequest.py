"""Requests the proxy makes itself: the external-auth check and mirrored copies.

They travel on pooled keep-alive upstream connections (ingress/upstream.py), in pools of
their own (the FilterRuntime's, never mixed with forwarded requests, and writing at once
rather than through the Outbox): a SubExchange is the ResponseSink of one of them and
collects the answer (or throws it away, for a mirror) instead of writing it to a client. ``fetch``
resolves the host (IP literals as they are; names through the loop's resolver, cached
for RESOLVE_TTL), takes an idle connection or opens one (TLS for https), sends, and
returns the answer, or None when there was none (connect failure, timeout, bad answer).
A pooled connection that fails before any byte is retried once on a fresh one.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from dataclasses import dataclass
from functools import partial
from typing import cast

from ingress.pool import PoolSet
from ingress.request import RequestState
from ingress.upstream import ResponseSink, UpstreamConnection

log = logging.getLogger(__name__)

RESOLVE_TTL = 30.0  # seconds a resolved host name is remembered
MAX_BODY = 64 * 1024  # bytes of an answer kept (an auth answer's body is not used)


@dataclass(frozen=True, slots=True)
class SubResponse:
    status: int
    head: bytes  # status line to blank line

    def values(self, name: bytes) -> list[bytes]:
        """Every value of the field `name` (case-insensitive), in order."""
        pattern = re.compile(rb"\r\n" + re.escape(name) + rb":[ \t]*([^\r]*)", re.IGNORECASE)
        return [v.rstrip(b" \t") for v in pattern.findall(self.head)]

    def value(self, name: bytes) -> bytes | None:
        found = self.values(name)
        return found[0] if found else None


class _Collector:
    """The `out` transport of a SubExchange: keeps the first bytes of the answer."""

    __slots__ = ("data", "keep")

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        if self.keep and len(self.data) < MAX_BODY:
            self.data += data

    def writelines(self, parts: list[bytes]) -> None:
        for part in parts:
            self.write(part)

    def is_closing(self) -> bool:
        return False


class SubExchange(ResponseSink):
    """The ResponseSink of one subrequest (see ingress/upstream.py)."""

    __slots__ = ("answer", "done", "retryable")

    def __init__(self, method: bytes, keep: bool, reused: bool) -> None:
        self.answer = _Collector(keep)
        # HTTP/1.1, keep-alive; the answer is collected
        super().__init__(RequestState(method), cast(asyncio.Transport, self.answer))
        self.reused = reused
        self.retryable = False
        self.done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def _finish(self, ok: bool) -> None:
        if not self.done.done():
            self.done.set_result(ok)

    def response_started(self, close: bool) -> None:
        pass

    def response_done(self) -> None:
        self._finish(True)

    def failed(self, status: int, retryable: bool, kind: int = 0) -> None:
        self.retryable = retryable
        self._finish(False)

    def upgraded(self) -> None:
        self._finish(False)

    def abort(self) -> None:
        self._finish(False)


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


class Resolver:
    """Host name -> address, remembered for RESOLVE_TTL (IP literals pass through)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._cache: dict[str, tuple[str, float]] = {}

    async def resolve(self, host: str, port: int) -> str:
        if _is_ip(host):
            return host
        now = self.loop.time()
        cached = self._cache.get(host)
        if cached is not None and now - cached[1] < RESOLVE_TTL:
            return cached[0]
        infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        address = str(infos[0][4][0])
        if len(self._cache) > 1024:
            self._cache.clear()
        self._cache[host] = (address, now)
        return address


async def fetch(
    loop: asyncio.AbstractEventLoop,
    pools: PoolSet,
    resolver: Resolver,
    target: tuple[str, int, ssl.SSLContext | None],
    head: bytes,
    timeout: float,
    keep: bool = True,
) -> SubResponse | None:
    """Send `head` (a whole request: head and body) to `target` (host, port, TLS context
    or None) and return the answer (None: none came)."""
    host, port, tls = target
    try:
        ip = await resolver.resolve(host, port)
    except OSError as exc:
        log.warning("subrequest to %s:%d: cannot resolve: %s", host, port, exc)
        return None
    pool = pools.get((ip, port))
    method = head[: head.find(b" ")]
    for attempt in range(2):
        conn = pool.acquire() if attempt == 0 else None
        reused = conn is not None
        if conn is None:
            factory = partial(UpstreamConnection, loop, pool, timeout)
            server_name = host if tls is not None and not _is_ip(host) else None
            try:
                connect = loop.create_connection(
                    factory, ip, port, ssl=tls, server_hostname=server_name
                )
                _, conn = await asyncio.wait_for(connect, timeout)
            except (TimeoutError, OSError, ssl.SSLError) as exc:
                log.warning("subrequest to %s:%d: connect failed: %r", host, port, exc)
                return None
        assert isinstance(conn, UpstreamConnection)
        sink = SubExchange(method, keep, reused)
        conn.timeout = timeout
        conn.attach(sink, head)
        ok = await sink.done
        if ok:
            conn.release()
            data = bytes(sink.answer.data)
            end = data.find(b"\r\n\r\n")
            return SubResponse(sink.status, data[: end + 4] if end >= 0 else data)
        if not (sink.retryable and reused):
            return None
    return None
