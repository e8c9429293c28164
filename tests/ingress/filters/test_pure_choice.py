"""Endpoint choice: the hash ring (ingress/filters/hashring.py), sticky cookies
(ingress/filters/affinity.py) and nginx variables (ingress/filters/variables.py)."""

from __future__ import annotations

import re
from collections import Counter

from discovery.snapshot import EndpointInfo
from ingress.filters.affinity import StickyCookie, backend_tag, cookie_time
from ingress.filters.hashring import HashRing
from ingress.filters.variables import Template
from ingress.request import RequestState
from ingress.route_filters import CookieAffinity

EPS = tuple(EndpointInfo(f"10.0.0.{i}", 8080) for i in range(1, 7))


def test_ring_is_stable_and_moves_only_the_removed_endpoints_keys() -> None:
    ring = HashRing(EPS)
    keys = [b"/item/%d" % i for i in range(600)]
    before = {k: ring.pick(k) for k in keys}
    assert before == {k: HashRing(EPS).pick(k) for k in keys}  # same in every worker
    shares = Counter(before.values())
    assert len(shares) == 6 and min(shares.values()) > 40  # spread over all six
    smaller = HashRing(EPS[1:])
    moved = [k for k in keys if smaller.pick(k) != before[k]]
    assert moved and all(before[k] == EPS[0] for k in moved)
    assert ring.pick(b"x", skip=set(EPS)) is None
    assert ring.pick(b"x", skip={ring.pick(b"x")}) not in (None, ring.pick(b"x"))
    assert HashRing(()).pick(b"x") is None


def test_cookie_time_is_nginx_format() -> None:
    assert cookie_time(0) == b"Thu, 01-Jan-70 00:00:00 GMT"
    assert cookie_time(1290079655) == b"Thu, 18-Nov-10 11:27:35 GMT"


def test_set_cookie_attributes_in_lua_resty_cookie_order() -> None:
    """ingress-nginx affinity.go: Expires and Max-Age, Path, Secure on https."""
    spec = CookieAffinity(
        "SERVERID", path="/something", max_age=259200, expires=172800, samesite="Lax"
    )
    sticky = StickyCookie(spec, "default/web:80")
    value = sticky.set_cookie(b"k", https=True, now=0)
    tag = backend_tag("default/web:80").decode()
    assert value.decode() == (
        f"SERVERID=k|{tag}; Expires=Sat, 03-Jan-70 00:00:00 GMT; Max-Age=259200; "
        "Path=/something; Secure; HttpOnly; SameSite=Lax"
    )
    plain = StickyCookie(CookieAffinity(), "b").set_cookie(b"k", https=False, now=0)
    assert plain.endswith(b"; Path=/; HttpOnly") and b"Secure" not in plain


def test_set_cookie_without_expires_is_the_same_from_its_precomputed_attributes() -> None:
    """Without Expires (and SameSite not decided per browser) everything after the value
    is made once per scheme: the same bytes, in lua-resty-cookie's order."""
    spec = CookieAffinity(
        "S", path="/app", max_age=60, domain="example.com", samesite="Strict", secure=False
    )
    sticky = StickyCookie(spec, "ns/svc:80")
    tag = sticky.tag.decode()
    tail = "; Max-Age=60; Domain=example.com; Path=/app"
    assert sticky.set_cookie(b"k1", https=False, now=5).decode() == (
        f"S=k1|{tag}{tail}; HttpOnly; SameSite=Strict"
    )
    assert sticky.set_cookie(b"k2", https=True, now=5).decode() == (
        f"S=k2|{tag}{tail}; Secure; HttpOnly; SameSite=Strict"
    )
    per_browser = CookieAffinity("S", samesite="None", conditional_samesite_none=True)
    sticky = StickyCookie(per_browser, "ns/svc:80")
    old_chrome = b"Mozilla/5.0 Chrome/51.0.2704.103 Safari/537.36"
    assert sticky.set_cookie(b"k", False, 0, old_chrome).endswith(b"; Path=/; HttpOnly")
    assert sticky.set_cookie(b"k", False, 0, b"curl/8").endswith(b"; HttpOnly; SameSite=None")


def head(*cookies: bytes) -> bytes:
    """A request head with these Cookie fields."""
    fields = b"".join(b"Cookie: " + c + b"\r\n" for c in cookies)
    return b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n"


def test_persistent_cookie_names_its_endpoint_while_usable() -> None:
    sticky = StickyCookie(CookieAffinity("S", mode="persistent"), "ns/svc:80")
    ep, key = sticky.new_key(EPS[2], EPS, ())
    assert ep == EPS[2]
    cookie = head(b"other=1; S=" + key + b"|" + sticky.tag)
    assert sticky.in_head(cookie, EPS, ()) == EPS[2]
    assert sticky.in_head(cookie, EPS, {EPS[2]}) is None  # tried already: choose again
    assert sticky.in_head(cookie, EPS[3:], ()) is None  # gone
    assert sticky.in_head(head(b"S=" + key + b"|othertag"), EPS, ()) is None  # another's
    assert sticky.in_head(head(), EPS, ()) is None


