"""ingress/filters/fieldscan.c against ingress/filters/fieldscan.py, its reference in
Python (as tests/ingress/test_headscan.py checks ingress/headscan.c).

The C module is what the compiled build runs for a filtered route (the sticky cookie of
every request with cookie affinity, the CORS check of every answer); the Python one is
what the pure build runs and what the C must agree with, answer for answer: on request
heads with Cookie fields of every shape, on the request corpus of
test_head_differential.py with cookies added, on response heads with CORS fields in any
case, on their mutations, and on random bytes (which also shows the C reads nothing
outside the bytes object).
"""

from __future__ import annotations

import random

import pytest

import ingress.filters.fieldscan as loaded
from ingress.route_conditions import cookie_value
from tests.ingress.test_head_differential import ALPHABET, corpus, mutate, python_twin

REF = python_twin(loaded)
native = pytest.mark.skipif(
    not loaded.NATIVE,
    reason="ingress/filters/fieldscan.c is not built (SEAWAY_PURE, or no compiler)",
)

NAMES = [b"S", b"INGRESSCOOKIE", b"a", b"route"]
COOKIE_VALUES = [
    b"S=k|t",
    b"a=1; S=k|t; b=2",
    b"a=1;S=k|t",
    b"a=1;  S=k|t  ",
    b"\tS=k|t\t;",
    b"xS=1; S=k|t",
    b"a=S=1; S=k|t",
    b"S=first; S=second",
    b"S=; b=2",
    b"S",
    b"S =1; S= 2",
    b"a=1",
    b"",
    b";;; ;S=x=y;",
    b"INGRESSCOOKIE=0123456789abcdef|d41d8cd98f00b204e9800998ecf8427e; route=r1",
]
FIELD_NAMES = [b"Cookie", b"cookie", b"COOKIE", b"CoOkIe", b"Cookies", b"X-Cookie", b"Cookie2"]


def request_heads() -> list[bytes]:
    rng = random.Random(20261203)
    heads = []
    for value in COOKIE_VALUES:
        for name in FIELD_NAMES:
            heads.append(b"GET / HTTP/1.1\r\nHost: a\r\n" + name + b": " + value + b"\r\n\r\n")
            heads.append(b"GET / HTTP/1.1\r\nHost: a\r\n" + name + b":" + value + b"\r\n\r\n")
    for _ in range(2000):
        fields = [b"Host: a", b"User-Agent: x", b"Referer: /?S=ref"]
        for _ in range(rng.randint(0, 3)):
            fields.append(rng.choice(FIELD_NAMES) + b": " + rng.choice(COOKIE_VALUES))
        rng.shuffle(fields)
        head = b"GET /?S=url HTTP/1.1\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"
        heads.append(mutate(rng, head) if rng.random() < 0.5 else head)
    for head in corpus():
        at = head.find(b"\r\n")
        if at >= 0:
            heads.append(head[:at] + b"\r\nCookie: a=1; S=k" + head[at:])
    return heads


def response_heads() -> list[bytes]:
    rng = random.Random(11)
    fields = [
        b"Access-Control-Allow-Origin: *",
        b"access-control-max-age:1",
        b"ACCESS-CONTROL-ALLOW-HEADERS: x",
        b"Access-Control",
        b"X-Access-Control-Allow-Origin: *",
        b"Server: nginx",
        b"Content-Length: 3",
        b"Set-Cookie: a=1",
    ]
    heads = []
    for _ in range(1500):
        chosen = rng.sample(fields, rng.randint(0, 4))
        head = b"HTTP/1.1 200 OK\r\n" + b"".join(f + b"\r\n" for f in chosen) + b"\r\n"
        heads.append(mutate(rng, head) if rng.random() < 0.5 else head)
    return heads


def random_bytes() -> list[bytes]:
    rng = random.Random(5)
    pieces = [*ALPHABET, b"\r", b";", b"=", b"S", b"S=", b"; S=x", b"\r\ncookie:", b"\r\nCOOKIE: "]
    pieces += [b"\r\naccess-control-", b"\r\nAccess-Control", b"access-control-", b"\t"]
    return [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 14))) for _ in range(20000)]


def _head(*fields: bytes) -> bytes:
    return b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


def test_the_reference_reads_cookies_as_cookie_value_does() -> None:
    """Control for the comparisons below: in one Cookie field the reference finds what
    route_conditions.cookie_value finds; over several, the first in head order (nginx's
    $cookie_NAME); a name in the target or another field is no cookie."""
    for value in COOKIE_VALUES:
        for name in NAMES:
            found = REF.cookie(_head(b"Cookie: " + value), name)
            expected = cookie_value(value, name)
            assert (found[len(name) + 1 :] if found is not None else None) == expected, (
                value,
                name,
            )
    assert REF.cookie(_head(b"Cookie: a=1", b"cookie: S=2; S=3"), b"S") == b"S=2"
    assert REF.cookie(_head(b"Referer: /?S=1", b"X-Cookie: S=2"), b"S") is None
    assert REF.cookie(b"GET /?S=1 HTTP/1.1\r\nHost: a\r\n\r\n", b"S") is None
    assert REF.has_field(b"HTTP/1.1 200 OK\r\naccess-control-max-age: 1\r\n\r\n", 40, b"access-")
    assert not REF.has_field(b"HTTP/1.1 200 OK\r\nX-Access-Control: 1\r\n\r\n", 40, b"access-")
    head = b"HTTP/1.1 200 OK\r\n\r\nAccess-Control-Max-Age: 1\r\n"  # past the end: body
    assert not REF.has_field(head, 19, b"access-control-")


