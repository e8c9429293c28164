"""The status expectations of the Gateway API conformance suite, ported.

Each test names its upstream test (kubernetes-sigs/gateway-api conformance/tests/<file>.go,
ShortName) and uses that test's manifest (conformance/tests/<file>.yaml) with the base
objects of conformance/base/manifests.yaml (tests/discovery/gatewaykit.py). Traffic
expectations belong to the HTTPRoute translator; here the status seaway computes from
the objects is checked the way the upstream helpers check it.
"""

from __future__ import annotations

from discovery.gateway_hostnames import host_matches, specificity
from tests.discovery.gatewaykit import (
    APP,
    CONTROLLER,
    INFRA,
    WEB,
    ExpectedListener,
    World,
    config,
    find_condition,
    gateway_and_routes_accepted,
    gateway_has_zero_routes,
    gateway_must_have_condition,
    latest,
    listeners_match,
    route_has_no_accepted_parents,
    route_must_have_condition,
    route_resolved_refs_true,
    updates_by_key,
    with_status,
    world,
)

SAME = (INFRA, "same-namespace")
HTTP_OK = {"Accepted": ("True", ""), "ResolvedRefs": ("True", "")}


# -- gateway-with-attached-routes.go -----------------------------------------------------------

ATTACHED_ROUTES = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gateway-with-one-attached-route
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.11.1}]
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes:
      kinds:
      - kind: HTTPRoute
      namespaces:
        from: Selector
        selector:
          matchLabels:
            kubernetes.io/metadata.name: gateway-conformance-infra
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: http-route-1
  namespace: gateway-conformance-infra
spec:
  parentRefs:
  - kind: Gateway
    name: gateway-with-one-attached-route
    namespace: gateway-conformance-infra
  rules:
  - backendRefs:
    - name: infra-backend-v1
      port: 8080
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gateway-with-two-attached-routes
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.11.2}]
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    hostname: "foo.example.com"
    allowedRoutes:
      kinds:
      - kind: HTTPRoute
      namespaces:
        from: Selector
        selector:
          matchLabels:
            kubernetes.io/metadata.name: gateway-conformance-infra
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: http-route-2
  namespace: gateway-conformance-infra
spec:
  parentRefs:
  - kind: Gateway
    name: gateway-with-two-attached-routes
    namespace: gateway-conformance-infra
  rules:
  - backendRefs:
    - name: infra-backend-v1
      port: 8080
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: http-route-3
  namespace: gateway-conformance-infra
spec:
  parentRefs:
  - kind: Gateway
    name: gateway-with-two-attached-routes
    namespace: gateway-conformance-infra
  rules:
  - backendRefs:
    - name: infra-backend-v1
      port: 8080
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: http-route-not-accepted
  namespace: gateway-conformance-infra
spec:
  hostnames:
  - "not-accepted.test.com"
  parentRefs:
  - kind: Gateway
    name: gateway-with-two-attached-routes
    namespace: gateway-conformance-infra
  rules:
  - backendRefs:
    - name: infra-backend-v1
      port: 8080
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: unresolved-gateway-with-one-attached-unresolved-route
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.11.3}]
  listeners:
  - name: tls
    port: 443
    protocol: HTTPS
    allowedRoutes:
      kinds:
      - kind: HTTPRoute
      namespaces:
        from: Selector
        selector:
          matchLabels:
            kubernetes.io/metadata.name: gateway-conformance-infra
    tls:
      certificateRefs:
      - group: ""
        kind: Secret
        name: does-not-exist
      mode: Terminate
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: http-route-4
  namespace: gateway-conformance-infra
spec:
  parentRefs:
  - kind: Gateway
    name: unresolved-gateway-with-one-attached-unresolved-route
    namespace: gateway-conformance-infra
    sectionName: tls
  rules:
  - backendRefs:
    - name: does-not-exist
      port: 8080
"""


def test_GatewayWithAttachedRoutes() -> None:
    w = world(ATTACHED_ROUTES)
    # "Gateway listener should have one valid http routes attached"
    listeners_match(
        w.gateway(INFRA, "gateway-with-one-attached-route"),
        [ExpectedListener("http", ("HTTPRoute",), HTTP_OK, 1)],
    )
    # "Gateway listener should have two valid http routes attached"
    two = (INFRA, "gateway-with-two-attached-routes")
    listeners_match(w.gateway(*two), [ExpectedListener("http", ("HTTPRoute",), HTTP_OK, 2)])
    route_must_have_condition(
        w, (INFRA, "http-route-not-accepted"), two, "Accepted", "False",
        "NoMatchingListenerHostname",
    )  # fmt: skip
    # "Gateway listener should have AttachedRoutes set even when Gateway has unresolved refs"
    unresolved = (INFRA, "unresolved-gateway-with-one-attached-unresolved-route")
    listeners_match(
        w.gateway(*unresolved),
        [
            ExpectedListener(
                "tls",
                ("HTTPRoute",),
                {"Programmed": ("False", ""), "ResolvedRefs": ("False", "")},
                1,
            )
        ],
    )
    route_must_have_condition(w, (INFRA, "http-route-4"), unresolved, "ResolvedRefs", "False")


def test_GatewayWithAttachedRoutesWithPort8080() -> None:
    w = world("""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gateway-with-two-listeners-and-one-attached-route
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.11.4}]
  listeners:
  - name: http-unattached
    port: 8080
    protocol: HTTP
    allowedRoutes:
      kinds:
      - kind: HTTPRoute
      namespaces:
        from: All
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes:
      kinds:
      - kind: HTTPRoute
      namespaces:
        from: All
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: http-route-4-port-8080
  namespace: gateway-conformance-infra
spec:
  parentRefs:
  - kind: Gateway
    name: gateway-with-two-listeners-and-one-attached-route
    namespace: gateway-conformance-infra
    sectionName: http
  rules:
  - backendRefs:
    - name: infra-backend-v1
      port: 8080
