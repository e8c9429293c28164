"""htpasswd verification (ingress/filters/auth_basic.py), against hashes made by the real
tools users make them with: Apache's htpasswd (as ingress-nginx's docs/examples/auth/basic
tell) and openssl passwd."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest

from ingress.filters.auth_basic import (
    BasicAuthCheck,
    challenge,
    credentials,
    md5_crypt,
    parse_htpasswd,
    unsupported,
    verify,
)

needs_htpasswd = pytest.mark.skipif(
    shutil.which("htpasswd") is None, reason="htpasswd (apache2-utils) is not installed"
)


def htpasswd(flag: str, user: str, password: str) -> str:
    out = subprocess.run(
        ["htpasswd", "-nb", flag, user, password], capture_output=True, text=True, check=True
    ).stdout
    return out.strip().partition(":")[2]


@needs_htpasswd
@pytest.mark.parametrize("flag", ["-m", "-B", "-s"])  # apr1 (the default), bcrypt, {SHA}
def test_htpasswd_hashes_verify(flag: str) -> None:
    hashed = htpasswd(flag, "foo", "bar")
    assert verify(b"bar", hashed)
    assert not verify(b"baz", hashed)
    assert not verify(b"", hashed)
    assert not unsupported(hashed)


def test_md5_crypt_matches_openssl() -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    for flag, magic in (("-apr1", b"$apr1$"), ("-1", b"$1$")):
        out = subprocess.run(
            ["openssl", "passwd", flag, "-salt", "s4lt", "pässword"],
            capture_output=True,
            check=True,
        ).stdout.strip()
        assert md5_crypt("pässword".encode(), b"s4lt", magic) == out
        assert verify("pässword".encode(), out.decode())


def test_rfc2307_schemes_and_unknown_forms() -> None:
    import hashlib

    salt = b"NaCl"
    ssha = "{SSHA}" + base64.b64encode(hashlib.sha1(b"pw" + salt).digest() + salt).decode()
    assert verify(b"pw", ssha) and not verify(b"px", ssha)
    assert verify(b"plain", "{PLAIN}plain") and not verify(b"plainx", "{PLAIN}plain")
    sha512 = "$6$salt$IxDD3jeSOb5eB1CX5LBsqZFVkJdido3OUILO5Ifz5iwMuTS4XMS130MTSuDDl3aCI6Wou"
    assert not verify(b"pw", sha512) and unsupported(sha512)
    assert not verify(b"pw", "$apr1$broken") and not verify(b"pw", "{SSHA}not base64!")


def test_credentials_and_challenge() -> None:
    token = base64.b64encode(b"user:pa:ss").decode()
    assert credentials(f"Basic {token}".encode()) == (b"user", b"pa:ss")
    assert credentials(f"basic  {token}".encode()) == (b"user", b"pa:ss")
    assert credentials(b"Bearer abc") is None
    assert credentials(b"Basic " + base64.b64encode(b"nocolon")) is None
    assert credentials(b"Basic !!!") is None
    assert credentials(None) is None
    assert challenge('test "auth"') == b'Basic realm="test \\"auth\\""'


def test_htpasswd_file_and_check() -> None:
    text = "# users\n\nfoo:{PLAIN}bar\nfoo:{PLAIN}second\nnobody\nzed:{SHA}x\n"
    assert parse_htpasswd(text) == [
        ("foo", "{PLAIN}bar"),
        ("foo", "{PLAIN}second"),
        ("zed", "{SHA}x"),
    ]
    check = BasicAuthCheck("r", parse_htpasswd(text))
    good = b"Basic " + base64.b64encode(b"foo:bar")
    assert check.allows(good)
    assert check.allows(good)  # from the remembered verdicts
    assert not check.allows(b"Basic " + base64.b64encode(b"foo:second"))  # first line wins
    assert not check.allows(b"Basic " + base64.b64encode(b"who:bar"))
    assert not check.allows(None)
    assert check.challenge == b'Basic realm="r"'
