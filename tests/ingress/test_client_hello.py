"""read_client_hello on real ClientHellos (Python's ssl, curl, openssl s_client) and on
truncated, fragmented and malformed ones."""

from __future__ import annotations

import random
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator

import pytest

from ingress.client_hello import MAX_STREAM, Peek, read_client_hello


def python_hello(server_name: str | None, maximum: ssl.TLSVersion | None = None) -> bytes:
    """The ClientHello Python's ssl sends (read from its memory BIO)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if maximum is not None:
        ctx.maximum_version = maximum
    out = ssl.MemoryBIO()
    tls = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return out.read()


def captured(command: list[str], port: int, server: socket.socket) -> bytes:
    """The first bytes a client process sends to `server` (complete ClientHello or EOF)."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    try:
        server.settimeout(10)
        conn, _ = server.accept()
        with conn:
            data = b""
            while read_client_hello(data).status == "more":
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        return data
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, int]]:
    server = socket.create_server(("127.0.0.1", 0))
    try:
        yield server, server.getsockname()[1]
    finally:
        server.close()


def split_records(hello: bytes, sizes: list[int]) -> bytes:
    """The same handshake message, re-cut into records of `sizes` (the rest in a last one)."""
    assert hello[0] == 22
    message = hello[5:]
    version = hello[1:3]
    out = b""
    for size in [*sizes, len(message)]:
        piece, message = message[:size], message[size:]
        if piece:
            out += bytes([22]) + version + len(piece).to_bytes(2) + piece
    return out


# -- real clients ------------------------------------------------------------------------


@pytest.mark.parametrize("maximum", [None, ssl.TLSVersion.TLSv1_2])
def test_python_ssl_hello_names_the_host_lower_case(maximum: ssl.TLSVersion | None) -> None:
    peek = read_client_hello(python_hello("Shop.Example.com", maximum))
    assert (peek.status, peek.server_name) == ("hello", "shop.example.com")


def test_python_ssl_without_sni_and_with_an_ip_address() -> None:
    for name in (None, "127.0.0.1"):  # Python sends no SNI for an IP address (RFC 6066)
        peek = read_client_hello(python_hello(name))
        assert (peek.status, peek.server_name) == ("hello", None)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_hello(listener: tuple[socket.socket, int]) -> None:
    server, port = listener
    url = f"https://pass.example.test:{port}/"
    cmd = ["curl", "-sk", "--max-time", "5", "--resolve", f"pass.example.test:{port}:127.0.0.1",
           url]
    data = captured(cmd, port, server)
    peek = read_client_hello(data)
    assert (peek.status, peek.server_name) == ("hello", "pass.example.test")
    # the same hello cut into 1-byte records at first, then the rest: same answer
    again = read_client_hello(split_records(data, [1, 1, 2, 7, 100]))
    assert (again.status, again.server_name) == ("hello", "pass.example.test")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_s_client_hello(listener: tuple[socket.socket, int]) -> None:
    server, port = listener
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
           "ossl.example.test"]
    peek = read_client_hello(captured(cmd, port, server))
    assert (peek.status, peek.server_name) == ("hello", "ossl.example.test")


# -- truncated and fragmented -------------------------------------------------------------


def test_every_prefix_asks_for_more_and_never_past_the_end() -> None:
    hello = python_hello("a.example.com")
    for cut in range(len(hello)):
        peek = read_client_hello(hello[:cut])
        assert peek.status == "more", (cut, peek)
        assert cut < peek.needed <= len(hello), (cut, peek)
    assert read_client_hello(hello).server_name == "a.example.com"


def test_fragmented_over_records_at_every_boundary() -> None:
    hello = python_hello("frag.example.com")
    size = len(hello) - 5
    for first in (1, 2, 3, 4, 5, 40, size // 2, size - 1):
        data = split_records(hello, [first])
        assert read_client_hello(data).server_name == "frag.example.com", first
    one_byte_each = split_records(hello, [1] * size)
    peek = read_client_hello(one_byte_each)
    assert (peek.status, peek.server_name) == ("hello", "frag.example.com")
    # and each prefix of the fragmented form waits, as the whole one does
    for cut in range(0, len(one_byte_each), 97):
        assert read_client_hello(one_byte_each[:cut]).status == "more"


def test_bytes_after_the_hello_are_not_read() -> None:
    """What follows the ClientHello (a client that sends early data) does not matter."""
    hello = python_hello("a.example.com")
    assert read_client_hello(hello + b"\x17\x03\x03\x00\x10" + b"x" * 16).server_name == (
        "a.example.com"
    )


# -- not TLS, malformed -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "not TLS"),
        (b"\x80\x2e\x01\x03\x01", "not TLS"),  # an SSLv2-compatible hello
        (b"\x16\x02\x00\x00\x10", "record version 2.0"),
        (b"\x16\x03\x01\x00\x00", "record length 0"),
        (b"\x16\x03\x01\x40\x01", "record length 16385"),
        (b"\x16\x03\x01\x00\x04\x02\x00\x00\x00", "type 2 is not a ClientHello"),
        (b"\x16\x03\x01\x00\x04\x01\x01\x00\x00", "larger than"),
    ],
)
def test_not_a_client_hello(data: bytes, reason: str) -> None:
    peek = read_client_hello(data)
    assert peek.status == "invalid" and reason in peek.reason, peek