""")
    listeners_match(
        w.gateway(INFRA, "gateway-with-two-listeners-and-one-attached-route"),
        [
            ExpectedListener("http-unattached", ("HTTPRoute",), HTTP_OK, 0),
            ExpectedListener("http", ("HTTPRoute",), HTTP_OK, 1),
        ],
    )


# -- gateway-invalid-route-kind.go -------------------------------------------------------------


def test_GatewayInvalidRouteKind() -> None:
    w = world("""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gateway-only-invalid-route-kind
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.11.5}]
  listeners:
    - name: http
      port: 80
      protocol: HTTP
      allowedRoutes:
        namespaces:
          from: All
        kinds:
          - kind: InvalidRoute
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gateway-supported-and-invalid-route-kind
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.11.6}]
  listeners:
    - name: http
      port: 80
      protocol: HTTP
      allowedRoutes:
        namespaces:
          from: All
        kinds:
          - kind: InvalidRoute
          - kind: HTTPRoute
""")
    invalid = {"ResolvedRefs": ("False", "InvalidRouteKinds")}
    listeners_match(
        w.gateway(INFRA, "gateway-only-invalid-route-kind"),
        [ExpectedListener("http", (), invalid, 0)],
    )
    listeners_match(
        w.gateway(INFRA, "gateway-supported-and-invalid-route-kind"),
        [ExpectedListener("http", ("HTTPRoute",), invalid, 0)],
    )


# -- gateway-invalid-tls-configuration.go ------------------------------------------------------


def _https_gateway(name: str, address: str, ref: str) -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: {name}
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{{GATEWAY_CLASS_NAME}}"
  addresses: [{{value: {address}}}]
  listeners:
    - name: https
      port: 443
      protocol: HTTPS
      allowedRoutes:
        namespaces:
          from: All
      tls:
        certificateRefs:
          - {ref}
"""


def test_GatewayInvalidTLSConfiguration() -> None:
    w = world(
        _https_gateway(
            "gateway-certificate-nonexistent-secret",
            "127.0.12.1",
            '{group: "", kind: Secret, name: nonexistent-certificate}',
        ),
        _https_gateway(
            "gateway-certificate-unsupported-group",
            "127.0.12.2",
            "{group: wrong.group.company.io, kind: Secret, name: tls-validity-checks-certificate}",
        ),
        _https_gateway(
            "gateway-certificate-unsupported-kind",
            "127.0.12.3",
            '{group: "", kind: WrongKind, name: tls-validity-checks-certificate}',
        ),
        _https_gateway(
            "gateway-certificate-malformed-secret",
            "127.0.12.4",
            '{group: "", kind: Secret, name: malformed-certificate}',
        ),
        """
apiVersion: v1
kind: Secret
metadata:
  name: malformed-certificate
  namespace: gateway-conformance-infra
data:
  tls.crt: SGVsbG8gd29ybGQK
  tls.key: SGVsbG8gd29ybGQK
type: kubernetes.io/tls
""",
    )
    expected = [
        ExpectedListener(
            "https", ("HTTPRoute",), {"ResolvedRefs": ("False", "InvalidCertificateRef")}, 0
        )
    ]
    for name in (
        "gateway-certificate-nonexistent-secret",
        "gateway-certificate-unsupported-group",
        "gateway-certificate-unsupported-kind",
        "gateway-certificate-malformed-secret",
    ):
        listeners_match(w.gateway(INFRA, name), expected)


# -- gateway-secret-*-reference-grant*.go -------------------------------------------------------

CROSS_NS_CERT = _https_gateway(
    "gateway-secret-reference-grant",
    "127.0.12.5",
    '{group: "", kind: Secret, name: certificate, namespace: gateway-conformance-web-backend}',
)
REF_NOT_PERMITTED = [
    ExpectedListener("https", ("HTTPRoute",), {"ResolvedRefs": ("False", "RefNotPermitted")}, 0)
]
PROGRAMMED = [
    ExpectedListener(
        "https",
        ("HTTPRoute",),
        {"Programmed": ("True", "Programmed"), "ResolvedRefs": ("True", "")},
        0,
    )
]


def _grant(name: str, namespace: str, from_: str, to: str) -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  from: [{from_}]
  to: [{to}]
