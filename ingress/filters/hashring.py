"""A consistent hash ring over endpoints (ketama-style, as resty.chash which ingress-nginx's
upstream-hash-by and balanced cookie affinity use). Pure.

Every endpoint owns POINTS points on a 64-bit ring (ingress/filters/ringhash.py's hash64
of "ip:port#i", the same in every worker process and after restarts); a key maps to the
first point at or after its own hash. When one of N endpoints goes or comes, about 1/N of
the keys move, only those. ``pick`` may skip endpoints (already tried): the next points of
the ring are taken in order, so a retry is consistent too.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Container, Sequence
from typing import Final

from discovery.snapshot import EndpointInfo
from ingress.filters.ringhash import hash64, ring_index

POINTS: Final = 100  # per endpoint
# (compiled, a Final is read from a C static: a plain imported name costs a dict lookup)
_HASH64: Final[Callable[[bytes], int]] = hash64
_RING_INDEX: Final[Callable[[bytes, bytes], int]] = ring_index


class HashRing:
    __slots__ = ("_owners", "_points", "endpoints")

    def __init__(self, endpoints: Sequence[EndpointInfo]) -> None:
        self.endpoints = endpoints if isinstance(endpoints, tuple) else tuple(endpoints)
        points = sorted(
            (_HASH64(b"%s#%d" % (ep.address.encode(), i)), n)
            for n, ep in enumerate(self.endpoints)
            for i in range(POINTS)
        )
        # the points' positions, sorted, as 64-bit numbers packed for ring_index (which
        # hashes a key and finds its place in one call)
        self._points = array("Q", [h for h, _ in points]).tobytes()
        self._owners = [n for _, n in points]

    def pick(self, key: bytes, skip: Container[EndpointInfo] = ()) -> EndpointInfo | None:
        """The endpoint for `key`, or the next one along the ring not in `skip`."""
        n = self.pick_index(key, skip)
        return self.endpoints[n] if n >= 0 else None

    def pick_index(self, key: bytes, skip: Container[EndpointInfo] = ()) -> int:
        """`pick`'s endpoint as its index in ``endpoints``, or -1."""
        owners = self._owners
        n = len(owners)
        if not n:
            return -1
        i = _RING_INDEX(self._points, key)
        eps = self.endpoints
        for step in range(n):
            owner = owners[(i + step) % n]
            if not skip or eps[owner] not in skip:
                return owner
        return -1


class SubsetRing:
    """ingress-nginx's chashsubset.lua (upstream-hash-by-subset): the endpoints cut into
    subsets of ``size`` (the last one filled up from the first endpoints), a key hashed
    to one subset; the caller picks within it at random."""

    __slots__ = ("_ring", "_subsets", "endpoints")

    def __init__(self, endpoints: Sequence[EndpointInfo], size: int) -> None:
        self.endpoints = endpoints if isinstance(endpoints, tuple) else tuple(endpoints)
        eps = list(self.endpoints)
        count = -(-len(eps) // size) if eps else 0
        eps += eps[: count * size - len(eps)]
        self._subsets = [tuple(eps[i * size : (i + 1) * size]) for i in range(count)]
        # Each subset stands on the ring as a pseudo-endpoint named "setN".
        names = [EndpointInfo(f"set{i + 1}", 0) for i in range(count)]
        self._ring = HashRing(names)

    def pick(self, key: bytes) -> tuple[EndpointInfo, ...]:
        found = self._ring.pick(key)
        if found is None:
            return ()
        return self._subsets[int(found.ip[3:]) - 1]