def test_balanced_cookie_goes_where_the_ring_sends_its_key() -> None:
    sticky = StickyCookie(CookieAffinity("S"), "ns/svc:80")
    ep, key = sticky.new_key(EPS[0], EPS, ())
    assert re.fullmatch(rb"[0-9a-f]{16}", key)
    assert ep == HashRing(EPS).pick(key)
    assert sticky.in_head(head(b"S=" + key + b"|" + sticky.tag), EPS, ()) == ep


def test_sticky_cookie_is_read_as_cookie_value_reads_it() -> None:
    """The read in the head and the values remembered per route give cookie_value's
    answer: the first cookie of that name at a cookie boundary, spaces around it
    ignored."""
    sticky = StickyCookie(CookieAffinity("S", mode="persistent"), "ns/svc:80")
    key = sticky.new_key(EPS[1], EPS, ())[1]
    good = b"S=" + key + b"|" + sticky.tag
    other = b"S=" + sticky.new_key(EPS[4], EPS, ())[1] + b"|" + sticky.tag
    for header, expected in [
        (good, EPS[1]),
        (b"a=1; " + good + b"; b=2", EPS[1]),
        (b"a=1;" + good, EPS[1]),  # no space after ";"
        (b"a=1;  " + good + b"  ", EPS[1]),
        (b"xS=1; " + good, EPS[1]),  # "S=" inside another name first
        (b"a=S=1; " + good, EPS[1]),  # ... inside another cookie's value
        (good + b"; " + other, EPS[1]),  # the first of two
        (b"a=1;" + good + b"; " + other, EPS[1]),
        (b"a=1; S=; b=2", None),
        (b"a=1; xS=" + key + b"|" + sticky.tag, None),
        (b"a=1", None),
    ]:
        for _ in range(2):  # unseen, then remembered
            assert sticky.in_head(head(header), EPS, ()) == expected, header


def test_sticky_cookie_is_the_first_of_its_name_in_any_cookie_field() -> None:
    """nginx (since 1.23) joins every Cookie field for $http_cookie and $cookie_NAME,
    which ingress-nginx's sticky balancer reads: the first cookie of the name counts,
    whichever field it is in; its name elsewhere in the head (the target, another
    field) is not a cookie; a field name in any case is a Cookie field."""
    sticky = StickyCookie(CookieAffinity("S", mode="persistent"), "ns/svc:80")
    good = b"S=" + sticky.new_key(EPS[1], EPS, ())[1] + b"|" + sticky.tag
    other = b"S=" + sticky.new_key(EPS[4], EPS, ())[1] + b"|" + sticky.tag
    assert sticky.in_head(head(b"a=1", b"b=2; " + good), EPS, ()) == EPS[1]
    assert sticky.in_head(head(good, other), EPS, ()) == EPS[1]
    assert sticky.in_head(head(b"a=S=1", other, good), EPS, ()) == EPS[4]
    in_target = b"GET /?" + good + b" HTTP/1.1\r\nHost: a\r\nReferer: /?" + good + b"\r\n"
    assert sticky.in_head(in_target + b"\r\n", EPS, ()) is None
    assert sticky.in_head(in_target + b"cOOKIE: " + other + b"\r\n\r\n", EPS, ()) == EPS[4]


def test_variables() -> None:
    req = RequestState(b"GET", b"/p/a?x=1&y=%20z", b"")
    req.head = (
        b"GET /p/a?x=1&y=%20z HTTP/1.1\r\nHost: App.Test:8080\r\nX-User: ann\r\n"
        b"Cookie: id=7; b=2\r\n\r\n"
    )
    req.host = b"App.Test:8080"

    def expand(text: str) -> bytes:
        return Template(text).expand(req, b"10.1.1.1", b"https")

    assert expand("$request_uri") == b"/p/a?x=1&y=%20z"
    assert expand("${uri}|$args|$arg_y|$arg_q") == b"/p/a|x=1&y=%20z| z|"
    assert expand("$host $http_host $http_x_user $cookie_id $remote_addr") == (
        b"app.test App.Test:8080 ann 7 10.1.1.1"
    )
    assert expand("$scheme://$best_http_host$escaped_request_uri") == (
        b"https://App.Test:8080%2Fp%2Fa%3Fx%3D1%26y%3D%2520z"
    )
    assert expand("$nothing-here") == b"-here"
    assert Template("plain").constant and not Template("$uri").constant
