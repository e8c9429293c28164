"""Exact and element-wise Prefix path lookup on raw path bytes (Kubernetes Ingress rules).

Kubernetes (https://kubernetes.io/docs/concepts/services-networking/ingress/#path-types):

- ``Exact``: the request path equals the rule's path, case-sensitively (``/foo`` does not
  match ``/foo/``, ``/foo/`` does not match ``/foo``).
- ``Prefix``: element-wise prefix on "/"-separated elements, case-sensitive; a trailing
  slash on either side is ignored (``/foo/`` matches ``/foo``, ``/foo`` matches ``/foo/``);
  ``/foo/bar`` matches ``/foo/bar/baz`` but not ``/foo/barbaz``; ``/`` matches everything.
- Several matches: the longest path wins; at equal length ``Exact`` wins over ``Prefix``.
- ``ImplementationSpecific``: seaway treats it exactly as ``Prefix``.

The matcher never scans the rules. Exact paths are one dict lookup. Prefix paths are
stored with their trailing slashes removed (``/`` becomes ``b""``). A request path's
candidates are its "/"-element prefixes; only those whose length some stored prefix has
can match, so the matcher tries the stored lengths, longest first: a length L is a
candidate when the path is L bytes long or has a "/" at L (0, the root, always is), and
only then is ``path[:L]`` built and looked up. O(distinct prefix lengths of the host),
a handful in practice, whatever the depth of the request path.

An Exact match is always at least as long as any Prefix match of the same request (a
Prefix match is never longer than the request path, trailing slash ignored), so looking
up Exact first and then Prefix from longest to shortest gives exactly the documented
precedence.

``/foo`` and ``/foo/`` as Prefix (or ImplementationSpecific) match the same requests, so
they are the same key: the first one added wins and the later one is reported as a
conflict by :meth:`PathMatcher.add`.

The route compiler (ingress/route_match.py) uses PathMatcher for virtual hosts whose
routes are plain Exact/Prefix paths in this precedence order, and `prefix_candidates` for
the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


def prefix_key(path: bytes) -> bytes:
    """The dict key of a Prefix path: trailing slashes removed (b"/" -> b"")."""
    return path.rstrip(b"/")


def element_prefixes(path: bytes, sizes: tuple[int, ...]) -> Iterator[bytes]:
    """The "/"-element prefixes of `path` whose length is in `sizes` (distinct Prefix key
    lengths, longest first), longest first: the only ones a stored Prefix can be."""
    n = len(path)
    for size in sizes:
        if size < n:
            if size and path[size] != 47:  # b"/"
                continue
        elif size > n:
            continue
        yield path[:size]


class PathMatcher(Generic[T]):
    """Exact + Prefix lookup for the paths of one host. Filled by add(), then read only."""

    __slots__ = ("_exact", "_prefix", "_sizes")

    def __init__(self) -> None:
        self._exact: dict[bytes, T] = {}
        self._prefix: dict[bytes, T] = {}
        self._sizes: tuple[int, ...] = ()  # distinct key lengths, longest first

    def __len__(self) -> int:
        return len(self._exact) + len(self._prefix)

    def values(self) -> Iterator[T]:
        yield from self._exact.values()
        yield from self._prefix.values()

    def add(self, path: bytes, path_type: str, value: T) -> T | None:
        """Add a path; if an equivalent path is already there, keep it and return its value.

        `path_type` "Exact" is exact; anything else (Prefix, ImplementationSpecific) is
        Prefix. Returns None when `value` was stored. An empty Prefix path means "/".
        """
        if path_type == "Exact":
            existing = self._exact.get(path)
            if existing is not None:
                return existing
            self._exact[path] = value
            return None
        key = prefix_key(path or b"/")
        existing = self._prefix.get(key)
        if existing is not None:
            return existing
        self._prefix[key] = value
        if len(key) not in self._sizes:
            self._sizes = tuple(sorted((*self._sizes, len(key)), reverse=True))
        return None

    def match(
        self, path: bytes, target: bytes = b"", method: bytes = b"", header: object = None
    ) -> T | None:
        """The value of the best matching path, or None. (`target`, `method` and `header`
        are ignored: they let a PathMatcher stand where a route index that needs them
        does, see ingress/route_match.py.)"""
        found = self._exact.get(path)
        if found is not None:
            return found
        prefix = self._prefix
        n = len(path)
        for size in self._sizes:
            if size < n:
                if size and path[size] != 47:  # b"/"
                    continue
            elif size > n:
                continue
            found = prefix.get(path[:size])
            if found is not None:
                return found
        return None
