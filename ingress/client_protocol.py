"""Connections whose client is not (only) the peer: the PROXY header read off the socket,
and the HttpProtocol subclasses that take their client address from it or from the
request (ingress/client_address.py says which address and which X-Forwarded-* fields).

A listener without a ClientAddress uses HttpProtocol unchanged: none of this runs, per
connection or per request. A listener with one picks, per connection:

- `AddressedProtocol` when the address is known once the connection is: the PROXY
  header's, or the peer with ingress-nginx's X-Forwarded-* fields. Its cost is in
  `connection_made`, once per connection.
- `ForwardedProtocol` when each request's fields decide (enable-real-ip,
  use-forwarded-headers): it resolves the address as each request is routed and keeps
  it with the request, so a pipelined request never sees its neighbour's; requests take
  the general parse path (no one-read shortcut, no exact-bytes memo).

The PROXY header is consumed before the loop sees the socket (`read_proxy_header`): the
listener peeks, consumes exactly the header's bytes and hands the socket on, so what
follows, an HTTP request or a TLS ClientHello, is read by the transport as if the header
had never been there. A TLS listener therefore needs nothing special, and a later step
that peeks at the ClientHello (ssl-passthrough) sees it at the start of the socket.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from typing import Final

from ingress.client_address import ConnectionAddress, real_client
from ingress.context import ProxyContext
from ingress.http1 import HttpProtocol
from ingress.proxy_protocol import MAX_V2_LENGTH, ProxyHeader, parse_proxy_header
from ingress.request import ForwardedLines, RequestState

log = logging.getLogger(__name__)

PEEK: Final = 16 + MAX_V2_LENGTH  # the longest header seaway accepts
_HOST_LINE: Final = re.compile(rb"\r\nhost:[ \t]*([^\r]*?)[ \t]*\r", re.IGNORECASE)
_XFH: Final = b"\r\nX-Forwarded-Host: "


async def read_proxy_header(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout: float
) -> ProxyHeader:
    """Consume exactly the PROXY header at the start of `sock` (non-blocking): the bytes
    after it stay in the socket. Raises ProxyProtocolError (not a header),
    ConnectionError (closed first) or TimeoutError (none within `timeout` seconds)."""
    async with asyncio.timeout(timeout):
        taken = b""  # consumed so far: every byte of an incomplete header is the header's
        while True:
            try:
                peeked = sock.recv(PEEK, socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                await _readable(loop, sock.fileno())
                continue
            if not peeked:
                raise ConnectionError("closed before its PROXY protocol header")
            header = parse_proxy_header(taken + peeked)
            want = len(peeked) if header is None else header.length - len(taken)
            while want > 0:  # already in the socket's buffer: recv returns at once
                got = sock.recv(want)
                if not got:
                    raise ConnectionError("closed in its PROXY protocol header")
                taken += got
                want -= len(got)
            if header is not None:
                return header


class _Refusals:
    """Connections closed for want of a PROXY header: the first in a minute is a
    warning naming the reason (a balancer not sending the header shows at once), the
    others are counted into the next one (a scanner cannot flood the log)."""

    __slots__ = ("count", "since")

    def __init__(self) -> None:
        self.count = 0
        self.since = -REFUSAL_LOG_INTERVAL

    def note(self, listener: str, conn: socket.socket, exc: BaseException, now: float) -> None:
        self.count += 1
        if now - self.since < REFUSAL_LOG_INTERVAL:
            return
        try:
            peer = conn.getpeername()[0]
        except OSError:
            peer = "?"
        why = str(exc) or "no PROXY protocol header in time"
        log.warning(
            "%s: closed a connection from %s expecting a PROXY protocol header: %s "
            "(%d such connection(s) closed since the last warning)",
            listener,
            peer,
            why,
            self.count,
        )
        self.count = 0
        self.since = now


REFUSAL_LOG_INTERVAL: Final = 60.0
REFUSALS: Final = _Refusals()


def refused_header(listener: str, conn: socket.socket, exc: BaseException) -> None:
    """Note a connection closed for want of a valid PROXY header (the caller closes)."""
    REFUSALS.note(listener, conn, exc, time.monotonic())


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready = loop.create_future()
    loop.add_reader(fd, ready.set_result, None)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


class AddressedProtocol(HttpProtocol):
    """HttpProtocol whose client address and X-Forwarded-* lines come from the
    listener's ConnectionAddress and the connection's PROXY header (None: there was
    none). ``peer`` keeps the TCP peer's address."""

    __slots__ = ("address", "header", "peer")

    def __init__(
        self,
        ctx: ProxyContext,
        scheme: bytes,
        address: ConnectionAddress,
        header: ProxyHeader | None = None,
    ) -> None:
        super().__init__(ctx, scheme)
        self.address = address
        self.header = header
        self.peer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.peer = peer = self.client_ip
        self.client_ip = ip = self.address.source(peer, self.header)
        self.lines = self.address.lines(ip, self.scheme, self.header, peer)
        self.scheme = self.lines.scheme  # (a PROXY destination port 443 is https)


