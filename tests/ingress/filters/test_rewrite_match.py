"""A route's rewrite (ingress/filters/rewrite.py TargetRewrite) takes the captures of the
route's own regex match (route_match.LAST_REGEX) instead of searching the path again when
its pattern is the route's, or the route's is "^" and it (ingress-nginx: the location
``~* "^<path>"`` and ``rewrite (?i)<path> <target> break``). Whatever the last match
was (this request's, another path's, another pattern's, or one of "^"'s other branch),
the answer must be route_actions.rewrite_target's, the reference `seaway trace` uses."""

from __future__ import annotations

from ingress.filters.rewrite import TargetRewrite
from ingress.route_actions import rewrite_target
from ingress.route_conditions import no_header
from ingress.route_match import LAST_REGEX
from ingress.routes import PathMatch, RegexReplace
from tests.ingress.routemodel import route, table, vhost

# (the route's path regex, the rewrite's pattern, its replacement, taken from the match)
CASES = [
    ("^/(.*)", "/(.*)", "/$1", True),  # ingress-nginx's rewrite-target /$1 on /(.*)
    ("^/something(/|$)(.*)", "/something(/|$)(.*)", "/$2", True),  # its docs' example
    ("/api/(.*)", "/api/(.*)", "/v2/$1", True),  # the very pattern
    ("^/a|/b(.*)", "/a|/b(.*)", "/x$1", True),  # "^" binds to the first branch only
    ("^/foo/(.*)", "/foo(.*)", "/z$1", False),  # another pattern: searched
]
TARGETS = [
    b"/",
    b"/a",
    b"/b/c?x=1",
    b"/x/b/y",
    b"/x/a/b/c",
    b"/something",
    b"/SOMETHING/new?x=1&y",
    b"/api/users?id=7",
    b"/v1/api/users",
    b"/foo/bar?q",
    b"/q?/b/z",
    b"http://a.test/api/x?y",
]


def test_rewrite_with_the_routes_match_is_rewrite_target() -> None:
    for route_pattern, pattern, replacement, reused in CASES:
        rewrite = RegexReplace(pattern, replacement, ignore_case=True)
        matched = PathMatch("Regex", route_pattern, ignore_case=True)
        compiled = table(vhost(["a.test"], route("svc", route_pattern, "Regex", ignore_case=True)))
        rewrites = TargetRewrite((rewrite,), matched)
        assert (rewrites._routed is not None) == reused, route_pattern
        for first in TARGETS:  # the last match: of another path, or of none
            compiled.match(b"a.test", first, b"GET", no_header)
            for target in TARGETS:
                previous = LAST_REGEX.found
                result = compiled.match(b"a.test", target, b"GET", no_header)
                expected = rewrite_target(rewrite, target, matched)
                assert rewrites.apply(target) == expected, (route_pattern, first, target)
                if result.status == 404:
                    assert LAST_REGEX.found is previous  # (no match: nothing is kept)
                compiled.match(b"a.test", first, b"GET", no_header)  # stale for the next
                assert rewrites.apply(target) == expected, (route_pattern, first, target)


def test_a_rewrite_that_gives_the_target_back_is_known_as_such() -> None:
    """Decided when the table is compiled: "^T(.*)" (or "/(.*)") to "T$1" leaves every
    origin-form target as it is, so a request pays no rewrite at all; any other rewrite
    is done, and both answer as rewrite_target does (absolute-form targets too)."""
    cases = [
        ("/(.*)", "/$1", True, True),
        ("^/(.*)", "/$1", True, True),
        ("^/1/(.*)", "/1/$1", True, True),
        ("^/app/(.*)", "/app/$1", False, True),
        ("^/app/(.*)", "/app/$1", True, False),  # ~*: /APP/x would come out /app/x
        ("/app/(.*)", "/app/$1", False, False),  # unanchored: /x/app/y -> /app/y
        ("^/(.+)", "/$1", True, False),
        ("^/(.*)", "/$1/", True, False),
        ("^/a.b/(.*)", "/a.b/$1", False, False),  # "." is not literal
    ]
    targets = [*TARGETS, b"/APP/x", b"/app/x?y=1", b"/x/app/y", b"/", b"/axb/c", b"/a.b/c"]
    targets += [b"/1/x", b"/x/1/y?z"]
    for pattern, replacement, ignore_case, identity in cases:
        rewrite = RegexReplace(pattern, replacement, ignore_case=ignore_case)
        path = PathMatch("Regex", "^" + pattern, ignore_case=ignore_case)
        rewrites = TargetRewrite((rewrite,), path)
        assert rewrites.identity == identity, pattern
        for target in targets:
            expected = rewrite_target(rewrite, target, PathMatch())
            assert rewrites.apply(target) == expected, (pattern, target)
            if identity and target.startswith(b"/"):
                assert expected == target
