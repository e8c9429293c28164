"""Pure: the headers the CORS and error-page filters add, as ingress-nginx writes them.

The hot path calls these with request values; they hold ingress-nginx's exact rules
(rootfs/etc/nginx/template/nginx.tmpl: the CORS and CUSTOM_ERRORS templates, and
internal/ingress/controller/template/template.go buildCorsOriginRegex), so the runtime
and `seaway trace` give the same answers.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ingress.route_filters import Cors, ErrorPages

PREFLIGHT_STATUS = 204


@lru_cache(maxsize=256)
def _origin_regex(origins: tuple[str, ...]) -> re.Pattern[bytes]:
    """buildCorsOriginRegex: `if ($http_origin ~* ((o1)|(o2))$)`: case-insensitive,
    anchored at the end only; the first "*" of an origin is one DNS label."""
    parts = []
    for origin in origins:
        quoted = re.escape(origin.strip())
        parts.append("(" + quoted.replace(r"\*", r"[A-Za-z0-9\-]+", 1) + ")")
    return re.compile(("(" + "|".join(parts) + ")$").encode(), re.IGNORECASE)


def cors_origin(cors: Cors, origin: bytes | None) -> bytes | None:
    """The Access-Control-Allow-Origin value for a request, or None when CORS does not
    apply to it (then no Access-Control-* header is added and OPTIONS is proxied).

    ``*`` in the list alone: always "*" (ingress-nginx sets $http_origin to "*"). A list:
    the request's Origin, echoed, when it matches an entry; no Origin, no match."""
    if cors.allow_origins == ("*",):
        return b"*"
    if origin is None or not cors.allow_origins:
        return None
    return origin if _origin_regex(cors.allow_origins).search(origin) else None


def cors_headers(cors: Cors, allowed_origin: bytes, preflight: bool) -> list[tuple[str, str]]:
    """The headers CORS adds (to every answer when the origin is allowed; a preflight,
    an OPTIONS request, is answered 204 by the proxy with these and nothing else)."""
    headers = [("Access-Control-Allow-Origin", allowed_origin.decode("latin-1"))]
    if cors.allow_credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    headers.append(("Access-Control-Allow-Methods", ", ".join(cors.allow_methods)))
    headers.append(("Access-Control-Allow-Headers", ", ".join(cors.allow_headers)))
    if cors.expose_headers:
        headers.append(("Access-Control-Expose-Headers", ", ".join(cors.expose_headers)))
    headers.append(("Access-Control-Max-Age", str(cors.max_age)))
    if preflight:
        headers += [("Content-Type", "text/plain charset=UTF-8"), ("Content-Length", "0")]
    return headers


def error_page_headers(
    pages: ErrorPages, code: int, accept: bytes | None, request_uri: bytes
) -> list[tuple[str, str]]:
    """The request headers ErrorPages' backend is asked with, for an answer `code` to a
    request with this Accept header and request URI (its path is "/")."""
    headers = [("X-Code", str(code))]
    if accept:
        headers.append(("X-Format", accept.decode("latin-1")))
    headers += [
        ("X-Original-URI", request_uri.decode("latin-1")),
        ("X-Namespace", pages.namespace),
        ("X-Ingress-Name", pages.ingress),
        ("X-Service-Name", pages.service),
        ("X-Service-Port", pages.service_port),
    ]
    return headers
