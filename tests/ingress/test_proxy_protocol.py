"""The PROXY protocol parser (ingress/proxy_protocol.py): haproxy's proxy-protocol.txt,
versions 1 and 2, every malformed case refused, byte-by-byte arrival."""

from __future__ import annotations

import socket
import struct

import pytest

from ingress.proxy_protocol import (
    MAX_V2_LENGTH,
    V1_MAX,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyProtocolError,
    parse_proxy_header,
)

REQUEST = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def v2(
    command: int = 1,
    family: int = 1,
    transport: int = 1,
    block: bytes | None = None,
    version: int = 2,
    length: int | None = None,
) -> bytes:
    if block is None:
        block = socket.inet_aton("192.168.0.1") + socket.inet_aton("192.168.0.11")
        block += struct.pack("!HH", 56324, 443)
    size = len(block) if length is None else length
    return V2_SIGNATURE + bytes([version << 4 | command, family << 4 | transport]) + (
        struct.pack("!H", size) + block
    )


def v2_inet6(tlvs: bytes = b"") -> bytes:
    block = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    block += socket.inet_pton(socket.AF_INET6, "2001:db8::2")
    return v2(family=2, block=block + struct.pack("!HH", 40000, 80) + tlvs)


# -- version 1 -----------------------------------------------------------------------------
def test_v1_tcp4_as_in_ingress_nginx_e2e() -> None:
    # ingress-nginx test/e2e/settings/proxy_protocol.go writes exactly this line
    line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 1234\r\n"
    got = parse_proxy_header(line + REQUEST)
    assert got == ProxyHeader(1, len(line), ("192.168.0.1", 56324), ("192.168.0.11", 1234))


def test_v1_tcp6() -> None:
    line = b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 1 65535\r\n"
    got = parse_proxy_header(line)
    assert got is not None and got.source == ("2001:db8::1", 1)
    assert got.destination == ("10.0.0.1", 65535)  # v4-mapped: read as IPv4


def test_v1_longest_line_is_accepted() -> None:
    a = "ffff:" * 7 + "ffff"
    line = f"PROXY TCP6 {a} {a} 65535 65535\r\n".encode()
    assert len(line) == 104
    got = parse_proxy_header(line)
    assert got is not None and got.length == 104


def test_v1_unknown_carries_no_address() -> None:
    for line in (b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"):
        assert parse_proxy_header(line + REQUEST) == ProxyHeader(1, len(line))


def test_v1_arriving_byte_by_byte_needs_more_until_the_crlf() -> None:
    line = b"PROXY TCP4 10.1.2.3 10.0.0.1 5555 80\r\n"
    for n in range(len(line)):
        assert parse_proxy_header(line[:n]) is None, n
    assert parse_proxy_header(line) is not None


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n", "6 fields"),
        (b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 80 9\r\n", "6 fields"),
        (b"PROXY  TCP4 192.168.0.1 192.168.0.11 56324 80\r\n", "6 fields"),
        (b"PROXY TCP4 192.168.0.1  192.168.0.11 56324 80\r\n", "6 fields"),
        (b"PROXY TCP5 192.168.0.1 192.168.0.11 56324 80\r\n", "unknown protocol"),
        (b"PROXY tcp4 192.168.0.1 192.168.0.11 56324 80\r\n", "unknown protocol"),
        (b"PROXY UDP4 192.168.0.1 192.168.0.11 56324 80\r\n", "unknown protocol"),
        (b"PROXY TCP4 192.168.0.256 192.168.0.11 56324 80\r\n", "bad address"),
        (b"PROXY TCP4 example.com 192.168.0.11 56324 80\r\n", "bad address"),
        (b"PROXY TCP4 ::1 192.168.0.11 56324 80\r\n", "not a TCP4 address"),
        (b"PROXY TCP6 192.168.0.1 ::1 56324 80\r\n", "not a TCP6 address"),
        (b"PROXY TCP4 192.168.0.1 192.168.0.11 65536 80\r\n", "out of range"),
        (b"PROXY TCP4 192.168.0.1 192.168.0.11 -1 80\r\n", "bad port"),
        (b"PROXY TCP4 192.168.0.1 192.168.0.11 080 80\r\n", "bad port"),
        (b"PROXY TCP4 192.168.0.1 192.168.0.11 8o 80\r\n", "bad port"),
        (b"PROXY TCP4 192.168.0.1 192.168.0.11 1 \xd9\xa1\r\n", "not ASCII"),
        (b"PROXY TCP4 192.168.0.1 192.168.0.11 1 80\n", "CRLF"),
        (b"PROXY TCP4 192.168.0.1\r192.168.0.11 1 80", "CRLF"),
        (b"PROXY TCP4 " + b"1" * V1_MAX + b"\r\n", f"longer than {V1_MAX}"),
        (b"PROXY UNKNOWN " + b"x" * 100, f"longer than {V1_MAX}"),
        (b"PROXZ TCP4 1.2.3.4 1.2.3.5 1 2\r\n", "v1 signature"),
        (b"proxy TCP4 1.2.3.4 1.2.3.5 1 2\r\n", "no PROXY protocol header"),
        (REQUEST, "no PROXY protocol header"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "no PROXY protocol header"),
    ],
)
def test_v1_malformed_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(ProxyProtocolError, match=why):
        parse_proxy_header(data)


