"""Gateway API hostname rules: wildcard matching and the listener/route intersection.

A hostname "*.example.com" matches any name ending in ".example.com" with at least one
more label ("foo.example.com", "a.b.example.com"), never "example.com" itself. A listener
with no hostname accepts every route hostname; a route with no hostnames takes the
listener's. When both set hostnames, the route attaches to the listener only if some pair
intersects, and only the intersecting (more specific) names are served.
"""

from __future__ import annotations

from collections.abc import Sequence


def is_wildcard(hostname: str) -> bool:
    return hostname.startswith("*.")


def wildcard_matches(pattern: str, hostname: str) -> bool:
    """`hostname` (a name, or itself a wildcard) is covered by the wildcard `pattern`."""
    suffix = pattern[1:]  # ".example.com"
    return hostname.endswith(suffix) and len(hostname) > len(suffix)


def host_matches(pattern: str, hostname: str) -> bool:
    """A request host (lowercase, without port) against a listener or route hostname;
    "" matches every host."""
    if not pattern:
        return True
    if is_wildcard(pattern):
        return wildcard_matches(pattern, hostname)
    return pattern == hostname


def intersect(listener: str, route: str) -> str:
    """The names both hostnames accept, as one hostname; "" when they are disjoint.
    Neither may be "" (that case is handled by `intersect_hostnames`)."""
    if listener == route:
        return route
    if is_wildcard(listener) and wildcard_matches(listener, route):
        return route  # the route's name (or narrower wildcard) is within the listener's
    if is_wildcard(route) and wildcard_matches(route, listener):
        return listener
    return ""


def intersect_hostnames(listener: str, route: Sequence[str]) -> tuple[str, ...] | None:
    """The hostnames a route serves on a listener: () means every host, None means no
    intersection (the route does not attach to that listener)."""
    if not route:
        return (listener,) if listener else ()
    if not listener:
        return tuple(dict.fromkeys(route))
    found = [h for h in (intersect(listener, r) for r in route) if h]
    return tuple(dict.fromkeys(found)) if found else None


def specificity(hostname: str) -> tuple[int, int, int]:
    """Sort key, most specific first when sorted descending: exact names before
    wildcards, then more labels, then longer names; "" (any host) last."""
    if not hostname:
        return (-1, 0, 0)
    wildcard = is_wildcard(hostname)
    return (0 if wildcard else 1, hostname.count("."), len(hostname))
