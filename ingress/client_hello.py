"""The server name (SNI) of a TLS ClientHello, read from the first bytes of a TLS stream.

Pure: bytes in, a `Peek` out; no sockets. ingress/passthrough.py feeds it what it peeked
at on an accepted connection (the bytes stay in the kernel's buffer) and asks again with
more bytes while the answer is "more".

What is read (RFC 8446 section 4.1.2 and 5.1, RFC 6066 section 3):

- TLS records of type handshake (22), major version 3, each 1..2^14 bytes long. The
  ClientHello may be fragmented over several records (allowed by the RFC, rare in
  practice); their payloads are joined until the handshake message is complete.
- The handshake message must be a ClientHello (type 1) of at most MAX_HELLO bytes.
- Its fields are walked with their length prefixes checked (session id <= 32 bytes, cipher
  suites an even count >= 2, at least one compression method, extensions filling the rest
  exactly); the first ``host_name`` entry of the server_name extension is the answer,
  lower-cased with one trailing dot dropped. A ClientHello without that extension (an
  IP-address URL, an old client) has ``server_name`` None.

Answers: ``Peek.hello(name)``, ``Peek.more(n)`` (nothing wrong so far; look again once the
stream holds ``n`` bytes), or ``Peek.invalid(reason)`` (not TLS, not a ClientHello, or
malformed). The caller hands an invalid stream to the normal TLS path, which fails the
handshake as it always did; nothing here raises on any input.
"""

from __future__ import annotations

from typing import Literal

RECORD_HEADER = 5
HANDSHAKE = 22  # TLS record content type
CLIENT_HELLO = 1  # handshake message type
MAX_RECORD = 1 << 14  # TLSPlaintext.length limit
MAX_HELLO = 1 << 14  # a ClientHello larger than one full record is refused
# Bytes of stream a ClientHello may take: records of 1 byte each would need 6 per byte of
# message; anything spread thinner than this is refused rather than waited for.
MAX_STREAM = 2 * (MAX_HELLO + RECORD_HEADER)
EXT_SERVER_NAME = 0
NAME_TYPE_HOST = 0
_THIN = f"ClientHello spread over more than {MAX_STREAM} bytes of records"
_HOST_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._*")

Status = Literal["hello", "more", "invalid"]


class Peek:
    """What the first bytes of a stream say: a ClientHello and its server name, a need
    for more bytes (``needed``: the stream length to wait for), or why it is not one."""

    __slots__ = ("needed", "reason", "server_name", "status")

    def __init__(
        self, status: Status, server_name: str | None = None, needed: int = 0, reason: str = ""
    ) -> None:
        self.status = status
        self.server_name = server_name
        self.needed = needed
        self.reason = reason

    @classmethod
    def hello(cls, server_name: str | None) -> Peek:
        return cls("hello", server_name)

    @classmethod
    def more(cls, needed: int) -> Peek:
        return cls("more", needed=needed)

    @classmethod
    def invalid(cls, reason: str) -> Peek:
        return cls("invalid", reason=reason)

    def __repr__(self) -> str:
        if self.status == "hello":
            return f"Peek.hello({self.server_name!r})"
        if self.status == "more":
            return f"Peek.more({self.needed})"
        return f"Peek.invalid({self.reason!r})"


class _Malformed(Exception):
    """A length or value that cannot be (internal: becomes Peek.invalid)."""


