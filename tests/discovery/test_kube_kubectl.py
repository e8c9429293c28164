"""The real kubectl drives the API stand-in; KubeSource and the daemon follow it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from discovery.model import (
    KIND_ENDPOINTSLICE,
    KIND_INGRESS,
    KIND_INGRESSCLASS,
    KIND_NODE,
    KIND_SERVICE,
    EndpointSlice,
    Node,
    ObjectKey,
    Service,
)
from discovery.snapshot import ServicePortName
from discovery.snapshot_builder import SnapshotBuilder
from discovery.topology import NodeTopology
from tests.kubeapi.certs import make_pki
from tests.kubeapi.fixtures import api_server, eventually, run, run_process, running_source
from tests.kubeapi.resources import BY_KIND
from tests.support import REPO, free_port

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl not installed (Debian: kubernetes-client)"
)

SVC = ObjectKey(KIND_SERVICE, "default", "web")
SLICE = ObjectKey(KIND_ENDPOINTSLICE, "default", "web-1")
ING = ObjectKey(KIND_INGRESS, "default", "web")
CLASS = ObjectKey(KIND_INGRESSCLASS, "", "seaway")


def manifests(cluster_ip: str, backend_port: int, service_port: int = 80) -> str:
    return f"""\
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: seaway
spec:
  controller: seaway.dev/ingress
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  clusterIP: {cluster_ip}
  ports:
  - name: http
    port: {service_port}
    targetPort: {backend_port}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
endpoints:
- addresses: ["127.0.0.1"]
  conditions: {{ready: true}}
