"""HTTP Basic credentials checked against htpasswd hashes: `verify_basic`. Pure (no I/O).

The hash forms are those discovery/htpasswd.py accepts (it parses the Secrets):

- apr1 `$apr1$` and MD5-crypt `$1$`: Poul-Henning Kamp's MD5-crypt (FreeBSD
  crypt-md5.c, Apache apr_md5.c), 1,000 MD5 rounds, written here from that algorithm;
- bcrypt `$2y$`/`$2a$`/`$2b$`: the `bcrypt` package (pyca); the password is cut at 72
  bytes as every bcrypt implementation does (bcrypt 5 refuses longer ones instead);
- SHA-256 / SHA-512 crypt `$5$`/`$6$`: Ulrich Drepper's "Unix crypt using SHA-256 and
  SHA-512" specification, written here from it (5,000 rounds unless `rounds=N$` says);
- `{SHA}` base64(SHA-1(password)), `{SSHA}` base64(SHA-1(password + salt) + salt),
  `{PLAIN}` the password itself (nginx's own forms).

Results are compared with `hmac.compare_digest`. A user missing from the list, or whose
hash is of no supported form, never passes.

bcrypt and SHA-crypt cost milliseconds (bcrypt cost 10 is ~50 ms) and browsers send the
same credentials with every request, so successful checks are remembered: a bounded set
of keyed BLAKE2b digests of (user, hash, password), the key random per process (no
password is kept in memory, and the digests are useless elsewhere). Failures are never
remembered: guessing stays as slow as the hash makes it. A changed or removed hash in the
Secret changes the key, so a revoked password stops working at once. `verify_basic` may
be called from several threads (to keep a slow bcrypt off the event loop).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Any

import bcrypt

from discovery.htpasswd import hash_kind

Users = tuple[tuple[str, str], ...]

_ITOA64 = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_REMEMBERED_MAX = 4096
_remembered: dict[bytes, None] = {}  # digests of successful checks, oldest first
_MEMO_KEY = os.urandom(32)
_INDEX_MAX = 64
_indexes: dict[int, tuple[Users, dict[str, str]]] = {}  # id(users) -> (users, user -> hash)
_SPEC_MAX_ROUNDS = 999_999_999  # the specification's limit


def verify_basic(users: Users, user: str, password: str) -> bool:
    """Whether `password` is `user`'s in `users` ((user, htpasswd hash) pairs, the first
    pair of a user counts, as in nginx)."""
    hashed = _index(users).get(user)
    if hashed is None:
        return False
    memo = hashlib.blake2b(
        b"\0".join((user.encode(), hashed.encode(), password.encode())), key=_MEMO_KEY
    ).digest()
    if memo in _remembered:
        return True
    if not check_hash(hashed, password.encode()):
        return False
    if len(_remembered) >= _REMEMBERED_MAX:
        _evict_oldest(_remembered)
    _remembered[memo] = None
    return True


def check_hash(hashed: str, password: bytes) -> bool:
    """Whether `password` matches one htpasswd hash (no memo)."""
    check = _CHECKS.get(hash_kind(hashed))
    return check is not None and check(hashed, password)


def _index(users: Users) -> dict[str, str]:
    """user -> hash for a users tuple, built once per tuple (the table's tuples live as
    long as the table; the entry holds the tuple, so its id is not reused meanwhile)."""
    found = _indexes.get(id(users))
    if found is not None and found[0] is users:
        return found[1]
    index: dict[str, str] = {}
    for name, hashed in users:
        index.setdefault(name, hashed)
    if len(_indexes) >= _INDEX_MAX:
        _evict_oldest(_indexes)
    _indexes[id(users)] = (users, index)
    return index


def _evict_oldest(memo: dict[Any, Any]) -> None:
    """Drop the oldest entry; another thread may be doing the same (verify_basic may run
    in a thread pool, so bcrypt does not hold the event loop)."""
    with contextlib.suppress(StopIteration, RuntimeError, KeyError):
        del memo[next(iter(memo))]


# -- the forms ---------------------------------------------------------------------------


def _check_md5_crypt(hashed: str, password: bytes) -> bool:
    magic = b"$apr1$" if hashed.startswith("$apr1$") else b"$1$"
    salt = hashed.encode()[len(magic) :].split(b"$", 1)[0]
    return hmac.compare_digest(md5_crypt(password, salt, magic), hashed.encode())


def _check_bcrypt(hashed: str, password: bytes) -> bool:
    try:
        return bcrypt.checkpw(password[:72], hashed.encode())
    except ValueError:
        return False


def _check_sha_crypt(hashed: str, password: bytes) -> bool:
    return hmac.compare_digest(sha_crypt(password, hashed.encode()), hashed.encode())


def _check_sha1(hashed: str, password: bytes) -> bool:
    digest = base64.b64encode(hashlib.sha1(password).digest())
    return hmac.compare_digest(digest, hashed[5:].encode())


def _check_ssha(hashed: str, password: bytes) -> bool:
    raw = base64.b64decode(hashed[6:])
    digest, salt = raw[:20], raw[20:]
    return hmac.compare_digest(hashlib.sha1(password + salt).digest(), digest)


def _check_plain(hashed: str, password: bytes) -> bool:
    return hmac.compare_digest(hashed[7:].encode(), password)


_CHECKS: dict[str, Callable[[str, bytes], bool]] = {
    "apr1": _check_md5_crypt,
    "md5-crypt": _check_md5_crypt,
    "bcrypt": _check_bcrypt,
    "sha256-crypt": _check_sha_crypt,
    "sha512-crypt": _check_sha_crypt,
    "sha1": _check_sha1,
    "ssha": _check_ssha,
    "plain": _check_plain,
}


def _to64(value: int, count: int) -> bytes:
    out = bytearray()
    for _ in range(count):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6
    return bytes(out)


def md5_crypt(password: bytes, salt: bytes, magic: bytes = b"$apr1$") -> bytes:
    """MD5-crypt of `password` with `salt` (at most 8 bytes are used): `magic` + salt +
    "$" + 22 characters. `$apr1$` is Apache's name for the same algorithm as `$1$`."""
    salt = salt[:8]
    alternate = hashlib.md5(password + salt + password).digest()
    ctx = hashlib.md5(password + magic + salt)
    for left in range(len(password), 0, -16):
        ctx.update(alternate[: min(left, 16)])
    length = len(password)
    while length:
        ctx.update(b"\0" if length & 1 else password[:1])
        length >>= 1
    final = ctx.digest()
    for i in range(1000):
        step = hashlib.md5(password if i & 1 else final)
        if i % 3:
            step.update(salt)
        if i % 7:
            step.update(password)
        step.update(final if i & 1 else password)
        final = step.digest()
    encoded = b"".join(
        _to64((final[a] << 16) | (final[b] << 8) | final[c], 4)
        for a, b, c in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5))
    )
    return magic + salt + b"$" + encoded + _to64(final[11], 2)


