"""The real kubectl drives Gateway API objects on the API stand-in; seaway (KubeSource and
its status writer) writes their status back; kubectl reads it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from discovery.model_gateway import KIND_HTTPROUTE
from tests.discovery.test_kube_kubectl import kubectl
from tests.discovery.test_kube_kubectl import pytestmark as kubectl_mark
from tests.kubeapi.fixtures import api_server, eventually, run, running_source
from tests.kubeapi.resources import BY_KIND
from tests.kubeapi.server import ApiServer

pytestmark = kubectl_mark

BASE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: seaway
spec:
  controllerName: seaway.dev/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: default
spec:
  gatewayClassName: seaway
  addresses:
  - value: 127.0.71.1
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    hostname: "*.example.com"
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  clusterIP: 127.0.71.10
  ports:
  - name: http
    port: 80
    targetPort: 8080
"""


def route(name: str, backend: str = "web", hostnames: tuple[str, ...] = ()) -> str:
    hosts = f"  hostnames: {json.dumps(list(hostnames))}\n" if hostnames else ""
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
  namespace: default
spec:
  parentRefs:
  - name: gw
{hosts}  rules:
  - matches:
    - path: {{type: PathPrefix, value: /{name}}}
    backendRefs:
    - name: {backend}
      port: 80
"""


def gateway(server: ApiServer) -> dict[str, Any]:
    return server.db.get(BY_KIND["Gateway"], "default", "gw")


def attached(server: ApiServer) -> int | None:
    listeners = gateway(server).get("status", {}).get("listeners")
    return listeners[0]["attachedRoutes"] if listeners else None


def our_condition(server: ApiServer, name: str, ctype: str) -> tuple[str, str] | None:
    obj = server.db.table(BY_KIND[KIND_HTTPROUTE]).get(("default", name))
    for parent in (obj or {}).get("status", {}).get("parents", []):
        if parent["controllerName"] == "seaway.dev/gateway-controller":
            for c in parent["conditions"]:
                if c["type"] == ctype:
                    return c["status"], c["reason"]
    return None


def test_kubectl_sees_status_follow_routes_attaching_detaching_and_breaking() -> None:
    async def main() -> None:
        async with api_server() as server, running_source(server):
            with tempfile.TemporaryDirectory() as tmp:
                kc = server.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
                base, one = Path(tmp, "base.yaml"), Path(tmp, "one.yaml")
                base.write_text(BASE)
                one.write_text(route("one"))
                out = await kubectl(kc, "apply", "--validate=false", "-f", str(base))
                assert "gateway.gateway.networking.k8s.io/gw created" in out
                await eventually(lambda: attached(server) == 0, what="Gateway status")
                # The printer columns of the CRD: Programmed, with the address.
                table = await kubectl(kc, "get", "gateway")
                header, row = table.splitlines()
                assert header.split() == ["NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"]
                assert row.split()[:4] == ["gw", "seaway", "127.0.71.1", "True"]
                classes = await kubectl(kc, "get", "gatewayclass")
                assert "seaway.dev/gateway-controller   True" in classes

                # A route attaches.
                await kubectl(kc, "apply", "--validate=false", "-f", str(one))
                await eventually(lambda: attached(server) == 1, what="one route attached")
                got = await kubectl(
                    kc, "get", "gateway", "gw",
                    "-o", "jsonpath={.status.listeners[0].attachedRoutes}",
                )  # fmt: skip
                assert got == "1"
                listing = await kubectl(kc, "get", "gateway,httproute")
                assert "httproute.gateway.networking.k8s.io/one" in listing

                # A second route attaches; -o yaml shows the full status.
                two = Path(tmp, "two.yaml")
                two.write_text(route("two", hostnames=("two.example.com",)))
                await kubectl(kc, "apply", "--validate=false", "-f", str(two))
                await eventually(lambda: attached(server) == 2, what="two routes attached")
                text = await kubectl(kc, "get", "httproute", "two", "-o", "yaml")
                assert "controllerName: seaway.dev/gateway-controller" in text
                assert "reason: Accepted" in text

                # One detaches: its hostname no longer intersects the listener's.
                two.write_text(route("two", hostnames=("two.example.org",)))
                await kubectl(kc, "apply", "--validate=false", "-f", str(two))
                await eventually(lambda: attached(server) == 1, what="back to one")
                await eventually(
                    lambda: our_condition(server, "two", "Accepted")
                    == ("False", "NoMatchingListenerHostname"),
                    what="route two detached",
                )
                reason = await kubectl(
                    kc, "get", "httproute", "two", "-o",
                    'jsonpath={.status.parents[0].conditions[?(@.type=="Accepted")].reason}',
                )  # fmt: skip
                assert reason == "NoMatchingListenerHostname"

                # The other breaks: its backend does not exist. Still attached.
                one.write_text(route("one", backend="missing"))
                await kubectl(kc, "apply", "--validate=false", "-f", str(one))
                await eventually(
                    lambda: our_condition(server, "one", "ResolvedRefs")
                    == ("False", "BackendNotFound"),
                    what="route one broken",
                )
                assert attached(server) == 1
                # Deleted with kubectl: nothing attached any more.
                await kubectl(kc, "delete", "httproute", "one")
                await eventually(lambda: attached(server) == 0, what="route one gone")
                got = await kubectl(
                    kc, "get", "gateway", "gw",
                    "-o", "jsonpath={.status.listeners[0].attachedRoutes}",
                )  # fmt: skip
                assert got == "0"

    run(main(), timeout=120)


TLS_GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: tls
  namespace: default
spec:
  gatewayClassName: seaway
  addresses:
  - value: 127.0.71.2
  listeners:
  - name: passthrough
    port: 443
    protocol: TLS
    hostname: "*.example.com"
    tls:
      mode: Passthrough
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata:
  name: pass
  namespace: default
spec:
  parentRefs:
  - name: tls
  hostnames: [HOSTNAME]
  rules:
  - backendRefs:
    - name: web
      port: 80
"""