ports:
- name: http
  port: {backend_port}
  protocol: TCP
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: default
spec:
  ingressClassName: seaway
  rules:
  - host: web.example
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: {service_port}
"""


async def kubectl(kubeconfig: str, *args: str) -> str:
    assert KUBECTL is not None
    code, out, err = await run_process(KUBECTL, "--kubeconfig", kubeconfig, *args)
    assert code == 0, f"kubectl {' '.join(args)} failed ({code}): {err}"
    return out


def test_kubectl_apply_get_patch_delete_reach_the_store() -> None:
    async def main() -> None:
        async with api_server() as server, running_source(server) as r:
            with tempfile.TemporaryDirectory() as tmp:
                kc = server.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
                path = Path(tmp, "web.yaml")
                path.write_text(manifests("127.0.60.1", 9001))
                out = await kubectl(kc, "apply", "--validate=false", "-f", str(path))
                assert "service/web created" in out
                assert "ingress.networking.k8s.io/web created" in out
                store = r.store
                await eventually(
                    lambda: all(store.get(k) is not None for k in (SVC, SLICE, ING, CLASS)),
                    what="objects applied by kubectl",
                )
                got = json.loads(await kubectl(kc, "get", "service", "web", "-o", "json"))
                assert got["spec"]["clusterIP"] == "127.0.60.1"
                assert got["metadata"]["uid"] and got["metadata"]["resourceVersion"]
                names = await kubectl(kc, "get", "endpointslices", "-o", "name")
                assert "endpointslice.discovery.k8s.io/web-1" in names
                # A second apply is a strategic-merge PATCH; the change reaches the store.
                path.write_text(manifests("127.0.60.1", 9002, service_port=8080))
                out = await kubectl(kc, "apply", "--validate=false", "-f", str(path))
                assert "service/web configured" in out
                assert server.stats["patch:Service"] == 1

                def patched() -> bool:
                    s, e = store.get(SVC), store.get(SLICE)
                    return (
                        isinstance(s, Service)
                        and [(p.port, p.target_port) for p in s.ports] == [(8080, 9002)]
                        and isinstance(e, EndpointSlice)
                        and e.ports[0].port == 9002
                    )

                await eventually(patched, what="patched objects")
                await kubectl(kc, "delete", "-f", str(path))
                await eventually(
                    lambda: all(store.get(k) is None for k in (SVC, SLICE, ING, CLASS)),
                    what="objects deleted by kubectl",
                )
                out = await kubectl(kc, "get", "services", "-o", "name")
                assert "service/web" not in out

    run(main())


@contextlib.asynccontextmanager
async def child(log_path: str, *argv: str) -> AsyncIterator[asyncio.subprocess.Process]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with open(log_path, "wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *argv, cwd=REPO, env=env, stdout=log, stderr=log
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def http_get(port: int, path: str = "/", host: str | None = None) -> tuple[int, Any]:
    headers = {"Host": host} if host else {}
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"http://127.0.0.1:{port}{path}", headers=headers) as resp,
    ):
        body = await resp.read()
        try:
            return resp.status, json.loads(body)
        except ValueError:
            return resp.status, body


async def poll_status(port: int, path: str, want: int, host: str | None = None) -> Any:
    """Poll until a request answers `want`; returns the last body."""
    last: Any = None
    for _ in range(300):
        try:
            status, last = await http_get(port, path, host)
            if status == want:
                return last
        except (aiohttp.ClientError, OSError, TimeoutError):
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"127.0.0.1:{port}{path} never answered {want}; last: {last!r}")


async def poll_gone(port: int, path: str, host: str) -> None:
    for _ in range(300):
        try:
            status, _ = await http_get(port, path, host)
            if status == 404:
                return
        except (aiohttp.ClientError, OSError):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"127.0.0.1:{port}{path} still routed")


@pytest.mark.slow
def test_kubectl_to_daemon_request_reaches_backend() -> None:
    """kubectl applies a Service, an EndpointSlice and an Ingress to the stand-in; the
    daemon (`seaway run --kubeconfig`) picks them up; a request through its Ingress
    listener (L7) and through the Service's cluster IP (userspace L4) reaches the backend;
    it still does while the API fails; a kubectl delete after recovery takes effect."""

    async def main() -> None:
        backend_port, http_port, healthz_port = free_port(), free_port(), free_port()
        cluster_ip = f"127.0.61.{os.getpid() % 200 + 1}"
        service_port = free_port(cluster_ip)
        async with api_server() as server:
            with tempfile.TemporaryDirectory() as tmp:
                kc = server.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
                path = Path(tmp, "web.yaml")
                path.write_text(manifests(cluster_ip, backend_port, service_port))
                async with (
                    child(
                        os.path.join(tmp, "echo.log"), "-m", "proxy.app.cli", "echo",
                        "--listen", f"127.0.0.1:{backend_port}", "--name", "backend-1",
                    ),
                    child(
                        os.path.join(tmp, "seaway.log"), "-m", "proxy.app.cli", "run",
                        "--kubeconfig", kc, "--proxy-mode", "userspace",
                        "--http-bind-address", f"127.0.0.1:{http_port}",
                        "--healthz-bind-address", f"127.0.0.1:{healthz_port}",
                        "--metrics-bind-address", "127.0.0.1:0",
                        "--workers", "1", "--min-sync-period", "50ms",
                    ) as daemon,
                ):  # fmt: skip
                    try:
                        await poll_status(healthz_port, "/readyz", 200)
                        await kubectl(kc, "apply", "--validate=false", "-f", str(path))
                        body = await poll_status(http_port, "/hello", 200, host="web.example")
                        assert body["name"] == "backend-1"
                        assert body["path"] == "/hello"
                        status, body = await _l4_get(cluster_ip, service_port)
                        assert status == 200 and body["name"] == "backend-1"
                        # The API fails (every request 500, watches cut): traffic already
                        # flowing keeps flowing on the last good state.
                        requests = server.stats["requests"]
                        server.fail_code = 500
                        server.drop_watches()
                        while server.stats["requests"] < requests + 3:  # daemon retrying
                            await asyncio.sleep(0.05)
                        status, body = await http_get(http_port, "/still", host="web.example")
                        assert status == 200 and body["name"] == "backend-1"
                        status, body = await _l4_get(cluster_ip, service_port)
                        assert status == 200 and body["name"] == "backend-1"
                        status, _ = await http_get(healthz_port, "/healthz")
                        assert status == 200
                        server.fail_code = 0
                        # Deleting the Ingress with kubectl stops the L7 route (404, or the
                        # listener closes since seaway then owns no Ingress).
                        await kubectl(kc, "delete", "ingress", "web")
                        await poll_gone(http_port, "/hello", host="web.example")
                    except BaseException:
                        print("daemon exit code:", daemon.returncode)
                        print(Path(tmp, "seaway.log").read_text())
                        raise

    run(main(), timeout=90)


async def _l4_get(ip: str, port: int) -> tuple[int, Any]:
    for _ in range(300):
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s,
                s.get(f"http://{ip}:{port}/l4") as resp,
            ):
                return resp.status, json.loads(await resp.read())
        except (aiohttp.ClientError, OSError):
            await asyncio.sleep(0.05)
    raise AssertionError(f"nothing answered on {ip}:{port}")


def test_kubectl_over_https_with_client_certificate() -> None:
    """The stand-in's HTTPS mode is real enough for kubectl: CA, client certificate."""

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            pki = make_pki(tmp)
            async with api_server(pki=pki) as server:
                kc = server.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
                path = Path(tmp, "web.yaml")
                path.write_text(manifests("127.0.60.2", 9001))
                out = await kubectl(kc, "apply", "--validate=false", "-f", str(path))
                assert "service/web created" in out
                assert server.db.get(BY_KIND["Service"], "default", "web")["spec"]["clusterIP"] == (
                    "127.0.60.2"
                )

    run(main())


