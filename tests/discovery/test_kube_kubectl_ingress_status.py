"""The real kubectl drives Ingresses on the API stand-in; seaway (KubeSource and its
Ingress status writer, or the whole daemon) writes status.loadBalancer.ingress; `kubectl
get ingress` shows it in its ADDRESS column, as with ingress-nginx. Cases ported from
ingress-nginx test/e2e/status/update.go and internal/ingress/status/status_test.go are
named after the upstream test."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.discovery.test_kube_kubectl import child, kubectl, poll_status
from tests.discovery.test_kube_kubectl import pytestmark as kubectl_mark
from tests.kubeapi.fixtures import api_server, create, eventually, run, running_source
from tests.kubeapi.resources import BY_KIND
from tests.kubeapi.server import ApiServer
from tests.support import free_port

pytestmark = kubectl_mark

MANIFESTS = """\
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: seaway
spec:
  controller: seaway.dev/ingress
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: default
spec:
  ingressClassName: {web_class}
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
              number: 80
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: other
  namespace: default
spec:
  ingressClassName: nginx
  tls:
  - hosts: [other.example]
    secretName: other-tls
  rules:
  - host: other.example
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: other
            port:
              number: 80
"""


def addresses(server: ApiServer, name: str = "web") -> list[str]:
    """The Ingress's status.loadBalancer.ingress as stored (ip, else hostname)."""
    obj = server.db.table(BY_KIND["Ingress"]).get(("default", name)) or {}
    entries = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [e.get("ip") or e.get("hostname") for e in entries]


async def address_column(kc: str) -> dict[str, list[str]]:
    """`kubectl get ingress`: NAME -> its cells after NAME (CLASS HOSTS ADDRESS PORTS AGE)."""
    out = await kubectl(kc, "get", "ingress")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"], out
    start = lines[0].index("ADDRESS")
    end = lines[0].index("PORTS")
    rows: dict[str, list[str]] = {}
    for line in lines[1:]:
        name = line.split()[0]
        rows[name] = [line[start:end].strip(), line[end:].split("  ")[0].strip()]
    return rows


def write(tmp: str, web_class: str = "seaway") -> str:
    path = Path(tmp, "ingresses.yaml")
    path.write_text(MANIFESTS.format(web_class=web_class))
    return str(path)


def test_kubectl_shows_the_published_address_and_it_follows_ownership() -> None:
    """--publish-status-address: `kubectl get ingress` shows it for seaway's Ingress, not
    for another class's (TestStatusActions: "invalid ingress status for rule with
    different class"); moving the Ingress to another class takes it out, moving it back
    puts it in; shutting down clears it (--update-status-on-shutdown, default true)."""

    async def main() -> None:
        async with api_server() as server:
            with tempfile.TemporaryDirectory() as tmp:
                kc = server.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
                async with running_source(
                    server, publish_status_address=("1.1.0.0", "lb.example.com")
                ) as r:
                    await kubectl(kc, "apply", "--validate=false", "-f", write(tmp))
                    await eventually(lambda: addresses(server) == ["1.1.0.0", "lb.example.com"],
                                     what="web's status")  # fmt: skip
                    rows = await address_column(kc)
                    assert rows["web"] == ["1.1.0.0,lb.example.com", "80"]
                    assert rows["other"] == ["", "80, 443"]
                    writer = r.source.ingress_status
                    assert writer is not None and writer.writes == 1
                    # Written once: the watch brings it back and nothing differs.
                    passes = writer.passes
                    await kubectl(kc, "annotate", "ingress", "web", "team=shop")
                    await eventually(lambda: writer.passes > passes, what="a recomputation")
                    assert writer.writes == 1
                    # Another class: seaway lets go of it, and takes its addresses out.
                    await kubectl(kc, "apply", "--validate=false", "-f", write(tmp, "nginx"))
                    await eventually(lambda: addresses(server) == [], what="web released")
                    assert (await address_column(kc))["web"][0] == ""
                    await kubectl(kc, "apply", "--validate=false", "-f", write(tmp))
                    await eventually(lambda: addresses(server) != [], what="web owned again")
                    assert addresses(server) == ["1.1.0.0", "lb.example.com"]
                    # Shutdown: the source stops, and clears what it published.
                    r.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await r.task
                    assert addresses(server) == []
                    assert (await address_column(kc))["web"][0] == ""
                    assert addresses(server, "other") == []

    run(main())


def test_should_update_status_field_after_client_go_reconnection() -> None:
    """ingress-nginx e2e status/update.go "should update status field after client-go
    reconnection": with --publish-status-address=1.1.0.0 the status is written; the
    controller loses the API, someone empties the status meanwhile; once the API is back
    the controller writes [{ip: 1.1.0.0}] again."""

    async def main() -> None:
        async with api_server() as server:
            with tempfile.TemporaryDirectory() as tmp:
                kc = server.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
                async with running_source(server, publish_status_address=("1.1.0.0",)) as r:
                    await kubectl(kc, "apply", "--validate=false", "-f", write(tmp))
                    await eventually(lambda: addresses(server) == ["1.1.0.0"], what="status")
                    restart = asyncio.create_task(server.restart(down_for=0.5))
                    await asyncio.sleep(0.1)  # the API is down: seaway's connections cut
                    ing = BY_KIND["Ingress"]
                    current = server.db.get(ing, "default", "web")
                    cleared = {**current, "status": {"loadBalancer": {}}}
                    server.db.update(ing, "default", "web", cleared, subresource="status")
                    assert addresses(server) == []
                    await restart
                    await eventually(lambda: addresses(server) == ["1.1.0.0"], timeout=20,
                                     what="status written after the reconnection")  # fmt: skip
                    got = await kubectl(kc, "get", "ingress", "web", "-o",
                                        "jsonpath={.status.loadBalancer.ingress}")  # fmt: skip
                    assert json.loads(got) == [{"ip": "1.1.0.0"}]
                    assert r.source.ingress_status is not None

    run(main())


