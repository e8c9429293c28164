"""The hash key of a request (seaway.dev/hash-by): client IP, header, cookie."""

from __future__ import annotations

from functools import partial

from discovery.model import HashBy
from ingress.hashkey import cookie_value, header_value, request_key

LINES = [b"User-Agent: x\r\n", b"X-User: alice \r\n", b"Cookie: theme=dark; sid=s1\r\n",
         b"X-Userx: no\r\n"]


def test_header_by_name_any_case_first_line_trimmed() -> None:
    assert header_value(LINES, b"x-user") == b"alice"
    assert header_value(LINES, b"x-use") is None  # a prefix of a name is not the name
    assert header_value([b"x-user:bob\r\n", b"X-User: carol\r\n"], b"x-user") == b"bob"


def test_cookie_by_exact_name() -> None:
    assert cookie_value(b"theme=dark; sid=s1", b"sid") == b"s1"
    assert cookie_value(b"xsid=1; sid = 2", b"sid") == b"2"
    assert cookie_value(b"theme=dark", b"sid") is None


def test_request_key_per_source() -> None:
    header = partial(header_value, LINES)
    assert request_key(HashBy(), b"192.0.2.7", header) == b"192.0.2.7"
    assert request_key(HashBy("header", "x-user"), b"ip", header) == b"alice"
    assert request_key(HashBy("cookie", "sid"), b"ip", header) == b"s1"
    assert request_key(HashBy("cookie", "sid"), b"ip", partial(header_value, LINES[:2])) is None
    assert request_key(HashBy("header", "x-tenant"), b"ip", header) is None