def _hello_message(body: bytes) -> bytes:
    message = b"\x01" + len(body).to_bytes(3) + body
    return b"\x16\x03\x01" + len(message).to_bytes(2) + message


def _body(session: bytes = b"", suites: bytes = b"\x13\x01", compression: bytes = b"\x00",
          extensions: bytes | None = b"") -> bytes:
    body = b"\x03\x03" + b"r" * 32 + bytes([len(session)]) + session
    body += len(suites).to_bytes(2) + suites + bytes([len(compression)]) + compression
    if extensions is not None:
        body += len(extensions).to_bytes(2) + extensions
    return body


def _sni(*names: tuple[int, bytes]) -> bytes:
    entries = b"".join(bytes([t]) + len(n).to_bytes(2) + n for t, n in names)
    data = len(entries).to_bytes(2) + entries
    return b"\x00\x00" + len(data).to_bytes(2) + data


def test_hand_made_hellos() -> None:
    ok = read_client_hello(_hello_message(_body(extensions=_sni((0, b"Host.Test.")))))
    assert ok.server_name == "host.test"
    no_ext = read_client_hello(_hello_message(_body(extensions=None)))
    assert (no_ext.status, no_ext.server_name) == ("hello", None)
    # a name type other than host_name is skipped; the first host_name counts
    other = _sni((1, b"ignored"), (0, b"first.test"), (0, b"second.test"))
    assert read_client_hello(_hello_message(_body(extensions=other))).server_name == "first.test"
    padding = b"\x00\x15\x00\x03\x00\x00\x00"
    both = read_client_hello(_hello_message(_body(extensions=padding + _sni((0, b"p.test")))))
    assert both.server_name == "p.test"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_body(session=b"s" * 33), "session id longer than 32"),
        (_body(suites=b"\x13"), "cipher suites of 1 bytes"),
        (_body(suites=b""), "cipher suites of 0 bytes"),
        (_body(compression=b""), "no compression method"),
        (_body(extensions=_sni((0, b"a.test")) + _sni((0, b"b.test"))), "appears twice"),
        (_body(extensions=_sni((0, b"bad host"))), "not an ASCII host name"),
        (_body(extensions=_sni((0, b"caf\xc3\xa9.test"))), "not an ASCII host name"),
        (_body(extensions=_sni((0, b""))), "not an ASCII host name"),
        (_body(extensions=b"\x00\x00\x00\x00"), "server name list length"),
        (_body(extensions=b"\x00\x00\x00\x02\x00\x00"), "wrong length"),
        (_body(extensions=b"\x00\x15\x00\x09\x00"), "runs past the end"),
        (_body(extensions=b"") + b"junk", "bytes after the extensions"),
        (b"\x03\x03" + b"r" * 20, "version and random runs past the end"),
    ],
)
def test_malformed_fields(body: bytes, reason: str) -> None:
    peek = read_client_hello(_hello_message(body))
    assert peek.status == "invalid" and reason in peek.reason, peek


def test_records_with_bytes_past_the_message_are_refused() -> None:
    hello = python_hello("a.example.com")
    message = hello[5:] + b"\x00"
    peek = read_client_hello(b"\x16\x03\x01" + len(message).to_bytes(2) + message)
    assert peek.status == "invalid" and "past its end" in peek.reason


def test_a_hello_spread_too_thin_is_refused_not_awaited() -> None:
    """1-byte records of a 16 KiB message would take 96 KiB of stream: refused before
    MAX_STREAM bytes are waited for."""
    message = b"\x01" + (16000).to_bytes(3) + b"x" * 16000
    thin = b"".join(b"\x16\x03\x01\x00\x01" + message[i : i + 1] for i in range(len(message)))
    peek = read_client_hello(thin)
    assert peek.status == "invalid" and "spread over" in peek.reason
    for cut in (5, 1000, MAX_STREAM - 10):
        assert read_client_hello(thin[:cut]).needed <= MAX_STREAM


def test_random_mutations_never_raise() -> None:
    """Every corruption of a real hello gets an answer, and "more" always asks for bytes
    beyond what it was given."""
    rng = random.Random(11)
    hello = python_hello("fuzz.example.com")
    for _ in range(3000):
        data = bytearray(hello)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        cut = rng.randint(0, len(data))
        peek = read_client_hello(bytes(data[:cut]))
        assert isinstance(peek, Peek)
        if peek.status == "more":
            assert peek.needed > cut
