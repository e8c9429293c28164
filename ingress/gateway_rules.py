"""One HTTPRoute rule -> route model Routes (ingress/routes.py). Pure.

Used by the Gateway API translator (ingress/translate_gateway.py), which decides where the
Routes go (which socket, which virtual hosts, in which order); this module decides what
each one is:

Matches
    One Route per ``matches[]`` entry (a rule without matches has one: PathPrefix "/").
    Exact -> Exact, PathPrefix -> Prefix (element-wise, as the spec says), and
    RegularExpression -> Regex anchored at both ends (the whole path must match, as
    Envoy-based implementations do). Headers and query parameters: Exact compares the
    value case-sensitively, RegularExpression must match the whole value; header names
    are case-insensitive, query parameter names are not. A method match is exact.

Action
    A RequestRedirect filter makes the rule a Redirect (statusCode, scheme, hostname,
    path; with neither port nor scheme, the Gateway listener's port, as the spec asks:
    the port is left out of Location when it is the scheme's well-known one). Otherwise a
    Forward to the backendRefs, weights kept (weight 0 is never chosen; every weight 0
    answers 500). A backendRef seaway cannot use (unknown kind, missing Service, another
    namespace without a ReferenceGrant) is a Backend answering 500, so exactly its share
    of the traffic gets 500. A rule without backendRefs (and without a redirect) answers
    500.

Filters, in the order written
    RequestHeaderModifier -> RequestHeaders, ResponseHeaderModifier -> ResponseHeaders,
    URLRewrite -> Rewrite (hostname, ReplaceFullPath, ReplacePrefixMatch), RequestMirror
    -> Mirror (percent, or fraction as a percent); then ``timeouts`` -> Timeouts (request,
    backendRequest; 0 disables). Per-backendRef filters go on that Backend. A
    RequestRedirect on a backendRef redirects when that backendRef is the rule's only
    one that can be chosen; otherwise it is ignored with a warning.
"""

from __future__ import annotations

from typing import TypeVar

from discovery.gateway_attach import BackendResolution, RuleState
from discovery.model_gateway import HeaderMatch as HeaderMatchSpec
from discovery.model_gateway import (
    HTTPRoute,
    HTTPRouteFilter,
    HTTPRouteMatch,
    HTTPRouteRetry,
    PathModifier,
    QueryParamMatch,
)
from discovery.model_gateway import RequestRedirect as RedirectSpec
from ingress.backends import ServiceBackends
from ingress.route_filters import (
    Filter,
    Mirror,
    RequestHeaders,
    ResponseHeaders,
    Retry,
    Rewrite,
    Timeouts,
)
from ingress.routes import (
    Action,
    Backend,
    FixedResponse,
    Forward,
    HeaderMatch,
    PathKind,
    PathMatch,
    PathRewrite,
    QueryMatch,
    Redirect,
    ReplaceFullPath,
    ReplacePrefix,
    Route,
    RouteMatch,
    RouteSource,
    ValueMatch,
)

V = TypeVar("V", bound=ValueMatch)
KIND = "HTTPRoute"
INVALID_BACKEND = 500  # what the spec asks for a backendRef that cannot be used
_PATH_KINDS: dict[str, PathKind] = {"Exact": "Exact", "PathPrefix": "Prefix"}


def whole(pattern: str) -> str:
    """A regular expression that must match the whole value."""
    return f"^(?:{pattern})\\Z"


def path_match(match: HTTPRouteMatch) -> PathMatch:
    kind = _PATH_KINDS.get(match.path.type)
    if kind is None:  # RegularExpression
        return PathMatch("Regex", whole(match.path.value))
    return PathMatch(kind, match.path.value)


def _value(cls: type[V], m: HeaderMatchSpec | QueryParamMatch) -> V:
    """A header or query parameter match of the route model (RegularExpression: whole)."""
    if m.type == "RegularExpression":
        return cls(m.name, whole(m.value), "Regex")
    return cls(m.name, m.value, "Exact")


def route_match(match: HTTPRouteMatch) -> RouteMatch:
    """The route model's match for one HTTPRouteMatch."""
    headers = tuple(_value(HeaderMatch, h) for h in match.headers)
    query = tuple(_value(QueryMatch, q) for q in match.query_params)
    return RouteMatch(path_match(match), match.method, headers, query)


