"""The Kubernetes API source: every kind seaway needs, listed and watched into the Store.

One KindWatcher (discovery/kube_watch.py) per kind: Services, EndpointSlices, Ingresses
(all namespaces) and IngressClasses (cluster-scoped); and, when a node name is given, that
Node alone (`fieldSelector=metadata.name=NODE`, as kube-proxy watches its own node) for
its topology.kubernetes.io/zone label. Secrets are NOT watched cluster-wide: only the TLS
Secrets that seaway's own Ingresses reference, one list/watch per Secret with
`fieldSelector=metadata.name=NAME` in its namespace (kubelet's "Watch" strategy for the
Secrets pods use). seaway thus never holds other Secrets in memory; the cost is one watch
connection per referenced Secret, which is few. The set is reconciled whenever Ingresses
or IngressClasses change: new references start a watcher, dropped ones stop it and remove
the Secret from the store.

With --configmap NAMESPACE/NAME, that one ConfigMap (ingress-nginx's settings) is watched
the same way, by name; no other ConfigMap is ever read.

`ready()` is called once the first list of every kind (and of the Secrets referenced at
that moment, and of the ConfigMap) has been applied to the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from discovery.kube_config import ApiCredentials, load_credentials
from discovery.kube_watch import KindSpec, KindWatcher, WatchSettings
from discovery.model import KIND_INGRESS, KIND_INGRESSCLASS, Ingress, IngressClass
from discovery.ownership import DEFAULT_CONTROLLER, owned_ingresses
from discovery.snapshot import Snapshot
from discovery.store import Store

log = logging.getLogger("seaway.kube")

KIND_SPECS: tuple[KindSpec, ...] = (
    KindSpec("Service", "v1", "/api/v1/services", "kube:Service"),
    KindSpec(
        "EndpointSlice",
        "discovery.k8s.io/v1",
        "/apis/discovery.k8s.io/v1/endpointslices",
        "kube:EndpointSlice",
    ),
    KindSpec(
        "Ingress", "networking.k8s.io/v1", "/apis/networking.k8s.io/v1/ingresses", "kube:Ingress"
    ),
    KindSpec(
        "IngressClass",
        "networking.k8s.io/v1",
        "/apis/networking.k8s.io/v1/ingressclasses",
        "kube:IngressClass",
    ),
)


def node_spec(name: str) -> KindSpec:
    return KindSpec(
        "Node", "v1", "/api/v1/nodes", "kube:Node", field_selector=f"metadata.name={name}"
    )


def _one_object(kind: str, plural: str, namespace: str, name: str) -> KindSpec:
    """A list/watch of one core/v1 object by name (fieldSelector), in its namespace."""
    return KindSpec(
        kind,
        "v1",
        f"/api/v1/namespaces/{namespace}/{plural}",
        f"kube:{kind}:{namespace}/{name}",
        field_selector=f"metadata.name={name}",
    )


def secret_spec(namespace: str, name: str) -> KindSpec:
    return _one_object("Secret", "secrets", namespace, name)


def configmap_spec(namespace: str, name: str) -> KindSpec:
    return _one_object("ConfigMap", "configmaps", namespace, name)


def referenced_secrets(
    ingresses: list[Ingress], classes: list[IngressClass], controller: str, without_class: bool
) -> set[tuple[str, str]]:
    """(namespace, name) of every Secret the tls sections of seaway's Ingresses name."""
    view = Snapshot(ingresses=tuple(ingresses), ingress_classes=tuple(classes))
    return {
        (ing.meta.namespace, tls.secret_name)
        for ing in owned_ingresses(view, controller, without_class)
        for tls in ing.tls
        if tls.secret_name
    }


@dataclass(frozen=True, slots=True)
class KubeSourceConfig:
    """Where the API is and which Ingresses are ours (to know which Secrets to watch)."""

    kubeconfig: str | None = None
    master: str | None = None
    ingress_controller: str = DEFAULT_CONTROLLER
    watch_ingress_without_class: bool = False
    configmap: tuple[str, str] | None = None  # (namespace, name) of ingress-nginx's settings
    node_name: str = ""  # the Node to watch for its zone label; "" = none


