"""The PROXY protocol header (haproxy's proxy-protocol.txt, versions 1 and 2). Pure.

A load balancer that relays TCP (haproxy `send-proxy`/`send-proxy-v2`, AWS NLB, GCP,
Azure) writes one header before the client's first byte, so the proxy behind it learns
the client's address. `parse_proxy_header(data)` reads it from the start of `data`:
None while more bytes are needed, a `ProxyHeader` (its length: the caller consumes
exactly that many bytes and hands the rest on, to HTTP or to a TLS handshake), or a
`ProxyProtocolError` for anything else. The caller decides what a connection without a
header means (seaway closes it, as nginx does with `listen ... proxy_protocol`).

Every byte that arrives before a header is complete belongs to the header: a v1 line
ends at its CRLF, a v2 block at the length its fixed part declares. So "incomplete"
always means "consume what you have and wait", never "read past the header".

Version 1: ``PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\\r\\n`` (single spaces, at most
107 bytes with the CRLF), or ``PROXY UNKNOWN ...\\r\\n`` (the addresses are not given).
Version 2: the 12-byte signature, version 2 with command LOCAL (a health check of the
balancer itself: no address) or PROXY, family UNSPEC/INET/INET6/UNIX, a length, the
addresses, then TLVs (skipped). Only INET and INET6 over STREAM carry an address seaway
uses; UNSPEC and UNIX are accepted as the spec says (the connection's own address
stands). A block longer than MAX_V2_LENGTH is refused rather than buffered.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
V1_MAX = 107  # bytes of a v1 line, CRLF included (the spec's worst case, TCP6)
MAX_V2_LENGTH = 4096  # bytes after the 16-byte fixed part (addresses and TLVs)
_V2_FIXED = 16
_INET, _INET6, _UNIX = 0x1, 0x2, 0x3
_STREAM = 0x1
_V2_ADDRESS_BYTES = {_INET: 12, _INET6: 36, _UNIX: 216}


class ProxyProtocolError(ValueError):
    """The bytes at the start of a connection are not a valid PROXY header."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A parsed header. ``length``: its bytes (what the caller consumes). ``source`` and
    ``destination``: (address, port) as the balancer saw the client connection, or None
    when the header carries none (v1 UNKNOWN, v2 LOCAL, UNSPEC or UNIX): the real
    connection's endpoints stand then."""

    version: int
    length: int
    source: tuple[str, int] | None = None
    destination: tuple[str, int] | None = None


def parse_proxy_header(data: bytes) -> ProxyHeader | None:
    """The header at the start of `data`; None when `data` is a valid start of one that
    needs more bytes; raises ProxyProtocolError otherwise."""
    if data[:1] == b"\r":
        if not V2_SIGNATURE.startswith(data[:12]):
            raise ProxyProtocolError("bad PROXY protocol v2 signature")
        return _parse_v2(data)
    if data[:1] == b"P":
        if not V1_PREFIX.startswith(data[:6]):
            raise ProxyProtocolError("bad PROXY protocol v1 signature")
        return _parse_v1(data)
    if not data:
        return None
    raise ProxyProtocolError("no PROXY protocol header")


def _parse_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyProtocolError(f"PROXY protocol v1 line longer than {V1_MAX} bytes")
        if b"\n" in data or b"\r" in data[:-1]:
            raise ProxyProtocolError("PROXY protocol v1 line not ended by CRLF")
        return None
    line = data[:end]
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise ProxyProtocolError("PROXY protocol v1 line is not ASCII") from None
    parts = text.split(" ")
    length = end + 2
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(1, length)  # the rest of the line is ignored (spec 2.1)
    if len(parts) != 6 or parts[0] != "PROXY":
        raise ProxyProtocolError("PROXY protocol v1 line: expected 6 fields, one space apart")
    family = parts[1]
    if family not in ("TCP4", "TCP6"):
        raise ProxyProtocolError(f"PROXY protocol v1: unknown protocol {family[:8]!r}")
    version = 4 if family == "TCP4" else 6
    src = _v1_address(parts[2], version)
    dst = _v1_address(parts[3], version)
    sport, dport = _v1_port(parts[4]), _v1_port(parts[5])
    return ProxyHeader(1, length, (src, sport), (dst, dport))


def _v1_address(text: str, version: int) -> str:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyProtocolError(f"PROXY protocol v1: bad address {text[:46]!r}") from None
    if addr.version != version:
        raise ProxyProtocolError(f"PROXY protocol v1: {text!r} is not a TCP{version} address")
    return _text(addr)


def _v1_port(text: str) -> int:
    # Decimal, no sign, no leading zero (the spec's "0..65535" written plainly).
    if not text.isdigit() or not text.isascii() or (len(text) > 1 and text[0] == "0"):
        raise ProxyProtocolError(f"PROXY protocol v1: bad port {text[:8]!r}")
    port = int(text)
    if port > 65535:
        raise ProxyProtocolError(f"PROXY protocol v1: port {port} out of range")
    return port


def _parse_v2(data: bytes) -> ProxyHeader | None:
    if len(data) < _V2_FIXED:
        return None
    ver_cmd, fam = data[12], data[13]
    if ver_cmd >> 4 != 2:
        raise ProxyProtocolError(f"PROXY protocol v2: unsupported version {ver_cmd >> 4}")
    command = ver_cmd & 0xF
    if command > 1:
        raise ProxyProtocolError(f"PROXY protocol v2: unknown command {command}")
    rest = int.from_bytes(data[14:16], "big")
    if rest > MAX_V2_LENGTH:
        raise ProxyProtocolError(f"PROXY protocol v2: {rest} bytes of addresses and TLVs")
    family, transport = fam >> 4, fam & 0xF
    if family > _UNIX:
        raise ProxyProtocolError(f"PROXY protocol v2: unknown address family {family}")
    if transport > 2:
        raise ProxyProtocolError(f"PROXY protocol v2: unknown transport {transport}")
    need = _V2_ADDRESS_BYTES.get(family, 0)
    if command == 1 and rest < need:
        raise ProxyProtocolError(f"PROXY protocol v2: {rest} bytes is too short for its family")
    length = _V2_FIXED + rest
    if len(data) < length:
        return None
    if command == 0 or family not in (_INET, _INET6):
        return ProxyHeader(2, length)  # LOCAL, UNSPEC, UNIX: the connection's address stands
    if transport != _STREAM:
        raise ProxyProtocolError("PROXY protocol v2: a datagram address on a TCP listener")
    block = data[_V2_FIXED:length]
    size = 4 if family == _INET else 16
    src = ipaddress.ip_address(block[:size])
    dst = ipaddress.ip_address(block[size : 2 * size])
    ports = block[2 * size : 2 * size + 4]
    sport, dport = int.from_bytes(ports[:2], "big"), int.from_bytes(ports[2:], "big")
    return ProxyHeader(2, length, (_text(src), sport), (_text(dst), dport))


def _text(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An address as logs and headers show it (a v4-mapped IPv6 one as IPv4)."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)