"""


GW_FROM = f"{{group: gateway.networking.k8s.io, kind: Gateway, namespace: {INFRA}}}"


def test_GatewaySecretMissingReferenceGrant() -> None:
    w = world(CROSS_NS_CERT)
    listeners_match(w.gateway(INFRA, "gateway-secret-reference-grant"), REF_NOT_PERMITTED)


def test_GatewaySecretInvalidReferenceGrant() -> None:
    w = world(
        CROSS_NS_CERT,
        _grant("reference-grant-wrong-namespace", APP, GW_FROM,
               '{group: "", kind: Secret, name: certificate}'),
        _grant("reference-grant-wrong-from-group", WEB,
               f"{{group: not-the-group-youre-looking-for, kind: Gateway, namespace: {INFRA}}}",
               '{group: "", kind: Secret, name: certificate}'),
        _grant("reference-grant-wrong-from-kind", WEB,
               f"{{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: {INFRA}}}",
               '{group: "", kind: Secret, name: certificate}'),
        _grant("reference-grant-wrong-from-namespace", WEB,
               "{group: gateway.networking.k8s.io, kind: Gateway, "
               "namespace: not-the-namespace-youre-looking-for}",
               '{group: "", kind: Secret, name: certificate}'),
        _grant("reference-grant-wrong-to-group", WEB, GW_FROM,
               "{group: not-the-group-youre-looking-for, kind: Secret, "
               "name: not-the-certificate-youre-looking-for}"),
        _grant("reference-grant-wrong-to-kind", WEB, GW_FROM,
               '{group: "", kind: Service, name: certificate}'),
        _grant("reference-grant-wrong-to-name", WEB, GW_FROM,
               '{group: "", kind: Secret, name: not-the-certificate-youre-looking-for}'),
    )  # fmt: skip
    listeners_match(w.gateway(INFRA, "gateway-secret-reference-grant"), REF_NOT_PERMITTED)


def test_GatewaySecretReferenceGrantAllInNamespace() -> None:
    w = world(
        CROSS_NS_CERT,
        _grant("reference-grant-all-in-namespace", WEB, GW_FROM, '{group: "", kind: Secret}'),
    )
    listeners_match(w.gateway(INFRA, "gateway-secret-reference-grant"), PROGRAMMED)


def test_GatewaySecretReferenceGrantSpecific() -> None:
    w = world(
        CROSS_NS_CERT,
        _grant("reference-grant-specific", WEB, GW_FROM,
               '{group: "", kind: Secret, name: certificate}'),
    )  # fmt: skip
    listeners_match(w.gateway(INFRA, "gateway-secret-reference-grant"), PROGRAMMED)
    assert [s.meta.name for s in w.attachment.gateway(INFRA, "gateway-secret-reference-grant")
            .listeners[0].certificates] == ["certificate"]  # fmt: skip


# -- *-observed-generation-bump.go -----------------------------------------------------------


def test_GatewayObservedGenerationBump() -> None:
    original = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gateway-observed-generation-bump
  namespace: gateway-conformance-infra
  generation: 1
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.13.1}]
  listeners:
    - name: http
      hostname: "bar.com"
      port: 80
      protocol: HTTP
      allowedRoutes:
        namespaces:
          from: All
"""
    gw = (INFRA, "gateway-observed-generation-bump")
    w = world(original)
    gateway_must_have_condition(w, gw, "Accepted", "True")
    gateway_must_have_condition(w, gw, "Programmed", "True")
    # The status as written, then the spec patched (a listener added): generation 2.
    written = with_status(original, updates_by_key(w))
    mutated = written.replace("generation: 1", "generation: 2").replace(
        "  listeners:\n",
        "  listeners:\n  - {name: alternate, hostname: foo.com, port: 80, protocol: HTTP,"
        " allowedRoutes: {namespaces: {from: All}}}\n",
    )
    w2 = world(mutated)
    assert w2.gateway_generation(*gw) == 2
    gateway_must_have_condition(w2, gw, "Accepted", "True")
    gateway_must_have_condition(w2, gw, "Programmed", "True")
    assert all(latest(ls.conditions, 2) for ls in w2.gateway(*gw).listeners)


def test_GatewayClassObservedGenerationBump() -> None:
    original = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: gatewayclass-observed-generation-bump
  generation: 1
spec:
  controllerName: "seaway.dev/gateway-controller"
  description: "old"
"""
    w = world(original, base=False)
    conditions = w.class_conditions("gatewayclass-observed-generation-bump")
    assert find_condition(conditions, "Accepted") and latest(conditions, 1)
    mutated = with_status(original, updates_by_key(w)).replace("generation: 1", "generation: 2")
    w2 = world(mutated.replace("old", "new"), base=False)
    conditions = w2.class_conditions("gatewayclass-observed-generation-bump")
    assert find_condition(conditions, "Accepted") and latest(conditions, 2)


def test_HTTPRouteObservedGenerationBump() -> None:
    original = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: observed-generation-bump
  namespace: gateway-conformance-infra
  generation: 1
spec:
  parentRefs:
  - name: same-namespace
  rules:
  - backendRefs:
    - name: infra-backend-v1
      port: 8080
"""
    route = (INFRA, "observed-generation-bump")
    w = world(original)
    assert all(latest(p.conditions, 1) for p in w.parents(*route))
    mutated = (
        with_status(original, updates_by_key(w))
        .replace("generation: 1", "generation: 2")
        .replace("infra-backend-v1", "infra-backend-v2")
    )
    w2 = world(mutated)
    route_must_have_condition(w2, route, SAME, "Accepted", "True")
    route_resolved_refs_true(w2, route, SAME)
    assert all(latest(p.conditions, 2) for p in w2.parents(*route))


# -- gateway-modify-listeners.go ---------------------------------------------------------------


def test_GatewayModifyListeners() -> None:
    add = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gateway-add-listener
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.13.2}]
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    hostname: "secure.test.com"
    allowedRoutes:
      namespaces:
        from: All
    tls:
      certificateRefs:
      - group: ""
        kind: Secret
        name: tls-validity-checks-certificate
        namespace: gateway-conformance-infra
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: http-route-1
  namespace: gateway-conformance-infra
spec:
  parentRefs:
  - kind: Gateway
    name: gateway-add-listener
    namespace: gateway-conformance-infra
  rules:
  - backendRefs:
    - name: infra-backend-v1
      port: 8080
"""
    gw = (INFRA, "gateway-add-listener")
    before = world(add)
    listeners_match(before.gateway(*gw), [ExpectedListener("https", ("HTTPRoute",), HTTP_OK, 1)])
    # "should be able to add a listener that then becomes available for routing traffic"
    added = add.replace(
        "  listeners:\n",
        "  listeners:\n  - {name: http, port: 80, protocol: HTTP, hostname: data.test.com,"
        " allowedRoutes: {namespaces: {from: All}}}\n",
    )
    listeners_match(
        world(added).gateway(*gw),
        [
            ExpectedListener("https", ("HTTPRoute",), HTTP_OK, 1),
            ExpectedListener("http", ("HTTPRoute",), HTTP_OK, 1),
        ],
    )
    # "should be able to remove listeners, which would then stop routing the relevant
    # traffic" (gateway-remove-listener: https and http, then only http)
    both = (
        added.replace("gateway-add-listener", "gateway-remove-listener")
        .replace("hostname: data.test.com,", "")
    )  # fmt: skip
    gw = (INFRA, "gateway-remove-listener")
    listeners_match(
        world(both).gateway(*gw),
        [
            ExpectedListener("https", ("HTTPRoute",), HTTP_OK, 1),
            ExpectedListener("http", ("HTTPRoute",), HTTP_OK, 1),
        ],
    )
    removed = both.replace(
        both[both.index("  - name: https") : both.index("---")], ""
    )
    listeners_match(
        world(removed).gateway(*gw), [ExpectedListener("http", ("HTTPRoute",), HTTP_OK, 1)]
    )


# -- gateway-invalid-listeners-unsupported-protocol.go ----------------------------------------


def test_GatewayListenerUnsupportedProtocol() -> None:
    w = world("""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gateway-only-unsupported-protocols
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.13.3}]
  listeners:
    - name: invalid
      port: 1111
      protocol: INVALID
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gateway-supported-and-unsupported-protocols
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.13.4}]
  listeners:
    - name: http
      port: 80
      protocol: HTTP
    - name: invalid
      port: 1111
      protocol: INVALID