def match_text(match: HTTPRouteMatch) -> str:
    """A short readable form: "PathPrefix /v2, GET, header version=two"."""
    parts = [f"{match.path.type} {match.path.value}"]
    if match.method:
        parts.append(match.method)
    parts += [f"header {h.name}={h.value}" for h in match.headers]
    parts += [f"query {q.name}={q.value}" for q in match.query_params]
    return ", ".join(parts)


def path_rewrite(modifier: PathModifier | None) -> PathRewrite | None:
    if modifier is None:
        return None
    if modifier.type == "ReplaceFullPath":
        return ReplaceFullPath(modifier.value)
    return ReplacePrefix(modifier.value)


def redirect(spec: RedirectSpec, listener_port: int) -> Redirect:
    """The Redirect of a RequestRedirect filter on a listener of `listener_port`."""
    port = spec.port
    if port is None and not spec.scheme:
        port = listener_port  # the spec: no scheme and no port -> the listener's port
    return Redirect(
        status=spec.status_code,
        scheme=spec.scheme or None,
        hostname=spec.hostname or None,
        port=port,
        path=path_rewrite(spec.path),
    )


class RuleTranslator:
    """The Routes of the rules of HTTPRoutes, for listeners on one port; Backends are
    resolved through the shared ServiceBackends. ``warnings`` collects what could not be
    honoured, per route (namespace, name)."""

    __slots__ = ("_backends", "_cache", "_port", "warnings")

    def __init__(self, backends: ServiceBackends, listener_port: int) -> None:
        self._backends = backends
        self._port = listener_port
        self._cache: dict[tuple[str, str, int], list[Route]] = {}
        self.warnings: dict[tuple[str, str], list[str]] = {}

    def _warn(self, route: HTTPRoute, text: str) -> None:
        meta = route.meta
        found = self.warnings.setdefault((meta.namespace, meta.name), [])
        if text not in found:
            found.append(text)

    def routes(self, route: HTTPRoute, index: int, state: RuleState) -> list[Route]:
        """One Route per match of rule `index` (none when the rule is dropped); the same
        objects for the same rule (a route attached to several listeners of a socket)."""
        key = (route.meta.namespace, route.meta.name, index)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._routes(route, index, state)
        return found

    def _routes(self, route: HTTPRoute, index: int, state: RuleState) -> list[Route]:
        if state.problem:
            return []
        rule = state.rule
        where = f"spec.rules[{index}]" + (f" ({rule.name})" if rule.name else "")
        action, filters = self._action(route, where, state)
        if rule.timeouts is not None:
            t = rule.timeouts
            filters.append(Timeouts(request=t.request, backend_request=t.backend_request))
        if rule.retry is not None:
            filters.append(gateway_retry(rule.retry))
            if rule.retry.backoff:
                self._warn(
                    route,
                    f"{KIND} {_name(route)}: {where}.retry.backoff is not supported: "
                    "retries go at once",
                )
        if rule.session_persistence:
            self._warn(
                route,
                f"{KIND} {_name(route)}: {where}.sessionPersistence is not supported; ignored",
            )
        meta = route.meta
        out = []
        for number, match in enumerate(rule.matches):
            text = f"spec.rules[{index}].matches[{number}] ({match_text(match)})"
            source = RouteSource(KIND, meta.namespace, meta.name, index, number, text)
            out.append(Route(route_match(match), action, source, tuple(filters)))
        return out

    # -- action and filters ----------------------------------------------------------------

    def _action(
        self, route: HTTPRoute, where: str, state: RuleState
    ) -> tuple[Action, list[Filter]]:
        rule = state.rule
        mirrors = list(state.mirrors)
        filters: list[Filter] = []
        action: Action | None = None
        for f in rule.filters:
            if f.request_redirect is not None:
                action = redirect(f.request_redirect, self._port)
            else:
                filters += self._filter(route, where, f, mirrors)
        if action is not None:
            return action, filters
        if not rule.backend_refs:
            return FixedResponse(INVALID_BACKEND), filters
        backends = []
        pairs = zip(rule.backend_refs, state.backends, strict=True)
        for number, (ref, resolved) in enumerate(pairs):
            spot = f"{where}.backendRefs[{number}]"
            own: list[Filter] = []
            for f in ref.filters:
                if f.request_redirect is not None:
                    action = self._backend_redirect(route, spot, state, number, f.request_redirect)
                else:
                    own += self._filter(route, spot, f, mirrors)
            backends.append(_weighted(self._backend(resolved), ref.weight, tuple(own)))
        if action is not None:
            return action, filters
        return Forward(tuple(backends)), filters

    def _backend_redirect(
        self, route: HTTPRoute, spot: str, state: RuleState, number: int, spec: RedirectSpec
    ) -> Action | None:
        chosen = [i for i, b in enumerate(state.rule.backend_refs) if b.weight > 0]
        if chosen == [number]:
            return redirect(spec, self._port)
        self._warn(
            route,
            f"{KIND} {_name(route)}: {spot}: a RequestRedirect on a backendRef is honoured only "
            "when it is the rule's one backendRef with a weight; ignored",
        )
        return None

    def _filter(
        self,
        route: HTTPRoute,
        where: str,
        f: HTTPRouteFilter,
        mirrors: list[BackendResolution],
    ) -> list[Filter]:
        if f.request_header_modifier is not None:
            m = f.request_header_modifier
            return [RequestHeaders(m.set, m.add, m.remove)]
        if f.response_header_modifier is not None:
            m = f.response_header_modifier
            return [ResponseHeaders(m.set, m.add, m.remove)]
        if f.url_rewrite is not None:
            r = f.url_rewrite
            return [Rewrite(path_rewrite(r.path), r.hostname or None)]
        if f.request_mirror is not None:
            resolved = mirrors.pop(0) if mirrors else None
            spec = f.request_mirror
            if resolved is None or not resolved.ok:
                why = resolved.message if resolved is not None else "not resolved"
                self._warn(route, f"{KIND} {_name(route)}: {where}: mirror dropped: {why}")
                return []
            percent = 100.0
            if spec.percent is not None:
                percent = float(spec.percent)
            elif spec.fraction is not None:
                numerator, denominator = spec.fraction
                percent = 100.0 * numerator / denominator if denominator else 0.0
            return [Mirror(self._backend(resolved), percent)]
        self._warn(route, f"{KIND} {_name(route)}: {where}: filter {f.type} is not supported")
        return []

    def forward(self, state: RuleState) -> Forward:
        """A TLSRoute rule's backendRefs as a weighted Forward (no filters: a TLSRoute
        has none); an unusable backendRef is a Backend that is never connected."""
        pairs = zip(state.rule.backend_refs, state.backends, strict=True)
        return Forward(tuple(_weighted(self._backend(r), ref.weight, ()) for ref, r in pairs))

    def _backend(self, resolved: BackendResolution) -> Backend:
        ref = resolved.ref
        if not resolved.ok or ref.port is None:
            key = f"{resolved.namespace}/{ref.name}:{ref.port}"
            why = resolved.message or "names no port"
            return Backend(key, (), None, INVALID_BACKEND, why)
        return self._backends.service(resolved.namespace, ref.name, ref.port)


def _weighted(base: Backend, weight: int, filters: tuple[Filter, ...]) -> Backend:
    """`base` with this backendRef's weight and filters (itself when they are its own)."""
    if weight == base.weight and filters == base.filters:
        return base
    b = base
    return Backend(
        b.key, b.endpoints, b.service, b.status, b.reason, weight, filters, b.balancing
    )


def _name(route: HTTPRoute) -> str:
    return f"{route.meta.namespace}/{route.meta.name}"


def gateway_retry(retry: HTTPRouteRetry) -> Retry:
    """HTTPRoute ``retry`` (GEP-1731): ``attempts`` retries after the first try (3 tries
    in all when unset, seaway's default), on connection errors and timeouts
    (RetryConnectionError, RetryBackendTimeout) and on the listed ``codes``."""
    attempts = retry.attempts
    tries = attempts + 1 if attempts is not None else 3
    return Retry(tries, ("error", "timeout"), tuple(sorted(set(retry.codes))))
