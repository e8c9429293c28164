"""Gateway API TLSRoute on TLS listeners in Passthrough mode: the upstream conformance
tests that exist for it, ported (status computed by seaway; traffic with real sockets),
plus parsing.

Upstream: kubernetes-sigs/gateway-api conformance/tests/tlsroute-*.go and .yaml. The
manifests are the upstream ones, adapted as tests/discovery/gatewaykit.py adapts the
base: the Gateway gets a loopback address and a free port, the backend Service an
EndpointSlice naming a TLS pod this test starts (conformance's tls-backend terminates
TLS with a certificate for the test's hostname).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from discovery.gateway_attach import GatewayAttachment, attach_gateways
from discovery.gateway_status import gateway_status, route_parents
from discovery.manifest import parse_manifest_text
from discovery.model_gateway import RouteGroupKind, TLSRoute
from discovery.snapshot import Snapshot
from discovery.snapshot_builder import build_snapshot
from ingress import selfsigned
from ingress.dataplane import IngressConfig, IngressDataplane
from ingress.relay_stats import CONNECTIONS, PASSTHROUGH
from tests.discovery.gatewaykit import BASE, CONTROLLER, INFRA, NOW, config, objects
from tests.ingress.l7kit import HOST, LoopThread
from tests.ingress.passthroughkit import TlsPod, handshake
from tests.support import free_port

GROUP = "gateway.networking.k8s.io"
GATEWAY_IP = "127.0.15.1"

# conformance/tests/tlsroute-simple-same-namespace.yaml (the route's backend: l4-backend)
SIMPLE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: gateway-conformance-infra-test, namespace: gateway-conformance-infra}
spec:
  parentRefs:
  - name: gateway-tlsroute
    namespace: gateway-conformance-infra
  hostnames:
  - abc.example.com
  rules:
  - backendRefs:
    - name: l4-backend
      port: 8443
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gateway-tlsroute, namespace: gateway-conformance-infra}
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: GATEWAY_IP}]
  listeners:
  - name: https
    port: GATEWAY_PORT
    protocol: TLS
    hostname: "*.example.com"
    allowedRoutes:
      namespaces:
        from: Same
      kinds:
      - kind: TLSRoute
    tls:
      mode: Passthrough
"""


def backend(name: str, namespace: str, port: int, pod: TlsPod | None) -> str:
    """A Service and, for a running pod, the EndpointSlice the cluster would make."""
    text = f"""\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  clusterIP: None
  ports: [{{name: tls, port: {port}, targetPort: tls}}]
"""
    if pod is not None:
        text += f"""---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-1
  namespace: {namespace}
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: tls, port: {pod.port}, protocol: TCP}}]
endpoints: [{{addresses: [{HOST}], conditions: {{ready: true}}}}]
"""
    return text


class Gateways:
    """seaway's L7 dataplane serving Gateway API objects on loopback."""

    def __init__(self, lt: LoopThread) -> None:
        self.lt = lt
        self.config = config(default_addresses=(GATEWAY_IP,))
        self.dataplane = IngressDataplane(
            IngressConfig(http_bind_address=None, https_bind_address=None, gateway=self.config)
        )
        lt.run(self.dataplane.start())

    def apply(self, *manifests: str) -> tuple[Snapshot, GatewayAttachment]:
        snapshot = build_snapshot(objects(BASE, *manifests))
        self.lt.run(self.dataplane.sync(snapshot, frozenset()))
        return snapshot, attach_gateways(snapshot, self.config)

    def close(self) -> None:
        self.lt.run(self.dataplane.stop())


@pytest.fixture
def gateways(lt: LoopThread) -> Iterator[Gateways]:
    g = Gateways(lt)
    try:
        yield g
    finally:
        g.close()


@pytest.fixture
def pod(lt: LoopThread) -> Iterator[TlsPod]:
    pem = selfsigned.generate("tls-backend", ["abc.example.com"])
    p = lt.run(TlsPod("tls-backend", pem).start())
    try:
        yield p
    finally:
        lt.run(p.close())


