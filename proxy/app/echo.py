"""A small built-in backend: HTTP that answers with what it received, and UDP echo.

Used by the demo, the tests and the benchmarks. HTTP answers every request with JSON
{"name", "method", "path", "host", "headers", "body_length"}; the body is counted while
it streams in, never stored. UDP answers each datagram with b"NAME:" + payload.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import cast

import httptools

log = logging.getLogger(__name__)


class EchoHTTP(asyncio.Protocol):
    """One client connection: parse requests with httptools and answer each with JSON."""

    __slots__ = (
        "_body_length",
        "_headers",
        "_name",
        "_parser",
        "_path",
        "_transport",
    )

    def __init__(self, name: str) -> None:
        self._name = name
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._headers: list[tuple[str, str]] = []
        self._path = ""
        self._body_length = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reply_error(b"501 Not Implemented")
        except httptools.HttpParserError:
            self._reply_error(b"400 Bad Request")

    def _reply_error(self, status: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            self._transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._headers = []
        self._path = ""
        self._body_length = 0

    def on_url(self, url: bytes) -> None:
        self._path += url.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self._body_length += len(body)

    def on_message_complete(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        host = next((v for k, v in self._headers if k.lower() == "host"), "")
        payload = json.dumps(
            {
                "name": self._name,
                "method": self._parser.get_method().decode("latin-1"),
                "path": self._path,
                "host": host,
                "headers": dict(self._headers),
                "body_length": self._body_length,
            }
        ).encode()
        keep_alive = self._parser.should_keep_alive()
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(payload)).encode()
            + (b"\r\n\r\n" if keep_alive else b"\r\nConnection: close\r\n\r\n")
        )
        transport.write(head + payload)
        if not keep_alive:
            transport.close()


class EchoUDP(asyncio.DatagramProtocol):
    __slots__ = ("_prefix", "_transport")

    def __init__(self, name: str) -> None:
        self._prefix = name.encode() + b":"
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self._transport is not None:
            self._transport.sendto(self._prefix + data, addr)


async def start_echo(
    host: str, port: int, name: str, udp: bool = False
) -> asyncio.AbstractServer | asyncio.DatagramTransport:
    """Start an echo backend in the running loop; the caller closes what it returns."""
    loop = asyncio.get_running_loop()
    if udp:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: EchoUDP(name), local_addr=(host, port)
        )
        return transport
    return await loop.create_server(
        lambda: EchoHTTP(name), host, port, reuse_address=True, backlog=1024
    )
