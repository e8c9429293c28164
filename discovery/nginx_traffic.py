"""ingress-nginx annotations for traffic: ports of its parsers canary/,
sessionaffinity/, loadbalancing/ and upstreamhashby/ (see
discovery/nginx_annotations.py for the whole)."""

from __future__ import annotations

import re
from typing import Literal

from discovery.nginx_reader import AnnotationReader
from discovery.nginx_settings import (
    Affinity,
    Canary,
    LoadBalancing,
    SameSite,
    SessionCookie,
)
from discovery.nginx_values import (
    BASIC_CHARS,
    IS_VALID_REGEX,
    URL_IS_VALID,
    quote,
)

_HASH_BY = re.compile(r"[A-Za-z0-9\-_${}]*")
_SAMESITE: dict[str, SameSite] = {"none": "None", "lax": "Lax", "strict": "Strict"}
LOAD_BALANCE_ALGORITHMS = (
    "round_robin",
    "chash",
    "chashsubset",
    "sticky_balanced",
    "sticky_persistent",
    "ewma",
)


# -- canary (canary/) -------------------------------------------------------------------------


def read_canary(r: AnnotationReader) -> Canary:
    rules = (
        "canary-weight",
        "canary-weight-total",
        "canary-by-header",
        "canary-by-header-value",
        "canary-by-header-pattern",
        "canary-by-cookie",
    )
    if not r.flag("canary", "default"):
        r.ignore_all(rules, 'canary is not "true": ingress-nginx ignores canary-* then')
        return Canary()
    names = "a header name"

    def basic(name: str, what: str) -> str:
        return r.text(name, BASIC_CHARS, what, names, "default", remove_spaces=True) or ""

    header = basic("canary-by-header", "header name")
    value = basic("canary-by-header-value", "header value")
    pattern = (
        r.text(
            "canary-by-header-pattern",
            IS_VALID_REGEX,
            "pattern",
            "a regular expression",
            "default",
        )
        or ""
    )
    if pattern and not _compiles(pattern):
        # Kept: ingress-nginx's Lua fails to match it and sends every request carrying
        # the header to the main Service, without trying the cookie or the weight.
        r.problem(
            r.key("canary-by-header-pattern"),
            f"invalid pattern {quote(pattern)}",
            "default",
            "a regular expression; as it is, every request carrying the header goes to the "
            "main Service (ingress-nginx's matching fails and stops there)",
        )
    if not header:
        r.ignore_all(
            ("canary-by-header-value", "canary-by-header-pattern"), "canary-by-header is not set"
        )
        value = pattern = ""
    elif value and pattern:
        r.ignore("canary-by-header-pattern", "canary-by-header-value is set, and wins")
        pattern = ""
    weight = r.integer("canary-weight", "default", "weight", "a whole number >= 0", 0)
    total = r.integer("canary-weight-total", "default", "weight total", "a whole number >= 1", 1)
    return Canary(
        True, weight or 0, total or 100, header, value, pattern, basic("canary-by-cookie", "name")
    )


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


# -- affinity (sessionaffinity/) and balancing (loadbalancing/, upstreamhashby/) -----------


def read_affinity(r: AnnotationReader) -> Affinity:
    kind = r.choice("affinity", ("cookie",), "affinity type", "default")
    mode = r.choice("affinity-mode", ("balanced", "persistent"), "mode", "default")
    behaviour = r.choice("affinity-canary-behavior", ("sticky", "legacy"), "behavior", "default")
    cookie_keys = tuple(
        k[len(r.prefix) :] for k in r.annotations if k.startswith(r.prefix + "session-cookie-")
    )
    legacy: Literal["sticky", "legacy"] = "legacy" if behaviour == "legacy" else "sticky"
    if kind is None:
        # affinity-canary-behavior is read whatever the type (sessionaffinity/main.go):
        # on a canary Ingress, legacy keeps the main Service port's affinity off it.
        r.ignore_all(("affinity-mode", *cookie_keys), 'affinity is not "cookie"')
        return Affinity(canary_behavior=legacy)

    def text(name: str, pattern: re.Pattern[str], hint: str) -> str:
        return r.text(name, pattern, "value", hint, "default", remove_spaces=True) or ""

    samesite = r.choice(
        "session-cookie-samesite",
        ("none", "lax", "strict"),
        "SameSite",
        "default",
        case_sensitive=False,
        hint='"None", "Lax" or "Strict"',
    )
    seconds = "a whole number of seconds"
    cookie = SessionCookie(
        name=text("session-cookie-name", BASIC_CHARS, "a cookie name") or "INGRESSCOOKIE",
        path=text("session-cookie-path", URL_IS_VALID, "a path"),
        domain=text("session-cookie-domain", BASIC_CHARS, "a domain"),
        max_age=r.integer("session-cookie-max-age", "default", "max age", seconds),
        expires=r.integer("session-cookie-expires", "default", "expiry", seconds),
        samesite=_SAMESITE[samesite] if samesite else "",
        conditional_samesite_none=bool(
            r.flag("session-cookie-conditional-samesite-none", "default")
        ),
        secure=bool(r.flag("session-cookie-secure", "default")),
        change_on_failure=bool(r.flag("session-cookie-change-on-failure", "default")),
    )
    return Affinity(
        True,
        "persistent" if mode == "persistent" else "balanced",
        legacy,
        cookie,
    )


def read_balancing(r: AnnotationReader) -> LoadBalancing:
    algorithm = r.choice(
        "load-balance", LOAD_BALANCE_ALGORITHMS, "algorithm", "refused", hint="round_robin or ewma"
    )
    key = r.text(
        "upstream-hash-by",
        _HASH_BY,
        "hash key",
        'an nginx expression such as "$request_uri"',
        "refused",
        remove_spaces=True,
    )
    subset = r.flag("upstream-hash-by-subset", "refused")
    size = r.integer("upstream-hash-by-subset-size", "refused", "subset size", "a whole number")
    if key is None:
        r.ignore_all(
            ("upstream-hash-by-subset", "upstream-hash-by-subset-size"),
            "upstream-hash-by is not set",
        )
        key = ""
    elif not r.variables_ok("upstream-hash-by", key, "default"):
        key = ""
    return LoadBalancing(algorithm, key, bool(subset), size or 3)
