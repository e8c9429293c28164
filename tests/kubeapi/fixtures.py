"""Helpers for tests that run KubeSource against the stand-in, all in one event loop.

pytest-asyncio is not a dependency: each test calls `run(coro)`; the server, the source
and any child process live in that one loop and are always stopped.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import os
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from discovery.kube_source import KubeSource
from discovery.kube_watch import Backoff, WatchSettings
from discovery.store import Store
from proxy.app.options import Options
from tests.kubeapi.resources import BY_KIND
from tests.kubeapi.server import ApiServer

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def eventually(
    predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Wait (polling the loop) until predicate() holds; a readiness wait, not a timing test."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.01)


def fast_settings(**overrides: Any) -> WatchSettings:
    """Short timeouts and backoffs so failure paths run in well under a second."""
    values: dict[str, Any] = {
        "page_size": 500,
        "watch_timeout": 30.0,
        "stall_timeout": 5.0,
        "connect_timeout": 2.0,
        "request_timeout": 5.0,
        "backoff": lambda: Backoff(initial=0.02, maximum=0.2),
    }
    values.update(overrides)
    return WatchSettings(**values)


@dataclass
class Running:
    server: ApiServer
    store: Store
    source: KubeSource
    task: asyncio.Task[None]
    ready_calls: list[float] = field(default_factory=list)


@contextlib.asynccontextmanager
async def api_server(**kwargs: Any) -> AsyncIterator[ApiServer]:
    server = ApiServer(**kwargs)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def running_source(
    server: ApiServer,
    store: Store | None = None,
    settings: WatchSettings | None = None,
    wait_ready: bool = True,
    source_config: dict[str, Any] | None = None,
    **options: Any,
) -> AsyncIterator[Running]:
    """KubeSource on a kubeconfig for `server`, started as a task; always cancelled.
    `options` build the Options; `source_config` overrides KubeSourceConfig fields."""
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = server.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
        opts = Options(kubeconfig=kubeconfig, **options)
        config = dataclasses.replace(opts.kube_source_config(), **(source_config or {}))
        source = KubeSource(config, settings or fast_settings())
        st = store or Store()
        ready_calls: list[float] = []
        task = asyncio.create_task(source.run(st, lambda: ready_calls.append(time.monotonic())))
        r = Running(server, st, source, task, ready_calls)
        try:
            if wait_ready:
                await eventually(lambda: bool(ready_calls) or task.done(), what="ready()")
                if task.done():
                    task.result()
            yield r
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def create(server: ApiServer, body: dict[str, Any]) -> dict[str, Any]:
    res = BY_KIND[body["kind"]]
    return server.db.create(res, body["metadata"].get("namespace", ""), body)


def update(server: ApiServer, body: dict[str, Any]) -> dict[str, Any]:
    res = BY_KIND[body["kind"]]
    meta = body["metadata"]
    return server.db.update(res, meta.get("namespace", ""), meta["name"], body)


def delete(server: ApiServer, kind: str, namespace: str, name: str) -> dict[str, Any]:
    return server.db.delete(BY_KIND[kind], namespace, name)


# ---- manifests (as kubectl would send them) ----------------------------------------------
def service(
    name: str, ip: str, port: int = 80, target: int = 8080, ns: str = "default"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "clusterIP": ip,
            "ports": [{"name": "http", "port": port, "targetPort": target, "protocol": "TCP"}],
        },
    }


def endpoint_slice(
    name: str,
    service_name: str,
    ips: list[str],
    port: int = 8080,
    ns: str = "default",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ns,
        "labels": {"kubernetes.io/service-name": service_name},
    }
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": meta,
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
    }


def configmap(name: str, data: dict[str, str], ns: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data,
    }


def ingress_class(name: str = "seaway", controller: str = "seaway.dev/ingress") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": name},
        "spec": {"controller": controller},
    }


def ingress(
    name: str,
    service_name: str,
    host: str = "web.example",
    tls_secret: str | None = None,
    class_name: str = "seaway",
    ns: str = "default",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "ingressClassName": class_name,
        "rules": [
            {
                "host": host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": service_name, "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ],
    }
    if tls_secret:
        spec["tls"] = [{"hosts": [host], "secretName": tls_secret}]
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


_CERT: tuple[bytes, bytes] | None = None


def self_signed(host: str = "web.example") -> tuple[bytes, bytes]:
    """(cert PEM, key PEM) made once per process with the openssl CLI."""
    global _CERT
    if _CERT is None:
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", f"/CN={host}", "-keyout", key, "-out", cert],
                check=True,
                capture_output=True,
            )  # fmt: skip
            with open(cert, "rb") as c, open(key, "rb") as k:
                _CERT = (c.read(), k.read())
    return _CERT


def tls_secret(name: str, ns: str = "default") -> dict[str, Any]:
    cert, key = self_signed()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(cert).decode(),
            "tls.key": base64.b64encode(key).decode(),
        },
    }


def opaque_secret(name: str, ns: str = "default", **data: str) -> dict[str, Any]:
    """An Opaque Secret as `kubectl create secret generic --from-literal` sends it."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


async def run_process(*argv: str, timeout: float = 30.0) -> tuple[int, str, str]:
    """Run a child process from inside the loop (so the in-loop server keeps serving)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(), err.decode()
