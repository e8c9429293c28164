"""ingress/filters/ringhash.c against ingress/filters/ringhash.py, its reference in Python
(as tests/ingress/filters/test_fieldscan.py checks fieldscan.c), and the spread of the
hash on the ring's own inputs."""

from __future__ import annotations

import random
from array import array
from bisect import bisect_left
from collections import Counter

import pytest

import ingress.filters.ringhash as loaded
from tests.ingress.test_head_differential import python_twin

REF = python_twin(loaded)
native = pytest.mark.skipif(
    not loaded.NATIVE,
    reason="ingress/filters/ringhash.c is not built (SEAWAY_PURE, or no compiler)",
)


def test_reference_values() -> None:
    """FNV-1a 64 of the empty string is its offset basis, which fmix64 then mixes; one
    byte is one FNV step. (A change of the hash moves every sticky client and hashed key:
    these say which hash it is.)"""
    fnv = 0xCBF29CE484222325
    mask = (1 << 64) - 1
    h = fnv ^ (fnv >> 33)
    h = (h * 0xFF51AFD7ED558CCD) & mask
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & mask
    assert REF.hash64(b"") == h ^ (h >> 33)
    h = ((fnv ^ 0x61) * 0x100000001B3) & mask
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & mask
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & mask
    assert REF.hash64(b"a") == h ^ (h >> 33) == loaded.hash64(b"a")
    assert REF.hash64(b"a") != REF.hash64(b"b")
    assert 0 <= REF.hash64(b"\xff" * 100) < 1 << 64


@native
def test_c_and_python_agree_on_random_bytes() -> None:
    rng = random.Random(20261203)
    for _ in range(20_000):
        data = rng.randbytes(rng.randint(0, 80))
        assert loaded.hash64(data) == REF.hash64(data), data
    for i in range(1000):
        key = b"10.0.%d.%d:8080#%d" % (i % 7, i % 251, i % 100)
        assert loaded.hash64(key) == REF.hash64(key), key


@native
def test_c_refuses_what_is_not_bytes() -> None:
    with pytest.raises(TypeError):
        loaded.hash64("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        REF.hash64("text")


def test_ring_points_and_random_keys_spread_evenly() -> None:
    """The ring's inputs are alike ("ip:port#i", 16 hex digits): their hashes must still
    fill the 64-bit space evenly (16 buckets by the top 4 bits, chi-square well under the
    0.1% critical value for 15 degrees of freedom, 37.7)."""
    rng = random.Random(7)
    for inputs in (
        [b"10.0.0.%d:8080#%d" % (n, i) for n in range(1, 11) for i in range(100)],
        [b"%016x" % rng.getrandbits(64) for _ in range(1000)],
        [b"/item/%d" % i for i in range(1000)],
    ):
        buckets = Counter(loaded.hash64(x) >> 60 for x in inputs)
        expected = len(inputs) / 16
        chi2 = sum((buckets.get(b, 0) - expected) ** 2 / expected for b in range(16))
        assert chi2 < 37.7, (inputs[:2], sorted(buckets.items()))


def _points(rng: random.Random, count: int) -> bytes:
    return array("Q", sorted(rng.getrandbits(64) for _ in range(count))).tobytes()


def test_the_reference_ring_index_is_bisect_left_of_the_keys_hash() -> None:
    """Control: ring_index is where hash64(key) goes among the sorted points (bisect_left,
    their count past the last); hex16 is 16 lower-case hex digits."""
    rng = random.Random(1)
    values = sorted(rng.getrandbits(64) for _ in range(50))
    points = array("Q", values).tobytes()
    for i in range(200):
        key = b"key-%d" % i
        assert REF.ring_index(points, key) == bisect_left(values, REF.hash64(key))
    assert REF.ring_index(b"", b"x") == 0
    assert REF.hex16(0) == b"0" * 16 and REF.hex16((1 << 64) - 1) == b"f" * 16
    assert REF.hex16(0xABC) == b"0000000000000abc"


@native
def test_c_and_python_agree_on_ring_index_and_hex16() -> None:
    rng = random.Random(2)
    for count in (0, 1, 2, 7, 100, 1000):
        points = _points(rng, count)
        for _ in range(300):
            key = rng.randbytes(rng.randint(0, 40))
            assert loaded.ring_index(points, key) == REF.ring_index(points, key), (count, key)
    # keys whose hash is a point exactly: the point itself (bisect_left), in both
    keys = [b"a", b"b", b"c"]
    exact = array("Q", sorted(REF.hash64(k) for k in keys)).tobytes()
    assert [loaded.ring_index(exact, k) for k in keys] == [REF.ring_index(exact, k) for k in keys]
    numbers = [0, 1, 15, 16, 255, 1 << 63, (1 << 64) - 1]
    for n in numbers + [rng.getrandbits(64) for _ in range(500)]:
        assert loaded.hex16(n) == REF.hex16(n), n


@native
def test_ring_index_and_hex16_refuse_bad_arguments() -> None:
    for module in (loaded, REF):
        with pytest.raises(ValueError):
            module.ring_index(b"1234567", b"x")  # not whole 64-bit numbers
        with pytest.raises(TypeError):
            module.ring_index(bytearray(8), b"x")  # type: ignore[arg-type]
        with pytest.raises(OverflowError):
            module.hex16(1 << 64)
        with pytest.raises(OverflowError):
            module.hex16(-1)