""")
    invalid = ExpectedListener("invalid", (), {"Accepted": ("False", "UnsupportedProtocol")}, 0)
    only = (INFRA, "gateway-only-unsupported-protocols")
    gateway_must_have_condition(w, only, "Accepted", "False", "ListenersNotValid")
    listeners_match(w.gateway(*only), [invalid])
    mixed = (INFRA, "gateway-supported-and-unsupported-protocols")
    gateway_must_have_condition(w, mixed, "Accepted", "True", "ListenersNotValid")
    listeners_match(
        w.gateway(*mixed),
        [ExpectedListener("http", ("HTTPRoute",), {"Accepted": ("True", "Accepted")}, 0), invalid],
    )


# -- gateway-static-addresses.go, gateway-optional-address-value.go ---------------------------


def test_GatewayStaticAddresses() -> None:
    manifest = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gateway-static-addresses
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses:
  - type: "test/fake-invalid-type"
    value: "fake address teehee!"
  - value: "198.51.100.7"
  - value: "127.0.13.5"
  listeners:
  - name: http
    port: 8080
    protocol: HTTP
"""
    gw = (INFRA, "gateway-static-addresses")
    # 198.51.100.7 (TEST-NET-2) is not an address of this node; 127.0.13.5 is.
    cfg = config(local_addresses=frozenset({"127.0.13.5", "127.0.10.1", "127.0.10.2",
                                            "127.0.10.3"}))  # fmt: skip
    w = world(manifest, cfg=cfg)
    gateway_must_have_condition(w, gw, "Accepted", "False", "UnsupportedAddress")
    w = world(manifest.replace('  - type: "test/fake-invalid-type"\n    value: "fake address '
                               'teehee!"\n', ""), cfg=cfg)  # fmt: skip
    gateway_must_have_condition(w, gw, "Accepted", "True", "Accepted")
    gateway_must_have_condition(w, gw, "Programmed", "False", "AddressNotUsable")
    w = world(manifest.replace('  - type: "test/fake-invalid-type"\n    value: "fake address '
                               'teehee!"\n', "").replace('  - value: "198.51.100.7"\n', ""),
              cfg=cfg)  # fmt: skip
    gateway_must_have_condition(w, gw, "Accepted", "True", "Accepted")
    gateway_must_have_condition(w, gw, "Programmed", "True", "Programmed")
    listeners_match(w.gateway(*gw), [ExpectedListener("http", ("HTTPRoute",), HTTP_OK, 0)])
    addresses = w.gateway(*gw).addresses
    assert [(a.type, a.value) for a in addresses] == [("IPAddress", "127.0.13.5")]


def test_GatewayOptionalAddressValue() -> None:
    w = world("""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gateway-without-address-value
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses:
  - type: "IPAddress"
  listeners:
  - name: http
    port: 8080
    protocol: HTTP
""")
    status = w.gateway(INFRA, "gateway-without-address-value")
    assert [a.value for a in status.addresses] == ["10.0.0.5"]  # the node's, assigned
    gateway_must_have_condition(w, (INFRA, "gateway-without-address-value"), "Programmed", "True")


# -- gateway-invalid-parameters-ref.go ----------------------------------------------------------


def test_GatewayInvalidParametersRef() -> None:
    gw = (INFRA, "gateway-invalid-parameters-ref")
    w = world("""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gateway-invalid-parameters-ref
  namespace: gateway-conformance-infra
  annotations:
    gateway-api/skip-this-for-readiness: "true"
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  listeners:
    - name: http
      port: 80
      protocol: HTTP
  infrastructure:
    parametersRef:
      group: invalid.io
      kind: InvalidParameters
      name: invalid
""")
    assert latest(w.gateway(*gw).conditions, w.gateway_generation(*gw))
    gateway_must_have_condition(w, gw, "Accepted", "False", "InvalidParameters")
    gateway_must_have_condition(w, gw, "Programmed", "False")


def test_gateway_infrastructure_without_parameters_is_accepted() -> None:
    """spec.infrastructure labels and annotations alone do not make a Gateway invalid."""
    gw = (INFRA, "with-infrastructure")
    w = world("""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: with-infrastructure, namespace: gateway-conformance-infra}
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  listeners: [{name: http, port: 8123, protocol: HTTP}]  # 80 is the base Gateways'
  infrastructure:
    labels: {team: web}
    annotations: {note: kept}
""")
    gateway_must_have_condition(w, gw, "Accepted", "True")


# -- gateway-name-maximum-length.go -------------------------------------------------------------