class KubeSource:
    def __init__(self, config: KubeSourceConfig, settings: WatchSettings | None = None) -> None:
        self.config = config
        self.settings = settings or WatchSettings()
        self.watchers: dict[str, KindWatcher] = {}
        self.secret_watchers: dict[tuple[str, str], tuple[KindWatcher, asyncio.Task[None]]] = {}
        self._store: Store | None = None
        self._session: aiohttp.ClientSession | None = None
        self._credentials: ApiCredentials | None = None
        self._reconcile_pending = False

    async def run(self, store: Store, ready: Callable[[], None]) -> None:
        credentials = await load_credentials(self.config.kubeconfig, self.config.master)
        log.info("watching the Kubernetes API at %s (%s)", credentials.host, credentials.source)
        self._store, self._credentials = store, credentials
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=60)
        tasks: list[asyncio.Task[None]] = []
        refresher = asyncio.ensure_future(credentials.refresh()) if credentials.refresh else None
        async with aiohttp.ClientSession(connector=connector) as session:
            self._session = session
            try:
                specs = KIND_SPECS
                if self.config.node_name:
                    specs = (*specs, node_spec(self.config.node_name))
                if self.config.configmap is not None:
                    specs = (*specs, configmap_spec(*self.config.configmap))
                for spec in specs:
                    on_change = (
                        self._schedule_reconcile
                        if spec.kind in (KIND_INGRESS, KIND_INGRESSCLASS)
                        else None
                    )
                    w = KindWatcher(session, credentials, spec, store, self.settings, on_change)
                    self.watchers[spec.kind] = w
                    tasks.append(asyncio.create_task(w.run(), name=f"watch {spec.kind}"))
                await _wait_synced([w.synced for w in self.watchers.values()], tasks)
                self._reconcile_secrets()
                await _wait_synced(
                    [w.synced for w, _ in self.secret_watchers.values()],
                    tasks + [t for _, t in self.secret_watchers.values()],
                )
                log.info("initial list of every kind complete")
                ready()
                await asyncio.gather(*tasks)
            finally:
                if refresher is not None:
                    refresher.cancel()
                for t in tasks + [t for _, t in self.secret_watchers.values()]:
                    t.cancel()
                await asyncio.gather(
                    *tasks, *(t for _, t in self.secret_watchers.values()), return_exceptions=True
                )
                self.secret_watchers.clear()
                self._session = None

    # ---- Secrets referenced by owned Ingresses -------------------------------------------
    def _schedule_reconcile(self) -> None:
        if self._reconcile_pending:
            return
        self._reconcile_pending = True
        asyncio.get_running_loop().call_soon(self._reconcile_secrets)

    def _reconcile_secrets(self) -> None:
        self._reconcile_pending = False
        store, session, credentials = self._store, self._session, self._credentials
        if store is None or session is None or credentials is None:
            return
        if not all(self.watchers[k].synced.is_set() for k in (KIND_INGRESS, KIND_INGRESSCLASS)):
            return  # wait for both lists: ownership needs the classes
        wanted = referenced_secrets(
            [o for o in store.objects(KIND_INGRESS).values() if isinstance(o, Ingress)],
            [o for o in store.objects(KIND_INGRESSCLASS).values() if isinstance(o, IngressClass)],
            self.config.ingress_controller,
            self.config.watch_ingress_without_class,
        )
        for ref in sorted(wanted - self.secret_watchers.keys()):
            spec = secret_spec(*ref)
            w = KindWatcher(session, credentials, spec, store, self.settings)
            task = asyncio.get_running_loop().create_task(w.run(), name=f"watch Secret {ref}")
            self.secret_watchers[ref] = (w, task)
            log.info("watching Secret %s/%s (referenced by an Ingress)", *ref)
        for ref in sorted(self.secret_watchers.keys() - wanted):
            w, task = self.secret_watchers.pop(ref)
            task.cancel()
            store.replace_source(w.spec.source_id, [])
            log.info("no longer watching Secret %s/%s", *ref)


async def _wait_synced(events: list[asyncio.Event], tasks: list[asyncio.Task[Any]]) -> None:
    """Wait until every event is set; a watcher task ending early is a bug: re-raise it."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        pending: set[asyncio.Future[Any]] = set(waiters)
        while pending:
            done, _ = await asyncio.wait(pending | set(tasks), return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t in tasks:
                    t.result()  # raises what killed it
                    raise RuntimeError(f"{t.get_name()} ended unexpectedly")
            pending -= done
    finally:
        for w in waiters:
            w.cancel()
