"""Gateway API manifests: the CRDs' defaults applied to what a file leaves out, and every
invalid case reported with file, object and field (as the API server's CRD validation
would refuse it)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from discovery.manifest import parse_manifest_text, parse_object
from discovery.model_gateway import (
    GATEWAY_GROUP,
    AllowedRoutes,
    BackendObjectRef,
    Gateway,
    GatewayClass,
    HTTPRoute,
    HTTPRouteMatch,
    HTTPRouteRule,
    Namespace,
    ParentRef,
    PathMatch,
    ReferenceGrant,
    SecretObjectRef,
)

GW: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "gw", "namespace": "infra"},
    "spec": {
        "gatewayClassName": "seaway",
        "listeners": [
            {"name": "http", "port": 80, "protocol": "HTTP"},
            {
                "name": "https",
                "port": 443,
                "protocol": "HTTPS",
                "hostname": "*.example.com",
                "tls": {"certificateRefs": [{"name": "cert"}]},
            },
        ],
    },
}
ROUTE: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "parentRefs": [{"name": "gw", "namespace": "infra"}],
        "rules": [{"backendRefs": [{"name": "web", "port": 8080}]}],
    },
}


def parse(doc: dict[str, Any]) -> Any:
    obj, errors = parse_object(doc, "gw.yaml")
    assert not errors, [str(e) for e in errors]
    return obj


def errors_of(doc: dict[str, Any]) -> list[str]:
    obj, errors = parse_object(doc, "gw.yaml")
    assert obj is None
    return [str(e) for e in errors]


def set_path(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is _DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return out


_DELETE = object()


# -- defaults -----------------------------------------------------------------------------------


def test_gateway_defaults() -> None:
    gw = parse(GW)
    assert isinstance(gw, Gateway)
    http, https = gw.listeners
    assert http.allowed_routes == AllowedRoutes("Same", None, ())
    assert http.hostname == "" and http.tls is None
    assert https.tls is not None and https.tls.mode == "Terminate"
    assert https.tls.certificate_refs == (SecretObjectRef("cert", "", "Secret", ""),)
    assert gw.addresses == ()


def test_gateway_v1beta1_and_address_type_default() -> None:
    doc = set_path(GW, "apiVersion", "gateway.networking.k8s.io/v1beta1")
    doc = set_path(doc, "spec.addresses", [{"value": "10.0.0.1"}, {"type": "IPAddress"}])
    gw = parse(doc)
    assert [(a.type, a.value) for a in gw.addresses] == [("IPAddress", "10.0.0.1"),
                                                         ("IPAddress", "")]  # fmt: skip


def test_httproute_defaults() -> None:
    route = parse(ROUTE)
    assert isinstance(route, HTTPRoute)
    assert route.parent_refs == (ParentRef("gw", GATEWAY_GROUP, "Gateway", "infra", "", None),)
    (rule,) = route.rules
    assert rule.matches == (HTTPRouteMatch(PathMatch("PathPrefix", "/")),)
    (backend,) = rule.backend_refs
    assert backend.backend == BackendObjectRef("web", "", "Service", "", 8080)
    assert backend.weight == 1


def test_httproute_without_rules_gets_the_default_rule() -> None:
    route = parse(set_path(ROUTE, "spec.rules", _DELETE))
    assert route.rules == (HTTPRouteRule(),)
    assert route.rules[0].backend_refs == ()  # no backends: the translator answers 500


def test_httproute_match_defaults_within_a_match() -> None:
    doc = set_path(ROUTE, "spec.rules.0.matches", [
        {"path": {"value": "/a"}, "headers": [{"name": "x-v", "value": "1"}],
         "queryParams": [{"name": "q", "value": "2"}], "method": "GET"},
        {"path": {"type": "Exact"}},
        {"headers": [{"name": "h", "value": "^a", "type": "RegularExpression"}]},
    ])  # fmt: skip
    m1, m2, m3 = parse(doc).rules[0].matches
    assert m1.path == PathMatch("PathPrefix", "/a")
    assert (m1.headers[0].type, m1.query_params[0].type, m1.method) == ("Exact", "Exact", "GET")
    assert m2.path == PathMatch("Exact", "/")
    assert m3.path == PathMatch("PathPrefix", "/") and m3.headers[0].type == "RegularExpression"


def test_httproute_filters_parsed() -> None:
    doc = set_path(ROUTE, "spec.rules.0", {
        "filters": [
            {"type": "RequestHeaderModifier",
             "requestHeaderModifier": {"set": [{"name": "A", "value": "1"}],
                                       "add": [{"name": "B", "value": "2"}], "remove": ["C"]}},
            {"type": "URLRewrite", "urlRewrite": {"hostname": "x.example.com",
             "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": ""}}},
            {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m", "port": 80},
             "fraction": {"numerator": 1}}},
        ],
        "matches": [{"path": {"type": "PathPrefix", "value": "/p"}}],
        "backendRefs": [{"name": "a", "port": 80, "weight": 0,
                         "filters": [{"type": "ResponseHeaderModifier",
                                      "responseHeaderModifier": {"remove": ["server"]}}]}],
        "timeouts": {"request": "10s", "backendRequest": "1m"},
    })  # fmt: skip
    with pytest.raises(AssertionError, match="must not be longer than the request timeout"):
        parse(doc)
    doc["spec"]["rules"][0]["timeouts"] = {"request": "1m30s", "backendRequest": "500ms"}
    rule = parse(doc).rules[0]
    mod, rewrite, mirror = rule.filters
    assert mod.request_header_modifier.set == (("A", "1"),)
    assert mod.request_header_modifier.add == (("B", "2"),)
    assert mod.request_header_modifier.remove == ("C",)
    assert rewrite.url_rewrite.path.value == ""
    assert mirror.request_mirror.fraction == (1, 100)  # denominator defaults to 100
    assert rule.backend_refs[0].weight == 0
    assert rule.backend_refs[0].filters[0].response_header_modifier.remove == ("server",)
    assert (rule.timeouts.request, rule.timeouts.backend_request) == (90.0, 0.5)


def test_redirect_defaults_to_302() -> None:
    doc = set_path(ROUTE, "spec.rules.0", {
        "filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}]
    })  # fmt: skip
    (f,) = parse(doc).rules[0].filters
    assert (f.request_redirect.scheme, f.request_redirect.status_code) == ("https", 302)
    assert f.request_redirect.port is None


def test_reference_grant_both_versions_and_namespace() -> None:
    grant = {
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {"name": "g", "namespace": "backend"},
        "spec": {"from": [{"group": GATEWAY_GROUP, "kind": "HTTPRoute", "namespace": "shop"}],
                 "to": [{"group": "", "kind": "Service"}]},
    }  # fmt: skip
    for version in ("v1beta1", "v1"):
        grant["apiVersion"] = f"gateway.networking.k8s.io/{version}"
        g = parse(grant)
        assert isinstance(g, ReferenceGrant)
        assert g.to_refs[0].name == ""
    ns = parse({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "shop", "labels": {"team": "a"}}})  # fmt: skip
    assert isinstance(ns, Namespace)
    assert ns.labels == {"team": "a", "kubernetes.io/metadata.name": "shop"}
    cls = parse({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                 "metadata": {"name": "seaway", "generation": 3},
                 "spec": {"controllerName": "seaway.dev/gateway-controller"}})  # fmt: skip
    assert isinstance(cls, GatewayClass) and cls.meta.generation == 3


def test_status_is_read_leniently() -> None:
    doc = set_path(ROUTE, "status", {"parents": [
        {"parentRef": {"name": "gw"}, "controllerName": "x.io/c",
         "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                         "observedGeneration": 2, "lastTransitionTime": "2025-01-01T00:00:00Z"},
                        "garbage", {"type": 1}]},
        {"parentRef": "not a ref", "controllerName": "x.io/c"},
        "garbage",
    ]})  # fmt: skip
    route = parse(doc)
    (parent,) = route.parents
    assert parent.parent_ref.kind == "Gateway" and parent.controller_name == "x.io/c"
    (cond,) = parent.conditions
    assert (cond.observed_generation, cond.last_transition_time) == (2, "2025-01-01T00:00:00Z")


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("spec.gatewayClassName", _DELETE, "spec.gatewayClassName: required"),
        ("spec.listeners", _DELETE, "spec.listeners: required (at least one listener)"),
        ("spec.listeners", [], "spec.listeners: must have at least 1 item"),
        ("spec.listeners.0.port", 0, "spec.listeners[0].port: must be 1-65535, got 0"),
        ("spec.listeners.0.name", "Bad_Name", "spec.listeners[0].name: must be a DNS subdomain "
         "(lowercase letters, digits, '-', '.'), got \"Bad_Name\""),
        ("spec.listeners.0.protocol", "example.com", "spec.listeners[0].protocol: must be HTTP, "
         'HTTPS, TLS, TCP, UDP or a domain-prefixed name like "example.com/p", got '
         '"example.com"'),
        ("spec.listeners.0.hostname", "1.2.3.4", "spec.listeners[0].hostname: must be a DNS "
         'name, not an IP address, got "1.2.3.4"'),
        ("spec.listeners.0.hostname", "a.*.com", "spec.listeners[0].hostname: a wildcard is "
         'only allowed as the whole first label (*.example.com), got "a.*.com"'),
        ("spec.listeners.0.tls", {"certificateRefs": [{"name": "c"}]},
         "spec.listeners[0].tls: must not be set for protocol HTTP"),
        ("spec.listeners.1.tls", {"mode": "Passthrough"},
         "spec.listeners[1].tls.mode: must be Terminate for protocol HTTPS"),
        ("spec.listeners.1.tls", {}, "spec.listeners[1].tls.certificateRefs: required when mode "
         "is Terminate (a kubernetes.io/tls Secret), unless options are set"),
        ("spec.listeners.1.name", "http", 'spec.listeners[1].name: "http" is already the name '
         "of listeners[0] (listener names must be unique within a Gateway)"),
        ("spec.listeners.0.allowedRoutes", {"namespaces": {"from": "Selector"}},
         'spec.listeners[0].allowedRoutes.namespaces.selector: required when from is "Selector"'),
        ("spec.listeners.0.allowedRoutes", {"namespaces": {"from": "Others"}},
         "spec.listeners[0].allowedRoutes.namespaces.from: must be one of All, Selector, Same, "
         'got "Others"'),
        ("spec.addresses", [{"value": "10.0.0.300"}],
         'spec.addresses[0].value: must be a valid IP address, got "10.0.0.300"'),
        ("spec.addresses", [{"value": "10.0.0.1"}, {"value": "10.0.0.1"}],
         "spec.addresses[1].value: IPAddress values must be unique"),
        ("spec.infrastructure", {"parametersRef": {"group": "x.io", "kind": "P"}},
         "spec.infrastructure.parametersRef.name: required"),
        ("spec.infrastructure", {"labels": {"a": 1}},
         "spec.infrastructure.labels[a]: must be a string, got 1"),
        ("spec.infrastructure", {"annotations": {str(i): "v" for i in range(9)}},
         "spec.infrastructure.annotations: at most 8 entries, got 9"),
    ],
)  # fmt: skip
def test_gateway_invalid(path: str, value: Any, expected: str) -> None:
    assert errors_of(set_path(GW, path, value)) == ["gw.yaml: Gateway infra/gw: " + expected]


def test_gateway_duplicate_port_protocol_hostname() -> None:
    doc = set_path(GW, "spec.listeners.1", {"name": "http2", "port": 80, "protocol": "HTTP"})
    assert errors_of(doc) == [
        'gw.yaml: Gateway infra/gw: spec.listeners[1]: same port, protocol and hostname as '
        'listener "http" (each combination must be unique)'
    ]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("spec.parentRefs.0.name", _DELETE, "spec.parentRefs[0].name: required"),
        ("spec.parentRefs.0.port", 0, "spec.parentRefs[0].port: must be 1-65535, got 0"),
        ("spec.parentRefs.0.kind", "a/b", "spec.parentRefs[0].kind: must be a Kind (a letter, "
         "then letters, digits and '-'), got \"a/b\""),
        ("spec.hostnames", ["*"], 'spec.hostnames[0]: a wildcard is only allowed as the whole '
         'first label (*.example.com), got "*"'),
        ("spec.rules.0.backendRefs.0.port", _DELETE, "spec.rules[0].backendRefs[0].port: "
         "required for a Service reference (the Service's port)"),
        ("spec.rules.0.backendRefs.0.weight", -1,
         "spec.rules[0].backendRefs[0].weight: must be 0-1000000, got -1"),
        ("spec.rules.0.matches", [{"path": {"type": "Exact", "value": "a"}}],
         "spec.rules[0].matches[0].path.value: must be an absolute path (start with /) for type "
         'Exact, got "a"'),
        ("spec.rules.0.matches", [{"path": {"value": "/a//b"}}],
         'spec.rules[0].matches[0].path.value: must not contain "//" for type PathPrefix, got '
         '"/a//b"'),
        ("spec.rules.0.matches", [{"path": {"type": "Glob"}}],
         "spec.rules[0].matches[0].path.type: must be one of Exact, PathPrefix, "
         'RegularExpression, got "Glob"'),
        ("spec.rules.0.matches", [{"method": "get"}],
         "spec.rules[0].matches[0].method: must be one of GET, HEAD, POST, PUT, DELETE, "
         'CONNECT, OPTIONS, TRACE, PATCH, got "get"'),
        ("spec.rules.0.matches", [{"headers": [{"name": "a b", "value": "1"}]}],
         "spec.rules[0].matches[0].headers[0].name: must be an HTTP header name (RFC 7230 "
         'token), got "a b"'),
        ("spec.rules.0.matches", [{"headers": [{"name": "a", "value": "1"},
                                               {"name": "a", "value": "2"}]}],
         'spec.rules[0].matches[0].headers[1].name: "a" is listed twice'),
        ("spec.rules.0.filters", [{"type": "RequestRedirect", "requestRedirect": {}}],
         "spec.rules[0].filters: a RequestRedirect filter must not be used with backendRefs"),
        ("spec.rules.0.filters", [{"type": "URLRewrite"}],
         "spec.rules[0].filters[0].urlRewrite: required for a filter of type URLRewrite"),
        ("spec.rules.0.filters", [{"type": "Rewrite"}],
         "spec.rules[0].filters[0].type: must be one of RequestHeaderModifier, "
         "ResponseHeaderModifier, RequestMirror, RequestRedirect, URLRewrite, ExtensionRef, "
         'CORS, ExternalAuth, got "Rewrite"'),
        ("spec.rules.0.filters", [{"type": "URLRewrite", "urlRewrite": {},
                                   "requestRedirect": {}}],
         "spec.rules[0].filters[0].requestRedirect: must not be set for a filter of type "
         "URLRewrite"),
        ("spec.rules.0", {"filters": [{"type": "URLRewrite", "urlRewrite": {"path": {
            "type": "ReplacePrefixMatch", "replacePrefixMatch": "/x"}}}],
            "matches": [{"path": {"value": "/a"}}, {"path": {"value": "/b"}}]},
         "spec.rules[0].matches: a path modifier of type ReplacePrefixMatch needs exactly one "
         "match, of type PathPrefix"),
        ("spec.rules.0.filters", [
            {"type": "RequestHeaderModifier", "requestHeaderModifier": {}},
            {"type": "RequestHeaderModifier", "requestHeaderModifier": {}}],
         "spec.rules[0].filters: the RequestHeaderModifier filter must not be repeated"),
        ("spec.rules.0.timeouts", {"request": "10 s"},
         'spec.rules[0].timeouts.request: must be a duration like "10s", "500ms" or "1m30s", '
         'got "10 s"'),
    ],
)  # fmt: skip
def test_httproute_invalid(path: str, value: Any, expected: str) -> None:
    assert errors_of(set_path(ROUTE, path, value)) == ["gw.yaml: HTTPRoute shop/web: " + expected]


def test_httproute_parent_refs_to_one_gateway_must_name_sections() -> None:
    doc = set_path(ROUTE, "spec.parentRefs", [{"name": "gw"}, {"name": "gw"}])
    assert errors_of(doc) == [
        'gw.yaml: HTTPRoute shop/web: spec.parentRefs: Gateway "gw" is referenced more than '
        "once: each reference must set sectionName (or port), and all of them the same fields"
    ]
    ok = set_path(ROUTE, "spec.parentRefs",
                  [{"name": "gw", "sectionName": "a"}, {"name": "gw", "sectionName": "b"}])
    assert len(parse(ok).parent_refs) == 2


def test_reference_grant_and_class_invalid() -> None:
    grant = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "ReferenceGrant",
        "metadata": {"name": "g", "namespace": "backend"},
        "spec": {"from": [{"kind": "HTTPRoute", "namespace": "shop"}], "to": []},
    }
    assert errors_of(grant) == [
        'gw.yaml: ReferenceGrant backend/g: spec.from[0].group: required ("" for the core '
        "group)",
        "gw.yaml: ReferenceGrant backend/g: spec.to: must have at least 1 item",
    ]
    cls = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
           "metadata": {"name": "c"}, "spec": {"controllerName": "seaway"}}  # fmt: skip
    assert errors_of(cls) == [
        'gw.yaml: GatewayClass c: spec.controllerName: must be a domain-prefixed path like '
        '"example.net/gateway-controller", got "seaway"'
    ]
    wrong = {**cls, "apiVersion": "gateway.networking.k8s.io/v2"}
    assert errors_of(wrong) == [
        "gw.yaml: GatewayClass c: apiVersion: must be gateway.networking.k8s.io/v1 or "
        'gateway.networking.k8s.io/v1beta1, got "gateway.networking.k8s.io/v2"'
    ]


def test_a_bad_route_does_not_take_good_objects_with_it() -> None:
    text = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad}
spec: {rules: [{backendRefs: [{name: x}]}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: good}
spec: {parentRefs: [{name: gw}]}
"""
    objects, errors = parse_manifest_text(text, "routes.yaml")
    assert [o.meta.name for o in objects] == ["good"]
    assert [str(e) for e in errors] == [
        "routes.yaml: HTTPRoute default/bad: spec.rules[0].backendRefs[0].port: required for a "
        "Service reference (the Service's port)"
    ]
