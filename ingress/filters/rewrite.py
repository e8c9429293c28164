"""A route's path rewrites compiled once: exactly ingress/route_actions.py's
``rewrite_target`` (which `seaway trace` uses), without compiling or looking up a
pattern per request. Pure.

A RegexReplace's replacement is cut once into literal text and group numbers (a group
the pattern does not have expands to nothing, as ``expand_captures`` makes it), so a
request costs one search and one join (``Match.expand`` would parse its template again
on every call).
"""

from __future__ import annotations

import re
from typing import Final

from ingress.route_actions import rewrite_target
from ingress.route_conditions import compile_pattern
from ingress.route_match import request_path
from ingress.routes import PathMatch, PathRewrite, RegexReplace

_CAPTURE: Final = re.compile(rb"\$(?:\{(\d+)\}|(\d))")

Template = tuple[bytes | int, ...]  # literal text, or a group number


def replacement_template(replacement: bytes, groups: int) -> Template:
    """An nginx replacement cut into literal text and group numbers (a group the pattern
    does not have is dropped: it expands to nothing)."""
    parts: list[bytes | int] = []
    pos = 0
    for m in _CAPTURE.finditer(replacement):
        if m.start() > pos:
            parts.append(replacement[pos : m.start()])
        n = int(m.group(1) or m.group(2))
        if n <= groups:
            parts.append(n)
        pos = m.end()
    if pos < len(replacement):
        parts.append(replacement[pos:])
    return tuple(parts)


def expand(template: Template, found: re.Match[bytes]) -> bytes:
    """`template` with the captures of `found` (one that did not take part: empty)."""
    if len(template) == 2:  # the usual "/$1", "/prefix/$2"
        head, n = template
        if head.__class__ is bytes and n.__class__ is int:
            return head + (found.group(n) or b"")  # type: ignore[operator, arg-type]
    return b"".join([p if isinstance(p, bytes) else (found.group(p) or b"") for p in template])


class TargetRewrite:
    """The rewrites of one route, in order, for request targets.

    The usual one (ingress-nginx's rewrite-target: one regex, a replacement of text and
    one group, as ``/$1`` or ``/api/$2``, the text without a query) is kept apart as
    (pattern, text, group) and done inline for an origin-form target the pattern
    matches, searched up to its query (``endpos``) rather than on a copy of its path."""

    __slots__ = ("_matched", "_one", "_steps")

    def __init__(self, rewrites: tuple[PathRewrite, ...], matched: PathMatch) -> None:
        self._matched = matched
        steps: list[PathRewrite | tuple[re.Pattern[bytes], Template]] = []
        for r in rewrites:
            if isinstance(r, RegexReplace):
                pattern = compile_pattern(r.pattern, r.ignore_case)
                template = replacement_template(r.replacement.encode(), pattern.groups)
                steps.append((pattern, template))
            else:
                steps.append(r)
        self._steps = tuple(steps)
        self._one: tuple[re.Pattern[bytes], bytes, int] | None = None
        if len(steps) == 1 and isinstance(steps[0], tuple):
            pattern, template = steps[0]
            if len(template) == 2:
                text, group = template
                if isinstance(text, bytes) and isinstance(group, int) and text.find(b"?") < 0:
                    self._one = (pattern, text, group)

    def apply(self, target: bytes) -> bytes:
        """`target` rewritten by the route's steps, in order."""
        one = self._one
        if one is not None and target.startswith(b"/"):  # (_regex and expand, inline)
            q = target.find(b"?")
            found = one[0].search(target) if q < 0 else one[0].search(target, 0, q)
            if found is not None:  # (no "?" in the text nor in the path: the query follows)
                if q < 0:
                    return one[1] + (found.group(one[2]) or b"")
                return one[1] + (found.group(one[2]) or b"") + target[q:]
        for step in self._steps:
            if isinstance(step, tuple):
                target = _regex(step[0], step[1], target)
            else:
                target = rewrite_target(step, target, self._matched)
        return target


def _regex(pattern: re.Pattern[bytes], template: Template, target: bytes) -> bytes:
    q = target.find(b"?")
    path = target if q < 0 else target[:q]
    if path[:1] != b"/":
        path = request_path(path)
    found = pattern.search(path)
    new = expand(template, found) if found is not None else path
    if q < 0:
        return new
    return new + (b"&" if b"?" in new else b"?") + target[q + 1 :]
