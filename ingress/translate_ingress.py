"""Kubernetes Ingress, with its ingress-nginx annotations -> the route model
(ingress/routes.py). Pure.

Ownership
    Only the Ingresses seaway owns are translated (discovery/ownership.py: IngressClass
    controller, default class, --watch-ingress-without-class), oldest first.

Hosts
    A rule host is exact (``foo.example.com``) or a wildcard (``*.example.com``) that
    matches exactly one extra DNS label (``bar.example.com``, not ``a.bar.example.com``,
    not ``example.com``): a "label" wildcard VirtualHost. A rule without host goes to the
    catch-all VirtualHost. A host that cannot be one (``*``, ``foo.*.com``, a port) is
    skipped with a warning. Matching (case, port, trailing dot, and the order exact host,
    wildcard, catch-all, ``spec.defaultBackend``, 404) is the model's. `server-alias`
    adds host names to a host's VirtualHost; `from-to-www-redirect` adds one that
    redirects (ingress/nginx_hosts.py).

Paths
    One Route per path, in the Kubernetes order: Exact paths first, then Prefix paths
    from the longest (trailing slashes ignored) to ``/``. ImplementationSpecific is
    Prefix; an empty path is ``/``. See ingress/paths.py for the path semantics. A host
    where an Ingress uses ``use-regex`` or ``rewrite-target`` is a regex host instead, as
    in ingress-nginx (ingress/nginx_locations.py).

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

Annotations (ingress-nginx's, parsed into the Snapshot by discovery/) become matches,
actions and filters: ingress/nginx_routes.py per path, ingress/nginx_filters.py for the
filters and the ConfigMap's defaults (the listener's filters), ingress/nginx_upstreams.py
per Service port, ingress/nginx_canary.py for canaries. An Ingress without annotations
gives routes without filters. The Secrets annotations name come read from
``Snapshot.auth_secrets`` (ingress/nginx_secrets.py): auth-secret users go into BasicAuth,
proxy-ssl-secret's CA into UpstreamProtocol; one missing or unusable makes every path of
the Ingress answer 503, as in ingress-nginx. An Ingress its annotations refuse (a
snippet, a GRPC backend, an invalid value ingress-nginx rejects) is left out with the
reason in its report; when a version of it was served before (``last_good``), that version keeps
serving, as nginx keeps its last good configuration.

ssl-passthrough (with --enable-ssl-passthrough) makes the listener's PassthroughHosts
(ingress/nginx_passthrough.py): TLS for those hosts is relayed unterminated.

Everything goes to one Listener, INGRESS_LISTENER, served on the HTTP bind address and,
when it has certificates or passthrough hosts, on the HTTPS one; with no owned Ingress
there is no listener.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from discovery.model import Ingress, IngressRule
from discovery.nginx_settings import NO_ANNOTATIONS, Canary, IngressAnnotations
from discovery.ownership import DEFAULT_CONTROLLER, owned_ingresses
from discovery.snapshot import Snapshot
from ingress.backends import ServiceBackends
from ingress.client_address import SEAWAY_DEFAULT, nginx_client_address
from ingress.filter_text import describe
from ingress.nginx_canary import CanaryRule, canary_summary
from ingress.nginx_filters import listener_filters
from ingress.nginx_hosts import CertificateHosts, HostBuilder
from ingress.nginx_locations import HostLocations, Location
from ingress.nginx_passthrough import passthrough_hosts
from ingress.nginx_routes import KIND, RouteBuilder
from ingress.nginx_secrets import IngressSecrets, ingress_secrets
from ingress.nginx_upstreams import Upstreams
from ingress.routes import (
    Certificate,
    Forward,
    Listener,
    ObjectReport,
    PathMatch,
    Route,
    RouteMatch,
    RouteSource,
    RouteTable,
    VirtualHost,
)

INGRESS_LISTENER = "ingress"

NsName = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ServedIngress:
    """An Ingress as it was served, with the annotations it was served with."""

    ingress: Ingress
    annotations: IngressAnnotations


LastGood = Mapping[NsName, ServedIngress]


@dataclass(frozen=True, slots=True)
class IngressTranslation:
    """The route table of the owned Ingresses, and what the translation has to say.

    ``owned``: the Ingresses served, oldest first. ``services``: (namespace, name) of every
    Service a backend names (a change to one needs a new translation). ``warnings``: every
    warning in the order found; ``reports``: the same per owned Ingress, with what its
    annotations became. ``served``: the version of each Ingress in the table, to pass as
    ``last_good`` to the next translation.
    """

    table: RouteTable
    owned: list[Ingress] = field(default_factory=list)
    services: frozenset[tuple[str, str]] = frozenset()
    warnings: tuple[str, ...] = ()
    reports: tuple[ObjectReport, ...] = ()
    served: Mapping[NsName, ServedIngress] = field(default_factory=dict)


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
    last_good: LastGood | None = None,
) -> IngressTranslation:
    """The owned Ingresses of `snapshot` as a RouteTable (see the module docstring)."""
    return _Translator(snapshot, controller, watch_without_class, last_good or {}).run()


def _key(ingress: Ingress) -> NsName:
    return (ingress.meta.namespace, ingress.meta.name)


class _Translator:
    __slots__ = (
        "_applied",
        "_backends",
        "_hosts",
        "_last_good",
        "_reports",
        "_snapshot",
        "_upstreams",
        "_warnings",
        "owned",
    )

    def __init__(
        self, snapshot: Snapshot, controller: str, watch_without_class: bool, last_good: LastGood
    ) -> None:
        self._snapshot = snapshot
        self.owned = owned_ingresses(snapshot, controller, watch_without_class)
        self._last_good = last_good
        self._backends = ServiceBackends(snapshot)
        self._upstreams = Upstreams(snapshot, snapshot.nginx)
        self._hosts: dict[str, HostLocations] = {}
        self._warnings: list[str] = []
        self._reports: dict[NsName, list[str]] = {}
        self._applied: dict[NsName, dict[str, None]] = {}

    def _warn(self, ingress: Ingress, text: str) -> None:
        self._warnings.append(text)
        self._reports[_key(ingress)].append(text)

    def _note(self, ingress: Ingress, text: str) -> None:
        self._applied.setdefault(_key(ingress), {})[text] = None

    def run(self) -> IngressTranslation:
        served = self._served()
        mains = [s for s in served if not s.annotations.canary.enabled]
        canaries_served = len(mains) != len(served)
        if self._snapshot.nginx is not None or any(
            s.annotations is not NO_ANNOTATIONS for s in served
        ):  # without annotations or ConfigMap, every upstream has the defaults
            for s in served:
                self._note_upstreams(s)
        default: Route | None = None
        for s in mains:
            for index, rule in enumerate(s.ingress.rules):
                self._add_rule(s, index, rule, canaries_served)
            default = self._default(s, default, any(r.paths for r in s.ingress.rules))
        canaries = self._merge_canaries([s for s in served if s.annotations.canary.enabled])
        certs = self._certificates(mains)
        builder = RouteBuilder(
            self._snapshot,
            self._snapshot.nginx,
            self._backends,
            self._upstreams,
            canaries,
            self._note,
            self._secrets(mains),
        )
        hosts = HostBuilder(builder, CertificateHosts(certs), self._snapshot.nginx, self._warn)
        vhosts = hosts.build(self._hosts)
        passthrough = passthrough_hosts(self._hosts, self._warn, self._note)
        listeners: tuple[Listener, ...] = ()
        if self.owned:
            nginx = self._snapshot.nginx
            filters = listener_filters(nginx)
            client = SEAWAY_DEFAULT if nginx is None else nginx_client_address(nginx)
            listeners = (
                Listener(
                    INGRESS_LISTENER,
                    vhosts,
                    default,
                    certs,
                    filters=filters,
                    client_address=client,
                    passthrough=passthrough,
                ),
            )
        self._describe(vhosts, default)
        return IngressTranslation(
            RouteTable(listeners, self._snapshot.generation),
            self.owned,
            frozenset(self._backends.services),
            tuple(self._warnings),
            self._object_reports(),
            {_key(s.ingress): s for s in served},
        )

    # -- which version of each Ingress is served ---------------------------------------

    def _served(self) -> list[ServedIngress]:
        served: list[ServedIngress] = []
        for ingress in self.owned:
            key = _key(ingress)
            self._reports[key] = []
            anns = self._snapshot.annotations_of(ingress)
            if anns.served:
                served.append(ServedIngress(ingress, anns))
                continue
            where = f"{KIND} {key[0]}/{key[1]}"
            why = "; ".join(anns.refusals)
            previous = self._last_good.get(key)
            if previous is not None and _same_object(previous.ingress, ingress):
                version = previous.ingress.meta.resource_version or "unknown"
                self._warn(
                    ingress,
                    f"{where}: refused ({why}); the last version served (resourceVersion "
                    f"{version}) keeps serving",
                )
                served.append(previous)
            else:
                self._warn(ingress, f"{where}: refused ({why}): not served")
        return served

    # -- collecting -------------------------------------------------------------------

    def _note_upstreams(self, s: ServedIngress) -> None:
        """ingress-nginx's order of naming Service ports: defaultBackend, then paths."""
        ns = s.ingress.meta.namespace
        named = [s.ingress.default_backend] if s.ingress.default_backend else []
        named += [p.backend for r in s.ingress.rules for p in r.paths]
        for backend in named:
            if backend.service_name:
                resolved = self._backends.ingress_backend(ns, backend)
                self._upstreams.note(s.ingress, s.annotations, resolved)

    def _add_rule(self, s: ServedIngress, index: int, rule: IngressRule, canaries: bool) -> None:
        meta = s.ingress.meta
        host = rule.host.lower()
        problem = host_problem(host)
        if problem:
            where = f"{KIND} {meta.namespace}/{meta.name}: spec.rules[{index}].host"
            self._warn(s.ingress, f"{where}: {rule.host!r} ignored: {problem}")
            return
        locations = self._hosts.get(host)
        if locations is None:
            locations = self._hosts[host] = HostLocations(host)
        locations.add_ingress(s.ingress, s.annotations)
        for number, item in enumerate(rule.paths):
            named = self._backends.ingress_backend(meta.namespace, item.backend)
            loc = Location(
                s.ingress,
                s.annotations,
                index,
                number,
                host,
                item.path or "/",
                item.path_type,
                item.backend,
                named,
            )
            if canaries and item.backend.service_name:
                up = self._upstreams.upstream(named.key)
                if up is not None and up.owner_is_canary and up.owner != _key(s.ingress):
                    self._warn(
                        s.ingress,
                        f"{loc.source}: not served: its Service port was first "
                        f"named by canary Ingress {'/'.join(up.owner)}, which makes it "
                        "serve no path of its own (as ingress-nginx does)",
                    )
                    continue
            kept = locations.add(loc)
            if kept is not None:
                self._warn(
                    s.ingress, f"{loc.source}: conflicts with {kept.source}, "
                    "which wins"
                )

    def _default(self, s: ServedIngress, default: Route | None, has_paths: bool) -> Route | None:
        ingress = s.ingress
        if ingress.default_backend is None:
            return default
        meta = ingress.meta
        source = RouteSource(KIND, meta.namespace, meta.name, text="spec.defaultBackend")
        if default is not None:
            self._warn(ingress, f"{source}: ignored, {default.source} is older")
            return default
        backend = self._backends.ingress_backend(meta.namespace, ingress.default_backend)
        backend = self._upstreams.backend(backend, "/")
        return Route(RouteMatch(PathMatch()), Forward((backend,)), source)

    def _merge_canaries(self, canaries: list[ServedIngress]) -> dict[str, CanaryRule]:
        """Main Service port key -> its canary (controller.go mergeAlternativeBackends)."""
        merged: dict[str, CanaryRule] = {}
        by_key = {_key(s.ingress): s for s in canaries}
        for s in canaries:
            meta = s.ingress.meta
            if s.ingress.default_backend is not None:
                self._warn(
                    s.ingress,
                    f"{KIND} {meta.namespace}/{meta.name}: spec.defaultBackend of a canary "
                    "Ingress is not supported: ignored",
                )
            for index, rule in enumerate(s.ingress.rules):
                for number, item in enumerate(rule.paths):
                    if item.backend.service_name:
                        loc = Location(
                            s.ingress,
                            s.annotations,
                            index,
                            number,
                            rule.host.lower(),
                            item.path or "/",
                            item.path_type,
                            item.backend,
                        )
                        self._merge(loc, by_key, merged)
        return merged

    def _merge(
        self, canary: Location, by_key: dict[NsName, ServedIngress], merged: dict[str, CanaryRule]
    ) -> None:
        ingress, ns = canary.ingress, canary.ingress.meta.namespace
        alt = self._backends.ingress_backend(ns, canary.backend)
        where = canary.source
        host = self._hosts.get(canary.host)
        if host is None:
            self._warn(
                ingress, f"{where}: no main Ingress serves host {canary.host or '*'}: the "
                "canary is not used (as in ingress-nginx)"
            )
            return
        found = False
        for loc in host.locations:
            main = self._backends.ingress_backend(loc.ingress.meta.namespace, loc.backend)
            if main.key == alt.key:
                self._warn(
                    ingress, f"{where}: its Service port {alt.key} is the main one of "
                    f"{loc.source}: the canary is not used (as in ingress-nginx)"
                )
                return
            if loc.path != canary.path or loc.exact != canary.exact:
                continue
            found = True
            taken = merged.get(main.key)
            if taken is not None:
                if taken.backend.key != alt.key:
                    self._warn(
                        ingress, f"{where}: canary {taken.name} already takes traffic of "
                        f"{main.key}: this one is not used (ingress-nginx uses only the first)"
                    )
                continue
            rules = self._canary_rules(canary, alt.key, by_key)
            behavior = canary.anns.affinity.canary_behavior
            merged[main.key] = CanaryRule(alt, rules, ingress, behavior)
            meta = loc.ingress.meta
            self._note(ingress, f"canary of {meta.namespace}/{meta.name}: {main.key} -> {alt.key}")
            self._note(
                loc.ingress, f"canary {ingress.meta.namespace}/{ingress.meta.name} takes traffic "
                f"of {main.key}: {canary_summary(rules)}"
            )
        if not found:
            self._warn(
                ingress, f"{where}: no main Ingress serves this host and path (same type): the "
                "canary is not used (as in ingress-nginx)"
            )

    def _canary_rules(
        self, canary: Location, key: str, by_key: dict[NsName, ServedIngress]
    ) -> Canary:
        """The traffic rules of a canary Service port: those of the canary Ingress that
        named it first; none (never chosen) when a main Ingress named it first."""
        up = self._upstreams.upstream(key)
        owner = by_key.get(up.owner) if up is not None else None
        if owner is not None:
            return owner.annotations.canary
        self._warn(
            canary.ingress, f"{canary.source}: its Service port {key} was first "
            "named by a main Ingress, so ingress-nginx gives it no canary rules: it gets no "
            "traffic"
        )
        return Canary(enabled=True)

    def _certificates(self, mains: list[ServedIngress]) -> tuple[Certificate, ...]:
        certs: list[Certificate] = []
        for s in mains:
            meta = s.ingress.meta
            for index, tls in enumerate(s.ingress.tls):
                # A TLS entry without hosts covers the hosts of the Ingress's own rules.
                hosts = tls.hosts or tuple(r.host for r in s.ingress.rules if r.host)
                source = f"{KIND} {meta.namespace}/{meta.name}: spec.tls[{index}].secretName"
                names = tuple(h.lower() for h in hosts)
                certs.append(Certificate(names, meta.namespace, tls.secret_name, source))
        return tuple(certs)

    def _secrets(self, mains: list[ServedIngress]) -> dict[NsName, IngressSecrets]:
        """The users and CAs of the Secrets each Ingress names; their problems reported."""
        found: dict[NsName, IngressSecrets] = {}
        secrets = self._snapshot.auth_secrets
        for s in mains:
            anns = s.annotations
            if (anns.basic_auth is None and anns.backends.proxy_ssl is None) or anns.denied:
                continue
            key = _key(s.ingress)
            resolved = found[key] = ingress_secrets(anns, secrets)
            for problem in resolved.problems:
                self._warn(s.ingress, problem.text(f"{KIND} {key[0]}/{key[1]}"))
        return found

    # -- reports --------------------------------------------------------------------------

    def _describe(self, vhosts: tuple[VirtualHost, ...], default: Route | None) -> None:
        """What every filter on an Ingress's routes does, for its report."""
        routes = [r for v in vhosts for r in v.routes] + ([default] if default else [])
        for route in routes:
            if route.source.kind != KIND:
                continue
            owner = (route.source.namespace, route.source.name)
            backends = route.action.backends if isinstance(route.action, Forward) else ()
            for f in (*route.filters, *(f for b in backends for f in b.filters)):
                self._applied.setdefault(owner, {})[describe(f)] = None

    def _object_reports(self) -> tuple[ObjectReport, ...]:
        return tuple(
            ObjectReport(KIND, ns, name, tuple(warnings), tuple(self._applied.get((ns, name), {})))
            for (ns, name), warnings in self._reports.items()
        )


def _same_object(old: Ingress, new: Ingress) -> bool:
    """Whether `old` is an earlier version of `new` (not a deleted and re-created one)."""
    return not old.meta.uid or not new.meta.uid or old.meta.uid == new.meta.uid
