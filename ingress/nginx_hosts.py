"""Hosts -> VirtualHosts: the ordered routes of each host, its aliases, app-root, and the
from-to-www redirect hosts. Pure.

- A plain host keeps the Kubernetes order (Exact first, then the longest Prefix; a
  Prefix "/foo" and "/foo/" are one path, the older wins); a regex host takes
  ingress-nginx's (ingress/nginx_locations.py).
- `app-root`: a request for exactly "/" is answered 302 with Location
  $scheme://$http_host<app-root>, before anything else of the host (nginx.tmpl writes
  it at server level: no ssl redirect, no auth), the first location in order wins.
- `server-alias`: more names for the host's VirtualHost (those of the first Ingress of the
  host that has some); a name that is a rule host, or another host's alias, is left out.
  An alias "*.x" matches any number of labels, as nginx's server_name does.
- `from-to-www-redirect` on a path of host H: requests for www.H (or, when H starts with
  www., for H without it) are answered with the ConfigMap's http-redirect-code (308) and
  the same URI on H, one trailing "/" dropped (ngx_srv_redirect.lua); not when that name
  is a rule host of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from discovery.model import Ingress
from discovery.nginx_configmap import NginxGlobalSettings
from ingress.nginx_filters import REDIRECT_CODE
from ingress.nginx_locations import HostLocations, Location
from ingress.nginx_routes import KIND, RouteBuilder
from ingress.paths import prefix_key
from ingress.routes import (
    Certificate,
    PathMatch,
    Redirect,
    ReplaceFullPath,
    Route,
    RouteMatch,
    RouteSource,
    VirtualHost,
)

Warn = Callable[[Ingress, str], None]
APP_ROOT_STATUS = 302


class CertificateHosts:
    """Which hosts have a TLS certificate (ingress-nginx's ssl-redirect needs one)."""

    __slots__ = ("_names",)

    def __init__(self, certificates: tuple[Certificate, ...]) -> None:
        self._names = {h for c in certificates for h in c.hosts}

    def covers(self, host: str) -> bool:
        if not host:
            return False
        if host in self._names:
            return True
        dot = host.find(".")
        return not host.startswith("*.") and dot > 0 and "*" + host[dot:] in self._names


class HostBuilder:
    """Builds the VirtualHosts of one translation."""

    __slots__ = ("_builder", "_certs", "_settings", "_warn")

    def __init__(
        self,
        builder: RouteBuilder,
        certs: CertificateHosts,
        settings: NginxGlobalSettings | None,
        warn: Warn,
    ) -> None:
        self._builder = builder
        self._certs = certs
        self._settings = settings
        self._warn = warn

    def build(self, hosts: dict[str, HostLocations]) -> tuple[VirtualHost, ...]:
        taken = set(hosts)
        vhosts: list[VirtualHost] = []
        for host, locs in hosts.items():
            routes = tuple(self._routes(locs))
            names, wild = self._aliases(locs, taken)
            vhosts.append(VirtualHost(((host,) if host else ()) + names, routes))
            if wild:
                vhosts.append(VirtualHost(wild, routes, "suffix"))
        for host, locs in hosts.items():
            www = self._www(host, locs, taken)
            if www is not None:
                vhosts.append(www)
        return tuple(vhosts)

    def _routes(self, locs: HostLocations) -> list[Route]:
        has_cert = self._certs.covers(locs.host)
        routes: list[Route] = []
        ordered: list[Location] = []
        shown = locs.host or "*"
        if locs.regex():
            for entry in locs.regex_entries():
                loc = entry.location
                ordered.append(loc)
                path = PathMatch("Regex", "^" + entry.path, ignore_case=True)
                text = f"{loc.where} ({shown} Regex ^{entry.path})"
                routes += self._builder.routes(loc, path, text, True, has_cert)
            for ingress, _ in locs.ingresses:
                self._builder.note(
                    ingress,
                    f"host {shown}: every path is a case-insensitive regular expression "
                    "(use-regex or rewrite-target on an Ingress of the host)",
                )
        else:
            for loc, path in self._plain(locs):
                ordered.append(loc)
                text = f"{loc.where} ({shown} {path.kind} {path.value})"
                routes += self._builder.routes(loc, path, text, False, has_cert)
        app = locs.app_root(ordered)
        if app is not None:
            loc, root = app
            meta = loc.ingress.meta
            source = RouteSource(
                KIND, meta.namespace, meta.name, loc.rule, loc.index, f"app-root ({shown} /)"
            )
            redirect = Redirect(APP_ROOT_STATUS, path=ReplaceFullPath(root), keep_query=False)
            routes.insert(0, Route(RouteMatch(PathMatch("Exact", "/")), redirect, source))
            self._builder.note(loc.ingress, f"app-root: / on {shown} -> 302 to {root}")
        return routes

    def _plain(self, locs: HostLocations) -> list[tuple[Location, PathMatch]]:
        """Kubernetes order: Exact (as added), then Prefix by decreasing key length; a
        Prefix equal to a kept one but for trailing slashes is a conflict."""
        exact: list[tuple[Location, PathMatch]] = []
        prefix: dict[bytes, tuple[Location, PathMatch]] = {}
        for loc in locs.locations:
            if loc.exact:
                exact.append((loc, PathMatch("Exact", loc.path)))
                continue
            key = prefix_key(loc.path.encode() or b"/")
            kept = prefix.get(key)
            if kept is None:
                prefix[key] = (loc, PathMatch("Prefix", loc.path))
            else:
                why = f"{loc.source}: conflicts with {kept[0].source}, which wins"
                self._warn(loc.ingress, why)
        ordered = sorted(prefix.items(), key=lambda item: -len(item[0]))
        return exact + [pair for _, pair in ordered]

    def _aliases(
        self, locs: HostLocations, taken: set[str]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if not locs.host:
            return (), ()
        names: list[str] = []
        wild: list[str] = []
        for alias in locs.aliases():
            if alias in taken:
                ingress = next((i for i, a in locs.ingresses if a.backends.server_aliases), None)
                if ingress is not None:
                    self._warn(
                        ingress,
                        f"{KIND} {ingress.meta.namespace}/{ingress.meta.name}: server-alias "
                        f"{alias} left out: it is a host of its own or another host's alias",
                    )
                continue
            taken.add(alias)
            (wild if alias.startswith("*.") else names).append(alias)
        if names or wild:
            ingress = next(i for i, a in locs.ingresses if a.backends.server_aliases)
            listed = ", ".join(names + wild)
            self._builder.note(ingress, f"server-alias: {listed} served as {locs.host}")
        return tuple(names), tuple(wild)

    def _www(self, host: str, locs: HostLocations, taken: set[str]) -> VirtualHost | None:
        if not host or host.startswith("*.") or not locs.from_to_www():
            return None
        other = host[4:] if host.startswith("www.") else "www." + host
        loc = next(loc for loc in locs.locations if loc.anns.redirects.from_to_www)
        if other in taken:
            self._warn(
                loc.ingress,
                f"{loc.source}: from-to-www-redirect: {other} is a host of its own, so it is "
                "not redirected (as in ingress-nginx)",
            )
            return None
        taken.add(other)
        code = self._settings.http_redirect_code if self._settings else REDIRECT_CODE
        meta = loc.ingress.meta
        text = f"from-to-www-redirect ({other} -> {host})"
        source = RouteSource(KIND, meta.namespace, meta.name, loc.rule, loc.index, text)
        redirect = Redirect(code, hostname=host, strip_trailing_slash=True)
        self._builder.note(loc.ingress, f"from-to-www-redirect: {other} -> {code} to {host}")
        return VirtualHost((other,), (Route(RouteMatch(PathMatch()), redirect, source),))
