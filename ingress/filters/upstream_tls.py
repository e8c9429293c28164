"""TLS to the pod (UpstreamProtocol "HTTPS", or "AUTO" for HTTPS clients: ingress-nginx
backend-protocol and proxy-ssl-*).

As nginx's proxy_ssl defaults: the certificate is not checked unless ``verify`` is set,
and then against the CA of the proxy-ssl-secret (``ca_pem``), for ``server_name`` when
one is given (else the chain only; nginx would check its $proxy_host, "upstream_balancer"
in ingress-nginx, which no pod certificate names). SNI is sent only with ``sni`` (nginx's
proxy_ssl_server_name), or when a name must be checked (Python checks the name it sends).
A client certificate (``cert_pem``/``key_pem``) is presented when given. verify_depth is
not enforced (OpenSSL's default depth applies).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from ingress.route_filters import UpstreamProtocol
from ingress.tls import load_pem


@dataclass(frozen=True, slots=True)
class UpstreamTLS:
    context: ssl.SSLContext
    server_hostname: str | None  # SNI (and the name checked, when verifying): None: none


def tls_key(protocol: UpstreamProtocol) -> tuple[object, ...]:
    """What makes two filters' TLS settings the same (contexts and pools are shared)."""
    p = protocol
    return (p.verify, p.server_name, p.sni, p.ca_pem, p.cert_pem, p.key_pem)


def upstream_tls(protocol: UpstreamProtocol) -> UpstreamTLS | None:
    """The TLS settings of a backend protocol filter (None: plain HTTP)."""
    if protocol.protocol == "HTTP":
        return None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.set_alpn_protocols(["http/1.1"])
    name = protocol.server_name or None
    if protocol.verify:
        if protocol.ca_pem:
            ctx.load_verify_locations(cadata=protocol.ca_pem.decode("ascii", "replace"))
        ctx.check_hostname = name is not None
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if protocol.cert_pem and protocol.key_pem:
        load_pem(ctx, protocol.cert_pem, protocol.key_pem)
    send = name if protocol.sni or ctx.check_hostname else None
    return UpstreamTLS(ctx, send)
