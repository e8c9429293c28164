"""Builders for ingress-nginx translation tests: annotated Ingresses in a Snapshot (the
annotations parsed as the snapshot builder parses them), the translation, and requests
asked of its compiled table. Reference: kubernetes/ingress-nginx (docs/, test/e2e/,
internal/ingress/controller/, rootfs/etc/nginx/)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from discovery.auth_secrets import read_auth_secret, secret_uses
from discovery.model import (
    GenericSecret,
    Ingress,
    IngressBackend,
    IngressPath,
    IngressRule,
    ObjectMeta,
    PathType,
    TLSSecret,
)
from discovery.nginx_annotations import parse_ingress_annotations
from discovery.nginx_configmap import INGRESS_NGINX_DEFAULTS, NginxGlobalSettings
from discovery.snapshot import ServicePortInfo, Snapshot
from ingress.route_actions import find_filter, redirect_location, rewrite_target
from ingress.route_filters import Filter, Rewrite
from ingress.route_match import RouteResult, compile_table
from ingress.routes import Backend, Forward, Listener, PathMatch, Redirect, Route, VirtualHost
from ingress.translate_ingress import IngressTranslation, LastGood, translate_ingresses
from tests.ingress import routerkit as k
from tests.ingress.routemodel import ask as ask_table
from tests.ingress.routemodel import name

P = "nginx.ingress.kubernetes.io/"
NGINX = INGRESS_NGINX_DEFAULTS  # ingress-nginx mode with its documented defaults

__all__ = ["NGINX", "P", "Translated", "ann", "ing", "name", "path", "secret", "translate"]


def ann(**values: str) -> dict[str, str]:
    """Annotations by short name: ann(use_regex="true") -> {P + "use-regex": "true"}."""
    return {P + key.replace("_", "-"): value for key, value in values.items()}


def path(
    p: str, service: str = "web", path_type: PathType = "Prefix", port: int = 80
) -> IngressPath:
    return k.path(p, service, path_type, port)


def ing(
    name_: str,
    host: str,
    *paths: IngressPath,
    annotations: dict[str, str] | None = None,
    created: str = "",
    tls: Sequence[tuple[Sequence[str], str]] = (),
    default: IngressBackend | None = None,
    rules: Iterable[IngressRule] = (),
    uid: str = "",
    version: str = "",
) -> Ingress:
    """An Ingress of seaway's class with one rule (host, paths) plus `rules`."""
    all_rules = ([k.rule(host, *paths)] if paths or host else []) + list(rules)
    made = k.ingress(
        name_, *all_rules, created=created, tls=tls, default=default, annotations=annotations
    )
    return replace(made, meta=replace(made.meta, uid=uid, resource_version=version))


def secret(name_: str, namespace: str = "default", **data: str | bytes) -> GenericSecret:
    """An Opaque Secret: secret("basic", auth="user:hash\n")."""
    values = {key.replace("_", "."): v if isinstance(v, bytes) else v.encode()
              for key, v in data.items()}  # fmt: skip
    return GenericSecret(ObjectMeta(name_, namespace), "Opaque", values)


def snapshot(
    ingresses: Iterable[Ingress],
    services: Iterable[str] = ("web",),
    nginx: NginxGlobalSettings | None = None,
    ports: Iterable[ServicePortInfo] = (),
    generation: int = 1,
    secrets: Iterable[GenericSecret | TLSSecret] = (),
    ssl_passthrough: bool = False,
) -> Snapshot:
    """A Snapshot of `ingresses` (annotations parsed; `ssl_passthrough`: as with
    --enable-ssl-passthrough) with one-endpoint `services`, and the `secrets` their
    annotations name read as the snapshot builder reads them."""
    listed = list(ingresses)
    snap = k.snapshot(listed, [*k.services(*services), *ports], generation=generation)
    parsed = {
        (i.meta.namespace, i.meta.name): parse_ingress_annotations(
            i, ssl_passthrough=ssl_passthrough
        )
        for i in listed
        if i.meta.annotations
    }
    by_key = {(s.meta.namespace, s.meta.name): s for s in secrets}
    auth = {
        key: read_auth_secret(by_key[key], uses)
        for key, uses in secret_uses(parsed.values()).items()
        if key in by_key
    }
    return replace(snap, ingress_annotations=parsed, nginx=nginx, auth_secrets=auth)


class Translated:
    """A translation and its compiled table, asked as a client would ask."""

    def __init__(self, translation: IngressTranslation) -> None:
        self.translation = translation
        self.table = compile_table(translation.table)
        assert not self.table.errors, self.table.errors

    @property
    def listener(self) -> Listener:
        return self.translation.table.listeners[0]

    def vhost(self, host: str) -> VirtualHost:
        return next(v for v in self.listener.virtual_hosts if host in v.hostnames)

    def routes(self, host: str) -> tuple[Route, ...]:
        return self.vhost(host).routes

    def paths(self, host: str) -> list[PathMatch]:
        return [r.match.path for r in self.routes(host)]

    def ask(
        self, host: str, target: str, method: str = "GET", headers: dict[str, str] | None = None
    ) -> RouteResult:
        return ask_table(self.table, target, host, method, headers)

    def upstream_target(self, host: str, target: str) -> str:
        """The target the backend is asked for (the Rewrite filter applied)."""
        r = self.ask(host, target)
        rewrite = find_filter(r.filters, Rewrite)
        if rewrite is None or rewrite.path is None:
            return target
        assert r.route is not None
        return rewrite_target(rewrite.path, target.encode(), r.route.match.path).decode()

    def location(self, host: str, target: str, scheme: str = "http") -> tuple[int, str]:
        """(status, Location) of a Redirect route's answer."""
        r = self.ask(host, target)
        assert isinstance(r.action, Redirect) and r.route is not None, r
        where = redirect_location(
            r.action, scheme.encode(), host.encode(), target.encode(), r.route.match.path
        )
        return r.status, where.decode()

    def warnings(self) -> tuple[str, ...]:
        return self.translation.warnings

    def applied(self, ingress: str) -> tuple[str, ...]:
        return next(r.applied for r in self.translation.reports if r.name == ingress)


def translate(
    *ingresses: Ingress,
    services: Iterable[str] = ("web",),
    nginx: NginxGlobalSettings | None = None,
    last_good: LastGood | None = None,
    ports: Iterable[ServicePortInfo] = (),
    secrets: Iterable[GenericSecret | TLSSecret] = (),
    ssl_passthrough: bool = False,
) -> Translated:
    snap = snapshot(ingresses, services, nginx, ports, secrets=secrets,
                    ssl_passthrough=ssl_passthrough)
    return Translated(translate_ingresses(snap, k.CONTROLLER, False, last_good))


def filters_of(result: RouteResult) -> tuple[Filter, ...]:
    return result.filters


def backends_of(route: Route) -> tuple[Backend, ...]:
    assert isinstance(route.action, Forward)
    return route.action.backends
