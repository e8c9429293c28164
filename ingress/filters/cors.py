"""CORS at request time: ingress/filter_headers.py's rules (ingress-nginx's CORS template),
with the fields that do not depend on the request made into bytes once per route. Pure.

- ``origin``: the Access-Control-Allow-Origin value for a request's Origin (``*`` for
  ``("*",)``; a listed origin echoed back), None when CORS does not apply to it (no
  Access-Control-* field then, and OPTIONS is proxied);
- a CORS OPTIONS request (the preflight) is answered 204 by the proxy with
  ``fields(origin, preflight=True)``; other CORS requests are proxied and their answers
  get ``response_lines(origin)``, replacing the backend's fields of those names
  (``remover``), as nginx's more_set_headers does.
"""

from __future__ import annotations

from typing import Final

from ingress.filter_headers import PREFLIGHT_STATUS, cors_headers, cors_origin
from ingress.filters.headers import field_lines, field_remover
from ingress.route_filters import Cors

__all__ = ["PREFLIGHT_STATUS", "REPLACED", "CorsPolicy"]

REPLACED: Final = b"access-control-"  # how the names of the fields CORS sets begin

Header = tuple[bytes, bytes]


def _encoded(fields: list[tuple[str, str]]) -> list[Header]:
    return [(n.encode(), v.encode("latin-1")) for n, v in fields]


class CorsPolicy:
    """One route's Cors, compiled."""

    __slots__ = (
        "_fixed",
        "_fixed_lines",
        "_preflight",
        "any_lines",
        "any_origin",
        "remover",
        "spec",
    )

    def __init__(self, cors: Cors) -> None:
        self.spec = cors
        self.any_origin = cors.allow_origins == ("*",)  # then the Origin is not even read
        every = _encoded(cors_headers(cors, b"*", False))
        self._fixed = every[1:]  # all but Access-Control-Allow-Origin, which varies
        self._preflight = _encoded(cors_headers(cors, b"*", True))[len(every) :]
        self._fixed_lines = field_lines(self._fixed)
        self.any_lines = self.response_lines(b"*")  # (any_origin's, made once)
        names = [n for n, _ in every]
        # (every name starts so: a head without such a field has nothing to remove,
        # which ingress/filters/fieldscan.add_fields tells without the regex)
        assert all(n.lower().startswith(REPLACED) for n in names), names
        self.remover = field_remover(names)

    def origin(self, origin: bytes | None) -> bytes | None:
        return cors_origin(self.spec, origin)

    def fields(self, allowed: bytes, preflight: bool = False) -> list[Header]:
        """The fields CORS adds for an allowed origin (a preflight's include its framing)."""
        out = [(b"Access-Control-Allow-Origin", allowed), *self._fixed]
        return out + self._preflight if preflight else out

    def response_lines(self, allowed: bytes) -> bytes:
        """``fields`` as head lines, for an answer from the backend."""
        return b"Access-Control-Allow-Origin: " + allowed + b"\r\n" + self._fixed_lines
