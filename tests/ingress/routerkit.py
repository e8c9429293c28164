"""Builders for route and TLS tests: Ingresses, hand-made Snapshots, and `routed()`.

Snapshots are built directly (ports_by_service filled by hand) so router tests do not
depend on the snapshot builder.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from discovery.model import (
    DEFAULT_CLASS_ANNOTATION,
    Ingress,
    IngressBackend,
    IngressClass,
    IngressPath,
    IngressRule,
    IngressTLS,
    ObjectMeta,
    PathType,
    TLSSecret,
)
from discovery.snapshot import EndpointInfo, ServicePortInfo, ServicePortName, Snapshot
from ingress.route_conditions import no_header
from ingress.route_match import RouteResult, compile_table
from ingress.translate_ingress import INGRESS_LISTENER, translate_ingresses

CONTROLLER = "seaway.dev/ingress"
CLASS = "seaway"


def backend(service: str, port: int | str = 80) -> IngressBackend:
    if isinstance(port, int):
        return IngressBackend(service_name=service, port_number=port)
    return IngressBackend(service_name=service, port_name=port)


def path(p: str, service: str, path_type: PathType = "Prefix", port: int | str = 80) -> IngressPath:
    return IngressPath(path=p, path_type=path_type, backend=backend(service, port))


def rule(host: str, *paths: IngressPath) -> IngressRule:
    return IngressRule(host=host, paths=tuple(paths))


def ingress(
    name: str,
    *rules: IngressRule,
    ns: str = "default",
    cls: str | None = CLASS,
    created: str = "",
    default: IngressBackend | None = None,
    tls: Sequence[tuple[Sequence[str], str]] = (),
    annotations: dict[str, str] | None = None,
) -> Ingress:
    return Ingress(
        meta=ObjectMeta(
            name=name, namespace=ns, creation_timestamp=created, annotations=annotations or {}
        ),
        ingress_class_name=cls,
        default_backend=default,
        rules=tuple(rules),
        tls=tuple(IngressTLS(hosts=tuple(h), secret_name=s) for h, s in tls),
    )


def ingress_class(
    name: str = CLASS, controller: str = CONTROLLER, default: bool = False
) -> IngressClass:
    annotations = {DEFAULT_CLASS_ANNOTATION: "true"} if default else {}
    return IngressClass(meta=ObjectMeta(name=name, annotations=annotations), controller=controller)


def service_port(
    name: str,
    port: int = 80,
    port_name: str = "",
    endpoints: Iterable[str] = ("10.1.0.1",),
    ns: str = "default",
    protocol: str = "TCP",
) -> ServicePortInfo:
    eps = tuple(EndpointInfo(ip=ip, port=8000 + port % 1000) for ip in endpoints)
    spn = ServicePortName(ns, name, port_name, protocol)  # type: ignore[arg-type]
    return ServicePortInfo(
        name=spn,
        cluster_ips=("10.96.0.10",),
        port=port,
        protocol=protocol,  # type: ignore[arg-type]
        all_endpoints=eps,
        endpoints=eps,
    )


def snapshot(
    ingresses: Iterable[Ingress],
    ports: Iterable[ServicePortInfo] = (),
    classes: Iterable[IngressClass] | None = None,
    secrets: Iterable[TLSSecret] = (),
    generation: int = 1,
) -> Snapshot:
    """A Snapshot; `classes` defaults to seaway's IngressClass "seaway"."""
    by_service: dict[tuple[str, str], list[ServicePortInfo]] = {}
    port_list = list(ports)
    for info in port_list:
        by_service.setdefault((info.name.namespace, info.name.name), []).append(info)
    return Snapshot(
        generation=generation,
        service_ports={info.name: info for info in port_list},
        ingresses=tuple(ingresses),
        ingress_classes=tuple([ingress_class()] if classes is None else classes),
        tls_secrets={(s.meta.namespace, s.meta.name): s for s in secrets},
        ports_by_service={k: tuple(v) for k, v in by_service.items()},
    )


def services(*names: str, ns: str = "default", port: int = 80) -> list[ServicePortInfo]:
    """One TCP port `port` with one endpoint for each service name."""
    return [service_port(n, port, ns=ns) for n in names]


def tls_secret(name: str, cert_pem: bytes, key_pem: bytes, ns: str = "default") -> TLSSecret:
    return TLSSecret(meta=ObjectMeta(name=name, namespace=ns), cert_pem=cert_pem, key_pem=key_pem)


class Routed:
    """An Ingress translation and its compiled table, asked as tests ask: `route(host,
    path)` with text, as a request with that Host header and target would be routed."""

    def __init__(
        self,
        snap: Snapshot,
        controller: str = CONTROLLER,
        watch_without_class: bool = False,
    ) -> None:
        self.translation = translate_ingresses(snap, controller, watch_without_class)
        self.table = compile_table(self.translation.table)
        self.warnings = self.translation.warnings
        self.owned_ingresses = self.translation.owned
        self.services = self.translation.services
        self.generation = self.table.generation

    def route(self, host: str, path: str, method: str = "GET") -> RouteResult:
        return self.table.match(host.encode("latin-1"), path.encode("latin-1"),
                                method.encode(), no_header)  # fmt: skip

    def hosts(self) -> list[str]:
        listener = self.translation.table.listener(INGRESS_LISTENER)
        return listener.hosts() if listener is not None else []

    def tls_hosts(self) -> dict[str, tuple[str, str]]:
        return self.translation.table.tls_hosts()

    def __iter__(self) -> Iterator[RouteResult]:
        return iter(self.table)

    @property
    def _host_cache(self) -> dict[bytes, object]:
        return self.table.main()._host_cache


def routed(
    snap: Snapshot, controller: str = CONTROLLER, watch_without_class: bool = False
) -> Routed:
    return Routed(snap, controller, watch_without_class)
