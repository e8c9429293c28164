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
from ingress.route_match import LAST_REGEX, request_path
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
    matches: with the captures of the route's own match when the route's path regex is
    that pattern, or "^" and that pattern (ingress-nginx's location for the path it
    rewrites) and it matched at the path's start (route_match.LAST_REGEX: the path is
    not searched twice), else searched up to its query (``endpos``) rather than on a
    copy of its path."""

    __slots__ = ("_matched", "_one", "_routed", "_routed_same", "_steps", "identity")

    def __init__(self, rewrites: tuple[PathRewrite, ...], matched: PathMatch) -> None:
        self._matched = matched
        # The route's own regex when its match is this rewrite's (see the class doc);
        # _routed_same: the very pattern (else "^" and it: only a match at 0 is the same).
        self._routed: re.Pattern[bytes] | None = None
        self._routed_same = False
        # Whether an origin-form target comes out as it went in (see _is_identity).
        self.identity = False
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
                    self._routed_by(rewrites[0], matched)
                    self.identity = _is_identity(rewrites[0], text, group)

    def _routed_by(self, rewrite: PathRewrite, matched: PathMatch) -> None:
        if not isinstance(rewrite, RegexReplace) or matched.kind != "Regex":
            return
        if matched.ignore_case != rewrite.ignore_case:
            return
        if matched.value == rewrite.pattern or matched.value == "^" + rewrite.pattern:
            self._routed = compile_pattern(matched.value, matched.ignore_case)
            self._routed_same = matched.value == rewrite.pattern

    def apply(self, target: bytes) -> bytes:
        """`target` rewritten by the route's steps, in order."""
        if self.identity and target.startswith(b"/"):
            return target
        one = self._one
        if one is not None and target.startswith(b"/"):  # (_regex and expand, inline)
            hit = LAST_REGEX.found
            if (
                hit is not None
                and hit.re is self._routed
                and (self._routed_same or hit.start() == 0)
            ):
                # routed by this very pattern: its match, if it was of this target's path
                # (the whole target, or what comes before its "?")
                path: bytes = hit.string
                if path is target:
                    return one[1] + (hit.group(one[2]) or b"")
                n = len(path)
                if len(target) > n and target[n] == 63 and target.startswith(path):  # "?"
                    return one[1] + (hit.group(one[2]) or b"") + target[n:]
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


def _is_identity(rewrite: PathRewrite, text: bytes, group: int) -> bool:
    """Whether the rewrite gives every origin-form target back unchanged: "^T(.*)" or,
    for T "/", "/(.*)" (the first "/" of such a target is its first byte), replaced by
    "T$1" with T literal text (and caseless, when the pattern ignores case): T, then all
    the path after it ("." takes any byte of a target but LF, which none has), then the
    query, kept. ingress-nginx's rewrite-target /$1 on a path /(.*) is one."""
    if not isinstance(rewrite, RegexReplace) or group != 1:
        return False
    t = text.decode("latin-1")
    if re.escape(t) != t:
        return False  # (regex syntax in T, or what re.escape escapes anyway: not sure)
    if rewrite.ignore_case and t.lower() != t.upper():
        return False  # (a letter in T may match another case, and come out as T's)
    return rewrite.pattern == "^" + t + "(.*)" or (t == "/" and rewrite.pattern == "/(.*)")


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