def test_GatewayNameMaximumLength() -> None:
    name = "gateway-name-maximum-length-" + "a" * (253 - len("gateway-name-maximum-length-"))
    assert len(name) == 253
    w = world(f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: {name}
  namespace: gateway-conformance-infra
  annotations:
    gateway-api/skip-this-for-readiness: "true"
spec:
  gatewayClassName: "{{GATEWAY_CLASS_NAME}}"
  listeners:
    - name: http
      port: 80
      protocol: HTTP
""")
    conditions = w.gateway(INFRA, name).conditions
    assert conditions  # reconciled: it has conditions, for its latest generation
    assert latest(conditions, w.gateway_generation(INFRA, name)), conditions


# -- httproute-invalid-*.go ---------------------------------------------------------------------


def _route(name: str, namespace: str, parent: str, backends: str, extra_parent: str = "") -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
  namespace: {namespace}
spec:
  parentRefs:
  - {{{parent}}}
  rules:
  - backendRefs:
    - {{{backends}}}
"""


def test_HTTPRouteInvalidBackendRefUnknownKind() -> None:
    w = world(_route("invalid-backend-ref-unknown-kind", INFRA, "name: same-namespace",
                     "group: unknownkind.example.com, kind: NonExistent, name: infra-backend-v1,"
                     " port: 8080"))  # fmt: skip
    route = (INFRA, "invalid-backend-ref-unknown-kind")
    gateway_and_routes_accepted(w, SAME, route)
    route_must_have_condition(w, route, SAME, "ResolvedRefs", "False", "InvalidKind")
    backend = w.attachment.route(*route).rules[0].backends[0]  # type: ignore[union-attr]
    assert not backend.ok  # the translator answers 500 for it


def test_HTTPRouteInvalidCrossNamespaceBackendRef() -> None:
    w = world(_route("invalid-cross-namespace-backend-ref", INFRA, "name: same-namespace",
                     f"name: web-backend, namespace: {WEB}, port: 8080"))  # fmt: skip
    route = (INFRA, "invalid-cross-namespace-backend-ref")
    gateway_and_routes_accepted(w, SAME, route)
    route_must_have_condition(w, route, SAME, "ResolvedRefs", "False", "RefNotPermitted")


def test_HTTPRouteInvalidCrossNamespaceParentRef() -> None:
    w = world(_route("invalid-cross-namespace-parent-ref", WEB,
                     f"name: same-namespace, namespace: {INFRA}", "name: web-backend, port: 8080"))
    route = (WEB, "invalid-cross-namespace-parent-ref")
    route_resolved_refs_true(w, route, SAME)
    route_must_have_condition(w, route, SAME, "Accepted", "False", "NotAllowedByListeners")
    route_has_no_accepted_parents(w, route)
    gateway_has_zero_routes(w, SAME)


def test_HTTPRouteInvalidNonExistentBackendRef() -> None:
    w = world(_route("invalid-nonexistent-backend-ref", INFRA, "name: same-namespace",
                     f"name: nonexistent, namespace: {INFRA}, port: 8080"))  # fmt: skip
    route = (INFRA, "invalid-nonexistent-backend-ref")
    gateway_and_routes_accepted(w, SAME, route)
    route_must_have_condition(w, route, SAME, "ResolvedRefs", "False", "BackendNotFound")


def test_HTTPRouteInvalidParentRefNotMatchingListenerPort() -> None:
    w = world(_route("httproute-listener-not-matching-route-port", INFRA,
                     f"name: same-namespace, namespace: {INFRA}, port: 81",
                     "name: infra-backend-v1, kind: Service, port: 8080"))  # fmt: skip
    route = (INFRA, "httproute-listener-not-matching-route-port")
    route_resolved_refs_true(w, route, SAME)
    route_must_have_condition(w, route, SAME, "Accepted", "False", "NoMatchingParent")
    route_has_no_accepted_parents(w, route)
    gateway_has_zero_routes(w, SAME)


def test_HTTPRouteInvalidParentRefNotMatchingSectionName() -> None:
    w = world(_route("httproute-listener-not-matching-section-name", INFRA,
                     f"name: same-namespace, namespace: {INFRA}, port: 80, sectionName: http1",
                     "name: infra-backend-v1, kind: Service, port: 8080"))  # fmt: skip
    route = (INFRA, "httproute-listener-not-matching-section-name")
    route_must_have_condition(w, route, SAME, "Accepted", "False", "NoMatchingParent")
    route_has_no_accepted_parents(w, route)
    gateway_has_zero_routes(w, SAME)


def test_HTTPRouteInvalidParentRefSectionNameNotMatchingPort() -> None:
    gw_name = "gateway-with-one-not-matching-port-and-section-name-route"
    w = world(
        f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: {gw_name}
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{{GATEWAY_CLASS_NAME}}"
  addresses: [{{value: 127.0.14.1}}]
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes:
      kinds:
      - kind: HTTPRoute
      namespaces:
        from: All
""",
        _route("httproute-listener-section-name-not-matching-port", INFRA,
               f"name: {gw_name}, namespace: {INFRA}, sectionName: http, port: 81",
               "name: infra-backend-v1, kind: Service, port: 8080"),
    )  # fmt: skip
    route = (INFRA, "httproute-listener-section-name-not-matching-port")
    gw = (INFRA, gw_name)
    route_must_have_condition(w, route, gw, "Accepted", "False", "NoMatchingParent")
    route_has_no_accepted_parents(w, route)
    gateway_has_zero_routes(w, gw)


RT_FROM = f"{{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: {INFRA}}}"


def test_HTTPRouteInvalidReferenceGrant() -> None:
    w = world(
        _grant("reference-grant-wrong-namespace", INFRA, RT_FROM,
               '{group: "", kind: Service, name: web-backend}'),
        _grant("reference-grant-wrong-from-group", WEB,
               f"{{group: not-the-group-youre-looking-for, kind: HTTPRoute, namespace: {INFRA}}}",
               '{group: "", kind: Service, name: web-backend}'),
        _grant("reference-grant-wrong-from-kind", WEB,
               f"{{group: gateway.networking.k8s.io, kind: Gateway, namespace: {INFRA}}}",
               '{group: "", kind: Service, name: web-backend}'),
        _grant("reference-grant-wrong-from-namespace", WEB,
               "{group: gateway.networking.k8s.io, kind: HTTPRoute, "
               "namespace: not-the-namespace-youre-looking-for}",
               '{group: "", kind: Service, name: web-backend}'),
        _grant("reference-grant-wrong-to-group", WEB, RT_FROM,
               "{group: not-the-group-youre-looking-for, kind: Service, name: web-backend}"),
        _grant("reference-grant-wrong-to-kind", WEB, RT_FROM,
               '{group: "", kind: Secret, name: web-backend}'),
        _grant("reference-grant-wrong-to-name", WEB, RT_FROM,
               '{group: "", kind: Secret, name: not-the-service-youre-looking-for}'),
        _route("reference-grant", INFRA, "name: same-namespace",
               f"name: web-backend, namespace: {WEB}, port: 8080"),
    )  # fmt: skip
    route = (INFRA, "reference-grant")
    gateway_and_routes_accepted(w, SAME, route)
    route_must_have_condition(w, route, SAME, "ResolvedRefs", "False", "RefNotPermitted")


def test_HTTPRouteReferenceGrant() -> None:
    grant = _grant("reference-grant", WEB, RT_FROM, '{group: "", kind: Service, name: web-backend}')
    route_doc = _route("reference-grant", INFRA, "name: same-namespace",
                       f"name: web-backend, namespace: {WEB}, port: 8080")  # fmt: skip
    route = (INFRA, "reference-grant")
    w = world(grant, route_doc)
    gateway_and_routes_accepted(w, SAME, route)
    route_resolved_refs_true(w, route, SAME)
    backend = w.attachment.route(*route).rules[0].backends[0]  # type: ignore[union-attr]
    assert backend.ok and backend.namespace == WEB and backend.service is not None
    # "Simple HTTP request should return 500 after deleting the relevant reference grant"
    w = world(route_doc)
    route_must_have_condition(w, route, SAME, "ResolvedRefs", "False", "RefNotPermitted")


def test_HTTPRoutePartiallyInvalidViaInvalidReferenceGrant() -> None:
    w = world(
        _grant("invalid-reference-grant", APP, RT_FROM,
               '{group: "", kind: Service, name: app-backend-v1}'),
        f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: invalid-reference-grant
  namespace: gateway-conformance-infra
spec:
  parentRefs:
    - name: same-namespace
  rules:
    - matches:
        - path:
            type: PathPrefix
            value: "/v2"
      backendRefs:
        - name: app-backend-v2
          namespace: {APP}
          port: 8080
    - backendRefs:
        - name: app-backend-v1
          namespace: {APP}
          port: 8080
""",
    )  # fmt: skip
    route = (INFRA, "invalid-reference-grant")
    gateway_and_routes_accepted(w, SAME, route)
    route_must_have_condition(w, route, SAME, "ResolvedRefs", "False", "RefNotPermitted")
    state = w.attachment.route(*route)
    assert state is not None
    # /v2 -> 500 (app-backend-v2 not granted); / -> app-backend-v1 (granted).
    assert [b.ok for r in state.rules for b in r.backends] == [False, True]


# -- httproute-hostname-intersection.go ---------------------------------------------------------

HOSTNAME_INTERSECTION = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: httproute-hostname-intersection
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.15.1}]
  listeners:
  - name: listener-1
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Same
    hostname: very.specific.com
  - name: listener-2
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Same
    hostname: "*.wildcard.io"
  - name: listener-3
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Same
    hostname: "*.anotherwildcard.io"
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: httproute-hostname-intersection-all
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.15.2}]
  listeners:
  - name: listener-1
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Same
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: specific-host-matches-listener-specific-host
  namespace: gateway-conformance-infra
