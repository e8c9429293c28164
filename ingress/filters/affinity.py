"""Sticky sessions by cookie, as ingress-nginx's balancer/sticky*.lua does them. Pure.

The cookie's value is ``KEY|BACKEND``: BACKEND names the backend (md5 of its key, so a
cookie of one Service is never read as another's), KEY the endpoint:
- mode "persistent" (sticky_persistent.lua): KEY is the md5 of the backend salt and the
  endpoint address; the client stays on that endpoint while it is in the backend's
  usable endpoints, and only then gets another one (and a new cookie);
- mode "balanced" (sticky_balanced.lua): KEY is random and mapped to an endpoint by a
  consistent hash ring, so when endpoints come and go a share of the clients move (the
  load is re-balanced), the others stay.
A request without a usable cookie gets an endpoint from the balancer and the cookie in
its answer. The cookie is written as lua-resty-cookie writes it: ``name=value``, then
Expires (``Thu, 01-Jan-70 00:00:00 GMT``), Max-Age, Domain, Path, Secure, HttpOnly,
SameSite; Secure when the filter asks or the request came over TLS.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Container, Sequence
from typing import Final

from discovery.snapshot import EndpointInfo
from ingress.filters.fieldscan import sticky_key
from ingress.filters.hashring import HashRing
from ingress.filters.ringhash import hex16
from ingress.route_filters import CookieAffinity

# (compiled, a Final is read from a C static: a plain imported name costs a dict lookup)
_STICKY_KEY: Final[Callable[[bytes, bytes, bytes], bytes | None]] = sticky_key
_RANDOM_BITS: Final[Callable[[int], int]] = random.getrandbits
_HEX16: Final[Callable[[int], bytes]] = hex16

_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SEEN_KEPT: Final = 8192  # cookie keys remembered per route (beyond: forgotten, all at once)
_UNSEEN: Final = -2  # (a cookie KEY not seen yet; -1: seen, names no usable endpoint)
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def cookie_time(when: float) -> bytes:
    """nginx's ngx_http_cookie_time: ``Thu, 18-Nov-10 11:27:35 GMT``."""
    t = time.gmtime(when)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d}-{_MONTHS[t.tm_mon - 1]}-{t.tm_year % 100:02d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    ).encode()


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data).hexdigest().encode()


def backend_tag(backend_key: str) -> bytes:
    """ingress-nginx's backend_key: md5(md5(name) .. name)."""
    name = backend_key.encode()
    return _md5(_md5(name) + name)


