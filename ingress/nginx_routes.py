"""One ingress-nginx location -> its Routes: the action and filters its Ingress's
annotations ask for (ingress/nginx_filters.py), its backend as the Service port's
upstream settings make it (ingress/nginx_upstreams.py), and the canary of that Service
port in front (ingress/nginx_canary.py). Pure.

- `denied` Ingresses (an unusable access rule, or an auth-secret / proxy-ssl-secret that
  is missing or unusable: ingress/nginx_secrets.py) answer 503 on every path, with no
  filter (nginx.tmpl: `return 503` for a location that is not allowed);
- permanent-redirect / temporal-redirect answer their code with the URL (a path alone is
  made absolute with the request's scheme and Host, unless relative-redirects);
- otherwise the route forwards; a Service port without usable endpoints is replaced by
  the Ingress's `default-backend` Service when that one has endpoints, asked with X-Code
  503 and the headers ingress-nginx's default backend gets; `custom-http-errors` makes
  ErrorPages (with the default-backend Service, else seaway's own pages);
- on a regex host, `rewrite-target` (when it differs from the path) becomes a Rewrite
  that replaces the whole path (nginx `rewrite "(?i)<path>" <target> break`, query kept),
  with `x-forwarded-prefix` as X-Forwarded-Prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from discovery.model import Ingress
from discovery.nginx_configmap import NginxGlobalSettings
from discovery.nginx_settings import NO_ANNOTATIONS
from discovery.snapshot import Snapshot
from ingress.backends import ServiceBackends
from ingress.nginx_canary import CanaryRule, canary_routes
from ingress.nginx_filters import IngressFilters
from ingress.nginx_locations import Location
from ingress.nginx_secrets import NO_SECRETS, IngressSecrets
from ingress.nginx_upstreams import Upstreams, written_port
from ingress.route_filters import ErrorPages, RequestHeaders, Rewrite
from ingress.routes import (
    Backend,
    FixedResponse,
    Forward,
    PathMatch,
    Redirect,
    RegexReplace,
    ReplaceFullPath,
    Route,
    RouteMatch,
    RouteSource,
)

KIND = "Ingress"
DENIED = 503

Note = Callable[[Ingress, str], None]  # records what an annotation did, per Ingress


class RouteBuilder:
    """Builds the routes of locations; one per translation (it caches per Ingress)."""

    __slots__ = (
        "_backends",
        "_canaries",
        "_filters",
        "_forwards",
        "_secrets",
        "_settings",
        "_snapshot",
        "_upstreams",
        "note",
    )

    def __init__(
        self,
        snapshot: Snapshot,
        settings: NginxGlobalSettings | None,
        backends: ServiceBackends,
        upstreams: Upstreams,
        canaries: dict[str, CanaryRule],
        note: Note,
        secrets: Mapping[tuple[str, str], IngressSecrets] | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._secrets = secrets or {}
        self._settings = settings
        self._backends = backends
        self._upstreams = upstreams
        self._canaries = canaries
        self.note = note
        self._filters: dict[tuple[str, str], IngressFilters] = {}
        self._forwards: dict[int, Forward] = {}

    def filters(self, loc: Location) -> IngressFilters:
        meta = loc.ingress.meta
        key = (meta.namespace, meta.name)
        found = self._filters.get(key)
        if found is None:
            secrets = self._secrets.get(key, NO_SECRETS)
            found = self._filters[key] = IngressFilters(loc.anns, self._settings, secrets)
        return found

    def resolve(self, loc: Location) -> Backend:
        if loc.resolved is None:
            loc.resolved = self._backends.ingress_backend(loc.ingress.meta.namespace, loc.backend)
        return loc.resolved

    def forward(self, backend: Backend) -> Forward:
        """The Forward to one Backend, shared by every route to it (smaller pickles)."""
        found = self._forwards.get(id(backend))
        if found is None:
            found = self._forwards[id(backend)] = Forward((backend,))
        return found

    def routes(
        self, loc: Location, path: PathMatch, text: str, rewrite: bool, has_cert: bool
    ) -> list[Route]:
        """The routes of `loc` matched by `path`; `rewrite`: the host is a regex host, so
        rewrite-target acts; `has_cert`: the host has a TLS certificate."""
        meta, anns = loc.ingress.meta, loc.anns
        source = RouteSource(KIND, meta.namespace, meta.name, loc.rule, loc.index, text)
        match = RouteMatch(path)
        if anns is NO_ANNOTATIONS and self._settings is None:  # the common case, fast
            resolved = self.resolve(loc)
            main = Route(match, self.forward(self._upstreams.backend(resolved, loc.path)), source)
            return self._with_canary(main, loc, resolved)
        if anns.denied:
            self.note(loc.ingress, "access annotations unusable: every path answers 503")
            return [Route(match, FixedResponse(DENIED), source)]
        if self._secrets.get((meta.namespace, meta.name), NO_SECRETS).denied:
            self.note(loc.ingress, "a Secret it names is unusable: every path answers 503")
            return [Route(match, FixedResponse(DENIED), source)]
        f = self.filters(loc)
        wanted = anns.redirects.redirect
        if wanted is not None:
            # absolute_redirect off: the annotation, or the ConfigMap's relative-redirects
            relative = anns.redirects.relative or bool(
                self._settings and self._settings.relative_redirects
            )
            if wanted.url.startswith("/") and not relative:
                action = Redirect(wanted.code, path=ReplaceFullPath(wanted.url), keep_query=False)
            else:
                action = Redirect(wanted.code, location=wanted.url)
            self.note(loc.ingress, f"redirect: {wanted.code} to {wanted.url}")
            return [Route(match, action, source, f.front)]
        resolved = self.resolve(loc)
        backend = self._upstreams.backend(resolved, loc.path)
        headers = None
        if resolved.status:
            fallback = self._default_backend(loc)
            if fallback is not None:
                backend = self._upstreams.backend(fallback, loc.path)
                headers = self._fallback_headers(loc)
                why = f"default-backend: {fallback.key} answers for {resolved.key}"
                self.note(loc.ingress, why)
        filters = f.route(
            f.https.filter_for(path_text(path), has_cert),
            self._rewrite(loc) if rewrite and loc.needs_rewrite else None,
            headers,
            self._error_pages(loc),
        )
        main = Route(match, self.forward(backend), source, filters)
        return self._with_canary(main, loc, resolved)

    def _with_canary(self, main: Route, loc: Location, resolved: Backend) -> list[Route]:
        """`main`, behind the routes of the canary of its Service port if it has one."""
        canary = self._canaries.get(resolved.key)
        if canary is None:
            return [main]
        # affinity-canary-behavior sticky (the default): the canary's Service port takes the
        # main one's session affinity (controller.go mergeAlternativeBackend).
        affinity_of = resolved.key if canary.behavior == "sticky" else None
        alt = self._upstreams.backend(canary.backend, loc.path, affinity_of)
        return canary_routes(main, alt, canary)

    def _rewrite(self, loc: Location) -> Rewrite:
        target = loc.anns.rewrite.rewrite_target
        prefix = loc.anns.rewrite.x_forwarded_prefix or None
        return Rewrite(RegexReplace(loc.path, target, ignore_case=True), None, prefix)

    def _default_backend(self, loc: Location) -> Backend | None:
        """The Ingress's default-backend Service (its first TCP port), when usable."""
        name = loc.anns.backends.default_backend
        if not name:
            return None
        ns = loc.ingress.meta.namespace
        infos = self._snapshot.ports_by_service.get((ns, name), ())
        first = next((i for i in infos if i.protocol == "TCP"), None)
        found = self._backends.service(ns, name, first.port if first else 0)
        return found if not found.status else None

    def _fallback_headers(self, loc: Location) -> RequestHeaders:
        """nginx.tmpl's headers for a location sent to its custom default backend."""
        meta = loc.ingress.meta
        return RequestHeaders(
            set=(
                ("X-Code", "503"),
                ("X-Namespace", meta.namespace),
                ("X-Ingress-Name", meta.name),
                ("X-Service-Name", loc.backend.service_name),
                ("X-Service-Port", written_port(loc.backend)),
            ),
            copy=(("X-Format", "Accept"),),
        )

    def _error_pages(self, loc: Location) -> ErrorPages | None:
        codes = loc.anns.backends.custom_http_errors
        if not codes:
            return None
        meta = loc.ingress.meta
        backend = self._default_backend(loc)
        return ErrorPages(
            codes,
            backend,
            meta.namespace,
            meta.name,
            loc.backend.service_name,
            written_port(loc.backend),
        )


def path_text(path: PathMatch) -> str:
    """The Ingress path of a route's PathMatch (without a regex's "^")."""
    return path.value[1:] if path.kind == "Regex" and path.value.startswith("^") else path.value
