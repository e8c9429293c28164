"""Kubernetes Ingress -> the route model (ingress/routes.py). Pure.

Ownership
    Only the Ingresses seaway owns are translated (discovery/ownership.py: IngressClass
    controller, default class, --watch-ingress-without-class), oldest first.

Hosts
    A rule host is exact (``foo.example.com``) or a wildcard (``*.example.com``) that
    matches exactly one extra DNS label (``bar.example.com``, not ``a.bar.example.com``,
    not ``example.com``): a "label" wildcard VirtualHost. A rule without host goes to the
    catch-all VirtualHost. A host that cannot be one (``*``, ``foo.*.com``, a port) is
    skipped with a warning. Matching (case, port, trailing dot, and the order exact host,
    wildcard, catch-all, ``spec.defaultBackend``, 404) is the model's.

Paths
    One Route per path, in the Kubernetes order: Exact paths first, then Prefix paths
    from the longest (trailing slashes ignored) to ``/``. ImplementationSpecific is
    Prefix; an empty path is ``/``. See ingress/paths.py for the path semantics.

Merging and conflicts
    The rules of every owned Ingress are merged per host. When two Ingresses (or two
    rules of one) give the same host, the same path and the same path type (Prefix
    ``/foo`` and ``/foo/`` count as the same, ImplementationSpecific counts as Prefix),
    the oldest Ingress wins: by creationTimestamp, then namespace/name; within one Ingress
    the first rule wins. The loser gets a warning. ``spec.defaultBackend`` of the oldest
    owned Ingress that has one is the listener's default; the others get a warning. A TLS
    host claimed twice goes to the oldest Ingress as well.

Backends
    Resolved here, once (ingress/backends.py): a Service port by number or by name in the
    Ingress's namespace. A missing Service or port, a port with no usable endpoint, or a
    resource backend is a Backend with status 503.

Everything goes to one Listener, INGRESS_LISTENER, served on the HTTP bind address and,
when it has certificates, on the HTTPS one; with no owned Ingress there is no listener.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from discovery.model import Ingress, IngressBackend, IngressRule
from discovery.ownership import DEFAULT_CONTROLLER, owned_ingresses
from discovery.snapshot import Snapshot
from ingress.backends import UNAVAILABLE, ServiceBackends
from ingress.paths import prefix_key
from ingress.routes import (
    Backend,
    Certificate,
    Forward,
    Listener,
    ObjectReport,
    PathKind,
    PathMatch,
    Route,
    RouteMatch,
    RouteSource,
    RouteTable,
    VirtualHost,
)

INGRESS_LISTENER = "ingress"
KIND = "Ingress"


@dataclass(frozen=True, slots=True)
class IngressTranslation:
    """The route table of the owned Ingresses, and what the translation has to say.

    ``owned``: the Ingresses served, oldest first. ``services``: (namespace, name) of every
    Service a backend names (a change to one needs a new translation). ``warnings``: every
    warning in the order found; ``reports``: the same, per owned Ingress.
    """

    table: RouteTable
    owned: list[Ingress] = field(default_factory=list)
    services: frozenset[tuple[str, str]] = frozenset()
    warnings: tuple[str, ...] = ()
    reports: tuple[ObjectReport, ...] = ()


def host_problem(host: str) -> str:
    """Why a rule host cannot be used, or "" when it is fine."""
    rest = host[2:] if host.startswith("*.") else host
    if host.startswith("*.") and not rest:
        return "a wildcard needs a domain after '*.'"
    if "*" in rest:
        return "a wildcard must be the whole first label, as in *.example.com"
    if ":" in rest or "/" in rest:
        return "a host must not contain ':' or '/'"
    return ""


def translate_ingresses(
    snapshot: Snapshot,
    controller: str = DEFAULT_CONTROLLER,
    watch_without_class: bool = False,
) -> IngressTranslation:
    """The owned Ingresses of `snapshot` as a RouteTable (see the module docstring)."""
    return _Translator(snapshot, controller, watch_without_class).run()


class _HostRoutes:
    """The routes of one rule host so far, keyed by their path identity (for conflicts)."""

    __slots__ = ("routes",)

    def __init__(self) -> None:
        self.routes: dict[tuple[str, bytes], Route] = {}

    def add(self, route: Route) -> Route | None:
        """Keep `route` unless an equivalent path is there; then return that one."""
        path = route.match.path
        raw = path.value.encode()
        key = (path.kind, prefix_key(raw or b"/") if path.kind == "Prefix" else raw)
        existing = self.routes.get(key)
        if existing is None:
            self.routes[key] = route
        return existing

    def ordered(self) -> tuple[Route, ...]:
        """Exact first (as added), then Prefix by decreasing key length (stable)."""
        items = list(self.routes.items())
        exact = [r for (kind, _), r in items if kind == "Exact"]
        prefix = [(key, r) for (kind, key), r in items if kind != "Exact"]
        prefix.sort(key=lambda item: -len(item[0]))
        return (*exact, *(r for _, r in prefix))


class _Translator:
    __slots__ = (
        "_backends",
        "_certs",
        "_forwards",
        "_hosts",
        "_reports",
        "_snapshot",
        "_warnings",
        "owned",
    )

    def __init__(self, snapshot: Snapshot, controller: str, watch_without_class: bool) -> None:
        self._snapshot = snapshot
        self.owned = owned_ingresses(snapshot, controller, watch_without_class)
        self._backends = ServiceBackends(snapshot)
        self._forwards: dict[int, Forward] = {}  # id(Backend) -> its Forward, shared
        self._hosts: dict[str, _HostRoutes] = {}
        self._certs: list[Certificate] = []
        self._warnings: list[str] = []
        self._reports: dict[tuple[str, str], list[str]] = {}

    def _warn(self, ingress: Ingress, text: str) -> None:
        self._warnings.append(text)
        self._reports[(ingress.meta.namespace, ingress.meta.name)].append(text)

    def run(self) -> IngressTranslation:
        default: Route | None = None
        for ingress in self.owned:
            self._reports[(ingress.meta.namespace, ingress.meta.name)] = []
            for index, rule in enumerate(ingress.rules):
                self._add_rule(ingress, index, rule)
            if ingress.default_backend is not None:
                source = RouteSource(
                    KIND, ingress.meta.namespace, ingress.meta.name, text="spec.defaultBackend"
                )
                if default is None:
                    default = self._route(ingress, ingress.default_backend, source, PathMatch())
                else:
                    self._warn(ingress, f"{source}: ignored, {default.source} is older")
            self._add_tls(ingress)
        listeners: tuple[Listener, ...] = ()
        if self.owned:
            vhosts = tuple(
                VirtualHost((host,) if host else (), routes.ordered())
                for host, routes in self._hosts.items()
            )
            listeners = (Listener(INGRESS_LISTENER, vhosts, default, tuple(self._certs)),)
        reports = tuple(
            ObjectReport(KIND, ns, name, tuple(warnings))
            for (ns, name), warnings in self._reports.items()
        )
        return IngressTranslation(
            RouteTable(listeners, self._snapshot.generation),
            self.owned,
            frozenset(self._backends.services),
            tuple(self._warnings),
            reports,
        )

    def _backend(self, namespace: str, backend: IngressBackend) -> Backend:
        if not backend.service_name:
            key = f"{namespace}/resource:{backend.resource}"
            why = "is a resource backend, which seaway does not serve"
            return Backend(key, (), None, UNAVAILABLE, why)
        port = backend.port_number if backend.port_number is not None else backend.port_name
        return self._backends.service(namespace, backend.service_name, port)

    def _route(
        self, ingress: Ingress, backend: IngressBackend, source: RouteSource, path: PathMatch
    ) -> Route:
        resolved = self._backend(ingress.meta.namespace, backend)
        forward = self._forwards.get(id(resolved))
        if forward is None:
            forward = self._forwards[id(resolved)] = Forward((resolved,))
        return Route(RouteMatch(path), forward, source)

    def _add_rule(self, ingress: Ingress, index: int, rule: IngressRule) -> None:
        meta = ingress.meta
        host = rule.host.lower()
        problem = host_problem(host)
        if problem:
            where = f"{KIND} {meta.namespace}/{meta.name}: spec.rules[{index}].host"
            self._warn(ingress, f"{where}: {rule.host!r} ignored: {problem}")
            return
        routes = self._hosts.get(host)
        if routes is None:
            routes = self._hosts[host] = _HostRoutes()
        for number, item in enumerate(rule.paths):
            kind: PathKind = "Exact" if item.path_type == "Exact" else "Prefix"
            value = (item.path or "/") if kind == "Prefix" else item.path
            text = f"spec.rules[{index}].http.paths[{number}] ({host or '*'} {kind} {value})"
            source = RouteSource(KIND, meta.namespace, meta.name, index, number, text)
            route = self._route(ingress, item.backend, source, PathMatch(kind, value))
            winner = routes.add(route)
            if winner is not None:
                self._warn(ingress, f"{source}: conflicts with {winner.source}, which wins")

    def _add_tls(self, ingress: Ingress) -> None:
        meta = ingress.meta
        for index, tls in enumerate(ingress.tls):
            # A TLS entry without hosts covers the hosts of the Ingress's own rules.
            hosts = tls.hosts or tuple(rule.host for rule in ingress.rules if rule.host)
            source = f"{KIND} {meta.namespace}/{meta.name}: spec.tls[{index}].secretName"
            names = tuple(h.lower() for h in hosts)
            self._certs.append(Certificate(names, meta.namespace, tls.secret_name, source))
