"""ingress-nginx annotations for access: ports of its parsers ipallowlist/,
ipdenylist/, auth/, authreq/, ratelimit/ and cors/ (see discovery/nginx_annotations.py
for the whole)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from discovery.nginx_reader import AnnotationReader
from discovery.nginx_routing import URL_HINT, url_valid
from discovery.nginx_settings import (
    BasicAuth,
    Cors,
    Effect,
    ExternalAuth,
    RateLimit,
    SourceRanges,
)
from discovery.nginx_values import (
    BASIC_CHARS,
    CHARS_WITH_SPACE,
    HEADERS_VARIABLE,
    URL_WITH_NGINX_VARIABLE,
    matches,
    parse_cidr_list,
    quote,
)

_METHODS = re.compile(r"GET|HEAD|POST|PUT|PATCH|DELETE|CONNECT|OPTIONS|TRACE")
_HEADER = re.compile(r"[a-zA-Z\d\-_]+")
_CORS_ORIGINS = re.compile(r"((((([a-z]+://)?(\*\.)?[A-Za-z0-9\-.]*(:\d+)?,?)|null)+)|\*)?")
_CORS_ORIGIN = re.compile(r"([a-z]+://(\*\.)?[A-Za-z0-9\-.]*(:\d+)?|\*|null)?")
_CORS_METHODS = re.compile(r"([A-Za-z]+,?\s?)+")
_CORS_EXPOSE = re.compile(r"(([A-Za-z0-9\-_]+|\*),?\s?)+")


# -- access (ipallowlist/, ipdenylist/, auth/, authreq/, ratelimit/) --------------------------


def _cidrs(
    r: AnnotationReader, name: str, effect: Effect, alias: str = ""
) -> tuple[str, ...] | None:
    parsed: list[tuple[str, ...]] = []  # the validator's result, kept (parsed once)

    def valid(value: str) -> bool:
        cidrs, error = parse_cidr_list(value)
        parsed.append(cidrs)
        return not error

    value = r.text(
        name,
        valid,
        "CIDR list",
        "comma-separated addresses or CIDRs, e.g. 10.0.0.0/8,192.168.1.7",
        effect,
        aliases=(alias,) if alias else (),
    )
    if alias and r.present(name) and r.present(alias):
        r.ignore(alias, f"{name} is set, and wins")
    return parsed[-1] if value is not None else None


def read_source_ranges(r: AnnotationReader) -> SourceRanges:
    return SourceRanges(
        _cidrs(r, "allowlist-source-range", "denied", "whitelist-source-range"),
        _cidrs(r, "denylist-source-range", "denied"),
    )


def read_basic_auth(r: AnnotationReader, namespace: str) -> BasicAuth | None:
    kind = r.choice(
        "auth-type", ("basic", "digest"), "auth type", "refused", remove_spaces=True, hint='"basic"'
    )
    if kind is None:
        r.ignore_all(("auth-secret", "auth-secret-type", "auth-realm"), "auth-type is not set")
        return None
    secret_type = r.choice(
        "auth-secret-type", ("auth-file", "auth-map"), "secret type", "refused", remove_spaces=True
    )
    realm = r.text(
        "auth-realm",
        CHARS_WITH_SPACE,
        "realm",
        "letters, digits, spaces and -._~/:",
        "refused",
    )
    secret = r.text(
        "auth-secret",
        BASIC_CHARS,
        "Secret reference",
        "name or namespace/name",
        "denied",
        remove_spaces=True,
    )
    if kind == "digest":
        r.deny(
            r.key("auth-type"),
            "digest authentication is not supported: every path "
            "answers 503 rather than being served unprotected",
        )
        return None
    key = r.key("auth-secret")
    if secret is None:
        if not r.present("auth-secret"):
            r.deny(key, "auth-type basic needs auth-secret")
        return None
    parts = secret.split("/")
    if len(parts) > 2 or not all(parts):
        r.problem(
            key, f"invalid Secret reference {quote(secret)}", "denied", "name or namespace/name"
        )
        return None
    secret_ns, secret_name = (parts[0], parts[1]) if len(parts) == 2 else (namespace, parts[0])
    if secret_ns != namespace:
        r.deny(key, f"Secret {secret} is in another namespace, which is not allowed")
        return None
    if secret_type == "auth-map":
        return BasicAuth(secret_ns, secret_name, "auth-map", realm or "")
    return BasicAuth(secret_ns, secret_name, "auth-file", realm or "")


def read_external_auth(r: AnnotationReader) -> ExternalAuth | None:
    dependents = (
        "auth-method",
        "auth-signin",
        "auth-signin-redirect-param",
        "auth-response-headers",
        "auth-request-redirect",
        "auth-always-set-cookie",
    )
    url = r.text(
        "auth-url",
        URL_WITH_NGINX_VARIABLE,
        "URL",
        URL_HINT + ", plus nginx variables",
        "refused",
        remove_spaces=True,
    )
    if url is None:
        r.ignore_all(dependents, "auth-url is not set")
        return None
    key = r.key("auth-url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or ".." in parts.netloc:
        r.problem(key, f"invalid URL {quote(url)}", "denied", "an absolute http(s) URL")
        return None
    if not r.variables_ok("auth-url", url, "denied"):
        return None
    method = r.text(
        "auth-method",
        _METHODS,
        "HTTP method",
        "GET, HEAD, POST, ...",
        "denied",
        remove_spaces=True,
    )
    signin = r.text(
        "auth-signin",
        URL_WITH_NGINX_VARIABLE,
        "URL",
        URL_HINT + ", plus nginx variables",
        "default",
        remove_spaces=True,
    )
    if signin is not None and not r.variables_ok("auth-signin", signin, "default"):
        signin = None
    param = r.text("auth-signin-redirect-param", url_valid, "parameter name", "e.g. rd", "default")
    headers = r.text(
        "auth-response-headers",
        lambda v: (
            matches(HEADERS_VARIABLE, v, True)
            and all(_HEADER.fullmatch(h.strip()) for h in v.split(",") if h.strip())
        ),
        "header list",
        "comma-separated header names",
        "denied",
    )
    redirect = r.text(
        "auth-request-redirect",
        url_valid,
        "URL",
        URL_HINT + " (ingress-nginx would drop the whole auth configuration)",
        "denied",
    )
    always = r.flag("auth-always-set-cookie", "denied")
    return ExternalAuth(
        url,
        method.strip() if method else "",
        signin or "",
        param or "",
        tuple(h.strip() for h in (headers or "").split(",") if h.strip()),
        redirect or "",
        bool(always),
    )


def read_rate_limit(r: AnnotationReader) -> RateLimit:
    per = "a whole number >= 0 (0 = no limit)"
    rps = r.integer("limit-rps", "refused", "rate", per, 0) or 0
    rpm = r.integer("limit-rpm", "refused", "rate", per, 0) or 0
    conns = r.integer("limit-connections", "refused", "connection limit", per, 0) or 0
    multiplier = r.integer("limit-burst-multiplier", "default", "multiplier", per, 0)
    allow = _cidrs(r, "limit-allowlist", "refused", "limit-whitelist")
    if not (rps or rpm or conns):
        r.ignore_all(
            ("limit-burst-multiplier", "limit-allowlist", "limit-whitelist"),
            "no limit-rps, limit-rpm or limit-connections is set",
        )
        return RateLimit()
    return RateLimit(rps, rpm, conns, 5 if multiplier is None else multiplier, allow or ())


# -- CORS (cors/) -----------------------------------------------------------------------------


def read_cors(r: AnnotationReader) -> Cors:
    settings = (
        "cors-allow-origin",
        "cors-allow-methods",
        "cors-allow-headers",
        "cors-expose-headers",
        "cors-allow-credentials",
        "cors-max-age",
    )
    if not r.flag("enable-cors", "default"):
        r.ignore_all(settings, 'enable-cors is not "true"')
        return Cors()
    base = Cors(enabled=True)
    origins = r.text(
        "cors-allow-origin",
        _CORS_ORIGINS,
        "origin list",
        "*, or comma-separated scheme://host[:port] (one *. label allowed)",
        "default",
        remove_spaces=True,
    )
    allow_origin = base.allow_origin
    if origins is not None:
        found: list[str] = []
        for origin in (o.strip() for o in origins.split(",")):
            if origin == "*":
                found = ["*"]
                break
            if origin and _CORS_ORIGIN.fullmatch(origin):
                found.append(origin)
            elif origin:
                r.problem(
                    r.key("cors-allow-origin"),
                    f"invalid origin {quote(origin)}",
                    "default",
                    "scheme://host[:port]; that origin is left out",
                )
        allow_origin = tuple(found)

    def text(name: str, pattern: re.Pattern[str], default: str, hint: str) -> str:
        value = r.text(name, pattern, "list", hint, "default", remove_spaces=True)
        return default if value is None else value

    return Cors(
        enabled=True,
        allow_origin=allow_origin,
        allow_methods=text(
            "cors-allow-methods", _CORS_METHODS, base.allow_methods, "comma-separated methods"
        ),
        allow_headers=text(
            "cors-allow-headers",
            HEADERS_VARIABLE,
            base.allow_headers,
            "comma-separated header names",
        ),
        expose_headers=text(
            "cors-expose-headers",
            _CORS_EXPOSE,
            base.expose_headers,
            "comma-separated header names or *",
        ),
        allow_credentials=(
            c if (c := r.flag("cors-allow-credentials", "default")) is not None else True
        ),
        max_age=(
            a
            if (a := r.integer("cors-max-age", "default", "max age", "whole seconds", 0))
            is not None
            else base.max_age
        ),
    )