def test_kubectl_labels_this_nodes_zone_and_topology_follows() -> None:
    """The kube source watches this node's Node alone; `kubectl label node` changing
    topology.kubernetes.io/zone reaches the Snapshot: the endpoints hinted for that zone."""
    node = "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\n"
    hinted = manifests("127.0.60.1", 9001).replace(
        '- addresses: ["127.0.0.1"]\n  conditions: {ready: true}',
        '- addresses: ["127.0.0.1"]\n  hints: {forZones: [{name: z1}]}\n'
        '- addresses: ["127.0.0.2"]\n  hints: {forZones: [{name: z2}]}',
    )
    web = ServicePortName("default", "web", "http", "TCP")
    mine = ObjectKey(KIND_NODE, "", "node-a")

    async def main() -> None:
        async with api_server() as server, running_source(server, hostname="node-a") as r:
            with tempfile.TemporaryDirectory() as tmp:
                kc = server.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
                path = Path(tmp, "all.yaml")
                path.write_text(
                    hinted
                    + "---\n"
                    + node.format(name="node-a", labels="topology.kubernetes.io/zone: z1")
                    + "---\n"
                    + node.format(name="node-b", labels="topology.kubernetes.io/zone: z2")
                )
                await kubectl(kc, "apply", "--validate=false", "-f", str(path))
                store = r.store
                await eventually(lambda: store.get(SLICE) is not None, what="slice")
                await eventually(lambda: store.get(mine) is not None, what="this node")
                # Only this node is watched (fieldSelector metadata.name=node-a).
                assert store.get(ObjectKey(KIND_NODE, "", "node-b")) is None
                assert all(
                    q["fieldSelector"] == "metadata.name=node-a"
                    for q in server.watch_queries
                    if q["kind"] == "Node"
                )
                builder = SnapshotBuilder(store, topology=NodeTopology("node-a"))
                snap, _ = builder.build()
                assert [e.ip for e in snap.service_ports[web].endpoints] == ["127.0.0.1"]
                await kubectl(
                    kc, "label", "node", "node-a", "--overwrite", "topology.kubernetes.io/zone=z2"
                )
                await eventually(
                    lambda: isinstance(n := store.get(mine), Node) and n.zone == "z2",
                    what="zone label change",
                )
                snap, changed = builder.build()
                assert web in changed
                assert [e.ip for e in snap.service_ports[web].endpoints] == ["127.0.0.2"]

    run(main())


HTPASSWD = shutil.which("htpasswd")


@pytest.mark.skipif(HTPASSWD is None, reason="htpasswd not installed (Debian: apache2-utils)")
def test_kubectl_basic_auth_secret_as_ingress_nginx_docs_make_it() -> None:
    """ingress-nginx's docs/examples/auth/basic, step by step with the real tools:
    `htpasswd -c auth foo`, `kubectl create secret generic basic-auth --from-file=auth`,
    an Ingress with auth-type basic and auth-secret basic-auth. seaway watches that Secret
    by name and its users reach the Snapshot; another Secret is never fetched; deleting
    the Secret removes it (the Ingress then answers 503). `kubectl create secret` posts
    protobuf, which the stand-in does not decode: the Secret kubectl makes is sent with
    `kubectl apply` instead (the common `--dry-run=client -o yaml | kubectl apply` idiom)."""
    from discovery.model import KIND_SECRET
    from ingress.htpasswd import verify_basic

    async def main() -> None:
        async with api_server() as server, running_source(server) as r:
            with tempfile.TemporaryDirectory() as tmp:
                kc = server.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
                auth = os.path.join(tmp, "auth")
                assert HTPASSWD is not None
                code, _, err = await run_process(HTPASSWD, "-cb", auth, "foo", "bar")
                assert code == 0, err
                secrets = (
                    ("basic-auth", f"--from-file={auth}"),
                    ("db-password", "--from-literal=password=hunter2"),
                )
                for name, source in secrets:
                    made = Path(tmp, name + ".json")
                    create = ("create", "secret", "generic", name, source)
                    made.write_text(await kubectl(kc, *create, "--dry-run=client", "-o", "json"))
                    await kubectl(kc, "apply", "--validate=false", "-f", str(made))
                path = Path(tmp, "web.yaml")
                text = manifests("127.0.60.1", 9001).replace(
                    "  name: web\n  namespace: default\nspec:\n  ingressClassName",
                    "  name: web\n  namespace: default\n  annotations:\n"
                    "    nginx.ingress.kubernetes.io/auth-type: basic\n"
                    "    nginx.ingress.kubernetes.io/auth-secret: basic-auth\n"
                    "spec:\n  ingressClassName",
                )
                assert "auth-secret" in text
                path.write_text(text)
                await kubectl(kc, "apply", "--validate=false", "-f", str(path))
                store = r.store
                key = ObjectKey(KIND_SECRET, "default", "basic-auth")
                await eventually(lambda: store.get(key) is not None, what="auth secret")
                snap, _ = SnapshotBuilder(store).build()
                read = snap.auth_secrets[("default", "basic-auth")].auth_file
                assert read is not None and read.users.problems == ()
                assert verify_basic(read.users.users, "foo", "bar")
                assert not verify_basic(read.users.users, "foo", "baz")
                assert store.get(ObjectKey(KIND_SECRET, "default", "db-password")) is None
                assert all(q.get("fieldSelector") != "metadata.name=db-password"
                           for q in server.watch_queries)  # fmt: skip
                await kubectl(kc, "delete", "secret", "basic-auth")
                await eventually(lambda: store.get(key) is None, what="secret deleted")
                snap, _ = SnapshotBuilder(store).build()
                assert snap.auth_secrets == {}

    run(main())
