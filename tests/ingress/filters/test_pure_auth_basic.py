"""Basic auth at request time (ingress/filters/auth_basic.py): the Authorization header,
the challenge, and which checks may run on the event loop (ingress/htpasswd.py verifies
the hashes; its own tests check them against htpasswd and openssl)."""

from __future__ import annotations

import base64

import bcrypt

from ingress.filters.auth_basic import BasicAuthCheck, challenge, credentials


def header(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def test_credentials_and_challenge() -> None:
    token = base64.b64encode(b"user:pa:ss").decode()
    assert credentials(f"Basic {token}".encode()) == ("user", "pa:ss")
    assert credentials(f"basic  {token}".encode()) == ("user", "pa:ss")
    assert credentials(b"Bearer abc") is None
    assert credentials(b"Basic " + base64.b64encode(b"nocolon")) is None
    assert credentials(b"Basic !!!") is None
    assert credentials(None) is None
    assert challenge('test "auth"') == b'Basic realm="test \\"auth\\""'


def test_fast_forms_answer_at_once_and_slow_ones_wait_for_a_thread() -> None:
    """apr1/{SHA}/{PLAIN} are checked on the spot; a bcrypt hash is handed back to be
    checked off the event loop, and once it passed, the same credentials answer at
    once (ingress/htpasswd.py remembers successes, never failures)."""
    slow = bcrypt.hashpw(b"bar", bcrypt.gensalt(4)).decode()
    check = BasicAuthCheck("r", (("plain", "{PLAIN}bar"), ("slow", slow)))
    assert check.check(header("plain", "bar")) is True
    assert check.check(header("plain", "baz")) is False
    assert check.check(header("nobody", "bar")) is False
    assert check.check(None) is False
    pending = check.check(header("slow", "bar"))
    assert pending == ("slow", "bar")
    assert check.verify(pending) is True
    assert check.check(header("slow", "bar")) is True  # remembered now
    wrong = check.check(header("slow", "nope"))
    assert wrong == ("slow", "nope") and check.verify(wrong) is False
    assert check.check(header("slow", "nope")) == ("slow", "nope")  # never remembered
    assert check.challenge == b'Basic realm="r"'
