"""The key consistent hashing (maglev) hashes for a request: the client IP, a header's
value or a cookie's value, as the backend Service's seaway.dev/hash-by says. Pure.

Only asked when the route's balancer hashes, so reading the head is off the common path.
A request without the header or cookie gets None (served round robin).
"""

from __future__ import annotations

from collections.abc import Callable

from discovery.model import HashBy

HeaderGetter = Callable[[bytes], "bytes | None"]  # lower-case name -> first value or None


def cookie_value(header: bytes, name: bytes) -> bytes | None:
    for part in header.split(b";"):
        key, sep, value = part.partition(b"=")
        if sep and key.strip() == name:
            return value.strip()
    return None


def request_key(hash_by: HashBy, client_ip: bytes, header: HeaderGetter) -> bytes | None:
    """`header` reads a request header by lower-case name (RequestState.header)."""
    if hash_by.source == "client-ip":
        return client_ip
    if hash_by.source == "header":
        return header(hash_by.name.encode("latin-1"))
    cookies = header(b"cookie")
    return cookie_value(cookies, hash_by.name.encode("latin-1")) if cookies else None
