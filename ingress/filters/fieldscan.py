"""Field scans of a filtered route's requests and answers: the sticky cookie in a request
head (and its key), whether a response head has a field the route replaces, and the
fields a route adds to a response head inserted in one copy.

This is the reference, in Python. setup.py also builds ingress/filters/fieldscan.c as the
extension `ingress.filters.fieldscan`, which Python imports before this file (as
ingress/headscan.py's twin is); SEAWAY_PURE=1 imports this one, and `NATIVE` says which
runs. As regular expressions and bytes searches they were about a third of what cookie
affinity and CORS add to a request in the compiled build (bench/filter_hotpath.py
--instructions); in C each is one pass over the head's lines (add_fields: one copy).
tests/ingress/filters/test_fieldscan.py checks both give the same answers.

All take heads that strict llhttp accepted: CRLF line ends only, no obs-fold, no control
characters but HTAB, a colon right after every field name.
"""

from __future__ import annotations

import re
from typing import Final

NATIVE: Final = 0

_COOKIE: Final = re.compile(rb"\r\ncookie:([^\r]*)", re.IGNORECASE)
_OWS: Final = b" \t"
_NAMED: dict[bytes, re.Pattern[bytes]] = {}


def cookie(head: bytes, name: bytes) -> bytes | None:
    """The first cookie called `name` in the head's Cookie fields, in order (nginx's
    $cookie_NAME: every Cookie field counts), as ``name=value`` with the spaces and tabs
    around it cut; None when there is none. Cookies are cut at ";" and split at their
    first "=", as route_conditions.cookie_value reads them."""
    for found in _COOKIE.finditer(head):
        for part in found.group(1).split(b";"):
            part = part.strip(_OWS)
            key, eq, _ = part.partition(b"=")
            if eq and key == name:
                return part
    return None


def sticky_key(head: bytes, name: bytes, tag: bytes) -> bytes | None:
    """The KEY of the first cookie called `name` (`cookie`'s), whose value is ``KEY|TAG``
    or ``KEY``: None when there is none, or when its TAG is not `tag` (another backend's
    sticky cookie)."""
    raw = cookie(head, name)
    if raw is None:
        return None
    key, bar, found = raw[len(name) + 1 :].partition(b"|")
    if bar and found != tag:
        return None
    return key


def has_field(head: bytes, end: int, prefix: bytes) -> bool:
    """Whether a field of ``head[:end]`` has a name starting with `prefix` (lower case),
    case folded."""
    if not prefix:
        raise ValueError("has_field: empty prefix")
    pattern = _NAMED.get(prefix)
    if pattern is None:
        pattern = _NAMED[prefix] = re.compile(rb"\r\n" + re.escape(prefix), re.IGNORECASE)
    return pattern.search(head, 0, end) is not None


def add_fields(data: bytes, end: int, lines: bytes, replaced: bytes) -> bytes | None:
    """`data` (a head ending at `end`, then maybe body bytes) with `lines` inserted before
    the head's blank line, in one copy; None when `replaced` is not empty and a field of
    the head has a name starting with it (then the caller removes those first)."""
    if end < 4 or end > len(data) or data[end - 4 : end] != b"\r\n\r\n":
        raise ValueError("add_fields: data[:end] is not a head")
    if replaced and has_field(data, end, replaced):
        return None
    return data[: end - 2] + lines + data[end - 2 :]
