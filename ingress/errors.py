"""The small error hierarchy of the HTTP proxy.

`PeerError` is the other side's fault (bad bytes, a limit crossed): answered with its
status and the connection closed. Anything else escaping a protocol callback is our bug:
logged with a traceback and answered 500 (downstream) or 502 (upstream).
"""

from __future__ import annotations

from http import HTTPStatus

REASONS: dict[int, bytes] = {
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Content Too Large",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}


class ProxyError(Exception):
    """Base of the errors the proxy raises on purpose."""


class PeerError(ProxyError):
    """The client sent something we refuse; `status` is what it gets back."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class UpstreamError(ProxyError):
    """The backend misbehaved (bad framing, reset): 502 if nothing was sent yet."""


def reason(status: int) -> bytes:
    """The reason phrase of `status` ("Error" for a status HTTP does not name)."""
    known = REASONS.get(status)
    if known is None:
        try:
            known = REASONS[status] = HTTPStatus(status).phrase.encode()
        except ValueError:
            return b"Error"
    return known


def error_response(status: int, close: bool = True) -> bytes:
    """A complete, small plain-text response for a status the proxy answers itself."""
    phrase = reason(status)
    body = b"%d %s\n" % (status, phrase)
    conn = b"close" if close else b"keep-alive"
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
        b"Connection: %s\r\n\r\n%s" % (status, phrase, len(body), conn, body)
    )