# SHA-crypt's byte order of the final digest, three bytes per four characters.
_SHA256_ORDER = (
    (0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14),
    (15, 25, 5), (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29),
)  # fmt: skip
_SHA512_ORDER = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
    (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
    (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38),
    (18, 39, 60), (40, 61, 19), (62, 20, 41),
)  # fmt: skip


def sha_crypt(password: bytes, setting: bytes) -> bytes:
    """SHA-256 (`$5$`) or SHA-512 (`$6$`) crypt of `password` with the salt and rounds of
    `setting` (a full hash or just "$5$[rounds=N$]salt"); the full hash."""
    magic, rest = setting[:3], setting[3:]
    rounds, explicit = 5000, False
    if rest.startswith(b"rounds="):
        text, _, rest = rest[7:].partition(b"$")
        rounds = min(max(int(text), 1000), _SPEC_MAX_ROUNDS)
        explicit = True
    salt = rest.split(b"$", 1)[0][:16]
    new = hashlib.sha256 if magic == b"$5$" else hashlib.sha512
    size = new().digest_size
    alternate = new(password + salt + password).digest()
    ctx = new(password + salt)
    length = len(password)
    ctx.update(alternate * (length // size) + alternate[: length % size])
    while length:
        ctx.update(alternate if length & 1 else password)
        length >>= 1
    a = ctx.digest()
    dp = new(password * len(password)).digest()
    p = dp * (len(password) // size) + dp[: len(password) % size]
    ds = new(salt * (16 + a[0])).digest()
    s = ds * (len(salt) // size) + ds[: len(salt) % size]
    c = a
    for i in range(rounds):
        step = new(p if i & 1 else c)
        if i % 3:
            step.update(s)
        if i % 7:
            step.update(p)
        step.update(c if i & 1 else p)
        c = step.digest()
    order: tuple[tuple[int, int, int], ...] = _SHA256_ORDER
    tail = _to64((c[31] << 8) | c[30], 3)
    if size == 64:
        order, tail = _SHA512_ORDER, _to64(c[63], 2)
    encoded = b"".join(_to64((c[x] << 16) | (c[y] << 8) | c[z], 4) for x, y, z in order)
    head = magic + (b"rounds=%d$" % rounds if explicit else b"") + salt + b"$"
    return head + encoded + tail