def read_client_hello(data: bytes) -> Peek:
    """What `data`, the first bytes of a TLS stream, say (see the module docstring)."""
    message = bytearray()
    records = 0
    size = -1  # the handshake message's length, once its header is in
    pos = 0
    while size < 0 or len(message) < 4 + size:
        if pos + RECORD_HEADER > len(data):
            return _more(pos + RECORD_HEADER)
        if data[pos] != HANDSHAKE:
            return Peek.invalid(
                "not a TLS handshake record" if pos else "not TLS (no handshake record)"
            )
        if data[pos + 1] != 3:
            return Peek.invalid(f"record version {data[pos + 1]}.{data[pos + 2]} is not TLS")
        length = data[pos + 3] << 8 | data[pos + 4]
        if not 0 < length <= MAX_RECORD:
            return Peek.invalid(f"record length {length} is out of range")
        end = pos + RECORD_HEADER + length
        if end > MAX_STREAM:
            return Peek.invalid(_THIN)
        if end > len(data):
            return Peek.more(end)
        message += data[pos + RECORD_HEADER : end]
        records += 1
        pos = end
        if size < 0 and len(message) >= 4:
            if message[0] != CLIENT_HELLO:
                return Peek.invalid(f"handshake message type {message[0]} is not a ClientHello")
            size = message[1] << 16 | message[2] << 8 | message[3]
            if size > MAX_HELLO:
                return Peek.invalid(f"ClientHello of {size} bytes is larger than {MAX_HELLO}")
    if len(message) != 4 + size:
        return Peek.invalid("the ClientHello's records carry bytes past its end")
    # One record (the usual case): read the fields where they are, without the copy.
    buf, start = (data, RECORD_HEADER + 4) if records == 1 else (bytes(message), 4)
    try:
        return Peek.hello(_server_name(buf, start, start + size))
    except _Malformed as exc:
        return Peek.invalid(f"malformed ClientHello: {exc}")


def _more(needed: int) -> Peek:
    return Peek.invalid(_THIN) if needed > MAX_STREAM else Peek.more(needed)


def _vector(b: bytes, pos: int, end: int, width: int, what: str) -> tuple[int, int]:
    """(start, end) of the length-prefixed field at `pos` (a `width`-byte length)."""
    if pos + width > end:
        raise _Malformed(f"{what} length runs past the end")
    n = b[pos] if width == 1 else b[pos] << 8 | b[pos + 1]
    pos += width
    if pos + n > end:
        raise _Malformed(f"{what} runs past the end")
    return pos, pos + n


def _server_name(b: bytes, pos: int, end: int) -> str | None:
    """The SNI host name of the ClientHello body b[pos:end] (None: no server_name)."""
    pos += 2 + 32
    if pos > end:
        raise _Malformed("version and random runs past the end")
    first, pos = _vector(b, pos, end, 1, "session id")
    if pos - first > 32:
        raise _Malformed("session id longer than 32 bytes")
    first, pos = _vector(b, pos, end, 2, "cipher suites")
    if pos - first < 2 or (pos - first) % 2:
        raise _Malformed(f"cipher suites of {pos - first} bytes")
    first, pos = _vector(b, pos, end, 1, "compression methods")
    if pos == first:
        raise _Malformed("no compression method")
    if pos == end:
        return None  # no extensions (allowed before TLS 1.3)
    pos, stop = _vector(b, pos, end, 2, "extensions")
    if stop != end:
        raise _Malformed(f"{end - stop} bytes after the extensions")
    found: str | None = None
    named = False
    while pos + 4 <= stop:  # the loop of every hello: kept inline
        kind = b[pos] << 8 | b[pos + 1]
        first = pos + 4
        pos = first + (b[pos + 2] << 8 | b[pos + 3])
        if pos > stop:
            raise _Malformed("extension runs past the end")
        if kind == EXT_SERVER_NAME:
            if named:
                raise _Malformed("extension server_name appears twice")
            named = True
            found = _host_name(b, first, pos)
    if pos != stop:
        raise _Malformed("extension header runs past the end")
    return found


def _host_name(b: bytes, pos: int, end: int) -> str | None:
    """The first host_name of a server_name extension b[pos:end] (RFC 6066)."""
    pos, stop = _vector(b, pos, end, 2, "server name list")
    if stop != end or pos == stop:
        raise _Malformed("server_name extension of the wrong length")
    host: str | None = None
    while pos < stop:
        kind = b[pos]
        first, pos = _vector(b, pos + 1, stop, 2, "server name")
        if kind == NAME_TYPE_HOST and host is None:
            raw = b[first:pos]
            if not raw or not _HOST_BYTES.issuperset(raw):
                raise _Malformed("server name is not an ASCII host name")
            host = raw.decode("ascii").lower()
            if host.endswith("."):
                host = host[:-1]
    return host or None
