"""htpasswd files and ingress-nginx auth-map Secrets -> (user, hash) pairs. Pure.

ingress-nginx writes the Secret of `auth-secret` to a file for nginx's
`auth_basic_user_file`: key `auth` as it is (auth-file), or one `user:value` line per key
(auth-map). This module reads those the way nginx's ngx_http_auth_basic_module reads the
file, and reports what nginx would silently skip:

- a line is `user:hash`: the user is everything before the first ':', the hash the rest of
  the line (CRLF or LF); blank lines and lines starting with '#' are skipped;
- a line without ':' (or with an empty user) can never match: reported, left out;
- a user listed twice: nginx stops at the first line naming the user, so the first wins;
- a hash seaway cannot check: the user can never log in (401): reported. Supported are
  the forms `htpasswd` writes, except crypt(3) DES (`-d`, 8-character passwords, no
  longer offered by modern libcs): apr1 (`$apr1$`, `-m`, the default), bcrypt (`$2y$`,
  `$2a$`, `$2b$`, `-B`), SHA-1 (`{SHA}`, `-s`), SHA-256 and SHA-512 crypt (`$5$`, `$6$`,
  `-2`, `-5`), and the forms nginx itself adds: MD5-crypt (`$1$`), salted SHA-1
  (`{SSHA}`) and `{PLAIN}`.

Verification is ingress/htpasswd.py (`verify_basic`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass

# hash kind -> how it is recognised
SUPPORTED = (
    "apr1",
    "md5-crypt",
    "bcrypt",
    "sha1",
    "ssha",
    "sha256-crypt",
    "sha512-crypt",
    "plain",
)
SUPPORTED_TEXT = (
    "apr1 ($apr1$, htpasswd -m), bcrypt ($2y$/$2a$/$2b$, htpasswd -B), SHA-1 ({SHA}, "
    "htpasswd -s), SHA-256/SHA-512 crypt ($5$/$6$, htpasswd -2/-5), MD5-crypt ($1$), "
    "{SSHA}, {PLAIN}"
)

_CRYPT64 = r"[./0-9A-Za-z]"
_MD5 = re.compile(r"\$(apr1|1)\$[^$]{0,8}\$" + _CRYPT64 + "{22}")
_BCRYPT = re.compile(r"\$2[aby]\$\d\d\$" + _CRYPT64 + "{53}")
_SHA_CRYPT = re.compile(
    r"\$([56])\$(?:rounds=(\d{1,10})\$)?[^$]{0,16}\$(" + _CRYPT64 + "{43}|" + _CRYPT64 + "{86})"
)
# More SHA-crypt rounds would hold a worker for seconds per login (5,000 is the default).
SHA_CRYPT_MAX_ROUNDS = 1_000_000
_DES = re.compile(_CRYPT64 + "{13}")


def hash_kind(hashed: str) -> str:
    """The kind of an htpasswd hash (one of SUPPORTED), or "" when seaway cannot check it
    (`unsupported_reason` says why)."""
    if hashed.startswith("$"):
        if _MD5.fullmatch(hashed):
            return "apr1" if hashed.startswith("$apr1$") else "md5-crypt"
        if _BCRYPT.fullmatch(hashed):
            return "bcrypt"
        m = _SHA_CRYPT.fullmatch(hashed)
        if (
            m is not None
            and len(m.group(3)) == (43 if m.group(1) == "5" else 86)
            and int(m.group(2) or 0) <= SHA_CRYPT_MAX_ROUNDS
        ):
            return "sha256-crypt" if m.group(1) == "5" else "sha512-crypt"
        return ""
    if hashed.startswith("{SHA}"):
        return "sha1" if _b64_length(hashed[5:]) == 20 else ""
    if hashed.startswith("{SSHA}"):
        return "ssha" if (_b64_length(hashed[6:]) or 0) > 20 else ""
    if hashed.startswith("{PLAIN}"):
        return "plain"
    return ""


def unsupported_reason(hashed: str) -> str:
    """Why `hash_kind(hashed)` is "" (a phrase for messages)."""
    if not hashed:
        return "empty password hash"
    m = _SHA_CRYPT.fullmatch(hashed)
    if m is not None and int(m.group(2) or 0) > SHA_CRYPT_MAX_ROUNDS:
        return f"SHA-crypt with more than {SHA_CRYPT_MAX_ROUNDS:,} rounds is not supported"
    if _DES.fullmatch(hashed):
        return "crypt(3) DES hash (htpasswd -d) is not supported"
    for prefix, name in (
        ("$apr1$", "apr1"),
        ("$1$", "MD5-crypt"),
        ("$2", "bcrypt"),
        ("$5$", "SHA-256 crypt"),
        ("$6$", "SHA-512 crypt"),
        ("{SHA}", "{SHA}"),
        ("{SSHA}", "{SSHA}"),
    ):
        if hashed.startswith(prefix):
            return f"malformed {name} hash"
    return "unknown hash format (plain text? crypt?)"


def _b64_length(text: str) -> int | None:
    try:
        return len(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class HtpasswdUsers:
    """The usable (user, hash) pairs, in file order, first of each user only; and the
    problems found, each "<field> line N: ..." (for auth-map, "<field>: ...")."""

    users: tuple[tuple[str, str], ...] = ()
    problems: tuple[str, ...] = ()


def parse_htpasswd(text: str, field: str = "data[auth]") -> HtpasswdUsers:
    """An htpasswd file (the `auth` key of an auth-file Secret). `field` names where the
    text came from, for the problems."""
    users: list[tuple[str, str]] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not line or line.startswith("#"):
            continue
        where = f"{field} line {number}"
        user, colon, hashed = line.partition(":")
        if not colon:
            problems.append(f"{where}: no ':' between user and password hash: line ignored")
            continue
        _add(users, problems, first_line, where, user, hashed, number)
    return HtpasswdUsers(tuple(users), tuple(problems))


def parse_auth_map(data: Mapping[str, bytes]) -> HtpasswdUsers:
    """An auth-map Secret: every key a user, its value the password hash."""
    users: list[tuple[str, str]] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for user in sorted(data):
        where = f"data[{user}]"
        text, bad = _text(data[user])
        if bad:
            problems.append(f"{where}: {bad}")
        hashed, _, rest = text.partition("\n")
        hashed = hashed.rstrip("\r")
        if rest.strip():
            problems.append(f"{where}: several lines: only the first is the password hash")
        _add(users, problems, first_line, where, user, hashed, 0)
    return HtpasswdUsers(tuple(users), tuple(problems))


def _add(
    users: list[tuple[str, str]],
    problems: list[str],
    first_line: dict[str, int],
    where: str,
    user: str,
    hashed: str,
    number: int,
) -> None:
    if not user:
        problems.append(f"{where}: empty user name: line ignored")
        return
    if user in first_line:
        problems.append(
            f"{where}: user {user!r} again: the first one (line {first_line[user]}) is used, "
            "as nginx does"
        )
        return
    if not hash_kind(hashed):
        problems.append(
            f"{where}: user {user!r}: {unsupported_reason(hashed)}: this user cannot log "
            f"in (401); use one of {SUPPORTED_TEXT}"
        )
        return
    first_line[user] = number
    users.append((user, hashed))


def _text(value: bytes) -> tuple[str, str]:
    """Secret bytes as text, and a problem when they are not UTF-8."""
    try:
        return value.decode(), ""
    except UnicodeDecodeError:
        return value.decode("utf-8", "replace"), "not UTF-8 text (invalid bytes replaced)"


def htpasswd_text(value: bytes, field: str = "data[auth]") -> HtpasswdUsers:
    """`parse_htpasswd` of Secret bytes (a UTF-8 problem is reported too)."""
    text, bad = _text(value)
    parsed = parse_htpasswd(text, field)
    if bad:
        return HtpasswdUsers(parsed.users, (f"{field}: {bad}", *parsed.problems))
    return parsed
