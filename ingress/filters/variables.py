"""nginx-style variables in route text ("$request_uri", "$http_x_user", "$cookie_id"...),
compiled once and expanded per request: the key of upstream-hash-by, the auth-url and
auth-signin of external auth. Pure.

Known variables: ``$request_uri`` (the target as received), ``$uri`` (its path),
``$args``/``$query_string``, ``$arg_NAME``, ``$host`` (the host name: lower case, no
port), ``$http_host``/``$best_http_host`` (the Host header as received),
``$http_NAME`` (a header, ``_`` for ``-``), ``$cookie_NAME``, ``$remote_addr``,
``$binary_remote_addr`` (the same text), ``$scheme``/``$pass_access_scheme``,
``$request_method``, ``$escaped_request_uri`` (``$request_uri`` percent-encoded as a
URL component, ingress-nginx's). ``${name}`` is the same as ``$name``. An unknown
variable expands to nothing, as an unset nginx variable does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, Protocol
from urllib.parse import quote_from_bytes

from ingress.route_conditions import cookie_value, query_value
from ingress.route_match import normalize_host, request_path

_VARIABLE: Final = re.compile(rb"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


class RequestView(Protocol):
    """What expanding variables reads of a request (ingress.request.RequestState)."""

    method: bytes
    url: bytes
    host: bytes | None

    def header(self, name: bytes) -> bytes | None: ...


Getter = Callable[[RequestView, bytes, bytes], bytes]  # (request, client ip, scheme)


def _query(req: RequestView, ip: bytes, scheme: bytes) -> bytes:
    q = req.url.find(b"?")
    return req.url[q + 1 :] if q >= 0 else b""


_FIXED: Final[dict[bytes, Getter]] = {
    b"request_uri": lambda req, ip, scheme: req.url,
    b"uri": lambda req, ip, scheme: request_path(req.url),
    b"args": _query,
    b"query_string": _query,
    b"host": lambda req, ip, scheme: normalize_host(req.host) if req.host else b"",
    b"http_host": lambda req, ip, scheme: req.host or b"",
    b"best_http_host": lambda req, ip, scheme: req.host or b"",
    b"remote_addr": lambda req, ip, scheme: ip,
    b"binary_remote_addr": lambda req, ip, scheme: ip,
    b"scheme": lambda req, ip, scheme: scheme,
    b"pass_access_scheme": lambda req, ip, scheme: scheme,
    b"request_method": lambda req, ip, scheme: req.method,
    b"escaped_request_uri": lambda req, ip, scheme: quote_from_bytes(req.url, safe="").encode(),
}


def _getter(name: bytes) -> Getter:
    fixed = _FIXED.get(name)
    if fixed is not None:
        return fixed
    if name.startswith(b"http_"):
        header = name[5:].replace(b"_", b"-").lower()
        return lambda req, ip, scheme: req.header(header) or b""
    if name.startswith(b"cookie_"):
        cookie = name[7:]
        return lambda req, ip, scheme: cookie_value(req.header(b"cookie"), cookie) or b""
    if name.startswith(b"arg_"):
        arg = name[4:]
        return lambda req, ip, scheme: query_value(req.url, arg) or b""
    return lambda req, ip, scheme: b""


class Template:
    """Text with variables, compiled: ``expand(request, client_ip, scheme)``."""

    __slots__ = ("_parts", "_single", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        raw = text.encode("latin-1", "replace")
        parts: list[bytes | Getter] = []
        pos = 0
        for m in _VARIABLE.finditer(raw):
            if m.start() > pos:
                parts.append(raw[pos : m.start()])
            parts.append(_getter(m.group(1) or m.group(2)))
            pos = m.end()
        if pos < len(raw) or not parts:
            parts.append(raw[pos:])
        self._parts = tuple(parts)
        only = parts[0] if len(parts) == 1 else None
        self._single: Getter | None = None if isinstance(only, bytes) else only

    @property
    def constant(self) -> bool:
        return all(isinstance(p, bytes) for p in self._parts)

    def expand(self, req: RequestView, client_ip: bytes, scheme: bytes) -> bytes:
        single = self._single
        if single is not None:  # "$request_uri", "$remote_addr": one variable alone
            return single(req, client_ip, scheme)
        return b"".join(
            [p if isinstance(p, bytes) else p(req, client_ip, scheme) for p in self._parts]
        )
