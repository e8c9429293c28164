"""The status.loadBalancer.ingress of the Ingresses seaway owns, written through the
Kubernetes API (what it says: discovery/ingress_status.py; the writer loop:
discovery/kube_status.py).

`IngressStatusWriter` recomputes on every change of an Ingress, an IngressClass, a Service
(the --publish-service one) or this node's Node, writes what differs, and remembers
which Ingresses it owned, so one that stops being seaway's loses seaway's addresses.
`release()` is the shutdown step (--update-status-on-shutdown): it takes seaway's addresses
out of every Ingress it owns, within a deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp

from discovery.ingress_status import (
    Entries,
    IngressStatusConfig,
    describe,
    ownership_updates,
    published,
    release_updates,
)
from discovery.kube_config import ApiCredentials
from discovery.kube_status import StatusWriter
from discovery.kube_watch import Backoff
from discovery.model import (
    KIND_INGRESS,
    KIND_INGRESSCLASS,
    KIND_NODE,
    KIND_SERVICE,
    Ingress,
    IngressClass,
    Node,
    ObjectKey,
    Service,
)
from discovery.model_meta import StatusUpdate
from discovery.ownership import owned_ingresses
from discovery.snapshot import Snapshot
from discovery.store import Store

log = logging.getLogger("seaway.kube")


def ingress_status_path(key: ObjectKey) -> str:
    return f"/apis/networking.k8s.io/v1/namespaces/{key.namespace}/ingresses/{key.name}/status"


class IngressStatusWriter(StatusWriter):
    """Keeps status.loadBalancer.ingress of seaway's Ingresses true, until cancelled."""

    what = "Ingress status"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: ApiCredentials,
        store: Store,
        config: IngressStatusConfig,
        *,
        delay: float = 0.1,
        inputs_listed: Callable[[], bool] = lambda: True,
        backoff: Callable[[], Backoff] = Backoff,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(
            session, credentials, store,
            delay=delay, inputs_listed=inputs_listed, backoff=backoff, timeout=timeout,
        )  # fmt: skip
        self.config = config
        self.addresses: Entries = ()  # what seaway publishes now
        self.ours: set[ObjectKey] = set()  # the Ingresses it answered for at the last pass
        self._problem = ""  # why no address is known (logged once per change)

    def _ingresses(self) -> list[Ingress]:
        objects = self.store.objects(KIND_INGRESS)
        return [o for k in sorted(objects) if isinstance(o := objects[k], Ingress)]

    def _owned(self, ingresses: list[Ingress]) -> set[ObjectKey]:
        classes = self.store.objects(KIND_INGRESSCLASS)
        view = Snapshot(
            ingresses=tuple(ingresses),
            ingress_classes=tuple(o for o in classes.values() if isinstance(o, IngressClass)),
        )
        config = self.config
        return {i.key for i in owned_ingresses(view, config.controller, config.watch_without_class)}

    def _published(self) -> Entries:
        config = self.config
        service = node = None
        if config.publish_service is not None:
            found = self.store.get(ObjectKey(KIND_SERVICE, *config.publish_service))
            service = found if isinstance(found, Service) else None
        elif config.node_name:
            found = self.store.get(ObjectKey(KIND_NODE, "", config.node_name))
            node = found if isinstance(found, Node) else None
        mine, problem = published(config, service, node)
        if problem != self._problem:
            self._problem = problem
            if problem:
                log.warning("Ingress status: no address to publish (%s); Ingresses keep the "
                            "status they have", problem)  # fmt: skip
        if mine and mine != self.addresses:
            log.info("Ingress status: publishing %s", describe(mine))
        return mine

    def updates(self) -> list[StatusUpdate]:
        ingresses = self._ingresses()
        owned = self._owned(ingresses)
        before = self.addresses
        mine = self._published()
        retired = tuple(e for e in before if e not in mine) if mine else ()
        if mine:
            self.addresses = mine
        present = {i.key for i in ingresses}
        let_go = (self.ours - owned) & present
        updates = ownership_updates(
            ingresses, owned, let_go, self.addresses, self.config.shared, retired
        )
        pending = {u.key for u in updates}
        self.ours = owned | (let_go & pending)  # let go of for good once written
        return updates

    def status_path(self, key: ObjectKey) -> str | None:
        return ingress_status_path(key)

    async def release(self, deadline: float = 5.0) -> int:
        """Take seaway's addresses out of the Ingresses it owns (shutdown); a write refused
        because the object changed is retried once the watch brought the newer one.
        Returns the number of Ingresses released."""
        if not self.addresses:
            return 0
        end = time.monotonic() + deadline
        released = 0
        while time.monotonic() < end:
            ingresses = self._ingresses()
            keys = self.ours | self._owned(ingresses)
            conflicts = 0
            for update in release_updates(ingresses, keys, self.addresses):
                if self._sent.get(update.key) == update.resource_version:
                    continue  # written; the watch has not brought it back yet
                result = await self.write(update)
                released += result == "written"
                conflicts += result == "conflict"
            if not conflicts:
                break
            await asyncio.sleep(0.1)
        log.info("Ingress status: %s removed from %d Ingress(es) (shutting down)",
                 describe(self.addresses), released)  # fmt: skip
        return released
