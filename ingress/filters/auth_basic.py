"""HTTP Basic authentication at request time (BasicAuth): the Authorization header read,
the credentials checked with ingress/htpasswd.py, the 401 challenge. Pure.

bcrypt and SHA-crypt cost milliseconds per check, which the event loop must not spend:
``check`` answers at once only when ingress/htpasswd.py can (a fast hash form, an unknown
user, or credentials that passed recently), and None otherwise, for the caller to run
``verify`` in a thread (ingress/filters/exchange.py).
"""

from __future__ import annotations

import base64
import binascii

from ingress.htpasswd import Users, quick, verify_basic


def credentials(authorization: bytes | None) -> tuple[str, str] | None:
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
    if not colon:
        return None
    return user.decode("utf-8", "replace"), password.decode("utf-8", "replace")


def challenge(realm: str) -> bytes:
    """The WWW-Authenticate value for `realm` (quotes and backslashes escaped)."""
    quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
    return b'Basic realm="' + quoted.encode("latin-1", "replace") + b'"'


class BasicAuthCheck:
    """One route's users and challenge."""

    __slots__ = ("challenge", "users")

    def __init__(self, realm: str, users: Users) -> None:
        self.users = users
        self.challenge = challenge(realm)

    def check(self, authorization: bytes | None) -> bool | tuple[str, str] | None:
        """True (let through), False (401), or the credentials still to ``verify`` off
        the event loop (a slow hash form, not checked recently)."""
        found = credentials(authorization)
        if found is None:
            return False
        user, password = found
        if quick(self.users, user, password):
            return verify_basic(self.users, user, password)
        return found

    def verify(self, found: tuple[str, str]) -> bool:
        """The slow check (thread-safe)."""
        return verify_basic(self.users, *found)
