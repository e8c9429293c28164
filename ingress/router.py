"""The Ingress router: (Host, path) -> Route, compiled from a Snapshot. Pure.

Hosts
    A rule host is exact (``foo.example.com``) or a wildcard (``*.example.com``) that
    matches exactly one extra DNS label (``bar.example.com``, not ``a.bar.example.com``,
    not ``example.com``). Matching is case-insensitive; a port in the Host header is
    ignored (``example.com:8080``, ``[::1]:8080``), as is one trailing dot. A rule without
    host matches every host.

Lookup order
    The exact host's paths, then the wildcard host's paths, then the paths of rules
    without host, then ``spec.defaultBackend``, else 404. A later step is only tried when
    the earlier ones have no matching path. Paths: see ingress/paths.py (Exact, Prefix,
    ImplementationSpecific treated as Prefix).

Merging and conflicts
    The rules of every Ingress seaway owns (discovery/ownership.py) are merged per host. When
    two Ingresses (or two rules of one) give the same host, the same path and the same
    path type (Prefix ``/foo`` and ``/foo/`` count as the same, and ImplementationSpecific
    counts as Prefix), the oldest Ingress wins: by creationTimestamp, then namespace/name;
    within one Ingress the first rule wins. The losers are listed in ``Router.warnings``.
    ``spec.defaultBackend`` of the oldest owned Ingress that has one is the default; a TLS
    host claimed twice goes to the oldest Ingress as well.

Backends
    A service backend's port is resolved by number (the Service port) or by name (the
    Service port's name) through ``Snapshot.ports_by_service``. A missing Service or port,
    a port with no usable endpoint, or a resource backend gives a Route with status 503.

Every Route is built at compile time. ``route()`` allocates nothing for a Host header
seen before (a bounded cache maps raw Host headers to their normalised form) and, for
Prefix paths, one substring per "/"-element tried.
"""

from __future__ import annotations

from collections.abc import Iterator

from discovery.model import Ingress, IngressBackend, IngressRule
from discovery.ownership import DEFAULT_CONTROLLER, owned_ingresses
from discovery.snapshot import EndpointInfo, ServicePortName, Snapshot
from ingress.paths import PathMatcher

__all__ = ["DEFAULT_CONTROLLER", "Route", "Router", "normalize_host", "owned_ingresses"]

FORWARD = 0
NOT_FOUND = 404
UNAVAILABLE = 503


class Route:
    """What to do with a request: forward to `endpoints` (status 0) or answer `status`.

    `key` names the backend service port ("namespace/service:port"), stable across
    compiles, for per-backend balancers and metrics; "" for 404. `source` says which
    Ingress rule produced the route (for logs and `seaway trace`). `labels` are its
    metric labels and status-page fields: (namespace, ingress, service, port, host, path)
    of the rule, "" where there is none.
    """

    __slots__ = ("endpoints", "key", "labels", "service", "source", "status")

    def __init__(
        self,
        status: int,
        service: ServicePortName | None = None,
        endpoints: tuple[EndpointInfo, ...] = (),
        key: str = "",
        source: str = "",
        labels: tuple[str, str, str, str, str, str] = ("", "", "", "", "", ""),
    ) -> None:
        self.status = status
        self.service = service
        self.endpoints = endpoints
        self.key = key
        self.source = source
        self.labels = labels

    def __repr__(self) -> str:
        return (
            f"Route(status={self.status}, key={self.key!r}, "
            f"endpoints={len(self.endpoints)}, source={self.source!r})"
        )


NOT_FOUND_ROUTE = Route(NOT_FOUND, source="no matching rule and no default backend")


def normalize_host(host: str) -> str:
    """Host header -> rule host form: lower case, no port, no trailing dot.

    IPv6 literals keep their brackets: "[::1]:8080" -> "[::1]".
    """
    if host[:1] == "[":
        end = host.find("]")
        if end > 0:
            host = host[: end + 1]
    else:
        colon = host.find(":")
        if colon >= 0 and host.find(":", colon + 1) < 0:
            host = host[:colon]
    host = host.lower()
    return host[:-1] if host[-1:] == "." else host


HOST_CACHE_SIZE = 1024


def _host_problem(host: str) -> str:
    """Why a rule host cannot be used, or "" when it is fine."""
    rest = host[2:] if host.startswith("*.") else host
    if host.startswith("*.") and not rest:
        return "a wildcard needs a domain after '*.'"
    if "*" in rest:
        return "a wildcard must be the whole first label, as in *.example.com"
    if ":" in rest or "/" in rest:
        return "a host must not contain ':' or '/'"
    return ""