def conditions(
    snapshot: Snapshot, attachment: GatewayAttachment, name: str
) -> dict[str, tuple[str, str]]:
    """Type -> (status, reason) of the TLSRoute's parent entry written by seaway."""
    route = next(r for r in snapshot.tls_routes if r.meta.name == name)
    state = next(s for s in attachment.routes if s.route.key == route.key)
    (parent,) = [p for p in route_parents(route, state, CONTROLLER, NOW)
                 if p.controller_name == CONTROLLER]
    return {c.type: (c.status, c.reason) for c in parent.conditions}


def test_TLSRouteSimpleSameNamespace(gateways: Gateways, pod: TlsPod) -> None:
    """tlsroute-simple-same-namespace.go: the route is Accepted with ResolvedRefs, and a
    TLS connection for abc.example.com reaches the backend, which terminates it (the
    client sees the backend's certificate: passthrough)."""
    port = free_port(GATEWAY_IP)
    manifests = SIMPLE.replace("GATEWAY_IP", GATEWAY_IP).replace("GATEWAY_PORT", str(port))
    snapshot, attachment = gateways.apply(manifests, backend("l4-backend", INFRA, 8443, pod))
    cond = conditions(snapshot, attachment, "gateway-conformance-infra-test")
    assert cond["Accepted"] == ("True", "Accepted")
    assert cond["ResolvedRefs"] == ("True", "ResolvedRefs")
    state = attachment.gateway(INFRA, "gateway-tlsroute")
    assert state is not None
    (listener,) = gateway_status(state, NOW).listeners
    assert listener.supported_kinds == (RouteGroupKind("TLSRoute", GROUP),)
    assert listener.attached_routes == 1
    address = gateways.dataplane.gateway_addresses()
    assert (GATEWAY_IP, port) in address.values()

    cn, body = _handshake(GATEWAY_IP, port, "abc.example.com")
    assert (cn, body) == ("tls-backend", b"tls-backend")
    # a name no TLSRoute has, and no SNI at all: reset, nothing is terminated here
    for name in ("other.example.com", None):
        with pytest.raises((ConnectionError, OSError)):
            _handshake(GATEWAY_IP, port, name)
    relayed = gateways.dataplane.collect().rows(PASSTHROUGH)
    key = (INFRA, "gateway-conformance-infra-test", "l4-backend", "8443", "abc.example.com")
    assert relayed[key][CONNECTIONS] == 1


def test_TLSRouteInvalidReferenceGrant() -> None:
    """tlsroute-invalid-reference-grant.go: a backendRef in another namespace whose
    ReferenceGrants do not cover it: ResolvedRefs False, RefNotPermitted (the route is
    still Accepted)."""
    service = backend("tls-backend", "gateway-conformance-app-backend", 443, None)
    snapshot = build_snapshot(objects(BASE, UPSTREAM_INVALID_REFERENCE_GRANT, service))
    attachment = attach_gateways(snapshot, config())
    cond = conditions(snapshot, attachment, "gateway-conformance-infra-test")
    assert cond["Accepted"] == ("True", "Accepted")
    assert cond["ResolvedRefs"] == ("False", "RefNotPermitted")


def test_TLSRouteListenerPassthroughSupportedKinds() -> None:
    """tlsroute-listener-passthrough-supported-kinds.go: kinds [TCPRoute, TLSRoute] on a
    TLS Passthrough listener: supportedKinds [TLSRoute], ResolvedRefs False
    InvalidRouteKinds, no route attached."""
    gateway = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gateway-tlsroute-passthrough-supported-kind, namespace: gateway-conformance-infra}
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.15.2}]
  listeners:
  - name: tls-passthrough
    port: 443
    protocol: TLS
    allowedRoutes:
      kinds: [{kind: TCPRoute}, {kind: TLSRoute}]
    tls: {mode: Passthrough}
