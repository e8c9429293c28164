"""discovery/gateway_attach.py and its helpers: the cases the conformance suite does not
spell out (conflicts between Gateways sharing an address, rules seaway drops, addresses,
backends it cannot route to)."""

from __future__ import annotations

import pytest

from discovery.gateway_attach import attach_gateways
from discovery.gateway_hostnames import host_matches, intersect_hostnames, specificity
from discovery.manifest import load_path
from discovery.model_gateway import LabelRequirement, LabelSelector
from discovery.snapshot_builder import build_snapshot
from discovery.tls_pem import pem_problem
from ingress.selfsigned import generate
from tests.discovery.gatewaykit import config, find_condition, service, world
from tests.support import REPO

GWC = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: seaway}
spec: {controllerName: seaway.dev/gateway-controller}
"""


def gateway(name: str, listeners: str, extra: str = "", created: str = "") -> str:
    stamp = f", creationTimestamp: '{created}'" if created else ""
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: default{stamp}}}
spec:
  gatewayClassName: seaway
{extra}  listeners:
{listeners}
"""


def route(name: str, spec: str) -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
{spec}
"""


# -- hostnames ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listener", "route", "expected"),
    [
        ("", (), ()),
        ("", ("a.com", "a.com"), ("a.com",)),
        ("a.com", (), ("a.com",)),
        ("a.com", ("a.com",), ("a.com",)),
        ("a.com", ("b.com",), None),
        ("a.com", ("*.com",), ("a.com",)),
        ("*.example.com", ("foo.example.com", "example.com"), ("foo.example.com",)),
        ("*.example.com", ("*.foo.example.com",), ("*.foo.example.com",)),
        ("*.foo.example.com", ("*.example.com",), ("*.foo.example.com",)),
        ("*.example.com", ("*.example.com",), ("*.example.com",)),
        ("*.example.com", ("*.example.org",), None),
    ],
)
def test_hostname_intersection(
    listener: str, route: tuple[str, ...], expected: tuple[str, ...] | None
) -> None:
    assert intersect_hostnames(listener, route) == expected


def test_wildcards_match_one_or_more_labels_never_the_bare_domain() -> None:
    assert host_matches("*.example.com", "a.example.com")
    assert host_matches("*.example.com", "a.b.example.com")
    assert not host_matches("*.example.com", "example.com")
    assert not host_matches("*.example.com", "aexample.com")
    assert host_matches("", "anything")
    ordered = sorted(["", "*.com", "*.example.com", "a.example.com", "example.com"],
                     key=specificity, reverse=True)  # fmt: skip
    assert ordered == ["a.example.com", "example.com", "*.example.com", "*.com", ""]


def test_label_selector_expressions() -> None:
    sel = LabelSelector(
        {"team": "a"},
        (
            LabelRequirement("env", "In", ("prod", "staging")),
            LabelRequirement("legacy", "DoesNotExist"),
            LabelRequirement("tier", "NotIn", ("db",)),
            LabelRequirement("owner", "Exists"),
        ),
    )
    good = {"team": "a", "env": "prod", "owner": "x"}
    assert sel.matches(good)
    assert not sel.matches({**good, "team": "b"})
    assert not sel.matches({**good, "env": "dev"})
    assert not sel.matches({**good, "legacy": "1"})
    assert not sel.matches({**good, "tier": "db"})
    assert not sel.matches({k: v for k, v in good.items() if k != "owner"})
    assert LabelSelector().matches({})


def test_pem_problems() -> None:
    cert, key = generate("a", ["a.example.com"])
    _, other_key = generate("b", ["b.example.com"])
    assert pem_problem(cert, key) == ""
    assert pem_problem(b"Hello world\n", key) == "tls.crt holds no valid PEM certificate"
    assert pem_problem(cert, b"Hello world\n") == "tls.key holds no valid PEM private key"
    assert pem_problem(cert, other_key) == "tls.key does not match the certificate in tls.crt"


# -- listeners and conflicts ------------------------------------------------------------------

HTTP80 = "  - {name: http, port: 80, protocol: HTTP}"


def test_gateways_on_one_address_older_keeps_the_listener() -> None:
    w = world(
        GWC,
        gateway("old", HTTP80, created="2025-01-01T00:00:00Z"),
        gateway("new", HTTP80 + "\n  - {name: web, port: 80, protocol: HTTP, hostname: a.com}",
                created="2025-02-01T00:00:00Z"),
        gateway("tls", "  - {name: https, port: 80, protocol: HTTPS, tls: {certificateRefs: "
                "[{name: c}]}}", created="2025-03-01T00:00:00Z"),
        gateway("elsewhere", HTTP80, extra="  addresses: [{value: 127.0.0.9}]\n",
                created="2025-04-01T00:00:00Z"),
        base=False,
    )  # fmt: skip
    old = w.gateway("default", "old")
    assert find_condition(old.listeners[0].conditions, "Conflicted", "False", "NoConflicts")
    new_http, new_web = w.gateway("default", "new").listeners
    assert find_condition(new_http.conditions, "Conflicted", "True", "HostnameConflict")
    assert find_condition(new_http.conditions, "Accepted", "False", "HostnameConflict")
    assert find_condition(new_http.conditions, "Programmed", "False", "Invalid")
    # Another hostname on the same port and protocol: distinct, served alongside.
    assert find_condition(new_web.conditions, "Conflicted", "False")
    (https,) = w.gateway("default", "tls").listeners
    assert find_condition(https.conditions, "Conflicted", "True", "ProtocolConflict")
    # Its own address is no way out: the others' wildcard bind covers 127.0.0.9 too.
    (elsewhere,) = w.gateway("default", "elsewhere").listeners
    assert find_condition(elsewhere.conditions, "Conflicted", "True", "HostnameConflict")
    w = world(
        GWC,
        gateway("a", HTTP80, extra="  addresses: [{value: 127.0.0.8}]\n"),
        gateway("b", HTTP80, extra="  addresses: [{value: 127.0.0.9}]\n"),
        base=False,
    )
    for name in ("a", "b"):
        (ls,) = w.gateway("default", name).listeners
        assert find_condition(ls.conditions, "Conflicted", "False"), name


def test_a_listener_on_the_ingress_listeners_port_is_port_unavailable() -> None:
    """The Ingress listeners (--http-bind-address / --https-bind-address) are seaway's own:
    a Gateway listener on their port and an overlapping address could not be bound."""
    reserved = (("0.0.0.0", 80, "Ingress HTTP listener"), ("127.0.0.1", 443, "Ingress HTTPS"))
    cfg = config(reserved=reserved)
    w = world(
        GWC,
        gateway("wild", HTTP80 + "\n  - {name: other, port: 81, protocol: HTTP}"),
        gateway("own", "  - {name: tls, port: 443, protocol: HTTP}",
                extra="  addresses: [{value: 127.0.0.9}]\n"),
        gateway("same", "  - {name: tls, port: 443, protocol: HTTP}",
                extra="  addresses: [{value: 127.0.0.1}]\n"),
        base=False,
        cfg=cfg,
    )  # fmt: skip
    http, other = w.gateway("default", "wild").listeners
    assert find_condition(http.conditions, "Accepted", "False", "PortUnavailable")
    assert find_condition(http.conditions, "Programmed", "False", "Invalid")
    assert find_condition(other.conditions, "Accepted", "True")
    assert find_condition(w.gateway("default", "wild").conditions, "Accepted", "True",
                          "ListenersNotValid")  # fmt: skip
    (own,) = w.gateway("default", "own").listeners  # another address: no overlap
    assert find_condition(own.conditions, "Accepted", "True"), own.conditions
    (same,) = w.gateway("default", "same").listeners
    assert find_condition(same.conditions, "Accepted", "False", "PortUnavailable")
    # Without the reservation the same objects are all served.
    w = world(GWC, gateway("wild", HTTP80), base=False)
    assert find_condition(w.gateway("default", "wild").listeners[0].conditions, "Accepted", "True")


def test_tcp_and_udp_listeners_are_accepted_only_where_the_l4_proxy_runs() -> None:
    """TCP/UDP listeners are served by the userspace L4 proxy: with a kernel proxy mode
    they are not Accepted (UnsupportedProtocol), rather than Programmed with nothing
    listening."""
    listeners = ("  - {name: tcp, port: 5432, protocol: TCP}\n"
                 "  - {name: udp, port: 5353, protocol: UDP}\n"
                 "  - {name: http, port: 8088, protocol: HTTP}")  # fmt: skip
    kernel = world(GWC, gateway("gw", listeners), base=False, cfg=config(l4_listeners=False))
    tcp, udp, http = kernel.gateway("default", "gw").listeners
    for ls in (tcp, udp):
        assert find_condition(ls.conditions, "Accepted", "False", "UnsupportedProtocol")
        assert find_condition(ls.conditions, "Programmed", "False")
    assert find_condition(http.conditions, "Accepted", "True")
    userspace = world(GWC, gateway("gw", listeners), base=False)
    for ls in userspace.gateway("default", "gw").listeners:
        assert find_condition(ls.conditions, "Accepted", "True"), ls.name


def test_http_and_https_on_one_port_of_one_gateway_both_conflict() -> None:
    w = world(
        GWC,
        gateway("gw", HTTP80 + "\n  - {name: https, port: 80, protocol: HTTPS, tls: "
                "{certificateRefs: [{name: c}]}}"),
        base=False,
    )  # fmt: skip
    for ls in w.gateway("default", "gw").listeners:
        assert find_condition(ls.conditions, "Conflicted", "True", "ProtocolConflict"), ls.name
    gateway_conditions = w.gateway("default", "gw").conditions
    assert find_condition(gateway_conditions, "Accepted", "False", "ListenersNotValid")


def test_https_listener_without_certificate_refs() -> None:
    w = world(GWC, gateway("gw", "  - {name: https, port: 443, protocol: HTTPS, tls: "
                           "{options: {example.com/x: y}}}"), base=False)  # fmt: skip
    (ls,) = w.gateway("default", "gw").listeners
    assert find_condition(ls.conditions, "ResolvedRefs", "False", "InvalidCertificateRef")
    assert find_condition(ls.conditions, "Programmed", "False", "Invalid")


def test_addresses() -> None:
    w = world(GWC, gateway("gw", HTTP80), base=False, cfg=config(default_addresses=()))
    gateway_conditions = w.gateway("default", "gw").conditions
    assert find_condition(gateway_conditions, "Programmed", "False", "AddressNotAssigned")
    assert w.gateway("default", "gw").addresses == ()
    w = world(GWC, gateway("gw", HTTP80, extra="  addresses: [{type: Hostname, value: a.com}]\n"),
              base=False)  # fmt: skip
    assert find_condition(w.gateway("default", "gw").conditions, "Accepted", "False",
                          "UnsupportedAddress")  # fmt: skip
    # Loopback addresses can always be bound, whatever the interfaces say.
    cfg = config(local_addresses=frozenset({"192.0.2.1"}))
    w = world(GWC, gateway("gw", HTTP80, extra="  addresses: [{value: 127.0.0.42}]\n"),
              base=False, cfg=cfg)  # fmt: skip
    assert find_condition(w.gateway("default", "gw").conditions, "Programmed", "True")
    state = w.attachment.gateway("default", "gw")
    assert state is not None and state.bind_addresses == ("127.0.0.42",)


def test_a_class_with_parameters_is_not_accepted_nor_its_gateways() -> None:
    cls = GWC.replace("spec: {controllerName: seaway.dev/gateway-controller}",
                      "spec: {controllerName: seaway.dev/gateway-controller, parametersRef: "
                      "{group: '', kind: ConfigMap, name: p, namespace: default}}")  # fmt: skip
    w = world(cls, gateway("gw", HTTP80), route("r", "  parentRefs: [{name: gw}]"), base=False)
    assert find_condition(w.class_conditions("seaway"), "Accepted", "False", "InvalidParameters")
    assert find_condition(w.gateway("default", "gw").conditions, "Accepted", "False", "Invalid")
    (parent,) = w.parents("default", "r")
    assert find_condition(parent.conditions, "Accepted", "False", "NoMatchingParent")


def test_other_controllers_objects_are_left_alone() -> None:
    other = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: other}
spec: {controllerName: example.net/other}
"""
    gw = gateway("gw", HTTP80).replace("gatewayClassName: seaway", "gatewayClassName: other")
    w = world(GWC, other, gw, route("r", "  parentRefs: [{name: gw}, {name: missing}]"),
              base=False)  # fmt: skip
    assert [c.gateway_class.meta.name for c in w.attachment.classes] == ["seaway"]
    assert w.attachment.gateways == ()
    assert w.attachment.routes == ()