spec:
  parentRefs:
  - name: httproute-hostname-intersection
    namespace: gateway-conformance-infra
  hostnames:
  - non.matching.com
  - "*.nonmatchingwildcard.io"
  - very.specific.com
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /s1
    backendRefs:
    - name: infra-backend-v1
      port: 8080
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: specific-host-matches-listener-wildcard-host
  namespace: gateway-conformance-infra
spec:
  parentRefs:
  - name: httproute-hostname-intersection
    namespace: gateway-conformance-infra
  hostnames:
  - non.matching.com
  - wildcard.io
  - foo.wildcard.io
  - bar.wildcard.io
  - foo.bar.wildcard.io
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /s2
    backendRefs:
    - name: infra-backend-v2
      port: 8080
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: wildcard-host-matches-listener-specific-host
  namespace: gateway-conformance-infra
spec:
  parentRefs:
  - name: httproute-hostname-intersection
    namespace: gateway-conformance-infra
  hostnames:
  - non.matching.com
  - "*.specific.com"
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /s3
    backendRefs:
    - name: infra-backend-v3
      port: 8080
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: wildcard-host-matches-listener-wildcard-host
  namespace: gateway-conformance-infra
spec:
  parentRefs:
  - name: httproute-hostname-intersection
    namespace: gateway-conformance-infra
  hostnames:
  - "*.anotherwildcard.io"
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /s4
    backendRefs:
    - name: infra-backend-v1
      port: 8080
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: no-intersecting-hosts
  namespace: gateway-conformance-infra
spec:
  parentRefs:
  - name: httproute-hostname-intersection
    namespace: gateway-conformance-infra
  hostnames:
  - specific.but.wrong.com
  - wildcard.io
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /s5
    backendRefs:
    - name: infra-backend-v2
      port: 8080
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: httproute-hostname-intersection-all
  namespace: gateway-conformance-infra
spec:
  parentRefs:
  - name: httproute-hostname-intersection-all
    namespace: gateway-conformance-infra
  hostnames:
  - first.com
  - sub.first.com
  - second.com
  - sub.second.com
  rules:
  - backendRefs:
    - name: infra-backend-v2
      port: 8080
