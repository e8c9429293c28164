"""Compiled non-path conditions of a RouteMatch: method, headers, query, cookies. Pure.

Built once per route by ingress/route_match.py; only routes that have such conditions get
a Conditions object (the others test nothing beyond their path). Headers are read through
the `header` callable the hot path passes (lower-case name -> first value or None), and
only here, so a request that never reaches a route with header conditions never reads a
header. The query is parsed only for routes with query conditions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import unquote_to_bytes

from ingress.routes import RouteMatch, ValueMatch

HeaderLookup = Callable[[bytes], "bytes | None"]


def no_header(name: bytes) -> bytes | None:
    """A `header` callable for requests whose headers are not needed (none are read)."""
    return None


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str, ignore_case: bool = False) -> re.Pattern[bytes]:
    """A regex of the route model, for raw request bytes (raises re.error if invalid).
    One pattern object per (pattern, case) (re's own cache may drop it): a route's
    rewrite knows the route's match by it (route_match.LAST_REGEX)."""
    return re.compile(pattern.encode(), re.IGNORECASE if ignore_case else 0)


def query_value(target: bytes, name: bytes) -> bytes | None:
    """The first value of query parameter `name` (percent-decoded), or None."""
    q = target.find(b"?")
    if q < 0:
        return None
    for part in target[q + 1 :].split(b"&"):
        key, _, value = part.partition(b"=")
        if b"%" in key:
            key = unquote_to_bytes(key)
        if key == name:
            return unquote_to_bytes(value) if b"%" in value else value
    return None


def cookie_value(header: bytes | None, name: bytes) -> bytes | None:
    """The value of cookie `name` in a Cookie header ("a=1; b=2"), or None."""
    if header is None:
        return None
    for part in header.split(b";"):
        key, eq, value = part.strip().partition(b"=")
        if eq and key == name:
            return value
    return None


class ValueTest:
    """One compiled ValueMatch: `test(value)` for the received value (None: absent)."""

    __slots__ = ("expected", "ignore_case", "kind", "label", "name", "regex")

    def __init__(self, match: ValueMatch, name: bytes, label: str) -> None:
        self.name = name
        self.kind = match.kind
        self.label = label
        self.ignore_case = match.ignore_case
        value = match.value.encode()
        self.expected = value.lower() if match.ignore_case else value
        self.regex: re.Pattern[bytes] | None = None
        if match.kind == "Regex":
            self.regex = compile_pattern(match.value, match.ignore_case)

    def test(self, value: bytes | None) -> bool:
        if value is None:
            return False
        if self.kind == "Exact":
            return (value.lower() if self.ignore_case else value) == self.expected
        if self.regex is not None:
            return self.regex.search(value) is not None
        return True  # Present

    def why_not(self, value: bytes | None) -> str:
        """ "" when it holds, else why not (for `seaway trace`)."""
        if self.test(value):
            return ""
        if value is None:
            return f"{self.label} is missing"
        shown = value.decode("latin-1")
        want = {"Exact": "is not", "Regex": "does not match"}.get(self.kind, "is not")
        return f"{self.label} is {shown!r}, which {want} {self.expected.decode()!r}"


class Conditions:
    """The method, header, query and cookie conditions of one route (all must hold)."""

    __slots__ = ("cookies", "headers", "method", "query")

    def __init__(self, match: RouteMatch) -> None:
        self.method = match.method.encode()
        self.headers = tuple(
            ValueTest(h, h.name.lower().encode(), f"header {h.name}") for h in match.headers
        )
        self.query = tuple(
            ValueTest(q, q.name.encode(), f"query parameter {q.name}") for q in match.query
        )
        self.cookies = tuple(
            ValueTest(c, c.name.encode(), f"cookie {c.name}") for c in match.cookies
        )

    @staticmethod
    def of(match: RouteMatch) -> Conditions | None:
        """The conditions of `match`, or None when it has only a path."""
        if match.method or match.headers or match.query or match.cookies:
            return Conditions(match)
        return None

    def holds(self, target: bytes, method: bytes, header: HeaderLookup) -> bool:
        if self.method and method != self.method:
            return False
        for t in self.headers:
            if not t.test(header(t.name)):
                return False
        for t in self.query:
            if not t.test(query_value(target, t.name)):
                return False
        if self.cookies:
            cookie = header(b"cookie")
            for t in self.cookies:
                if not t.test(cookie_value(cookie, t.name)):
                    return False
        return True

    def why_not(self, target: bytes, method: bytes, header: HeaderLookup) -> str:
        """ "" when every condition holds, else the first that does not, in words."""
        if self.method and method != self.method:
            return f"method is {method.decode('latin-1')}, not {self.method.decode()}"
        for t in self.headers:
            why = t.why_not(header(t.name))
            if why:
                return why
        for t in self.query:
            why = t.why_not(query_value(target, t.name))
            if why:
                return why
        cookie = header(b"cookie") if self.cookies else None
        for t in self.cookies:
            why = t.why_not(cookie_value(cookie, t.name))
            if why:
                return why
        return ""