NODES = """\
apiVersion: v1
kind: Node
metadata:
  name: node-a
status:
  addresses:
  - {type: InternalIP, address: 10.0.0.1}
  - {type: ExternalIP, address: 192.0.2.1}
  - {type: Hostname, address: node-a}
---
apiVersion: v1
kind: Node
metadata:
  name: node-b
status:
  addresses:
  - {type: InternalIP, address: 10.0.0.2}
"""


def test_each_node_adds_its_address_and_takes_it_out_when_it_stops() -> None:
    """Without a published address: each seaway (one per node, a DaemonSet) adds its
    Node's ExternalIP, else InternalIP (TestRunningAddressesWithPods), and keeps the other
    nodes'; one stopping takes out its own only; with --update-status-on-shutdown=false
    the last one leaves its address."""

    async def main() -> None:
        async with api_server() as server:
            with tempfile.TemporaryDirectory() as tmp:
                kc = server.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
                nodes = Path(tmp, "nodes.yaml")
                nodes.write_text(NODES)
                await kubectl(kc, "apply", "--validate=false", "-f", str(nodes))
                await kubectl(kc, "apply", "--validate=false", "-f", write(tmp))
                async with (
                    running_source(server, hostname="node-a",
                                   update_status_on_shutdown=False) as a,
                    running_source(server, hostname="node-b") as b,
                ):  # fmt: skip
                    await eventually(
                        lambda: sorted(addresses(server)) == ["10.0.0.2", "192.0.2.1"],
                        what="both nodes' addresses",
                    )
                    assert (await address_column(kc))["web"][0] == "10.0.0.2,192.0.2.1"
                    b.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await b.task
                    assert addresses(server) == ["192.0.2.1"]
                    a.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await a.task
                    assert addresses(server) == ["192.0.2.1"]  # left as it was
                    assert addresses(server, "other") == []

    run(main())


def lb_service(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "controller", "namespace": "ingress-nginx"},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10",
                 "ports": [{"name": "http", "port": 80}]},
        "status": status,
    }  # fmt: skip


def set_lb(server: ApiServer, entry: dict[str, str]) -> None:
    """What the cloud controller does: the Service's load-balancer status."""
    res = BY_KIND["Service"]
    svc = copy.deepcopy(server.db.get(res, "ingress-nginx", "controller"))
    svc["status"] = {"loadBalancer": {"ingress": [entry]}}
    server.db.update(res, "ingress-nginx", "controller", svc)


def test_publish_service_follows_the_service_load_balancer() -> None:
    """--publish-service NAMESPACE/NAME: the Service's load-balancer ingress, as it
    changes (TestRunningAddressesWithPublishService "service type LoadBalancer"); before
    the Service has an address, the Ingress is left as it is."""

    async def main() -> None:
        async with api_server() as server:
            with tempfile.TemporaryDirectory() as tmp:
                kc = server.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
                create(server, {"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": "ingress-nginx"}})  # fmt: skip
                create(server, lb_service({}))
                async with running_source(
                    server, publish_service=("ingress-nginx", "controller")
                ) as r:
                    await kubectl(kc, "apply", "--validate=false", "-f", write(tmp))
                    writer = r.source.ingress_status
                    assert writer is not None
                    await eventually(lambda: writer.passes > 0, what="a first pass")
                    assert addresses(server) == [] and writer.writes == 0
                    set_lb(server, {"ip": "203.0.113.5"})
                    await eventually(lambda: addresses(server) == ["203.0.113.5"],
                                     what="the Service's address")  # fmt: skip
                    set_lb(server, {"hostname": "lb.example"})
                    await eventually(lambda: addresses(server) == ["lb.example"],
                                     what="the Service's new address")  # fmt: skip
                    assert (await address_column(kc))["web"][0] == "lb.example"

    run(main())


@pytest.mark.slow
def test_daemon_publishes_the_address_and_clears_it_on_sigterm() -> None:
    """`seaway run --kubeconfig --publish-status-address`: kubectl sees the ADDRESS;
    SIGTERM clears it before the daemon exits (ingress-nginx --update-status-on-shutdown)."""

    async def main() -> None:
        http_port, healthz_port = free_port(), free_port()
        async with api_server() as server:
            with tempfile.TemporaryDirectory() as tmp:
                kc = server.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
                await kubectl(kc, "apply", "--validate=false", "-f", write(tmp))
                log = os.path.join(tmp, "seaway.log")
                async with child(
                    log, "-m", "proxy.app.cli", "run", "--kubeconfig", kc,
                    "--http-bind-address", f"127.0.0.1:{http_port}",
                    "--https-bind-address", "127.0.0.1:0",
                    "--healthz-bind-address", f"127.0.0.1:{healthz_port}",
                    "--metrics-bind-address", "127.0.0.1:0", "--workers", "1",
                    "--publish-status-address", "1.1.0.0",
                ) as daemon:  # fmt: skip
                    try:
                        await poll_status(healthz_port, "/readyz", 200)
                        await eventually(lambda: addresses(server) == ["1.1.0.0"],
                                         what="status from the daemon")  # fmt: skip
                        assert (await address_column(kc))["web"][0] == "1.1.0.0"
                        daemon.terminate()
                        assert await asyncio.wait_for(daemon.wait(), 20) == 0
                        assert addresses(server) == []
                    except BaseException:
                        print(Path(log).read_text())
                        raise

    run(main(), timeout=90)