"""


def _served_by(w: World, gateway: str, host: str, path: str) -> str:
    """Which route's backend a request reaches through the attached listeners'
    effective hostnames (a stand-in for the router: the most specific listener
    hostname that matches the host is chosen, as the spec requires), or "404"."""
    state = w.attachment.gateway(INFRA, gateway)
    assert state is not None
    host = host.split(":", 1)[0]
    listeners = sorted(
        (ls for ls in state.listeners if host_matches(ls.listener.hostname, host)),
        key=lambda ls: specificity(ls.listener.hostname),
        reverse=True,
    )
    if not listeners:
        return "404"
    chosen = listeners[0].listener.name
    for rs in w.attachment.routes:
        for parent in rs.parents:
            if parent.gateway.gateway.meta.name != gateway or not parent.accepted.status:
                continue
            for att in parent.listeners:
                if att.name != chosen:
                    continue
                if att.hostnames and not any(host_matches(h, host) for h in att.hostnames):
                    continue
                for rule in rs.rules:
                    prefix = rule.rule.matches[0].path.value
                    if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                        return rule.backends[0].ref.name
    return "404"


def test_HTTPRouteHostnameIntersection() -> None:
    w = world(HOSTNAME_INTERSECTION)
    gw = (INFRA, "httproute-hostname-intersection")
    routes = [
        (INFRA, "specific-host-matches-listener-specific-host"),
        (INFRA, "specific-host-matches-listener-wildcard-host"),
        (INFRA, "wildcard-host-matches-listener-specific-host"),
        (INFRA, "wildcard-host-matches-listener-wildcard-host"),
    ]
    # "HTTPRoutes that do intersect with listener hostnames"
    gateway_and_routes_accepted(w, gw, *routes)
    for route in routes:
        route_resolved_refs_true(w, route, gw)
    name = "httproute-hostname-intersection"
    cases = [
        ("very.specific.com", "/s1", "infra-backend-v1"),
        ("very.specific.com:1234", "/s1", "infra-backend-v1"),
        ("non.matching.com", "/s1", "404"),
        ("foo.nonmatchingwildcard.io", "/s1", "404"),
        ("foo.wildcard.io", "/s1", "404"),
        ("very.specific.com", "/non-matching-prefix", "404"),
        ("foo.wildcard.io", "/s2", "infra-backend-v2"),
        ("bar.wildcard.io", "/s2", "infra-backend-v2"),
        ("foo.bar.wildcard.io", "/s2", "infra-backend-v2"),
        ("non.matching.com", "/s2", "404"),
        ("wildcard.io", "/s2", "404"),
        ("very.specific.com", "/s2", "404"),
        ("foo.wildcard.io", "/non-matching-prefix", "404"),
        ("very.specific.com", "/s3", "infra-backend-v3"),
        ("non.matching.com", "/s3", "404"),
        ("foo.specific.com", "/s3", "404"),
        ("foo.wildcard.io", "/s3", "404"),
        ("very.specific.com", "/non-matching-prefix", "404"),
        ("foo.anotherwildcard.io", "/s4", "infra-backend-v1"),
        ("bar.anotherwildcard.io", "/s4", "infra-backend-v1"),
        ("foo.bar.anotherwildcard.io", "/s4", "infra-backend-v1"),
        ("anotherwildcard.io", "/s4", "404"),
        ("foo.wildcard.io", "/s4", "404"),
        ("very.specific.com", "/s4", "404"),
        ("foo.anotherwildcard.io", "/non-matching-prefix", "404"),
        # "HTTPRoutes that do not intersect with listener hostnames"
        ("specific.but.wrong.com", "/s5", "404"),
        ("wildcard.io", "/s5", "404"),
    ]
    for host, path, expected in cases:
        assert _served_by(w, name, host, path) == expected, (host, path)
    parents = w.parents(INFRA, "no-intersecting-hosts")
    assert len(parents) == 1
    ref = parents[0].parent_ref
    assert (ref.group, ref.kind, ref.namespace, ref.name) == (
        "gateway.networking.k8s.io", "Gateway", INFRA, name,
    )  # fmt: skip
    assert parents[0].controller_name == CONTROLLER
    assert find_condition(parents[0].conditions, "Accepted", "False", "NoMatchingListenerHostname")
    # "HTTPRoutes have to be counted in AttachedRoutes only if they are Accepted"
    listeners_match(
        w.gateway(*gw),
        [
            ExpectedListener("listener-1", ("HTTPRoute",), HTTP_OK, 2),
            ExpectedListener("listener-2", ("HTTPRoute",), HTTP_OK, 1),
            ExpectedListener("listener-3", ("HTTPRoute",), HTTP_OK, 1),
        ],
    )
    # "HTTPRoutes intersects with an unspecified hostname listener"
    all_gw = (INFRA, "httproute-hostname-intersection-all")
    gateway_and_routes_accepted(w, all_gw, (INFRA, "httproute-hostname-intersection-all"))
    for host, expected in [
        ("first.com", "infra-backend-v2"),
        ("sub.first.com", "infra-backend-v2"),
        ("second.com", "infra-backend-v2"),
        ("sub.second.com", "infra-backend-v2"),
        ("third.com", "404"),
        ("sub.third.com", "404"),
    ]:
        assert _served_by(w, all_gw[1], host, "/") == expected, host


# -- httproute-disallowed-kind.go ------------------------------------------------------------


def test_HTTPRouteDisallowedKind() -> None:
    w = world(
        """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: tlsroutes-only
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.16.1}]
  listeners:
  - name: tls
    port: 443
    protocol: TLS
    tls:
      mode: Passthrough
    allowedRoutes:
      namespaces:
        from: Same
      kinds:
      - kind: TLSRoute