"""
    snapshot = build_snapshot(objects(BASE, gateway))
    state = attach_gateways(snapshot, config()).gateway(
        INFRA, "gateway-tlsroute-passthrough-supported-kind"
    )
    assert state is not None
    (listener,) = gateway_status(state, NOW).listeners
    assert listener.supported_kinds == (RouteGroupKind("TLSRoute", GROUP),)
    resolved = next(c for c in listener.conditions if c.type == "ResolvedRefs")
    assert (resolved.status, resolved.reason) == ("False", "InvalidRouteKinds")
    assert listener.attached_routes == 0


def test_TLSRouteInvalidNoMatchingListener() -> None:
    """tlsroute-invalid-no-matching-listener.go: a TLSRoute on an HTTP listener, on one
    allowing only HTTPRoutes, on an HTTPS listener: Accepted False NotAllowedByListeners;
    on a sectionName that does not exist: NoMatchingParent; those Gateways have 0 routes
    attached."""
    snapshot = build_snapshot(objects(BASE, UPSTREAM_NO_MATCHING_LISTENER))
    attachment = attach_gateways(snapshot, config())
    expected = {
        "tlsroute-no-matching-listener": "NotAllowedByListeners",
        "tlsroute-not-allowed-kind": "NotAllowedByListeners",
        "tlsroute-wrong-protocol": "NotAllowedByListeners",
        "tlsroute-wrong-section-name": "NoMatchingParent",
    }
    for name, reason in expected.items():
        assert conditions(snapshot, attachment, name)["Accepted"] == ("False", reason), name
    for gateway in ("gateway-http-only", "gateway-tls-httproute-only", "gateway-https-only"):
        state = attachment.gateway(INFRA, gateway)
        assert state is not None
        assert all(ls.attached_routes == 0 for ls in gateway_status(state, NOW).listeners)


def test_tlsroute_manifests_are_validated() -> None:
    """The CRD's rules: hostnames required (v1, v1alpha3), no IP address; rules and a
    Service port required; errors name the field."""
    bad = """\
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: r, namespace: default}
spec:
  hostnames: [10.0.0.1]
  rules: [{backendRefs: [{name: svc}]}]
"""
    _, errors = parse_manifest_text(bad, "r.yaml")
    text = "\n".join(str(e) for e in errors)
    assert "spec.hostnames[0]" in text and "IP address" in text
    assert "spec.rules[0].backendRefs[0].port" in text
    _, errors = parse_manifest_text(bad.replace("  hostnames: [10.0.0.1]\n", ""), "r.yaml")
    assert any("spec.hostnames" in str(e) for e in errors)
    alpha2 = bad.replace("/v1\n", "/v1alpha2\n", 1).replace("  hostnames: [10.0.0.1]\n", "")
    ok, errors = parse_manifest_text(alpha2.replace("{name: svc}", "{name: svc, port: 443}"),
                                     "r.yaml")
    assert errors == [] and isinstance(ok[0], TLSRoute) and ok[0].hostnames == ()


def _handshake(ip: str, port: int, name: str | None) -> tuple[str, bytes]:
    import tests.ingress.passthroughkit as kit

    saved = kit.HOST
    kit.HOST = ip
    try:
        return handshake(port, name)
    finally:
        kit.HOST = saved


# conformance/tests/tlsroute-invalid-reference-grant.yaml (the Gateway on a loopback address)
UPSTREAM_INVALID_REFERENCE_GRANT = """\
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: reference-grant-wrong-namespace, namespace: gateway-conformance-infra}
spec:
  from: [{group: gateway.networking.k8s.io, kind: TLSRoute, namespace: gateway-conformance-infra}]
  to: [{group: "", kind: Service, name: tls-backend}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: reference-grant-wrong-from-group, namespace: gateway-conformance-app-backend}