class _Resolver:
    """Backend -> (status, service port, endpoints, key), cached per compile."""

    __slots__ = ("_cache", "_snapshot")

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._cache: dict[
            tuple[str, IngressBackend],
            tuple[int, ServicePortName | None, tuple[EndpointInfo, ...], str],
        ] = {}

    def resolve(
        self, namespace: str, backend: IngressBackend
    ) -> tuple[int, ServicePortName | None, tuple[EndpointInfo, ...], str]:
        cache_key = (namespace, backend)
        found = self._cache.get(cache_key)
        if found is None:
            found = self._cache[cache_key] = self._resolve(namespace, backend)
        return found

    def _resolve(
        self, namespace: str, backend: IngressBackend
    ) -> tuple[int, ServicePortName | None, tuple[EndpointInfo, ...], str]:
        if not backend.service_name:
            return (UNAVAILABLE, None, (), f"{namespace}/resource:{backend.resource}")
        name = backend.service_name
        number = backend.port_number
        wanted: int | str = number if number is not None else backend.port_name
        infos = self._snapshot.ports_by_service.get((namespace, name), ())
        for info in infos:
            if info.protocol != "TCP":
                continue
            if info.port == wanted if isinstance(wanted, int) else info.name.port == wanted:
                key = f"{namespace}/{name}:{info.port}"
                status = FORWARD if info.endpoints else UNAVAILABLE
                return (status, info.name, info.endpoints, key)
        return (UNAVAILABLE, None, (), f"{namespace}/{name}:{wanted}")


class _HostTable:
    """The path matchers of exact hosts, wildcard hosts (by ".suffix") and host ""."""

    __slots__ = ("any", "exact", "wildcard")

    def __init__(self) -> None:
        self.exact: dict[str, PathMatcher[Route]] = {}
        self.wildcard: dict[str, PathMatcher[Route]] = {}
        self.any: PathMatcher[Route] = PathMatcher()

    def matcher(self, host: str) -> PathMatcher[Route]:
        if not host:
            return self.any
        if host.startswith("*."):
            table, key = self.wildcard, host[1:]
        else:
            table, key = self.exact, host
        found = table.get(key)
        if found is None:
            found = table[key] = PathMatcher()
        return found


class Router:
    """Compiled routing table; immutable once built. Build with Router.compile()."""

    __slots__ = (
        "_any",
        "_default",
        "_exact",
        "_host_cache",
        "_tls",
        "_wildcard",
        "generation",
        "owned_ingresses",
        "services",
        "warnings",
    )

    def __init__(
        self,
        table: _HostTable,
        default: Route,
        tls: dict[str, tuple[str, str]],
        owned: list[Ingress],
        services: frozenset[tuple[str, str]],
        warnings: tuple[str, ...],
        generation: int,
    ) -> None:
        self._exact = table.exact
        self._wildcard = table.wildcard
        self._any: PathMatcher[Route] | None = table.any if len(table.any) else None
        self._default = default
        # Host header as received -> normalize_host() of it; bounded (cleared when full),
        # so odd Host headers cost memory only up to HOST_CACHE_SIZE entries.
        self._host_cache: dict[str, str] = {}
        self._tls = tls
        self.owned_ingresses = owned
        # (namespace, service) of every backend: a change to one of them needs a recompile.
        self.services = services
        self.warnings = warnings
        self.generation = generation

    @classmethod
    def compile(
        cls,
        snapshot: Snapshot,
        controller: str = DEFAULT_CONTROLLER,
        watch_without_class: bool = False,
    ) -> Router:
        return _Compiler(snapshot, controller, watch_without_class).build()

    def route(self, host: str, path: str) -> Route:
        """Route a request: `host` as in the Host header, `path` without the query."""
        matcher = self._exact.get(host)
        if matcher is None:
            cache = self._host_cache
            normal = cache.get(host)
            if normal is None:
                if len(cache) >= HOST_CACHE_SIZE:
                    cache.clear()
                normal = cache[host] = normalize_host(host)
            host = normal
            matcher = self._exact.get(host)
        if matcher is not None:
            found = matcher.match(path)
            if found is not None:
                return found
        if self._wildcard:
            dot = host.find(".")
            if dot > 0:
                matcher = self._wildcard.get(host[dot:])
                if matcher is not None:
                    found = matcher.match(path)
                    if found is not None:
                        return found
        if self._any is not None:
            found = self._any.match(path)
            if found is not None:
                return found
        return self._default

    def tls_hosts(self) -> dict[str, tuple[str, str]]:
        """SNI host (exact or "*.x") -> (namespace, secret name) of its certificate."""
        return dict(self._tls)

    def hosts(self) -> list[str]:
        """Every rule host, exact then wildcard ("" stands for rules without host)."""
        found = sorted(self._exact) + sorted("*" + suffix for suffix in self._wildcard)
        return [*found, ""] if self._any is not None else found

    def __iter__(self) -> Iterator[Route]:
        """Every distinct Route the table can return (for metrics and status pages)."""
        seen: set[int] = set()
        for route in self._all_routes():
            if id(route) not in seen:
                seen.add(id(route))
                yield route

    def _all_routes(self) -> Iterator[Route]:
        for table in (self._exact, self._wildcard):
            for matcher in table.values():
                yield from matcher.values()
        if self._any is not None:
            yield from self._any.values()
        yield self._default