class _Seen:
    """What one request made of the client: its address, scheme and lines, and the
    X-Forwarded-Host value sent instead of its Host (use-forwarded-headers)."""

    __slots__ = ("client_ip", "host", "key", "lines", "scheme")

    def __init__(self, lines: ForwardedLines, host: bytes | None, key: tuple[object, ...]) -> None:
        self.client_ip = lines.client_ip  # (key: the request fields besides it)
        self.scheme = lines.scheme
        self.lines = lines
        self.host = host
        self.key = key


class ForwardedProtocol(AddressedProtocol):
    """AddressedProtocol whose client address (and, with use-forwarded-headers, scheme,
    port and host) each request's fields decide. The connection's ``client_ip``,
    ``scheme`` and ``lines`` are those of the request being routed, then again the
    active one's: a request routed while another is under way (pipelined) keeps its own
    until it starts.

    The address is read from the raw head before HttpProtocol parses it: a read that is
    one whole head (``_one``) and a repeated one (``_repeat``) keep their shortcuts; only
    a request whose Host is replaced by X-Forwarded-Host takes the general path, where
    the upstream head is edited between admission and sending."""

    __slots__ = ("_base_scheme", "_current", "_last", "_named", "_pending", "_queued", "_source")

    def __init__(
        self,
        ctx: ProxyContext,
        scheme: bytes,
        address: ConnectionAddress,
        header: ProxyHeader | None = None,
    ) -> None:
        super().__init__(ctx, scheme, address, header)
        self._base_scheme = scheme
        self._source = b""  # the client before any request field is read
        self._queued: dict[RequestState, _Seen] = {}  # routed, waiting for their turn
        self._current: _Seen | None = None  # what client_ip, scheme and lines say now
        self._last: _Seen | None = None
        self._pending: _Seen | None = None  # resolved by _one for the _route it falls to
        name = address.model.real_ip_header or "X-Forwarded-For"
        self._named = _field_pattern(name.lower().encode("latin-1"))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._source = self.client_ip

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._queued.clear()

    # -- hooks into HttpProtocol: every request goes through _one, _repeat or _route -----
    def _one(self, data: bytes) -> None:
        seen = self._pending = self._resolve(data)  # (_pending: if it falls to _route)
        self._use(seen)
        if seen.host is not None:  # Host to replace: the general path, see _route
            self._read(data)
            if self.deferred and not self.closing:
                self.deferred = False
                self._start(self.active)  # type: ignore[arg-type]  # set by _route
            return
        super()._one(data)
        self._pending = None

    def _repeat(self, memo: RequestState) -> None:
        # The same bytes: the same client as the memo's (whose upstream head it reuses).
        seen = self._pending = self._resolve(memo.head)
        self._use(seen)
        super()._repeat(memo)
        self._pending = None

    def _route(self, req: RequestState) -> None:
        seen = self._pending or self._resolve(req.head)
        self._pending = None
        before = self._current
        self._use(seen)
        super()._route(req)
        if seen.host is not None and req.upstream_head:
            req.upstream_head = _forwarded_host(req.upstream_head, req.host, seen.host)
        if self.active is not req:  # queued behind the active one: its turn comes later
            self._queued[req] = seen
            self._use(before)

    def _start(self, req: RequestState) -> None:
        if self._queued:
            self._use(self._queued.pop(req, None))
        super()._start(req)

    # -- the request's client ------------------------------------------------------------
    def _use(self, seen: _Seen | None) -> None:
        if seen is not None and seen is not self._current:
            self._current = seen
            self.client_ip = seen.client_ip
            self.scheme = seen.scheme
            self.lines = seen.lines

    def _resolve(self, head: bytes) -> _Seen:
        """The client of the request whose raw head is `head`."""
        a = self.address
        m = a.model
        client = self._source
        trusted = a.trusted
        low = head.lower()  # searched with case-sensitive patterns (a literal scan)
        if trusted is not None and m.real_ip_header:
            named = self._named
            values = _values(named, head, low) if named.search(low) is not None else []
            header = self.header
            if m.proxy_protocol:
                carried = header.source[0].encode() if header and header.source else None
                if carried is None:
                    values = []  # no PROXY address: nginx's header is empty
                elif carried not in trusted or not values:
                    values = [carried]
            client = real_client(self.peer, values, trusted) if values else self.peer
        scheme, port, host = self._base_scheme, None, None
        if m.use_forwarded_headers:
            scheme = _first(_XFPROTO, head, low) or scheme
            port = _first(_XFPORT, head, low)
            forwarded_host = _first(_XFHOST, head, low)
            if forwarded_host:
                host = forwarded_host.split(b",", 1)[0].strip()  # lua: the first one
        last = self._last
        if last is not None and last.client_ip == client and last.key == (scheme, port, host):
            return last  # (a client's requests mostly look alike)
        lines = a.lines(client, scheme, self.header, self.peer, port)
        seen = self._last = _Seen(lines, host, (scheme, port, host))
        return seen


