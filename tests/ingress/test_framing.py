"""ResponseFramer: cuts a stream of pipelined responses where llhttp ends each message."""

from __future__ import annotations

import itertools
import random

import httptools
import pytest

from ingress.framing import ResponseFramer

OK_CL = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n1A\r\n" + b"z" * 26 + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"
)
CHUNKED_PLAIN = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n"
NOT_MODIFIED = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 120\r\n\r\n"
EMPTY = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
BODY_CRLFS = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n\r\n\r\n\r\n\r\n"

# (message bytes, is it an interim 1xx head)
STREAM = [
    (OK_CL, False),
    (CHUNKED, False),
    (NO_CONTENT, False),
    (EARLY_HINTS, True),
    (CHUNKED_PLAIN, False),
    (NOT_MODIFIED, False),
    (EMPTY, False),
    (BODY_CRLFS, False),
    (OK_CL, False),
]


def cut(framer: ResponseFramer, reads: list[bytes]) -> list[tuple[bytes, bool]]:
    """Run reads through the framer the way upstream.py does; return the messages."""
    out: list[tuple[bytes, bool]] = []
    current = b""
    for data in reads:
        while data:
            n = framer.feed(data)
            current += data[:n]
            data = data[n:]
            if framer.ended or framer.interim:
                out.append((current, framer.interim))
                current = b""
                framer.start()
    assert current == b"", "bytes left over after the last message"
    return out


def splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def test_whole_stream_in_one_read() -> None:
    data = b"".join(m for m, _ in STREAM)
    assert cut(ResponseFramer(), [data]) == STREAM


def test_every_two_way_split() -> None:
    data = b"".join(m for m, _ in STREAM)
    for i in range(1, len(data)):
        assert cut(ResponseFramer(), splits(data, [i])) == STREAM, f"split at {i}"


def test_byte_by_byte() -> None:
    data = b"".join(m for m, _ in STREAM)
    assert cut(ResponseFramer(), [data[i : i + 1] for i in range(len(data))]) == STREAM


def test_random_splits() -> None:
    rng = random.Random(7)
    data = b"".join(m for m, _ in STREAM)
    for _ in range(300):
        points = rng.sample(range(1, len(data)), rng.randint(1, 12))
        assert cut(ResponseFramer(), splits(data, points)) == STREAM


class _Ends:
    """httptools callbacks: counts completed messages."""

    def __init__(self) -> None:
        self.complete = 0

    def on_message_complete(self) -> None:
        self.complete += 1


@pytest.mark.parametrize("message", [m for m, interim in STREAM if not interim])
def test_llhttp_ends_each_message_exactly_where_the_framer_cuts(message: bytes) -> None:
    """The cut is where llhttp completes the message: every byte fed, message complete."""
    ends = _Ends()
    parser = httptools.HttpResponseParser(ends)
    parser.feed_data(message)
    assert ends.complete == 1
    framer = ResponseFramer()
    assert framer.feed(message + b"HTTP/1.1 200 OK\r\n") == len(message)
    assert framer.ended


def test_body_until_close_claims_everything() -> None:
    framer = ResponseFramer()
    data = b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nbody and HTTP/1.1 200 OK\r\n\r\n"
    assert framer.feed(data) == len(data)
    assert not framer.ended
    assert framer.feed(b"more") == 4


def test_malformed_chunk_size_is_left_to_llhttp() -> None:
    framer = ResponseFramer()
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nHTTP/1.1 200 OK\r\n\r\n"
    assert framer.feed(data) == len(data)  # all of it goes to llhttp, which rejects it
    assert not framer.ended


def test_head_longer_than_the_limit_is_left_to_llhttp() -> None:
    framer = ResponseFramer()
    head = b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000
    assert framer.feed(head) == len(head)
    assert framer.feed(b"\r\n\r\nHTTP/1.1 200 OK\r\n") > 0
    assert not framer.ended


def test_content_length_split_between_head_and_body() -> None:
    framer = ResponseFramer()
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab"
    assert framer.feed(first) == len(first)
    assert not framer.ended
    assert framer.feed(b"cHTTP/1.1") == 1
    assert framer.ended