# -- routes ------------------------------------------------------------------------------------


def test_rules_seaway_cannot_serve_are_dropped_and_said_so() -> None:
    spec = """  parentRefs: [{name: gw}]
  rules:
  - filters: [{type: CORS, cors: {allowOrigins: ["*"]}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {type: RegularExpression, value: "/(unclosed"}}]
    backendRefs: [{name: web, port: 80}]
  - backendRefs: [{name: web, port: 80}]
"""
    w = world(GWC, gateway("gw", HTTP80), service("web", "default", 80), route("r", spec),
              base=False)  # fmt: skip
    state = w.attachment.route("default", "r")
    assert state is not None
    assert [bool(r.problem) for r in state.rules] == [True, True, False]
    assert state.rules[0].problem == "filter CORS is not supported"
    assert "invalid regular expression" in state.rules[1].problem
    (parent,) = w.parents("default", "r")
    assert find_condition(parent.conditions, "Accepted", "True", "Accepted")
    partially = [c for c in parent.conditions if c.type == "PartiallyInvalid"]
    assert len(partially) == 1 and partially[0].status == "True"
    assert partially[0].reason == "UnsupportedValue"
    assert partially[0].message.startswith("Dropped Rule")
    # Nothing left to serve: not accepted.
    only_bad = spec.split("  - backendRefs: [{name: web, port: 80}]\n")[0]
    w = world(GWC, gateway("gw", HTTP80), service("web", "default", 80),
              route("r", only_bad), base=False)  # fmt: skip
    (parent,) = w.parents("default", "r")
    assert find_condition(parent.conditions, "Accepted", "False", "UnsupportedValue")
    assert not any(c.type == "PartiallyInvalid" for c in parent.conditions)
    assert w.gateway("default", "gw").listeners[0].attached_routes == 0


