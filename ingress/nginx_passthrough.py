"""ingress-nginx's ssl-passthrough -> the route model's PassthroughHosts. Pure.

With --enable-ssl-passthrough, ingress-nginx puts a TCP proxy in front of nginx on the
HTTPS port: it reads the SNI name of each ClientHello and, when that name is the host of
a passthrough server, relays the connection unterminated to the Service of the server's
"/" location; everything else goes to nginx, TLS terminated. seaway's HTTPS listener
does the same (ingress/passthrough.py), from what this module builds:

- A host is passed through when the OLDEST Ingress with a rule for it has ssl-passthrough
  (controller.go createServers takes a server's SSLPassthrough from the Ingress that
  creates the server). Only when the flag is on: without it the annotation is ignored
  (discovery/nginx_annotations.py).
- The backend is the Service port of the host's "/" path (any path type; the oldest
  Ingress's first). A host without a "/" path is not passed through (ingress-nginx:
  "ignoring SSL passthrough ... as it doesn't have a default backend"); its other paths
  never are ("Ignoring SSL Passthrough for location"). Both are reported.
- The SNI name must equal the host exactly, case aside (tcpproxy.go compares the
  names): a wildcard rule host (``*.example.com``) never matches a real name, and a rule
  without host is the "_" server: neither is passed through; both are reported.
- Plain HTTP requests for the host are still routed as before; with the other
  annotations moot (ingress-nginx's documentation: "using SSL Passthrough invalidates all
  the other annotations"), only the TLS defaults remain: a host with tls gets the HTTPS
  redirect (308).
"""

from __future__ import annotations

from collections.abc import Callable

from discovery.model import Ingress
from ingress.nginx_locations import HostLocations, Location
from ingress.nginx_routes import KIND
from ingress.routes import Forward, PassthroughHost, Route, RouteMatch, RouteSource

Warn = Callable[[Ingress, str], None]
Note = Callable[[Ingress, str], None]


def passthrough_hosts(
    hosts: dict[str, HostLocations], warn: Warn, note: Note
) -> tuple[PassthroughHost, ...]:
    """The PassthroughHosts of the owned Ingresses' hosts (see the module docstring)."""
    found: list[PassthroughHost] = []
    for host, locs in sorted(hosts.items()):
        if not locs.ingresses:
            continue
        first, anns = locs.ingresses[0]
        if not anns.ssl_passthrough:
            continue
        meta = first.meta
        where = f"{KIND} {meta.namespace}/{meta.name}"
        if not host or host.startswith("*."):
            shown = host or "(no host)"
            warn(
                first,
                f"{where}: ssl-passthrough on {shown} never applies: ingress-nginx relays "
                "only connections whose SNI name equals a rule host exactly",
            )
            continue
        root = _root(locs.locations)
        if root is None:
            warn(
                first,
                f"{where}: ssl-passthrough on {host} ignored: the host has no \"/\" path to "
                "relay to (as ingress-nginx)",
            )
            continue
        for loc in locs.locations:
            if loc is not root:
                warn(
                    loc.ingress,
                    f"{loc.source}: not passed through (ssl-passthrough relays a host's "
                    "TLS connections to its \"/\" path only, as ingress-nginx); plain HTTP "
                    "requests still reach it",
                )
        backend = root.resolved
        assert backend is not None, "main locations are resolved when added"
        source = RouteSource(
            KIND, root.ingress.meta.namespace, root.ingress.meta.name, root.rule, root.index,
            f"{root.where} ({host} ssl-passthrough)",
        )
        found.append(PassthroughHost((host,), Route(RouteMatch(), Forward((backend,)), source)))
        note(first, f"ssl-passthrough: TLS for {host} relayed unterminated to {backend.key}")
    return tuple(found)


def _root(locations: list[Location]) -> Location | None:
    """The host's "/" location: a Prefix (or ImplementationSpecific) "/" first."""
    roots = [loc for loc in locations if loc.path == "/"]
    return next((loc for loc in roots if not loc.exact), roots[0] if roots else None)
