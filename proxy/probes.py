"""Health probes on the wire: one connection each, for the outlier detector's probes of
ejected endpoints and for active health checks (proxy/outlier.py, proxy/active_checks.py).

    tcp       a TCP connect within the timeout passes
    http      `GET path HTTP/1.1` (Host: the endpoint, Connection: close): a status line
              of 2xx or 3xx within the timeout passes
    any-http  `OPTIONS * HTTP/1.1`, RFC 9110's "ping" of a server: any status line within
              the timeout passes. It tells an endpoint that answers from one that accepts
              connections and never answers (which a TCP connect would call fine).

The request carries `User-Agent: seaway-health-check`, so backends can leave it out of
their logs. Only the status line is read; then the connection is dropped.
"""

from __future__ import annotations

import asyncio

from proxy.outlier import ANY_HTTP, HTTP_GET, TCP

USER_AGENT = "seaway-health-check"
_MAX_LINE = 4096


def probe_request(how: str, address: tuple[str, int], path: str) -> bytes:
    ip, port = address
    host = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
    method, target = ("OPTIONS", "*") if how == ANY_HTTP else ("GET", path or "/")
    return (
        f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


def status_passes(how: str, line: bytes) -> bool:
    """Whether a response's status line passes the probe."""
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3:
        return False
    code = parts[1]
    if not code.isdigit():
        return False
    if how == ANY_HTTP:
        return b"100" <= code <= b"599"
    return code[:1] in (b"2", b"3")


async def probe(how: str, address: tuple[str, int], path: str, timeout: float) -> bool:
    """Ask `address` as `how` says; True when it passes within `timeout` seconds."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(*address, limit=_MAX_LINE)
            if how == TCP:
                return True
            assert how in (HTTP_GET, ANY_HTTP), how
            writer.write(probe_request(how, address, path))
            line = await reader.readline()
    except (OSError, TimeoutError, ValueError):  # (ValueError: a line over the limit)
        return False
    finally:
        if writer is not None:
            writer.transport.abort()  # nothing more to say: no FIN handshake to wait for
    return status_passes(how, line)