class _Compiler:
    __slots__ = (
        "_controller",
        "_resolver",
        "_services",
        "_snapshot",
        "_table",
        "_tls",
        "_warnings",
        "_without_class",
    )

    def __init__(self, snapshot: Snapshot, controller: str, watch_without_class: bool) -> None:
        self._snapshot = snapshot
        self._controller = controller
        self._without_class = watch_without_class
        self._resolver = _Resolver(snapshot)
        self._table = _HostTable()
        self._tls: dict[str, tuple[str, str]] = {}
        self._services: set[tuple[str, str]] = set()
        self._warnings: list[str] = []

    def build(self) -> Router:
        owned = owned_ingresses(self._snapshot, self._controller, self._without_class)
        default = NOT_FOUND_ROUTE
        for ingress in owned:
            for index, rule in enumerate(ingress.rules):
                self._add_rule(ingress, index, rule)
            if ingress.default_backend is not None:
                meta = ingress.meta
                source = f"Ingress {meta.namespace}/{meta.name}: spec.defaultBackend"
                if default is NOT_FOUND_ROUTE:
                    default = self._route(ingress, ingress.default_backend, source, "", "")
                else:
                    self._warnings.append(f"{source}: ignored, {default.source} is older")
            self._add_tls(ingress)
        return Router(
            self._table,
            default,
            self._tls,
            owned,
            frozenset(self._services),
            tuple(self._warnings),
            self._snapshot.generation,
        )

    def _route(
        self, ingress: Ingress, backend: IngressBackend, source: str, host: str, path: str
    ) -> Route:
        namespace = ingress.meta.namespace
        if backend.service_name:
            self._services.add((namespace, backend.service_name))
        status, service, endpoints, key = self._resolver.resolve(namespace, backend)
        port = backend.port_name if backend.port_number is None else str(backend.port_number)
        name = backend.service_name or backend.resource
        labels = (namespace, ingress.meta.name, name, port, host, path)
        return Route(status, service, endpoints, key, source, labels)

    def _add_rule(self, ingress: Ingress, index: int, rule: IngressRule) -> None:
        meta = ingress.meta
        host = rule.host.lower()
        where = f"Ingress {meta.namespace}/{meta.name}: spec.rules[{index}]"
        problem = _host_problem(host)
        if problem:
            self._warnings.append(f"{where}.host: {rule.host!r} ignored: {problem}")
            return
        matcher = self._table.matcher(host)
        for number, item in enumerate(rule.paths):
            path_type = "Prefix" if item.path_type == "ImplementationSpecific" else item.path_type
            source = f"{where}.http.paths[{number}] ({host or '*'} {path_type} {item.path or '/'})"
            route = self._route(ingress, item.backend, source, host, item.path or "/")
            winner = matcher.add(item.path, item.path_type, route)
            if winner is not None:
                self._warnings.append(f"{source}: conflicts with {winner.source}, which wins")

    def _add_tls(self, ingress: Ingress) -> None:
        meta = ingress.meta
        for tls in ingress.tls:
            # A TLS entry without hosts covers the hosts of the Ingress's own rules.
            hosts = tls.hosts or tuple(rule.host for rule in ingress.rules if rule.host)
            for host in hosts:
                self._tls.setdefault(host.lower(), (meta.namespace, tls.secret_name))
