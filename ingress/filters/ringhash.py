"""The hash of the consistent hash ring (ingress/filters/hashring.py): where a key, and each
point of an endpoint, stands on the 64-bit ring; which point a key goes to (`ring_index`);
and a new sticky client's random key in hex (`hex16`). Pure.

It must be the same in every worker process and after every restart (a returning client's
cookie, a hashed key, must land where it did), so it is not Python's hash(). It was
blake2b: about 5,700 instructions per call in the compiled build, paid by every new sticky
client and every request of an upstream-hash-by route (bench/filter_hotpath.py
--instructions). Nothing here needs a cryptographic hash (the keys are not secret and a
client may send any cookie it likes), only a well-spread one: FNV-1a 64 then the final mix
of MurmurHash3 (fmix64), under 200 instructions in C.

This is the reference, in Python. setup.py also builds ingress/filters/ringhash.c as the
extension `ingress.filters.ringhash`, which Python imports before this file (as
ingress/headscan.py's twin is); SEAWAY_PURE=1 imports this one, and `NATIVE` says which
runs. tests/ingress/filters/test_ringhash.py checks both give the same answers.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

NATIVE: Final = 0

_MASK: Final = (1 << 64) - 1


def hash64(data: bytes) -> int:
    """FNV-1a 64 of `data`, then MurmurHash3's fmix64."""
    if not isinstance(data, bytes):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & _MASK
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK
    return h ^ (h >> 33)


def ring_index(points: bytes, key: bytes) -> int:
    """Where hash64(key) goes among `points` (sorted 64-bit numbers packed in the machine's
    byte order, as array("Q").tobytes() makes them): the index of the first one at or
    after it (bisect_left; their count when none is)."""
    if not isinstance(points, bytes) or not isinstance(key, bytes):
        raise TypeError("ring_index takes bytes")
    if len(points) % 8:
        raise ValueError("ring_index: points is not whole 64-bit numbers")
    return bisect_left(memoryview(points).cast("Q"), hash64(key))


def hex16(n: int) -> bytes:
    """A 64-bit number as 16 lower-case hex digits."""
    if not 0 <= n < 1 << 64:
        raise OverflowError("hex16 takes a 64-bit number")
    return b"%016x" % n
