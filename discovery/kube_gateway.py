"""The Gateway API through the Kubernetes API: finding it, watching it, writing status.

- `discover_gateway_api` asks the API server which versions of gateway.networking.k8s.io
  it serves and at which version each kind seaway uses is served (v1 preferred, then
  v1beta1). A 404 means the CRDs are not installed: the caller logs that once and looks
  again now and then.
- `GatewayStatusWriter` computes the status of seaway's GatewayClasses, Gateways,
  HTTPRoutes and TLSRoutes from the store (discovery/gateway_attach.py and gateway_status.py, pure)
  whenever an input changes, and writes what changed through the status subresource
  (the writer machinery: discovery/kube_status.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp

from discovery.gateway_attach import GatewayConfig, attach_gateways
from discovery.gateway_status import status_updates
from discovery.kube_config import ApiCredentials
from discovery.kube_status import StatusWriter
from discovery.kube_watch import Backoff, KindSpec
from discovery.model import KIND_SECRET, KIND_SERVICE, ObjectKey, Service, TLSSecret
from discovery.model_gateway import (
    GATEWAY_GROUP,
    KIND_GATEWAY,
    KIND_GATEWAYCLASS,
    KIND_HTTPROUTE,
    KIND_NAMESPACE,
    KIND_REFERENCEGRANT,
    KIND_TCPROUTE,
    KIND_TLSROUTE,
    KIND_UDPROUTE,
    Gateway,
    GatewayClass,
    HTTPRoute,
    Namespace,
    ReferenceGrant,
    TCPRoute,
    TLSRoute,
    UDPRoute,
)
from discovery.model_meta import StatusUpdate
from discovery.snapshot import Snapshot
from discovery.store import Store

# kind -> (resource, namespaced, has a status subresource seaway writes)
GATEWAY_RESOURCES: dict[str, tuple[str, bool, bool]] = {
    KIND_GATEWAYCLASS: ("gatewayclasses", False, True),
    KIND_GATEWAY: ("gateways", True, True),
    KIND_HTTPROUTE: ("httproutes", True, True),
    KIND_TLSROUTE: ("tlsroutes", True, True),
    KIND_TCPROUTE: ("tcproutes", True, True),
    KIND_UDPROUTE: ("udproutes", True, True),
    KIND_REFERENCEGRANT: ("referencegrants", True, False),
}
# TLSRoute is v1 since Gateway API v1.5, v1alpha3 or v1alpha2 before (experimental CRDs).
PREFERRED_VERSIONS = ("v1", "v1beta1", "v1alpha3", "v1alpha2")


async def discover_gateway_api(
    session: aiohttp.ClientSession, credentials: ApiCredentials, timeout: float = 10.0
) -> dict[str, str] | None:
    """kind -> the version seaway watches it at; None when the group is not served.
    Transport errors and other statuses raise (aiohttp.ClientError, ValueError)."""
    group = await _get(session, credentials, f"/apis/{GATEWAY_GROUP}", timeout)
    if group is None:
        return None
    served = {v.get("version") for v in group.get("versions") or () if isinstance(v, dict)}
    found: dict[str, str] = {}
    for version in PREFERRED_VERSIONS:
        if version not in served:
            continue
        doc = await _get(session, credentials, f"/apis/{GATEWAY_GROUP}/{version}", timeout)
        for resource in (doc or {}).get("resources") or ():
            kind = resource.get("kind") if isinstance(resource, dict) else None
            if kind in GATEWAY_RESOURCES and "/" not in str(resource.get("name")):
                found.setdefault(kind, version)
    return found


async def _get(
    session: aiohttp.ClientSession, credentials: ApiCredentials, path: str, timeout: float
) -> dict[str, Any] | None:
    async with session.get(
        credentials.host + path,
        headers=await credentials.headers(),
        ssl=credentials.ssl_context or False,
        timeout=aiohttp.ClientTimeout(total=timeout),
    ) as resp:
        body = await resp.read()
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise ValueError(f"GET {path}: HTTP {resp.status}: {body[:200]!r}")
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError(f"GET {path}: not a JSON object")
    return data


def gateway_spec(kind: str, version: str) -> KindSpec:
    plural = GATEWAY_RESOURCES[kind][0]
    return KindSpec(
        kind,
        f"{GATEWAY_GROUP}/{version}",
        f"/apis/{GATEWAY_GROUP}/{version}/{plural}",
        f"kube:{kind}",
    )


def status_path(key: ObjectKey, version: str) -> str:
    plural, namespaced, _ = GATEWAY_RESOURCES[key.kind]
    where = f"/namespaces/{key.namespace}" if namespaced else ""
    return f"/apis/{GATEWAY_GROUP}/{version}{where}/{plural}/{key.name}/status"


def store_view(store: Store) -> Snapshot:
    """The Snapshot fields status is computed from, straight from the store."""

    def sorted_of(kind: str, cls: type[Any]) -> tuple[Any, ...]:
        objects = store.objects(kind)
        return tuple(o for k in sorted(objects) if isinstance(o := objects[k], cls))

    return Snapshot(
        services={
            (k.namespace, k.name): o
            for k, o in store.objects(KIND_SERVICE).items()
            if isinstance(o, Service)
        },
        tls_secrets={
            (k.namespace, k.name): o
            for k, o in store.objects(KIND_SECRET).items()
            if isinstance(o, TLSSecret)
        },
        gateway_classes=sorted_of(KIND_GATEWAYCLASS, GatewayClass),
        gateways=sorted_of(KIND_GATEWAY, Gateway),
        http_routes=sorted_of(KIND_HTTPROUTE, HTTPRoute),
        tls_routes=sorted_of(KIND_TLSROUTE, TLSRoute),
        tcp_routes=sorted_of(KIND_TCPROUTE, TCPRoute),
        udp_routes=sorted_of(KIND_UDPROUTE, UDPRoute),
        reference_grants=sorted_of(KIND_REFERENCEGRANT, ReferenceGrant),
        namespaces=sorted_of(KIND_NAMESPACE, Namespace),
    )


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GatewayStatusWriter(StatusWriter):
    """Keeps the status of seaway's Gateway API objects true, until cancelled (the loop,
    the writes and their bookkeeping: discovery/kube_status.py)."""

    what = "Gateway API status"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: ApiCredentials,
        store: Store,
        config: GatewayConfig,
        versions: dict[str, str],
        *,
        delay: float = 0.1,
        inputs_listed: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
        backoff: Callable[[], Backoff] = Backoff,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(
            session, credentials, store,
            delay=delay, inputs_listed=inputs_listed, backoff=backoff, timeout=timeout,
        )  # fmt: skip
        self.config = config
        self.versions = versions
        self.clock = clock

    def updates(self) -> list[StatusUpdate]:
        view = store_view(self.store)
        attachment = attach_gateways(view, self.config)
        now = rfc3339(self.clock())
        return status_updates(view, attachment, self.config.controller_name, now)

    def status_path(self, key: ObjectKey) -> str | None:
        version = self.versions.get(key.kind)
        return status_path(key, version) if version is not None else None