def tls_condition(server: ApiServer, ctype: str) -> tuple[str, str] | None:
    obj = server.db.table(BY_KIND["TLSRoute"]).get(("default", "pass"))
    for parent in (obj or {}).get("status", {}).get("parents", []):
        for c in parent["conditions"]:
            if c["type"] == ctype:
                return c["status"], c["reason"]
    return None


def test_kubectl_applies_a_tlsroute_and_reads_its_status() -> None:
    """A TLSRoute (applied at v1alpha2, as the experimental CRDs serve it) attaches to a
    TLS Passthrough listener; kubectl reads Accepted and the listener's supportedKinds;
    a hostname outside the listener's detaches it."""

    async def main() -> None:
        async with api_server() as server, running_source(server):
            with tempfile.TemporaryDirectory() as tmp:
                kc = server.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
                files = Path(tmp, "base.yaml"), Path(tmp, "tls.yaml")
                files[0].write_text(BASE)
                files[1].write_text(TLS_GATEWAY.replace("HOSTNAME", "pass.example.com"))
                for f in files:
                    await kubectl(kc, "apply", "--validate=false", "-f", str(f))
                await eventually(lambda: tls_condition(server, "Accepted") == ("True", "Accepted"),
                                 what="TLSRoute accepted")  # fmt: skip
                kinds = await kubectl(
                    kc, "get", "gateway", "tls",
                    "-o", "jsonpath={.status.listeners[0].supportedKinds[0].kind} "
                    "{.status.listeners[0].attachedRoutes}",
                )  # fmt: skip
                assert kinds == "TLSRoute 1"
                listing = await kubectl(kc, "get", "tlsroute")
                assert listing.splitlines()[1].split()[:2] == ["pass", '["pass.example.com"]']
                files[1].write_text(TLS_GATEWAY.replace("HOSTNAME", "pass.example.org"))
                await kubectl(kc, "apply", "--validate=false", "-f", str(files[1]))
                await eventually(
                    lambda: tls_condition(server, "Accepted")
                    == ("False", "NoMatchingListenerHostname"),
                    what="TLSRoute detached",
                )

    run(main(), timeout=120)
