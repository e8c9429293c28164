"""Pure helpers for upstream response heads: pass through as received, or rebuild.

Passing the head bytes through untouched is the fast path (measured worth ~1.4x on small
responses); we rebuild only when something in it must change: a hop-by-hop header other
than `Connection: keep-alive`, a client that needs `Connection: close`, or an HTTP/1.0
client that cannot take chunked.
"""

from __future__ import annotations

from ingress.request import HOP_BY_HOP

_NEEDLES = (
    b"\r\nkeep-alive:",
    b"\r\nproxy-",
    b"\r\ntrailer:",
    b"\r\nupgrade:",
    b"\r\nte:",
)


class HeadInfo:
    """What the proxy needs to know about a response head (found in its lowered bytes)."""

    __slots__ = ("chunked", "content_length", "passthrough_ok")

    def __init__(self, head: bytes) -> None:
        low = head.lower()
        self.chunked = _value(low, b"\r\ntransfer-encoding:").endswith(b"chunked")
        self.content_length = low.find(b"\r\ncontent-length:") >= 0
        ok = True
        conn = _value(low, b"\r\nconnection:")
        if conn and conn != b"keep-alive":
            ok = False
        else:
            for needle in _NEEDLES:
                if needle in low:
                    ok = False
                    break
        self.passthrough_ok = ok


def _value(low: bytes, needle: bytes) -> bytes:
    i = low.find(needle)
    if i < 0:
        return b""
    start = i + len(needle)
    end = low.find(b"\r\n", start)
    return low[start:end].strip()


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