def _field_pattern(name: bytes) -> re.Pattern[bytes]:
    """The field `name` (lower case) in a lower-cased head; group 1 spans its value."""
    return re.compile(rb"\r\n" + re.escape(name) + rb":[ \t]*([^\r]*?)[ \t]*(?=\r)")


_XFPROTO: Final = _field_pattern(b"x-forwarded-proto")
_XFPORT: Final = _field_pattern(b"x-forwarded-port")
_XFHOST: Final = _field_pattern(b"x-forwarded-host")


def _first(pattern: re.Pattern[bytes], head: bytes, low: bytes) -> bytes | None:
    """The first value of a field, as written in `head` (`low`: head.lower())."""
    m = pattern.search(low)
    return head[m.start(1) : m.end(1)] if m is not None else None


def _values(pattern: re.Pattern[bytes], head: bytes, low: bytes) -> list[bytes]:
    """Every value of a field, as written in `head`, in order."""
    return [head[m.start(1) : m.end(1)] for m in pattern.finditer(low)]


def _forwarded_host(head: bytes, host: bytes | None, forwarded: bytes) -> bytes:
    """The upstream head with X-Forwarded-Host, and Host unless a filter set another
    (upstream-vhost), saying `forwarded` ($best_http_host) instead of the request's."""
    old = host or b""
    head = head.replace(_XFH + old + b"\r\n", _XFH + forwarded + b"\r\n", 1)
    m = _HOST_LINE.search(head)
    if m is not None and m.group(1) == old:
        head = head[: m.start(1)] + forwarded + head[m.end(1) :]
    return head
