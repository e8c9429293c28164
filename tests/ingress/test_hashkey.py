"""The hash key of a request (seaway.dev/hash-by): client IP, header, cookie."""

from __future__ import annotations

from discovery.model import HashBy
from ingress.hashkey import cookie_value, request_key
from ingress.request import parse_request
from ingress.settings import HttpSettings

HEAD = (b"GET /p HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: x\r\nX-User: alice \r\n"
        b"Cookie: theme=dark; sid=s1\r\nX-Userx: no\r\n\r\n")


def test_cookie_by_exact_name() -> None:
    assert cookie_value(b"theme=dark; sid=s1", b"sid") == b"s1"
    assert cookie_value(b"xsid=1; sid = 2", b"sid") == b"2"
    assert cookie_value(b"theme=dark", b"sid") is None


def test_request_key_per_source_from_the_raw_head() -> None:
    header = parse_request(HEAD, HttpSettings()).header
    assert request_key(HashBy(), b"192.0.2.7", header) == b"192.0.2.7"
    assert request_key(HashBy("header", "x-user"), b"ip", header) == b"alice"
    assert request_key(HashBy("header", "host"), b"ip", header) == b"shop.example"
    assert request_key(HashBy("cookie", "sid"), b"ip", header) == b"s1"
    assert request_key(HashBy("header", "x-tenant"), b"ip", header) is None
    bare = parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", HttpSettings()).header
    assert request_key(HashBy("cookie", "sid"), b"ip", bare) is None