class StickyCookie:
    """One route's CookieAffinity over one backend: read, choose, write the cookie.

    A returning client sends the same cookie value request after request: the endpoint
    each KEY names is remembered (``_seen``, up to SEEN_KEPT keys, for the current
    endpoints), so the ring or the key table is consulted once per value, not per
    request."""

    __slots__ = (
        "_attributes",
        "_by_key",
        "_endpoints",
        "_ring",
        "_salt",
        "_seen",
        "_tails",
        "name",
        "prefix",
        "spec",
        "tag",
    )

    def __init__(self, spec: CookieAffinity, backend_key: str) -> None:
        self.spec = spec
        self.name = spec.name.encode()
        self.prefix = self.name + b"="
        self.tag = backend_tag(backend_key)
        self._salt = backend_key.encode()
        self._endpoints: tuple[EndpointInfo, ...] = ()
        self._by_key: dict[bytes, int] = {}  # persistent mode: endpoint key -> index
        self._ring: HashRing | None = None
        self._seen: dict[bytes, int] = {}  # cookie KEY -> endpoint index (-1: none)
        self._attributes = self._fixed_attributes()
        # Everything after "name=KEY|TAG" when it depends on nothing but the scheme (no
        # Expires, no SameSite that depends on the browser): (over http, over https).
        self._tails: tuple[bytes, bytes] | None = None
        if spec.expires is None and not spec.conditional_samesite_none:
            self._tails = (self._tail(False), self._tail(True))

    def _fixed_attributes(self) -> tuple[bytes, bytes]:
        """(what goes after Expires: Max-Age..Path, what goes after Secure: HttpOnly...)."""
        s = self.spec
        before = b""
        if s.max_age is not None:
            before += b"; Max-Age=%d" % s.max_age
        if s.domain:
            before += b"; Domain=" + s.domain.encode()
        before += b"; Path=" + (s.path or "/").encode()
        return before, b"; HttpOnly"

    def _refresh(self, endpoints: Sequence[EndpointInfo]) -> None:
        if endpoints is self._endpoints:
            return
        if tuple(endpoints) == self._endpoints:
            self._endpoints = tuple(endpoints)
            return
        self._endpoints = tuple(endpoints)
        self._by_key = {self.endpoint_key(ep): i for i, ep in enumerate(self._endpoints)}
        self._ring = None
        self._seen = {}

    def endpoint_key(self, ep: EndpointInfo) -> bytes:
        return _md5(self._salt + ep.address.encode())

    def in_head(
        self, head: bytes, endpoints: Sequence[EndpointInfo], skip: Container[EndpointInfo]
    ) -> EndpointInfo | None:
        """The usable endpoint the cookie in a request head names, or None (`index_in_head`,
        as the endpoint)."""
        i = self.index_in_head(head, endpoints, skip)
        return self._endpoints[i] if i >= 0 else None

    def index_in_head(
        self, head: bytes, endpoints: Sequence[EndpointInfo], skip: Container[EndpointInfo]
    ) -> int:
        """The index in `endpoints` of the usable endpoint the cookie in a request head
        names, or -1: the first cookie of that name in the head's Cookie fields, in order
        (nginx's $cookie_NAME and $http_cookie join every Cookie field), its value
        ``KEY|TAG`` (TAG this backend's: another backend's cookie, a canary's or another
        path's, names none here), read by ingress/filters/fieldscan. The endpoint each
        KEY names is remembered."""
        key = _STICKY_KEY(head, self.name, self.tag)
        if key is None:
            return -1
        if endpoints is not self._endpoints:
            self._refresh(endpoints)
        seen = self._seen
        i = seen.get(key, _UNSEEN)
        if i == _UNSEEN:
            if len(seen) >= SEEN_KEPT:
                seen.clear()
            i = seen[key] = self._named(key)
        if i < 0 or (skip and self._endpoints[i] in skip):
            return -1
        return i

    def _named(self, key: bytes) -> int:
        """The index of the endpoint a cookie's KEY names among the current endpoints,
        or -1."""
        if self.spec.mode == "persistent":
            return self._by_key.get(key, -1)
        ring = self._ring
        if ring is None:
            ring = self._ring = HashRing(self._endpoints)
        return ring.pick_index(key)

    def new_key(
        self, ep: EndpointInfo, endpoints: Sequence[EndpointInfo], skip: Container[EndpointInfo]
    ) -> tuple[EndpointInfo, bytes]:
        """`new_index` by endpoint: (the endpoint a new client goes to, its cookie KEY)."""
        self._refresh(endpoints)
        i, key = self.new_index(self._endpoints.index(ep), endpoints, skip)
        return self._endpoints[i], key

    def new_index(
        self, picked: int, endpoints: Sequence[EndpointInfo], skip: Container[EndpointInfo]
    ) -> tuple[int, bytes]:
        """(the index in `endpoints` of the endpoint a new client goes to, its cookie KEY),
        from the balancer's choice, index `picked`: persistent keeps it; balanced draws a
        random key and goes where the ring sends it (past the endpoints in `skip`)."""
        self._refresh(endpoints)
        if self.spec.mode == "persistent":
            return picked, self.endpoint_key(self._endpoints[picked])
        ring = self._ring
        if ring is None:
            ring = self._ring = HashRing(self._endpoints)
        key = _HEX16(_RANDOM_BITS(64))  # as ingress-nginx: unique, not secret
        found = ring.pick_index(key, skip)
        if found < 0:
            return picked, key
        seen = self._seen  # (the client comes back with it: known already)
        if not skip and len(seen) < SEEN_KEPT:
            seen[key] = found
        return found, key

    def set_cookie(
        self, key: bytes, https: bool, now: float, user_agent: bytes | None = None
    ) -> bytes:
        """The Set-Cookie value for a new client (`user_agent` decides SameSite=None
        under conditional_samesite_none)."""
        tails = self._tails
        if tails is not None:
            return b"".join((self.prefix, key, b"|", self.tag, tails[1] if https else tails[0]))
        s = self.spec
        expires = b""
        if s.expires is not None:
            expires = b"; Expires=" + cookie_time(now + s.expires)
        return b"".join((self.prefix, key, b"|", self.tag, expires, self._tail(https, user_agent)))

    def _tail(self, https: bool, user_agent: bytes | None = None) -> bytes:
        """The attributes after Expires: Max-Age, Domain, Path, Secure, HttpOnly, SameSite."""
        s = self.spec
        before, after = self._attributes
        parts = [before]
        if s.secure or https:
            parts.append(b"; Secure")
        parts.append(after)
        samesite = s.samesite
        if samesite and not (
            s.conditional_samesite_none
            and samesite == "None"
            and not same_site_none_compatible(user_agent)
        ):
            parts.append(b"; SameSite=" + samesite.encode())
        return b"".join(parts)


def same_site_none_compatible(user_agent: bytes | None) -> bool:
    """ingress-nginx's util/same_site.lua: browsers known to reject SameSite=None cookies
    (https://www.chromium.org/updates/same-site/incompatible-clients)."""
    if not user_agent:
        return True
    ua = user_agent
    if b"Chrome/4" in ua or b"Chrome/5" in ua or b"Chrome/6" in ua:
        return False
    if b"CPU iPhone OS 12" in ua or b"iPad; CPU OS 12" in ua:
        return False
    return not (
        b"Macintosh" in ua
        and b"Intel Mac OS X 10_14" in ua
        and b"Safari" in ua
        and b"Chrome" not in ua
    )
