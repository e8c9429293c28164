"""Pure helpers for upstream response heads: pass through as received, or rebuild.

Passing the head bytes through untouched is the common case: one scan
(ingress/headscan.py's `must_go`) says whether a hop-by-hop field other than
`Connection: keep-alive` or `Transfer-Encoding: chunked` is present. Framing and
keep-alive come from llhttp; only when a head must change (a hop-by-hop field, a client
that needs `Connection: close`, an HTTP/1.0 client that cannot take chunked) is it
scanned field by field (`scan_head`) and rebuilt (`rebuild_head`).
"""

from __future__ import annotations

import re
from typing import Final

from ingress.request import HOP_BY_HOP

# Every field whose presence decides something (the rebuild path only).
_INTERESTING: Final = re.compile(
    rb"\r\n(connection|keep-alive|proxy-[a-z-]*|trailer|upgrade|te|transfer-encoding"
    rb"|content-length)[ \t]*:[ \t]*([^\r]*)",
    re.IGNORECASE,
)

CHUNKED: Final = 1
CONTENT_LENGTH: Final = 2
REBUILD: Final = 4  # a hop-by-hop header other than `Connection: keep-alive` is present


def scan_head(head: bytes) -> int:
    """What the proxy needs to know about a response head, as CHUNKED|CONTENT_LENGTH|REBUILD."""
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
                out.append(line)
            continue
        if keep_upgrade and lname == b"upgrade":
            out.append(line)
            continue
        if lname in HOP_BY_HOP or lname in named or lname.startswith(b"proxy-"):
            continue
        out.append(line)
    if keep_upgrade:
        out.append(b"Connection: upgrade")
    elif close:
        out.append(b"Connection: close")
    out.append(b"\r\n")
    return b"\r\n".join(out)