spec:
  from: [{group: not-the-group-youre-looking-for, kind: TLSRoute,
          namespace: gateway-conformance-infra}]
  to: [{group: "", kind: Service, name: tls-backend}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: reference-grant-wrong-from-kind, namespace: gateway-conformance-app-backend}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: gateway-conformance-infra}]
  to: [{group: "", kind: Service, name: tls-backend}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata:
  name: reference-grant-wrong-from-namespace
  namespace: gateway-conformance-app-backend
spec:
  from: [{group: gateway.networking.k8s.io, kind: TLSRoute,
          namespace: not-the-namespace-youre-looking-for}]
  to: [{group: "", kind: Service, name: tls-backend}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: reference-grant-wrong-to-group, namespace: gateway-conformance-app-backend}
spec:
  from: [{group: gateway.networking.k8s.io, kind: TLSRoute, namespace: gateway-conformance-infra}]
  to: [{group: not-the-group-youre-looking-for, kind: Service, name: tls-backend}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: reference-grant-wrong-to-kind, namespace: gateway-conformance-app-backend}
spec:
  from: [{group: gateway.networking.k8s.io, kind: TLSRoute, namespace: gateway-conformance-infra}]
  to: [{group: "", kind: Secret, name: tls-backend}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: reference-grant-wrong-to-name, namespace: gateway-conformance-app-backend}
spec:
  from: [{group: gateway.networking.k8s.io, kind: TLSRoute, namespace: gateway-conformance-infra}]
  to: [{group: "", kind: Service, name: not-the-service-youre-looking-for}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: gateway-conformance-infra-test, namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: gateway-tlsroute}]
  hostnames: [abc.example.com]
  rules:
  - backendRefs: [{name: tls-backend, namespace: gateway-conformance-app-backend, port: 443}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: Gateway
metadata: {name: gateway-tlsroute, namespace: gateway-conformance-infra}
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.15.3}]
  listeners:
  - name: https
    port: 443
    protocol: TLS
    hostname: "*.example.com"
    allowedRoutes:
      namespaces: {from: Same}
      kinds: [{kind: TLSRoute}]
    tls: {mode: Passthrough}
"""

# conformance/tests/tlsroute-invalid-no-matching-listener.yaml (Gateways on loopback
# addresses)
UPSTREAM_NO_MATCHING_LISTENER = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gateway-http-only, namespace: gateway-conformance-infra}
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.15.4}]
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes: {namespaces: {from: Same}, kinds: [{kind: TLSRoute}]}
---
apiVersion: gateway.networking.k8s.io/v1alpha3
kind: TLSRoute
metadata: {name: tlsroute-no-matching-listener, namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: gateway-http-only}]
  hostnames: [tls.example.com]
  rules: [{backendRefs: [{name: tls-backend, port: 443}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gateway-tls-httproute-only, namespace: gateway-conformance-infra}
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.15.5}]
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes: {namespaces: {from: Same}, kinds: [{kind: HTTPRoute}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gateway-https-only, namespace: gateway-conformance-infra}
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.15.6}]
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    allowedRoutes: {namespaces: {from: Same}, kinds: [{kind: TLSRoute}]}
    tls:
      mode: Terminate
      certificateRefs: [{name: tls-validity-checks-certificate,
                         namespace: gateway-conformance-infra}]
---
apiVersion: gateway.networking.k8s.io/v1alpha3
kind: TLSRoute
metadata: {name: tlsroute-not-allowed-kind, namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: gateway-tls-httproute-only}]
  hostnames: [tls.example.com]
  rules: [{backendRefs: [{name: tls-backend, port: 443}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha3
kind: TLSRoute
metadata: {name: tlsroute-wrong-protocol, namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: gateway-https-only}]
  hostnames: [tls.example.com]
  rules: [{backendRefs: [{name: tls-backend, port: 443}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha3
kind: TLSRoute
metadata: {name: tlsroute-wrong-section-name, namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: gateway-http-only, sectionName: nonexistent-listener}]
  hostnames: [tls.example.com]
  rules: [{backendRefs: [{name: tls-backend, port: 443}]}]
"""
