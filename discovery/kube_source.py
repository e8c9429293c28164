"""The Kubernetes API source: every kind seaway needs, listed and watched into the Store.

One KindWatcher (discovery/kube_watch.py) per kind: Services, EndpointSlices, Ingresses
(all namespaces), IngressClasses and Namespaces (cluster-scoped); when a node name is
given, that Node alone (`fieldSelector=metadata.name=NODE`, as kube-proxy watches its own
node) for its topology.kubernetes.io/zone label; and the Gateway API kinds
(GatewayClass, Gateway, HTTPRoute, ReferenceGrant) when the API serves them: their group is
looked up first, and when the CRDs are not installed that is logged once and looked up
again every `gateway_api_recheck` seconds, silently, until they are. Secrets are NOT
watched cluster-wide: only those that seaway's own Ingresses (spec.tls, and the
ingress-nginx annotations auth-secret and proxy-ssl-secret: discovery/secret_refs.py) and
Gateway listeners reference, one list/watch per Secret with
`fieldSelector=metadata.name=NAME` in its namespace (kubelet's "Watch" strategy for the
Secrets pods use). seaway thus never holds other Secrets in memory; the cost is one watch
connection per referenced Secret, which is few. The set is reconciled whenever Ingresses,
IngressClasses, Gateways or GatewayClasses change: new references start a watcher, dropped
ones stop it and remove the Secret from the store.

With --configmap NAMESPACE/NAME, that one ConfigMap (ingress-nginx's settings) is watched
the same way, by name; no other ConfigMap is ever read.

Once everything is listed, the status of seaway's Gateway API objects is written back
(discovery/kube_gateway.py: GatewayStatusWriter), and so is the address of the Ingresses
it owns (discovery/kube_ingress_status.py: IngressStatusWriter, unless --update-status=false);
both are kept up to date as things change. When the source stops, the Ingresses' addresses
are taken out again (--update-status-on-shutdown, as ingress-nginx).

`ready()` is called once the first list of every kind (and of the Secrets referenced at
that moment, and of the ConfigMap) has been applied to the store.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import FIRST_COMPLETED
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from discovery.gateway_attach import GatewayConfig
from discovery.ingress_status import IngressStatusConfig
from discovery.kube_config import ApiCredentials, load_credentials
from discovery.kube_gateway import GatewayStatusWriter, discover_gateway_api, gateway_spec
from discovery.kube_ingress_status import IngressStatusWriter
from discovery.kube_status import StatusWriter
from discovery.kube_watch import KindSpec, KindWatcher, WatchSettings
from discovery.model import (
    KIND_INGRESS,
    KIND_INGRESSCLASS,
    KIND_NODE,
    KIND_SECRET,
    KIND_SERVICE,
    Ingress,
    IngressClass,
)
from discovery.model_gateway import (
    KIND_GATEWAY,
    KIND_GATEWAYCLASS,
    KIND_NAMESPACE,
    Gateway,
    GatewayClass,
)
from discovery.nginx_settings import DEFAULT_PREFIX
from discovery.ownership import DEFAULT_CONTROLLER
from discovery.secret_refs import SecretRefs
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
    KindSpec("Namespace", "v1", "/api/v1/namespaces", "kube:Namespace"),
)
# Watch events of these kinds can change Gateway API or Ingress status.
STATUS_INPUTS = frozenset({KIND_SERVICE, KIND_NAMESPACE, KIND_SECRET, KIND_NODE})
RELEASE_DEADLINE = 5.0  # seconds to take the Ingress addresses out at shutdown


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


def gateway_secrets(
    gateways: list[Gateway], classes: list[GatewayClass], controller: str
) -> set[tuple[str, str]]:
    """(namespace, name) of every core Secret the listeners of seaway's Gateways name."""
    ours = {c.meta.name for c in classes if c.controller_name == controller}
    return {
        (ref.in_namespace(gw.meta.namespace), ref.name)
        for gw in gateways
        if gw.gateway_class_name in ours
        for listener in gw.listeners
        if listener.tls is not None
        for ref in listener.tls.certificate_refs
        if ref.group == "" and ref.kind == "Secret"
    }


