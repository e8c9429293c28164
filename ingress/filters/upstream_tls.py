"""TLS to the pod (UpstreamProtocol "HTTPS": ingress-nginx backend-protocol HTTPS).

As nginx's proxy_ssl defaults: the certificate is not checked unless ``verify`` is set,
and no SNI is sent unless ``server_name`` is given (then it is sent, and checked against
the certificate when verifying). Verification uses the system's trust store.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import lru_cache

from ingress.route_filters import UpstreamProtocol


@dataclass(frozen=True, slots=True)
class UpstreamTLS:
    context: ssl.SSLContext
    server_hostname: str | None  # SNI and the name checked (None: neither)


@lru_cache(maxsize=64)
def _context(verify: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def upstream_tls(protocol: UpstreamProtocol) -> UpstreamTLS | None:
    """The TLS settings of a backend protocol filter (None: plain HTTP)."""
    if protocol.protocol != "HTTPS":
        return None
    name = protocol.server_name or None
    if protocol.verify and name is None:
        # Checking needs a name; without one only the chain is checked.
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.check_hostname = False
        ctx.set_alpn_protocols(["http/1.1"])
        return UpstreamTLS(ctx, None)
    return UpstreamTLS(_context(protocol.verify), name)