@native
def test_cookies_agree() -> None:
    heads = request_heads() + random_bytes()
    disagreements = [
        (head, name) for head in heads for name in NAMES
        if loaded.cookie(head, name) != REF.cookie(head, name)
    ]  # fmt: skip
    assert sum(1 for h in heads if REF.cookie(h, b"S") is not None) > 1000
    assert disagreements == []


def test_the_reference_sticky_key_is_the_cookies_key_when_its_tag_is_ours() -> None:
    """Control: the KEY of ``KEY|TAG`` (the first cookie of the name, as `cookie` finds
    it) when TAG is the one asked for; a value without "|" is all KEY; another TAG, or no
    such cookie, gives None."""
    assert REF.sticky_key(_head(b"Cookie: a=1; S=k1|t; S=k2|t"), b"S", b"t") == b"k1"
    assert REF.sticky_key(_head(b"Cookie: S=k1|other"), b"S", b"t") is None
    assert REF.sticky_key(_head(b"Cookie: S=k1|t|t"), b"S", b"t") is None
    assert REF.sticky_key(_head(b"Cookie: S=plain"), b"S", b"t") == b"plain"
    assert REF.sticky_key(_head(b"Cookie: S=|t"), b"S", b"t") == b""
    assert REF.sticky_key(_head(b"Cookie: a=1"), b"S", b"t") is None


@native
def test_sticky_keys_agree() -> None:
    heads = request_heads() + random_bytes()
    extra = [_head(b"Cookie: S=" + v) for v in (b"k|t", b"k|tt", b"k|", b"|t", b"k||t", b"k|t ")]
    disagreements = [
        (head, name, tag)
        for head in heads + extra
        for name in NAMES
        for tag in (b"t", b"d41d8cd98f00b204e9800998ecf8427e", b"")
        if loaded.sticky_key(head, name, tag) != REF.sticky_key(head, name, tag)
    ]
    assert sum(1 for h in heads if REF.sticky_key(h, b"S", b"t") is not None) > 500
    assert disagreements == []


@native
def test_field_checks_agree() -> None:
    heads = response_heads() + random_bytes()
    disagreements = []
    for head in heads:
        for end in {0, 5, len(head) // 2, len(head), len(head) + 7}:
            for prefix in (b"access-control-", b"a", b"access-control-allow-origin:"):
                if loaded.has_field(head, end, prefix) != REF.has_field(head, end, prefix):
                    disagreements.append((head, end, prefix))
    assert 300 < sum(1 for h in heads if REF.has_field(h, len(h), b"access-control-")) < 10000
    assert disagreements == []


@native
def test_wrong_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        loaded.cookie("GET / HTTP/1.1\r\n\r\n", b"S")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        loaded.cookie(b"GET / HTTP/1.1\r\n\r\n")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        loaded.has_field(bytearray(b"HTTP/1.1 200 OK\r\n\r\n"), 5, b"a")  # type: ignore[arg-type]
    for module in (loaded, REF):
        with pytest.raises(ValueError):
            module.has_field(b"HTTP/1.1 200 OK\r\n\r\n", 5, b"")


def test_the_reference_adds_fields_before_the_blank_line() -> None:
    """Control: the lines go right before the head's blank line, the body after it stays
    as it is; a head with a field of the replaced names gives None (the caller removes
    those first); an `end` that does not end a head is refused."""
    data = b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nbody\r\n\r\n"
    end = data.index(b"\r\n\r\n") + 4
    added = b"HTTP/1.1 200 OK\r\nServer: x\r\nA: 1\r\n\r\nbody\r\n\r\n"
    assert REF.add_fields(data, end, b"A: 1\r\n", b"access-control-") == added
    assert REF.add_fields(data, end, b"", b"") == data
    cors = b"HTTP/1.1 200 OK\r\nACCESS-CONTROL-MAX-AGE: 1\r\n\r\n"
    assert REF.add_fields(cors, len(cors), b"A: 1\r\n", b"access-control-") is None
    assert REF.add_fields(cors, len(cors), b"A: 1\r\n", b"") is not None
    for module in (loaded, REF):
        for bad_end in (0, 3, end - 1, len(data) + 1):
            with pytest.raises(ValueError):
                module.add_fields(data, bad_end, b"A: 1\r\n", b"")


@native
def test_added_fields_agree() -> None:
    """On response heads with and without CORS fields (and body bytes after them), every
    cut that ends a head gives the same bytes, or None, from both."""
    rng = random.Random(3)
    disagreements = []
    checked = 0
    for head in response_heads():
        data = head + rng.choice([b"", b"hello", b"\r\n\r\nmore"])
        end = data.find(b"\r\n\r\n") + 4
        if end < 4:
            continue
        for lines in (b"", b"Access-Control-Allow-Origin: *\r\n", b"Set-Cookie: S=k|t\r\n"):
            for replaced in (b"", b"access-control-"):
                checked += 1
                if loaded.add_fields(data, end, lines, replaced) != REF.add_fields(
                    data, end, lines, replaced
                ):
                    disagreements.append((data, end, lines, replaced))
    assert checked > 5000
    assert disagreements == []
