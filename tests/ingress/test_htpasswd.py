"""htpasswd hashes checked by ingress/htpasswd.py (verify_basic) against hashes made by
the real tools: Apache's `htpasswd` (Debian apache2-utils 2.4) and `openssl passwd`.

The fixed vectors below were made once with the commands named beside them; the live
tests make fresh ones (new random salts) with `htpasswd` on every run."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from discovery.htpasswd import hash_kind, parse_htpasswd
from ingress import htpasswd
from ingress.htpasswd import check_hash, md5_crypt, sha_crypt, verify_basic

PASSWORD = "correct horse"
# (hash, password, command that made it)
VECTORS = [
    ("$apr1$cV2V.zvv$7hx/0494ozJfjc/CBCpkd.", PASSWORD, "htpasswd -nbm alice 'correct horse'"),
    ("$apr1$0T6DmkXs$c3JDxFAPujvoIrhCrkWR71", "", "htpasswd -nbm bob ''"),
    ("$apr1$5CiaaePz$U8APZDDNvdgyr0wn.9iUm1", "a-password-longer-than-sixteen-bytes-for-md5",
     "htpasswd -nbm dave a-password-longer-than-sixteen-bytes-for-md5"),
    ("$apr1$OFG3Xybp$ckL0FHDAkoXYIlH9.cysT0", "bar", "ingress-nginx e2e auth.go: foo / bar"),
    ("$1$saltsalt$NuzA7WTAelpl95xgBGWN60", PASSWORD,
     "openssl passwd -1 -salt saltsalt 'correct horse'"),
    ("$2y$05$10snxkkt3OblgGM4Q42ZyOkiDnF/sCSGDeRNvgHFqhTQx4PJgqUxW", PASSWORD,
     "htpasswd -nbB alice 'correct horse'"),
    ("{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=", PASSWORD, "htpasswd -nbs alice 'correct horse'"),
    ("{SSHA}j+QhUFeb/Km8696wAFHl1Vjce21OYUNsNHU=", PASSWORD,
     "(printf 'correct horse'; printf NaCl4u) | openssl dgst -sha1 -binary, + salt, base64"),
    ("$5$7JmldAEN4jdxP3C.$ugSqB8IZrN0300hi.yaFbM91OZS40iBvzCNYzIXRV0/", PASSWORD,
     "htpasswd -nb2 alice 'correct horse'"),
    ("$5$rounds=1000$Eowncdso/LGS/jPA$B/yLEOcTrMfDsdJUFp.ScL13AEyzbXqaYPMpbpN6n0C", "pässwörd",
     "htpasswd -nb2 -r 1000 carol 'pässwörd'"),
    ("$6$rP0AezLVtEE9dU.7$WHDDrYhh2cfnLKgudPQbiwAgq/TExyv2KDcpKarkIPxfxz0G2KFVbKfi7bJFjAjW."
     "vSGt03fa75uSwBs.f7zD.", PASSWORD, "htpasswd -nb5 alice 'correct horse'"),
    ("$6$At3/5FNXOyCqX/3Q$k9gpozVKv6Wsl5khjpf08hBN6Y3OYcFZ7Ph60sGcUBjxZ/FrM2T1J.ajZELFNzn95yA07"
     "me0YA10LD/oRwoK9/", "a-password-longer-than-sixty-four-bytes-so-that-the-sha512-blocks"
     "-repeat-xx", "htpasswd -nb5 erin a-password-longer-than-sixty-four-bytes-..."),
    ("$6$longsaltlongsalt$IGCiHBkxDdVjMXoyM6keQ/RzJwE1NGWrL07dd/TV2Iy6dQnS6sdv9mW5MZbw03yjVHIN7o6"
     "iH567skqI1to1F.", "x", "openssl passwd -6 -salt longsaltlongsaltXX x (salt cut at 16)"),
    ("{PLAIN}correct horse", PASSWORD, "nginx's {PLAIN} scheme"),
]  # fmt: skip


@pytest.mark.parametrize(("hashed", "password", "made_by"), VECTORS)
def test_vectors_from_htpasswd_and_openssl(hashed: str, password: str, made_by: str) -> None:
    assert hash_kind(hashed), made_by
    assert check_hash(hashed, password.encode()), made_by
    assert not check_hash(hashed, (password + "x").encode()), made_by
    assert not check_hash(hashed, password.upper().encode() + b"!"), made_by


def test_md5_and_sha_crypt_rebuild_the_hash() -> None:
    """The algorithms give the exact hash text, not only a yes/no."""
    assert md5_crypt(b"bar", b"OFG3Xybp") == b"$apr1$OFG3Xybp$ckL0FHDAkoXYIlH9.cysT0"
    md5 = md5_crypt(PASSWORD.encode(), b"saltsalt", b"$1$")
    assert md5 == b"$1$saltsalt$NuzA7WTAelpl95xgBGWN60"
    setting = b"$5$rounds=1000$Eowncdso/LGS/jPA$"
    assert sha_crypt("pässwörd".encode(), setting).startswith(setting + b"B/yLEOcT")


def test_unsupported_hashes_never_pass() -> None:
    """crypt(3) DES (htpasswd -d) is not supported: the hash equal to the password, or
    a truncated hash, must not let anyone in."""
    for hashed in ("FNEUPSYbKW3RQ", "correct horse", "", "$apr1$cV2V.zvv$7hx/0494oz",
                   "{SHA}notbase64", "$2y$05$short", "$5$rounds=2000000$salt$" + "a" * 43):
        assert hash_kind(hashed) == ""
        assert not check_hash(hashed, hashed.encode())
        assert not check_hash(hashed, PASSWORD.encode())
        assert not verify_basic((("alice", hashed),), "alice", PASSWORD)
        assert not verify_basic((("alice", hashed),), "alice", hashed)


def test_verify_basic_users_and_passwords() -> None:
    """nginx's auth_basic: the first line naming a user is the one used; an unknown user
    or a wrong password fails; names are case-sensitive."""
    users = (
        ("foo", "$apr1$OFG3Xybp$ckL0FHDAkoXYIlH9.cysT0"),  # bar
        ("alice", "{SHA}L55TUjtiq8FBorTWAZ0jy6g129A="),  # correct horse
        ("foo", "{PLAIN}other"),  # a second foo: never used
    )
    assert verify_basic(users, "foo", "bar")
    assert not verify_basic(users, "foo", "other")
    assert verify_basic(users, "alice", PASSWORD)
    assert not verify_basic(users, "Alice", PASSWORD)
    assert not verify_basic(users, "bob", "bar")
    assert not verify_basic((), "foo", "bar")
    assert not verify_basic(users, "", "")


def test_successes_are_remembered_failures_are_not_and_a_new_hash_revokes() -> None:
    bcrypt_hash = "$2y$05$10snxkkt3OblgGM4Q42ZyOkiDnF/sCSGDeRNvgHFqhTQx4PJgqUxW"
    calls: list[str] = []
    real = htpasswd._CHECKS["bcrypt"]

    def counting(hashed: str, password: bytes) -> bool:
        calls.append(hashed)
        return real(hashed, password)

    htpasswd._CHECKS["bcrypt"] = counting
    try:
        users = (("alice", bcrypt_hash),)
        assert verify_basic(users, "alice", PASSWORD)
        assert verify_basic(users, "alice", PASSWORD)
        assert len(calls) == 1  # the second check came from the memo
        assert not verify_basic(users, "alice", "wrong")
        assert not verify_basic(users, "alice", "wrong")
        assert len(calls) == 3  # failures are checked every time
        # The Secret changes alice's password: the remembered success does not count.
        other = parse_htpasswd("alice:{SHA}" + "YWxpY2UncyBuZXcgcGFzc3dvcmQ=").users
        assert other and other[0][1] != bcrypt_hash
        assert not verify_basic(other, "alice", PASSWORD)
    finally:
        htpasswd._CHECKS["bcrypt"] = real


def test_bcrypt_passwords_are_cut_at_72_bytes() -> None:
    """htpasswd and every bcrypt library hash only the first 72 bytes (bcrypt 5 raises
    instead: the cut keeps long passwords working)."""
    import bcrypt

    long = "p" * 80
    hashed = bcrypt.hashpw(long.encode()[:72], bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$")
    assert verify_basic((("u", hashed),), "u", long)
    assert verify_basic((("u", hashed),), "u", "p" * 72 + "different tail")
    assert not verify_basic((("u", hashed),), "u", "p" * 71)


HTPASSWD = shutil.which("htpasswd")


@pytest.mark.skipif(HTPASSWD is None, reason="htpasswd (Debian apache2-utils) is not installed")
@pytest.mark.parametrize("flag", ["-m", "-B", "-s", "-2", "-5"])
def test_fresh_hashes_from_htpasswd(flag: str) -> None:
    """Each form `htpasswd` writes today (new random salt every run) is accepted by the
    Secret parser and verified."""
    assert HTPASSWD is not None
    for password in ("s3cret", "with:colon and spaces", "ünïcødé"):
        args = [HTPASSWD, "-nb" + flag[1:], *(["-C", "4"] if flag == "-B" else []), "user"]
        made = subprocess.run([*args, password], capture_output=True, text=True, check=True)
        parsed = parse_htpasswd(made.stdout)
        assert parsed.problems == () and len(parsed.users) == 1, made.stdout
        assert verify_basic(parsed.users, "user", password)
        assert not verify_basic(parsed.users, "user", password + "!")


@pytest.mark.skipif(HTPASSWD is None, reason="htpasswd (Debian apache2-utils) is not installed")
def test_crypt_des_from_htpasswd_is_reported_unsupported() -> None:
    assert HTPASSWD is not None
    made = subprocess.run([HTPASSWD, "-nbd", "old", "pass"], capture_output=True, text=True,
                          check=True)  # fmt: skip
    parsed = parse_htpasswd(made.stdout)
    assert parsed.users == ()
    assert parsed.problems == (
        "data[auth] line 1: user 'old': crypt(3) DES hash (htpasswd -d) is not supported: this "
        "user cannot log in (401); use one of apr1 ($apr1$, htpasswd -m), bcrypt "
        "($2y$/$2a$/$2b$, htpasswd -B), SHA-1 ({SHA}, htpasswd -s), SHA-256/SHA-512 crypt "
        "($5$/$6$, htpasswd -2/-5), MD5-crypt ($1$), {SSHA}, {PLAIN}",
    )


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(htpasswd, "_REMEMBERED_MAX", 8)
    monkeypatch.setattr(htpasswd, "_remembered", {})
    users = tuple((f"u{i}", f"{{PLAIN}}p{i}") for i in range(20))
    for user, hashed in users:
        assert verify_basic(users, user, hashed[7:])
    assert len(htpasswd._remembered) == 8
    assert all(verify_basic(users, user, hashed[7:]) for user, hashed in users)