@dataclass(frozen=True, slots=True)
class KubeSourceConfig:
    """Where the API is and which Ingresses and Gateways are ours (to know which Secrets
    to watch, and which status to write)."""

    kubeconfig: str | None = None
    master: str | None = None
    ingress_controller: str = DEFAULT_CONTROLLER
    watch_ingress_without_class: bool = False
    annotations_prefix: str = DEFAULT_PREFIX  # where auth-secret, proxy-ssl-secret are
    configmap: tuple[str, str] | None = None  # (namespace, name) of ingress-nginx's settings
    node_name: str = ""  # the Node to watch (zone label, addresses); "" = none
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    ingress_status: IngressStatusConfig | None = None  # None: --update-status=false
    gateway_api_recheck: float = 60.0  # seconds between looks for the Gateway API CRDs


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
        self.gateway_versions: dict[str, str] | None = None  # kind -> version, once found
        self.status_writer: GatewayStatusWriter | None = None
        self.ingress_status: IngressStatusWriter | None = None
        self._ingress_status_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self, store: Store, ready: Callable[[], None]) -> None:
        credentials = await load_credentials(self.config.kubeconfig, self.config.master)
        log.info("watching the Kubernetes API at %s (%s)", credentials.host, credentials.source)
        self._store, self._credentials = store, credentials
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=60)
        tasks = self._tasks = []
        refresher = asyncio.ensure_future(credentials.refresh()) if credentials.refresh else None
        async with aiohttp.ClientSession(connector=connector) as session:
            self._session = session
            try:
                versions = await self._look_for_gateway_api(first=True)
                specs = KIND_SPECS
                if self.config.node_name:
                    specs = (*specs, node_spec(self.config.node_name))
                if self.config.configmap is not None:
                    specs = (*specs, configmap_spec(*self.config.configmap))
                for spec in specs:
                    self._start_watcher(spec)
                if versions is not None:
                    self._start_gateway_api(versions)
                await _wait_synced([w.synced for w in self.watchers.values()], tasks)
                self._reconcile_secrets()
                await _wait_synced(
                    [w.synced for w, _ in self.secret_watchers.values()],
                    tasks + [t for _, t in self.secret_watchers.values()],
                )
                log.info("initial list of every kind complete")
                ready()
                self._start_ingress_status()
                if versions is not None:
                    self._start_status_writer(versions)
                else:
                    tasks.append(asyncio.create_task(self._recheck_gateway_api(), name="gwapi"))
                while tasks:  # watchers run until cancelled; the Gateway API may add some
                    done, _ = await asyncio.wait(list(tasks), return_when=FIRST_COMPLETED)
                    for task in done:
                        tasks.remove(task)
                        task.result()  # a watcher that died: raise what killed it
            finally:
                await self._release_ingress_status()
                if refresher is not None:
                    refresher.cancel()
                for t in tasks + [t for _, t in self.secret_watchers.values()]:
                    t.cancel()
                await asyncio.gather(
                    *tasks, *(t for _, t in self.secret_watchers.values()), return_exceptions=True
                )
                self.secret_watchers.clear()
                self._session = None

    def status(self) -> dict[str, object]:
        """For the status page (proxy/app/status.py documents the keys)."""
        watchers = [*self.watchers.values(), *(w for w, _ in self.secret_watchers.values())]
        watches = [
            {
                "resource": w.spec.source_id.removeprefix("kube:"),
                "state": "failing" if w.last_error else "watching" if w.synced.is_set()
                else "listing",
                "lists": w.lists,
                "events": w.events,
                "failures": w.failures,
                "last_error": w.last_error,
                "resource_version": w.resource_version,
            }
            for w in watchers
        ]
        states = {w["state"] for w in watches}
        state = "loading" if not watches or "listing" in states else (
            "degraded" if "failing" in states else "ok"
        )
        return {"kind": "kubernetes", "state": state, "watches": watches}

    def _start_watcher(self, spec: KindSpec) -> None:
        assert self._session is not None and self._credentials is not None
        assert self._store is not None
        kind = spec.kind
        if kind in (KIND_INGRESS, KIND_INGRESSCLASS, KIND_GATEWAY, KIND_GATEWAYCLASS):
            on_change = self._on_owner_change
        elif kind in STATUS_INPUTS or spec.api_version.startswith("gateway.networking.k8s.io"):
            on_change = self._on_status_input
        else:
            on_change = None
        w = KindWatcher(
            self._session, self._credentials, spec, self._store, self.settings, on_change
        )
        self.watchers[kind] = w
        self._tasks.append(asyncio.create_task(w.run(), name=f"watch {kind}"))

    # ---- the Gateway API ------------------------------------------------------------------
    async def _look_for_gateway_api(self, first: bool) -> dict[str, str] | None:
        assert self._session is not None and self._credentials is not None
        try:
            versions = await discover_gateway_api(self._session, self._credentials)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
            if first:
                log.warning("could not look up the Gateway API group (%s: %s); will look "
                            "again every %.0fs", type(e).__name__, e,
                            self.config.gateway_api_recheck)  # fmt: skip
            return None
        if versions is None or not versions:
            if first:
                log.info(
                    "the Gateway API (gateway.networking.k8s.io) is not served: its CRDs are "
                    "not installed; Gateways and HTTPRoutes are ignored (looking again every "
                    "%.0fs)",
                    self.config.gateway_api_recheck,
                )
            return None
        log.info(
            "Gateway API served: %s",
            ", ".join(f"{kind} {version}" for kind, version in sorted(versions.items())),
        )
        return versions

    async def _recheck_gateway_api(self) -> None:
        while True:
            await asyncio.sleep(self.config.gateway_api_recheck)
            versions = await self._look_for_gateway_api(first=False)
            if versions is not None:
                self._start_gateway_api(versions)
                self._start_status_writer(versions)
                return

    def _start_gateway_api(self, versions: dict[str, str]) -> None:
        self.gateway_versions = versions
        for kind, version in sorted(versions.items()):
            self._start_watcher(gateway_spec(kind, version))

    def _start_status_writer(self, versions: dict[str, str]) -> None:
        assert self._session is not None and self._credentials is not None
        assert self._store is not None
        self.status_writer = GatewayStatusWriter(
            self._session,
            self._credentials,
            self._store,
            self.config.gateway,
            versions,
            inputs_listed=self._inputs_listed,
        )
        self._tasks.append(asyncio.create_task(self.status_writer.run(), name="gateway status"))

    # ---- Ingress status -------------------------------------------------------------------
    def _start_ingress_status(self) -> None:
        assert self._session is not None and self._credentials is not None
        assert self._store is not None
        if self.config.ingress_status is None:
            return
        self.ingress_status = IngressStatusWriter(
            self._session,
            self._credentials,
            self._store,
            self.config.ingress_status,
            inputs_listed=self._inputs_listed,
        )
        task = asyncio.create_task(self.ingress_status.run(), name="ingress status")
        self._ingress_status_task = task
        self._tasks.append(task)

    async def _release_ingress_status(self) -> None:
        """Shutdown: stop writing, then take seaway's addresses out of its Ingresses."""
        writer, task = self.ingress_status, self._ingress_status_task
        if writer is None or task is None or self._session is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if not writer.config.update_on_shutdown:
            log.info("Ingress status left as it is (--update-status-on-shutdown=false)")
            return
        try:
            await asyncio.wait_for(writer.release(RELEASE_DEADLINE), RELEASE_DEADLINE + 1)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
            log.warning("Ingress status not cleared at shutdown: %s: %s", type(e).__name__, e)

    def _writers(self) -> list[StatusWriter]:
        return [w for w in (self.status_writer, self.ingress_status) if w is not None]

    def _inputs_listed(self) -> bool:
        watchers = [*self.watchers.values(), *(w for w, _ in self.secret_watchers.values())]
        return all(w.synced.is_set() for w in watchers)

    def _on_status_input(self) -> None:
        for writer in self._writers():
            writer.kick()

    def _on_owner_change(self) -> None:
        self._schedule_reconcile()
        self._on_status_input()

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
        owners = (KIND_INGRESS, KIND_INGRESSCLASS, KIND_GATEWAY, KIND_GATEWAYCLASS)
        if not all(self.watchers[k].synced.is_set() for k in owners if k in self.watchers):
            return  # wait for the lists: ownership needs the classes
        config = self.config
        refs = SecretRefs(
            config.ingress_controller, config.watch_ingress_without_class, config.annotations_prefix
        )
        wanted = refs.of_ingresses(
            [o for o in store.objects(KIND_INGRESS).values() if isinstance(o, Ingress)],
            [o for o in store.objects(KIND_INGRESSCLASS).values() if isinstance(o, IngressClass)],
        )
        wanted |= gateway_secrets(
            [o for o in store.objects(KIND_GATEWAY).values() if isinstance(o, Gateway)],
            [o for o in store.objects(KIND_GATEWAYCLASS).values() if isinstance(o, GatewayClass)],
            self.config.gateway.controller_name,
        )
        for ref in sorted(wanted - self.secret_watchers.keys()):
            spec = secret_spec(*ref)
            w = KindWatcher(session, credentials, spec, store, self.settings, self._on_status_input)
            task = asyncio.get_running_loop().create_task(w.run(), name=f"watch Secret {ref}")
            self.secret_watchers[ref] = (w, task)
            log.info("watching Secret %s/%s (named by an Ingress or a Gateway)", *ref)
        for ref in sorted(self.secret_watchers.keys() - wanted):
            w, task = self.secret_watchers.pop(ref)
            task.cancel()
            store.replace_source(w.spec.source_id, [])
            log.info("no longer watching Secret %s/%s", *ref)
            self._on_status_input()


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
