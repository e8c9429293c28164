"""HTTP Basic authentication against htpasswd hashes, as nginx's auth_basic checks them.
Pure.

Hash forms (what ``htpasswd`` writes and ingress-nginx users put in their Secrets):
``$apr1$`` (Apache MD5, ``htpasswd -m``, the default) and ``$1$`` (MD5-crypt, the same
algorithm with another magic), bcrypt ``$2y$``/``$2b$``/``$2a$`` (``htpasswd -B``, through
the ``bcrypt`` package), ``{SHA}`` (``htpasswd -s``), ``{SSHA}`` and ``{PLAIN}`` (RFC 2307
schemes nginx accepts). Other crypt(3) forms (DES, ``$5$``, ``$6$``) never match:
``unsupported`` names them so the translator can warn.

bcrypt is slow on purpose (tens of milliseconds at cost 10), and nginx pays it on every
request; here each BasicAuthCheck remembers the verdict for recent Authorization values
(bounded), so a client that sends the same credentials pays once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable

import bcrypt

_ITOA64 = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
VERDICTS_SIZE = 1024  # Authorization values remembered per route


def _to64(value: int, n: int) -> bytes:
    out = bytearray()
    for _ in range(n):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6
    return bytes(out)


def md5_crypt(password: bytes, salt: bytes, magic: bytes = b"$apr1$") -> bytes:
    """The MD5-crypt hash of `password` (Poul-Henning Kamp's algorithm; Apache's apr1 is
    the same with magic ``$apr1$``): ``magic + salt + "$" + 22 characters``."""
    salt = salt[:8]
    alt = hashlib.md5(password + salt + password).digest()
    ctx = bytearray(password + magic + salt)
    n = len(password)
    while n > 0:
        ctx += alt[: min(16, n)]
        n -= 16
    i = len(password)
    while i:
        ctx += b"\x00" if i & 1 else password[:1]
        i >>= 1
    final = hashlib.md5(ctx).digest()
    for i in range(1000):
        step = bytearray(password if i & 1 else final)
        if i % 3:
            step += salt
        if i % 7:
            step += password
        step += final if i & 1 else password
        final = hashlib.md5(step).digest()
    f = final
    encoded = b"".join(
        (
            _to64((f[0] << 16) | (f[6] << 8) | f[12], 4),
            _to64((f[1] << 16) | (f[7] << 8) | f[13], 4),
            _to64((f[2] << 16) | (f[8] << 8) | f[14], 4),
            _to64((f[3] << 16) | (f[9] << 8) | f[15], 4),
            _to64((f[4] << 16) | (f[10] << 8) | f[5], 4),
            _to64(f[11], 2),
        )
    )
    return magic + salt + b"$" + encoded


def verify(password: bytes, hashed: str) -> bool:
    """Whether `password` matches the htpasswd hash `hashed` (constant-time compare)."""
    raw = hashed.strip().encode()
    for magic in (b"$apr1$", b"$1$"):
        if raw.startswith(magic):
            salt = raw[len(magic) :].split(b"$", 1)[0]
            return hmac.compare_digest(md5_crypt(password, salt, magic), raw)
    if raw[:4] in (b"$2y$", b"$2b$", b"$2a$"):
        try:
            return bcrypt.checkpw(password, b"$2b$" + raw[4:])
        except ValueError:
            return False
    if raw.startswith(b"{SHA}"):
        digest = base64.b64encode(hashlib.sha1(password).digest())
        return hmac.compare_digest(digest, raw[5:])
    if raw.startswith(b"{SSHA}"):
        try:
            decoded = base64.b64decode(raw[6:], validate=True)
        except (binascii.Error, ValueError):
            return False
        digest, salt = decoded[:20], decoded[20:]
        return hmac.compare_digest(hashlib.sha1(password + salt).digest(), digest)
    if raw.startswith(b"{PLAIN}"):
        return hmac.compare_digest(password, raw[7:])
    return False


def unsupported(hashed: str) -> bool:
    """Whether `hashed` is a form ``verify`` never matches (DES, SHA-crypt...)."""
    raw = hashed.strip()
    known = ("$apr1$", "$1$", "$2y$", "$2b$", "$2a$", "{SHA}", "{SSHA}", "{PLAIN}")
    return not raw.startswith(known)


def parse_htpasswd(text: str) -> list[tuple[str, str]]:
    """(user, hash) of every ``user:hash`` line (blank lines and ``#`` comments skipped)."""
    users = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        user, _, hashed = line.partition(":")
        users.append((user, hashed))
    return users


def credentials(authorization: bytes | None) -> tuple[bytes, bytes] | None:
    """(user, password) of an ``Authorization: Basic ...`` value, or None."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    return (user, password) if colon else None


def challenge(realm: str) -> bytes:
    """The WWW-Authenticate value for `realm` (quotes and backslashes escaped)."""
    quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
    return b'Basic realm="' + quoted.encode("latin-1", "replace") + b'"'


class BasicAuthCheck:
    """One route's users, and the verdicts of recent Authorization values."""

    __slots__ = ("_users", "_verdicts", "challenge")

    def __init__(self, realm: str, users: Iterable[tuple[str, str]]) -> None:
        self._users: dict[bytes, str] = {}
        for user, hashed in users:
            self._users.setdefault(user.encode(), hashed)  # the first line of a user wins
        self._verdicts: dict[bytes, bool] = {}
        self.challenge = challenge(realm)

    def allows(self, authorization: bytes | None) -> bool:
        """Whether the request's Authorization value names a user with the right password."""
        if authorization is None:
            return False
        known = self._verdicts.get(authorization)
        if known is not None:
            return known
        found = credentials(authorization)
        ok = False
        if found is not None:
            hashed = self._users.get(found[0])
            ok = hashed is not None and verify(found[1], hashed)
        verdicts = self._verdicts
        if len(verdicts) >= VERDICTS_SIZE:
            verdicts.clear()
        verdicts[authorization] = ok
        return ok
