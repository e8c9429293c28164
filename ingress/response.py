"""Pure helpers for upstream response heads: pass through as received, or rebuild.

Passing the head bytes through untouched is the fast path (measured worth ~1.4x on small
responses); we rebuild only when something in it must change: a hop-by-hop header other
than `Connection: keep-alive`, a client that needs `Connection: close`, or an HTTP/1.0
client that cannot take chunked.
"""

from __future__ import annotations

import re

from ingress.request import HOP_BY_HOP

# Every header whose presence decides something; found in one case-insensitive scan.
_INTERESTING = re.compile(
    rb"\r\n(connection|keep-alive|proxy-[a-z-]*|trailer|upgrade|te|transfer-encoding"
    rb"|content-length)[ \t]*:[ \t]*([^\r]*)",
    re.IGNORECASE,
)


CHUNKED = 1
CONTENT_LENGTH = 2
REBUILD = 4  # a hop-by-hop header other than `Connection: keep-alive` is present


_CACHE_SIZE = 512
_cache: dict[bytes, int] = {}


def head_flags(head: bytes) -> int:
    """What the proxy needs to know about a response head, as CHUNKED|CONTENT_LENGTH|REBUILD.

    Backends repeat the same heads (only Date changes, once a second), so results are
    cached by the head's bytes; the cache is emptied when full (unique heads cost one
    dict insert more than no cache at all).
    """
    flags = _cache.get(head)
    if flags is None:
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        flags = _cache[head] = _scan(head)
    return flags


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*([0-9]+)", re.IGNORECASE)

# Heads llhttp has parsed and the proxy passed through unchanged: exact bytes -> (content
# length, keep-alive, status). The same bytes at the start of a response always parse the same
# way, so a response starting with a known head needs no parser: its body is counted.
KNOWN_HEADS: dict[bytes, tuple[int, bool, int]] = {}


def remember_head(head: bytes, keep_alive: bool, status: int = 200) -> None:
    """Record a Content-Length head (already parsed strictly, passed through as is)."""
    m = _CONTENT_LENGTH.search(head)
    if m is None:
        return
    if len(KNOWN_HEADS) >= _CACHE_SIZE:
        KNOWN_HEADS.clear()
    KNOWN_HEADS[head] = (int(m.group(1)), keep_alive, status)


def _scan(head: bytes) -> int:
    flags = 0
    for name, value in _INTERESTING.findall(head):
        lname = name.lower()
        if lname == b"content-length":
            flags |= CONTENT_LENGTH
        elif lname == b"transfer-encoding":
            if value.rstrip().lower().endswith(b"chunked"):
                flags |= CHUNKED
        elif lname != b"connection" or value.rstrip().lower() != b"keep-alive":
            flags |= REBUILD
    return flags


def rebuild_head(head: bytes, close: bool, drop_chunked: bool, keep_upgrade: bool = False) -> bytes:
    """The head with hop-by-hop headers removed, plus `Connection: close` when closing."""
    lines = head.split(b"\r\n")
    named: set[bytes] = set()
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"connection":
            named |= {t.strip().lower() for t in value.split(b",")}
    out = [lines[0]]
    for line in lines[1:]:
        if not line:
            continue
        lname = line.partition(b":")[0].strip().lower()
        if lname == b"transfer-encoding":
            if not drop_chunked:
                out.append(b"Transfer-Encoding: chunked")
            continue
        if keep_upgrade and lname == b"upgrade":
            out.append(line)
            continue
        if lname in HOP_BY_HOP or lname in named:
            continue
        out.append(line)
    if keep_upgrade:
        out.append(b"Connection: upgrade")
    elif close:
        out.append(b"Connection: close")
    out.append(b"\r\n")
    return b"\r\n".join(out)