def test_v1_over_107_bytes_is_refused_before_its_end_arrives() -> None:
    # Refused as soon as 107 bytes are in without a CRLF: never buffered further.
    data = b"PROXY TCP6 " + b"a" * (V1_MAX - 11)
    assert len(data) == V1_MAX
    assert parse_proxy_header(data[:-1]) is None
    with pytest.raises(ProxyProtocolError, match="longer than 107"):
        parse_proxy_header(data)


# -- version 2 -----------------------------------------------------------------------------
def test_v2_inet() -> None:
    data = v2()
    got = parse_proxy_header(data + REQUEST)
    assert got == ProxyHeader(2, 28, ("192.168.0.1", 56324), ("192.168.0.11", 443))


def test_v2_inet6_with_tlvs_skipped() -> None:
    # TLVs as AWS NLB sends them (type 0xEA, the VPC endpoint id), and a NOOP (0x04)
    tlvs = b"\xea\x00\x0a\x01vpce-1234" + b"\x04\x00\x02\x00\x00"
    data = v2_inet6(tlvs)
    got = parse_proxy_header(data + REQUEST)
    assert got is not None and got.length == len(data)
    assert got.source == ("2001:db8::1", 40000) and got.destination == ("2001:db8::2", 80)


def test_v2_v4_mapped_source_reads_as_ipv4() -> None:
    block = socket.inet_pton(socket.AF_INET6, "::ffff:203.0.113.7") * 2
    got = parse_proxy_header(v2(family=2, block=block + struct.pack("!HH", 1, 2)))
    assert got is not None and got.source == ("203.0.113.7", 1)


@pytest.mark.parametrize(
    "data",
    [
        v2(command=0, family=0, transport=0, block=b""),  # haproxy's health checks
        v2(command=0, block=b"\x00" * 12),  # LOCAL with an address: ignored
        v2(family=0, transport=0, block=b""),  # PROXY UNSPEC
        v2(family=3, block=b"/tmp/a".ljust(216, b"\x00")),  # UNIX
    ],
)
def test_v2_without_a_usable_address(data: bytes) -> None:
    assert parse_proxy_header(data + REQUEST) == ProxyHeader(2, len(data))


def test_v2_arriving_byte_by_byte_needs_more_until_its_length() -> None:
    data = v2_inet6(b"\x04\x00\x01\x00")
    for n in range(len(data)):
        assert parse_proxy_header(data[:n]) is None, n
    assert parse_proxy_header(data) is not None


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (V2_SIGNATURE[:5] + b"X", "v2 signature"),
        (V2_SIGNATURE[:11] + b"\r" + b"\x21\x11\x00\x0c", "v2 signature"),
        (v2(version=1), "unsupported version 1"),
        (v2(version=3), "unsupported version 3"),
        (v2(command=2), "unknown command 2"),
        (v2(command=0xF), "unknown command 15"),
        (v2(family=4), "unknown address family 4"),
        (v2(family=0xF), "unknown address family 15"),
        (v2(transport=3), "unknown transport 3"),
        (v2(transport=2), "datagram"),
        (v2(block=b"\x00" * 11), "too short"),  # INET needs 12
        (v2(family=2, block=b"\x00" * 35), "too short"),  # INET6 needs 36
        (v2(family=3, block=b"\x00" * 215), "too short"),  # UNIX needs 216
        (v2(block=b"", length=MAX_V2_LENGTH + 1), f"{MAX_V2_LENGTH + 1} bytes"),
        (v2(block=b"", length=0xFFFF), "65535 bytes"),
    ],
)
def test_v2_malformed_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(ProxyProtocolError, match=why):
        parse_proxy_header(data)


def test_v2_truncated_block_waits_for_its_declared_length() -> None:
    # A wrong (too large) length never reads into the request: the parser waits for the
    # declared bytes, and the listener's header timeout closes the connection.
    data = v2(block=b"\x7f\x00\x00\x01" * 2 + b"\x00\x01\x00\x02", length=40)
    assert parse_proxy_header(data) is None
    assert parse_proxy_header(data + b"\x00" * 27) is None
    got = parse_proxy_header(data + b"\x00" * 28 + REQUEST)
    assert got is not None and got.length == 56 and got.source == ("127.0.0.1", 1)


def test_empty_input_needs_more() -> None:
    assert parse_proxy_header(b"") is None
