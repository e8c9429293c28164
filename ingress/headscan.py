"""The head scans of the L7 hot path: where a head ends, which request fields need the
proxy's attention, and whether a response head may pass through unchanged.

This is the reference, in Python. setup.py also builds ingress/headscan.c as the extension
`ingress.headscan`, which Python imports before this file (as it does mypyc's modules);
SEAWAY_PURE=1 imports this one, and `NATIVE` says which runs. The two field scans were about a
fifth of the compiled hot path's instructions as regular expressions over a lower-cased
copy of the head; in C they are one pass over the bytes, no copy.
tests/ingress/test_headscan.py checks both give the same answers.

Both take heads that strict llhttp accepted: CRLF line ends only, no obs-fold, no control
characters, a colon on every field line.
"""

from __future__ import annotations

import re
from typing import Final

NATIVE: Final = 0

# The request fields the proxy acts on (ingress/request.py's _FIELDS, without values).
_ACTED_ON: Final = re.compile(
    rb"\r\n(host|content-length|transfer-encoding|connection|upgrade|expect|te|trailer"
    rb"|keep-alive|proxy-[^:\r]*|x-forwarded-for|x-forwarded-proto|x-forwarded-host"
    rb"|x-forwarded-port|x-real-ip):"
)
_JUST_HOST: Final = [b"host"]

# Lookups of any field by name (`field`); bounded by the names routes ask for, which come
# from configuration.
_NAMED: dict[bytes, re.Pattern[bytes]] = {}
_NAMED_MAX: Final = 1024

# A response field that must not reach the client as it is.
_MUST_GO: Final = re.compile(
    rb"\r\n(?:connection:[ \t]*+(?!keep-alive[ \t]*\r)|keep-alive:|proxy-[^:\r]*:|te:"
    rb"|trailer:|upgrade:|transfer-encoding:[ \t]*+(?!chunked[ \t]*\r))"
)


def common_host(head: bytes, start: int) -> bytes | None:
    """The value of the head's one Host field when no other field the proxy acts on is
    present from `start` (the common request: forwarded as it came), else None."""
    low = head.lower()
    if _ACTED_ON.findall(low, start) != _JUST_HOST:
        return None
    i = low.find(b"\r\nhost:", start) + 7
    return head[i : head.find(b"\r", i)].strip(b" \t")


def head_end(data: bytes, start: int) -> int:
    """Where the head's blank line starts: `data.find(b"\\r\\n\\r\\n", start)`. In C,
    this skips the argument parsing of a bytes method call (a quarter of its cost)."""
    return data.find(b"\r\n\r\n", start)


def request_line(head: bytes) -> tuple[bytes, bytes, bool] | None:
    """The method, the target and whether the version is 1.1, of a request line in the
    one shape the proxy takes fast: single spaces, a target, HTTP/1.1 or HTTP/1.0 (None
    for any other: ingress/request.py then says why, or takes it the slow way)."""
    try:
        method, url, rest = head.split(b" ", 2)
    except ValueError:  # fewer than two spaces
        return None
    version = rest[:10]
    if not url or (version != b"HTTP/1.1\r\n" and version != b"HTTP/1.0\r\n"):
        return None
    return method, url, version == b"HTTP/1.1\r\n"


def before_query(target: bytes) -> bytes:
    """The request target up to its first "?" (the target itself when it has none)."""
    q = target.find(b"?")
    return target if q < 0 else target[:q]


def field(head: bytes, name: bytes) -> bytes | None:
    """The value of the head's first field called `name` (case folded), without the
    spaces and tabs around it, or None."""
    pattern = _NAMED.get(name)
    if pattern is None:
        if len(_NAMED) >= _NAMED_MAX:
            _NAMED.clear()
        pattern = _NAMED[name] = re.compile(
            rb"\r\n" + re.escape(name) + rb":[ \t]*([^\r]*)", re.IGNORECASE
        )
    m = pattern.search(head)
    return m.group(1).rstrip(b" \t") if m is not None else None


def must_go(head: bytes) -> bool:
    """Whether a response head has a field that must not reach the client as it is: a
    hop-by-hop field other than `Connection: keep-alive` and `Transfer-Encoding: chunked`."""
    return _MUST_GO.search(head.lower()) is not None