def test_backend_resolution() -> None:
    external = """
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec: {type: ExternalName, externalName: example.com}
"""
    spec = """  parentRefs: [{name: gw}]
  rules:
  - backendRefs:
    - {name: web, port: 80, weight: 0}
    - {name: web, port: 81}
    - {name: ext, port: 80}
    filters:
    - {type: RequestMirror, requestMirror: {backendRef: {name: gone, port: 80}}}
"""
    w = world(GWC, gateway("gw", HTTP80), service("web", "default", 80), external,
              route("r", spec), base=False)  # fmt: skip
    state = w.attachment.route("default", "r")
    assert state is not None
    zero, no_port, ext = state.rules[0].backends
    assert zero.ok and zero.weight == 0 and zero.service is not None
    assert (no_port.reason, no_port.message) == (
        "BackendNotFound", "Service default/web has no TCP port 81",
    )  # fmt: skip
    assert ext.reason == "InvalidKind"
    (mirror,) = state.rules[0].mirrors
    assert mirror.reason == "BackendNotFound"
    assert state.resolved_refs.reason == "BackendNotFound"  # the first problem
    assert "gone" in state.resolved_refs.message and "ExternalName" in state.resolved_refs.message


def test_selector_namespaces_without_namespace_objects_use_the_name_label() -> None:
    gw = gateway("gw", """  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Selector
        selector: {matchLabels: {kubernetes.io/metadata.name: default}}""")
    w = world(GWC, gw, route("r", "  parentRefs: [{name: gw}]"), base=False)
    (parent,) = w.parents("default", "r")
    assert find_condition(parent.conditions, "Accepted", "True")


def test_the_bundled_example_is_all_accepted() -> None:
    """configs/gateway/: valid, and everything in it attached and resolved."""
    loaded = load_path(str(REPO / "configs" / "gateway"))
    assert loaded.errors == []
    snapshot = build_snapshot(loaded.objects())
    attachment = attach_gateways(snapshot, config())
    (gw,) = attachment.gateways
    assert gw.accepted.status and gw.programmed.status
    assert [ls.attached_routes for ls in gw.listeners] == [2]
    assert all(ls.resolved_refs.status and ls.programmed.status for ls in gw.listeners)
    assert len(attachment.routes) == 2
    for route in attachment.routes:
        assert route.resolved_refs.status
        assert all(p.accepted.status for p in route.parents)
        assert not any(r.problem for r in route.rules)
