"""The hash of the consistent hash ring (ingress/filters/hashring.py): where a key, and each
point of an endpoint, stands on the 64-bit ring. Pure.

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
