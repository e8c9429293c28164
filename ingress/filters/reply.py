"""Responses the proxy makes itself for a route: redirects, fixed responses, refusals. Pure.

The plain path answers a bare status with ingress/errors.py's ``error_response``; a route
with a plan answers through ``local_response``, which adds the headers the route asks for
(Location, WWW-Authenticate, CORS, response header edits) and a body: the given one, or
seaway's own page for the status (the same text ``error_response`` writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ingress.errors import reason

Header = tuple[bytes, bytes]

# Statuses whose responses never carry a body (RFC 9110 6.4.1), so no page and no length.
_NO_BODY: Final = frozenset({204, 304})


def status_page(status: int) -> bytes:
    """seaway's own body for a status it answers: ``404 Not Found\\n``."""
    return b"%d %s\n" % (status, reason(status))


def local_response(
    status: int,
    headers: Sequence[Header] = (),
    body: bytes | None = None,
    close: bool = False,
    head_only: bool = False,
) -> bytes:
    """A complete response: status line, `headers` as given, then the framing seaway adds
    (Content-Type and Content-Length unless `headers` name them, Connection), then `body`
    (None: seaway's page for the status, as text/plain). `head_only`: the answer to a HEAD
    request, whose body is announced but not sent."""
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason(status))]
    named = set()
    for name, value in headers:
        lines.append(b"%s: %s\r\n" % (name, value))
        named.add(name.lower())
    if status in _NO_BODY or status < 200:
        body = b""
    else:
        if body is None:
            body = status_page(status)
            if b"content-type" not in named:
                lines.append(b"Content-Type: text/plain\r\n")
        if b"content-length" not in named:
            lines.append(b"Content-Length: %d\r\n" % len(body))
    lines.append(b"Connection: close\r\n\r\n" if close else b"Connection: keep-alive\r\n\r\n")
    if body and not head_only:
        lines.append(body)
    return b"".join(lines)
