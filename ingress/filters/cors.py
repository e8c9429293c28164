"""CORS as ingress-nginx's enable-cors writes it (nginx.tmpl's CORS template and
template.go's buildCorsOriginRegex), compiled once per route. Pure.

- allowed origins ``("*",)``: every request is a CORS request and gets
  ``Access-Control-Allow-Origin: *``; otherwise the request's Origin, when it matches an
  entry (case-insensitive, anchored at the end only, the first ``*`` of an entry one DNS
  label), is echoed back; no Origin, or no match: no CORS header and OPTIONS is proxied.
- a CORS OPTIONS request (the preflight) is answered 204 by the proxy with the
  Access-Control-* fields, ``Content-Type: text/plain charset=UTF-8`` and
  ``Content-Length: 0``; other CORS requests are proxied and their answers get the
  Access-Control-* fields (replacing the backend's, as nginx's more_set_headers does).
"""

from __future__ import annotations

import re

from ingress.filters.headers import field_lines, field_remover
from ingress.route_filters import Cors

Header = tuple[bytes, bytes]

PREFLIGHT_STATUS = 204
_PREFLIGHT_FRAMING = ((b"Content-Type", b"text/plain charset=UTF-8"), (b"Content-Length", b"0"))


def origin_pattern(origins: tuple[str, ...]) -> re.Pattern[bytes]:
    """buildCorsOriginRegex: ``$http_origin ~* ((o1)|(o2))$``."""
    parts = []
    for origin in origins:
        origin = origin.strip()
        if origin:
            quoted = re.escape(origin).replace(r"\*", r"[A-Za-z0-9\-]+", 1)
            parts.append("(" + quoted + ")")
    return re.compile(("(" + "|".join(parts) + ")$").encode(), re.IGNORECASE)


class CorsPolicy:
    """One route's Cors, compiled: ``origin`` decides, ``fields`` gives the headers."""

    __slots__ = ("_any", "_fixed", "_fixed_lines", "_pattern", "remover")

    def __init__(self, cors: Cors) -> None:
        self._any = cors.allow_origins == ("*",)
        self._pattern = None if self._any else origin_pattern(cors.allow_origins)
        fixed: list[Header] = []
        if cors.allow_credentials:
            fixed.append((b"Access-Control-Allow-Credentials", b"true"))
        fixed.append((b"Access-Control-Allow-Methods", ", ".join(cors.allow_methods).encode()))
        fixed.append((b"Access-Control-Allow-Headers", ", ".join(cors.allow_headers).encode()))
        if cors.expose_headers:
            exposed = ", ".join(cors.expose_headers).encode()
            fixed.append((b"Access-Control-Expose-Headers", exposed))
        fixed.append((b"Access-Control-Max-Age", str(cors.max_age).encode()))
        self._fixed = tuple(fixed)
        self._fixed_lines = field_lines(fixed)
        # The backend's own Access-Control-* fields of these names are replaced.
        names = [b"Access-Control-Allow-Origin", *(n for n, _ in fixed)]
        self.remover = field_remover(names)

    def origin(self, origin: bytes | None) -> bytes | None:
        """The Access-Control-Allow-Origin value for a request's Origin header, or None
        when CORS does not apply to the request."""
        if self._any:
            return b"*"
        if origin is None or self._pattern is None:
            return None
        return origin if self._pattern.search(origin) is not None else None

    def fields(self, allowed: bytes, preflight: bool = False) -> list[Header]:
        """The fields CORS adds for an allowed origin (a preflight's include its framing)."""
        out = [(b"Access-Control-Allow-Origin", allowed), *self._fixed]
        if preflight:
            out += _PREFLIGHT_FRAMING
        return out

    def response_lines(self, allowed: bytes) -> bytes:
        """``fields`` as head lines, for an answer from the backend."""
        return b"Access-Control-Allow-Origin: " + allowed + b"\r\n" + self._fixed_lines