""",
        _route("disallowed-kind", INFRA, f"name: tlsroutes-only, namespace: {INFRA}",
               "name: infra-backend-v1, port: 8080"),
    )  # fmt: skip
    route, gw = (INFRA, "disallowed-kind"), (INFRA, "tlsroutes-only")
    route_resolved_refs_true(w, route, gw)
    route_must_have_condition(w, route, gw, "Accepted", "False", "NotAllowedByListeners")
    route_has_no_accepted_parents(w, route)
    gateway_has_zero_routes(w, gw)


# -- httproute-listener-hostname-matching.go, httproute-listener-port-matching.go ------------


def test_HTTPRouteListenerHostnameMatching() -> None:
    gw_doc = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: httproute-listener-hostname-matching
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  addresses: [{value: 127.0.16.2}]
  listeners:
  - {name: listener-1, port: 80, protocol: HTTP, hostname: bar.com,
     allowedRoutes: {namespaces: {from: Same}}}
  - {name: listener-2, port: 80, protocol: HTTP, hostname: foo.bar.com,
     allowedRoutes: {namespaces: {from: Same}}}
  - {name: listener-3, port: 80, protocol: HTTP, hostname: "*.bar.com",
     allowedRoutes: {namespaces: {from: Same}}}
  - {name: listener-4, port: 80, protocol: HTTP, hostname: "*.foo.com",
     allowedRoutes: {namespaces: {from: Same}}}
"""
    g = "httproute-listener-hostname-matching"
    parent = f"name: {g}, namespace: {INFRA}"
    w = world(
        gw_doc,
        _route("backend-v1", INFRA, parent + ", sectionName: listener-1",
               "name: infra-backend-v1, port: 8080"),
        _route("backend-v2", INFRA, parent + ", sectionName: listener-2",
               "name: infra-backend-v2, port: 8080"),
        f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: backend-v3, namespace: {INFRA}}}
spec:
  parentRefs:
  - {{{parent}, sectionName: listener-3}}
  - {{{parent}, sectionName: listener-4}}
  rules:
  - backendRefs: [{{name: infra-backend-v3, port: 8080}}]
""",
    )  # fmt: skip
    gw = (INFRA, g)
    gateway_and_routes_accepted(w, gw, (INFRA, "backend-v1"), sections=("listener-1",))
    gateway_and_routes_accepted(w, gw, (INFRA, "backend-v2"), sections=("listener-2",))
    gateway_and_routes_accepted(
        w, gw, (INFRA, "backend-v3"), sections=("listener-3", "listener-4")
    )
    for route in ("backend-v1", "backend-v2", "backend-v3"):
        route_resolved_refs_true(w, (INFRA, route), gw)
    for host, expected in [
        ("bar.com", "infra-backend-v1"),
        ("foo.bar.com", "infra-backend-v2"),
        ("baz.bar.com", "infra-backend-v3"),
        ("boo.bar.com", "infra-backend-v3"),
        ("multiple.prefixes.bar.com", "infra-backend-v3"),
        ("multiple.prefixes.foo.com", "infra-backend-v3"),
        ("foo.com", "404"),
        ("no.matching.host", "404"),
    ]:
        assert _served_by(w, g, host, "/") == expected, host


def test_HTTPRouteListenerPortMatching() -> None:
    g = "httproute-listener-port-matching"
    parent = f"name: {g}, namespace: {INFRA}"
    w = world(
        f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: {g}
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{{GATEWAY_CLASS_NAME}}"
  addresses: [{{value: 127.0.16.3}}]
  listeners:
  - {{name: listener-1, port: 80, protocol: HTTP, hostname: foo.com,
     allowedRoutes: {{namespaces: {{from: Same}}}}}}
  - {{name: listener-2, port: 8080, protocol: HTTP, hostname: foo.com,
     allowedRoutes: {{namespaces: {{from: Same}}}}}}
  - {{name: listener-3, port: 8080, protocol: HTTP, hostname: bar.com,
     allowedRoutes: {{namespaces: {{from: Same}}}}}}
  - {{name: listener-4, port: 8090, protocol: HTTP, hostname: foo.com,
     allowedRoutes: {{namespaces: {{from: Same}}}}}}
  - {{name: listener-5, port: 8090, protocol: HTTP, hostname: bar.com,
     allowedRoutes: {{namespaces: {{from: Same}}}}}}
""",
        _route("backend-v1", INFRA, parent + ", port: 80", "name: infra-backend-v1, port: 8080"),
        _route("backend-v2", INFRA, parent + ", port: 8080", "name: infra-backend-v2, port: 8080"),
        _route("backend-v3", INFRA, parent + ", port: 8090, sectionName: listener-4",
               "name: infra-backend-v3, port: 8080"),
    )  # fmt: skip
    gw = (INFRA, g)
    for route in ("backend-v1", "backend-v2", "backend-v3"):
        gateway_and_routes_accepted(w, gw, (INFRA, route))
        route_resolved_refs_true(w, (INFRA, route), gw)
    attached = {
        route.route.meta.name: sorted(a.name for p in route.parents for a in p.listeners)
        for route in w.attachment.routes
        if route.route.meta.name.startswith("backend-")
    }
    assert attached == {
        "backend-v1": ["listener-1"],
        "backend-v2": ["listener-2", "listener-3"],
        "backend-v3": ["listener-4"],
    }


# -- httproute-cross-namespace.go, httproute-simple-same-namespace.go -------------------------


def test_HTTPRouteCrossNamespace() -> None:
    w = world(_route("cross-namespace", WEB, f"name: backend-namespaces, namespace: {INFRA}",
                     "name: web-backend, port: 8080"))  # fmt: skip
    gw = (INFRA, "backend-namespaces")
    gateway_and_routes_accepted(w, gw, (WEB, "cross-namespace"))
    route_resolved_refs_true(w, (WEB, "cross-namespace"), gw)


def test_HTTPRouteSimpleSameNamespace() -> None:
    w = world(_route("gateway-conformance-infra-test", INFRA, "name: same-namespace",
                     "name: infra-backend-v1, port: 8080"))  # fmt: skip
    route = (INFRA, "gateway-conformance-infra-test")
    gateway_and_routes_accepted(w, SAME, route)
    route_resolved_refs_true(w, route, SAME)
