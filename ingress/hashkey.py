"""The key consistent hashing (maglev) hashes for a request: the client IP, a header's
value or a cookie's value, as the backend Service's seaway.dev/hash-by says. Pure.

Only asked when the route's balancer hashes, so the scan of the header lines is off the
common path. A request without the header or cookie gets None (served round robin).
Headers the proxy consumes itself (Host, Connection, ...) are not among the forwarded
lines and cannot be hashed.
"""

from __future__ import annotations

from collections.abc import Callable

from discovery.model import HashBy

HeaderGetter = Callable[[bytes], "bytes | None"]  # lower-case name -> first value or None


def header_value(lines: list[bytes], name: bytes) -> bytes | None:
    """The value of the first forwarded header line `Name: value\\r\\n` named `name`
    (lower case)."""
    n = len(name)
    for line in lines:
        if len(line) > n and line[n] == 0x3A and line[:n].lower() == name:  # b":"
            return line[n + 1 :].strip()
    return None


def cookie_value(header: bytes, name: bytes) -> bytes | None:
    for part in header.split(b";"):
        key, sep, value = part.partition(b"=")
        if sep and key.strip() == name:
            return value.strip()
    return None


def request_key(hash_by: HashBy, client_ip: bytes, header: HeaderGetter) -> bytes | None:
    """`header` reads a request header by lower-case name (RequestState.header where the
    raw head is kept; `header_value` over the forwarded lines otherwise)."""
    if hash_by.source == "client-ip":
        return client_ip
    if hash_by.source == "header":
        return header(hash_by.name.encode("latin-1"))
    cookies = header(b"cookie")
    return cookie_value(cookies, hash_by.name.encode("latin-1")) if cookies else None
