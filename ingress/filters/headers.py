"""Header edits on a whole head (request head for the backend, response head for the
client), compiled once per route. Pure.

A head here is bytes from its first line to its blank line, lines ending in CRLF, as
llhttp accepted it (so every field is on one line and no field name has a space before
its colon). Removing fields is one regex substitution over the head, adding them one
splice before the blank line: no per-line Python work, whatever the head's size.

Fields that decide framing (Content-Length, Transfer-Encoding, Connection and the
hop-by-hop ones) are the proxy's, not the route's: edits naming them are dropped when
compiled (``protected``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from ingress.route_filters import HeaderEdits

Header = tuple[bytes, bytes]

FRAMING: Final = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-connection",
    }
)

_HOST: Final = re.compile(rb"\r\nhost:[^\r]*", re.IGNORECASE)


def field_remover(names: Iterable[str | bytes]) -> re.Pattern[bytes] | None:
    """A pattern matching every field named in `names` (case-insensitive) with the CRLF
    before it, for ``sub(b"", head)``; None for no names."""
    raw = sorted({n.lower().encode() if isinstance(n, str) else n.lower() for n in names})
    if not raw:
        return None
    alternatives = b"|".join(re.escape(n) for n in raw)
    return re.compile(rb"\r\n(?:" + alternatives + rb"):[^\r]*", re.IGNORECASE)


def field_lines(fields: Iterable[Header]) -> bytes:
    """``Name: value\\r\\n`` lines."""
    return b"".join(b"%s: %s\r\n" % (n, v) for n, v in fields)


class HeadEdit:
    """One compiled HeaderEdits: fields named in ``remove`` or ``set`` go, then the ``set``
    and ``add`` fields are appended (a set replaces every field of its name; an add keeps
    them). Several edits (a route's, then its backend's) apply one after the other."""

    __slots__ = ("_drop", "_lines")

    def __init__(
        self,
        remove: Iterable[str] = (),
        set_fields: Iterable[tuple[str, str]] = (),
        add: Iterable[tuple[str, str]] = (),
        protected: frozenset[str] = FRAMING,
    ) -> None:
        set_fields = [(n, v) for n, v in set_fields if n.lower() not in protected]
        add = [(n, v) for n, v in add if n.lower() not in protected]
        drop = {n.lower() for n in remove} | {n.lower() for n, _ in set_fields}
        self._drop = field_remover(drop - protected)
        fields = [*set_fields, *add]
        self._lines = field_lines((n.encode(), v.encode("latin-1")) for n, v in fields)

    @classmethod
    def of(cls, edits: HeaderEdits, remove: Iterable[str] = ()) -> HeadEdit:
        return cls((*edits.remove, *remove), edits.set, edits.add)

    def __bool__(self) -> bool:
        return self._drop is not None or bool(self._lines)

    def apply(self, head: bytes, extra: bytes = b"") -> bytes:
        """`head` (ending in its blank line) edited, with `extra` lines appended too."""
        drop = self._drop
        if drop is not None:
            head = drop.sub(b"", head)
        lines = self._lines + extra if extra else self._lines
        return head[:-2] + lines + b"\r\n" if lines else head


def append_fields(head: bytes, lines: bytes) -> bytes:
    """`head` with `lines` (``field_lines``) added before its blank line."""
    return head[:-2] + lines + b"\r\n" if lines else head


def replace_target(head: bytes, target: bytes) -> bytes:
    """A request head with another target on its request line (method and version kept)."""
    line_end = head.find(b"\r\n")
    sp = head.find(b" ")
    sp2 = head.rfind(b" ", 0, line_end)
    return head[: sp + 1] + target + head[sp2:]


def replace_host(head: bytes, host: bytes) -> bytes:
    """A request head whose Host field is `host` (added after the request line if the
    head has none, as an HTTP/1.0 request may)."""
    line = b"\r\nHost: " + host
    new, n = _HOST.subn(lambda _: line, head, count=1)
    if n:
        return new
    line_end = head.find(b"\r\n")
    return head[:line_end] + b"\r\nHost: " + host + head[line_end:]
