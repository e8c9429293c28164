"""Pure: explain where an HTTP request would go (`seaway trace --url`).

The same Router the proxy compiles, asked the same question the proxy asks for each
request (Host header, path without the query), with the answer spelled out: which
Ingress rule matched, which Service port it names and its usable endpoints, or why the
proxy would answer 404 or 503 itself.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from discovery.ownership import DEFAULT_CONTROLLER
from discovery.snapshot import Snapshot
from ingress.router import Router


class TraceError(ValueError):
    """The URL cannot be a request the proxy would see."""


def split_url(url: str) -> tuple[str, str, str]:
    """(scheme, Host header, path without query) of an http(s) URL."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.scheme not in ("http", "https"):
        raise TraceError(f"{url!r}: only http:// and https:// URLs are served")
    if not parts.netloc:
        raise TraceError(f"{url!r}: no host")
    return parts.scheme, parts.netloc, parts.path or "/"


def trace_request(
    snapshot: Snapshot,
    url: str,
    controller: str = DEFAULT_CONTROLLER,
    watch_without_class: bool = False,
) -> list[str]:
    """Lines that explain the route of a request for `url`."""
    scheme, host, path = split_url(url)
    router = Router.compile(snapshot, controller, watch_without_class)
    route = router.route(host, path)
    lines = [f"request {scheme}://{host}{path} (Host: {host}, path {path})"]
    bare = host.rsplit(":", 1)[0].lower() if not host.endswith("]") else host.lower()
    if scheme == "https":
        lines.append(f"  TLS: {_certificate(snapshot, router, bare)}")
    if route.source:
        lines.append(f"  matched {route.source}")
    if route.status == 0:
        eps = ", ".join(e.address for e in route.endpoints)
        lines.append(f"  backend {route.key} (service port {route.service})")
        lb = route.balancing
        how = f"maglev by {lb.hash_by}" if lb.policy == "maglev" else lb.policy
        lines.append(f"  -> forwarded, {how} over {len(route.endpoints)} endpoint(s): {eps}")
    elif route.status == 404:
        lines.append(
            f"  no rule of an Ingress seaway owns matches host {host!r} and path {path!r}, "
            "and there is no defaultBackend"
        )
        lines.append("  -> 404 from seaway")
    else:
        why = (
            "has no usable endpoints"
            if route.service is not None
            else "does not exist (no such Service, or no TCP port by that name or number)"
        )
        lines.append(f"  backend {route.key} {why}")
        lines.append(f"  -> {route.status} from seaway")
    for warning in router.warnings:
        if bare in warning:
            lines.append(f"  note: {warning}")
    return lines


def _certificate(snapshot: Snapshot, router: Router, name: str) -> str:
    """Which certificate a handshake with SNI `name` gets (as ingress/tls.py chooses)."""
    hosts = router.tls_hosts()
    dot = name.find(".")
    for pattern in (name, "*" + name[dot:] if dot > 0 else ""):
        secret = hosts.get(pattern)
        if secret is None:
            continue
        ns, secret_name = secret
        if secret in snapshot.tls_secrets:
            return f"certificate from Secret {ns}/{secret_name} (spec.tls host {pattern})"
        return (
            f"Secret {ns}/{secret_name} (spec.tls host {pattern}) is missing: the default "
            "certificate is served"
        )
    return (
        "no spec.tls host matches: the default certificate (the first usable Secret the "
        "owned Ingresses name, else a self-signed one)"
    )
