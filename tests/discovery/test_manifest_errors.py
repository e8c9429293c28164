"""Each invalid case gives its exact message, naming file, object and field; every error
of a file is reported; an object with errors is not returned."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from discovery.manifest import parse_manifest_text, parse_object
from discovery.model import ConfigMap, GenericSecret

SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "clusterIP": "10.96.0.10",
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
    },
}
SLICE: dict[str, Any] = {
    "apiVersion": "discovery.k8s.io/v1",
    "kind": "EndpointSlice",
    "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
    "addressType": "IPv4",
    "endpoints": [{"addresses": ["10.244.0.5"], "conditions": {"ready": True}}],
    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
}
INGRESS: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "shop", "namespace": "shop"},
    "spec": {
        "rules": [
            {
                "host": "shop.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "web", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ],
        "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
    },
}


def set_path(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Copy of doc with a dotted path ("spec.ports.0.port") set; value DELETE removes it."""
    out = copy.deepcopy(doc)
    node: Any = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


DELETE = object()


def errors_of(doc: dict[str, Any]) -> list[str]:
    obj, errors = parse_object(doc, "web.yaml", "document 1")
    assert (obj is None) == bool(errors)  # an object with errors is never returned
    return [str(e) for e in errors]


SVC = "web.yaml: Service default/web: "
LABEL_MSG = (
    "must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending with "
    "a letter or digit, at most 63 characters), got "
)
IANA = (
    "must be a port number 1-65535 or a port name (IANA_SVC_NAME: at most 15 lowercase "
    "letters, digits and '-', with at least one letter), got "
)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("spec.ports.0.port", 70000, "spec.ports[0].port: must be 1-65535, got 70000"),
        ("spec.ports.0.port", 0, "spec.ports[0].port: must be 1-65535, got 0"),
        ("spec.ports.0.port", "80", 'spec.ports[0].port: must be an integer, got "80"'),
        ("spec.ports.0.port", DELETE, "spec.ports[0].port: required"),
        (
            "spec.ports.0.protocol",
            "HTTP",
            'spec.ports[0].protocol: must be one of TCP, UDP, SCTP, got "HTTP"',
        ),
        ("spec.ports.0.targetPort", 65536, "spec.ports[0].targetPort: must be 1-65535, got 65536"),
        ("spec.ports.0.targetPort", "8080", "spec.ports[0].targetPort: " + IANA + '"8080"'),
        (
            "spec.ports.0.targetPort",
            "Http_Port",
            "spec.ports[0].targetPort: " + IANA + '"Http_Port"',
        ),
        (
            "spec.ports.0.targetPort",
            "a-very-long-port-name",
            "spec.ports[0].targetPort: " + IANA + '"a-very-long-port-name"',
        ),
        ("spec.ports.0.nodePort", 70000, "spec.ports[0].nodePort: must be 1-65535, got 70000"),
        ("spec.ports.0.name", "HTTP", "spec.ports[0].name: " + LABEL_MSG + '"HTTP"'),
        (
            "spec.clusterIP",
            "10.96.0.300",
            'spec.clusterIP: must be a valid IP address, got "10.96.0.300"',
        ),
        (
            "spec.clusterIPs",
            ["10.96.0.11"],
            'spec.clusterIPs[0]: must match spec.clusterIP "10.96.0.10", got "10.96.0.11"',
        ),
        (
            "spec.type",
            "Headless",
            "spec.type: must be one of ClusterIP, NodePort, LoadBalancer, ExternalName, "
            'got "Headless"',
        ),
        (
            "spec.externalTrafficPolicy",
            "Global",
            'spec.externalTrafficPolicy: must be one of Cluster, Local, got "Global"',
        ),
        (
            "spec.internalTrafficPolicy",
            "local",
            'spec.internalTrafficPolicy: must be one of Cluster, Local, got "local"',
        ),
        (
            "spec.sessionAffinity",
            "Cookie",
            'spec.sessionAffinity: must be one of None, ClientIP, got "Cookie"',
        ),
        (
            "spec.externalIPs",
            ["1.2.3"],
            'spec.externalIPs[0]: must be a valid IP address, got "1.2.3"',
        ),
        ("spec.ports", [], "spec.ports: required (at least one port)"),
        ("spec.ports", "80", 'spec.ports: must be a list, got "80"'),
        ("spec.ports.0", 80, "spec.ports[0]: must be a mapping, got 80"),
        (
            "metadata.name",
            "Web_1",
            "metadata.name: must be a DNS-1035 label (lowercase letters, digits and '-', "
            "starting with a letter, ending with a letter or digit, at most 63 characters), "
            'got "Web_1"',
        ),
        ("metadata.namespace", "Prod", "metadata.namespace: " + LABEL_MSG + '"Prod"'),
        ("metadata.labels", {"app": 1}, "metadata.labels[app]: must be a string, got 1"),
        ("apiVersion", "v2", 'apiVersion: must be v1, got "v2"'),
    ],
)
def test_service_invalid(path: str, value: Any, expected: str) -> None:
    doc = set_path(SERVICE, path, value)
    label = SVC
    if path == "metadata.name":
        label = f"web.yaml: Service default/{value}: "
    elif path == "metadata.namespace":
        label = f"web.yaml: Service {value}/web: "
    assert errors_of(doc) == [label + expected]


def test_the_documented_example() -> None:
    doc = set_path(SERVICE, "spec.ports.0.port", 70000)
    assert errors_of(doc) == [
        "web.yaml: Service default/web: spec.ports[0].port: must be 1-65535, got 70000"
    ]


def test_service_port_names_and_duplicates() -> None:
    two = set_path(SERVICE, "spec.ports", [{"port": 80}, {"name": "b", "port": 81}])
    assert errors_of(two) == [
        SVC + "spec.ports[0].name: required when the service has more than one port"
    ]
    dup = set_path(SERVICE, "spec.ports", [{"name": "a", "port": 80}, {"name": "a", "port": 81}])
    assert errors_of(dup) == [SVC + 'spec.ports[1].name: duplicate port name "a"']
    same = set_path(SERVICE, "spec.ports", [{"name": "a", "port": 80}, {"name": "b", "port": 80}])
    assert errors_of(same) == [SVC + "spec.ports[1].port: duplicate port 80/TCP"]
    udp = set_path(
        SERVICE,
        "spec.ports",
        [{"name": "a", "port": 53}, {"name": "b", "port": 53, "protocol": "UDP"}],
    )
    assert errors_of(udp) == []


def test_affinity_timeout_bounds() -> None:
    doc = set_path(SERVICE, "spec.sessionAffinity", "ClientIP")
    ok, errors = parse_object(doc, "web.yaml")
    assert errors == [] and ok is not None
    assert ok.session_affinity_timeout == 10800  # type: ignore[union-attr]
    for bad in (0, 86401):
        bad_doc = set_path(doc, "spec.sessionAffinityConfig", {"clientIP": {"timeoutSeconds": bad}})
        assert errors_of(bad_doc) == [
            SVC + f"spec.sessionAffinityConfig.clientIP.timeoutSeconds: must be 1-86400, got {bad}"
        ]


def test_headless_and_external_name_rules() -> None:
    assert errors_of(set_path(SERVICE, "spec.clusterIPs", ["None", "10.96.0.1"])) == [
        SVC + 'spec.clusterIPs[0]: must match spec.clusterIP "10.96.0.10", got "None"',
        SVC + 'spec.clusterIPs: must be ["None"] alone for a headless service',
    ]
    ext = set_path(SERVICE, "spec", {"type": "ExternalName"})
    assert errors_of(ext) == [SVC + "spec.externalName: required when type is ExternalName"]


def test_all_errors_of_an_object_are_reported() -> None:
    doc = set_path(SERVICE, "spec.ports.0.port", 70000)
    doc = set_path(doc, "spec.ports.0.protocol", "tcp")
    doc = set_path(doc, "spec.clusterIP", "nope")
    doc = set_path(doc, "spec.type", "Cluster")
    assert errors_of(doc) == [
        SVC + "spec.type: must be one of ClusterIP, NodePort, LoadBalancer, ExternalName, "
        'got "Cluster"',
        SVC + 'spec.clusterIP: must be a valid IP address, got "nope"',
        SVC + 'spec.ports[0].protocol: must be one of TCP, UDP, SCTP, got "tcp"',
        SVC + "spec.ports[0].port: must be 1-65535, got 70000",
    ]


def test_traffic_distribution() -> None:
    for value in ("PreferClose", "PreferSameZone", "PreferSameNode"):
        obj, errors = parse_object(set_path(SERVICE, "spec.trafficDistribution", value), "w")
        assert errors == [] and obj.traffic_distribution == value  # type: ignore[union-attr]
    assert errors_of(set_path(SERVICE, "spec.trafficDistribution", "PreferFar")) == [
        SVC + "spec.trafficDistribution: must be one of PreferClose, PreferSameZone, "
        'PreferSameNode, got "PreferFar"'
    ]
    assert errors_of(set_path(SERVICE, "spec.trafficDistribution", 1)) == [
        SVC + "spec.trafficDistribution: must be a string, got 1"
    ]


def test_load_balancer_source_ranges() -> None:
    lb = set_path(SERVICE, "spec.type", "LoadBalancer")
    ranges = [" 10.0.0.0/8", "192.0.2.7/24", "FD00::/64"]
    obj, errors = parse_object(set_path(lb, "spec.loadBalancerSourceRanges", ranges), "w")
    assert errors == []
    # spaces dropped (kube-proxy trims them), host bits cleared, IPv6 in canonical form
    assert obj.load_balancer_source_ranges == (  # type: ignore[union-attr]
        "10.0.0.0/8",
        "192.0.2.0/24",
        "fd00::/64",
    )
    bad = set_path(lb, "spec.loadBalancerSourceRanges", ["10.0.0.0/8", "10.0.0.1", "x/8", 7])
    assert errors_of(bad) == [
        SVC + 'spec.loadBalancerSourceRanges[1]: must be a CIDR (10.0.0.0/8, fd00::/64), '
        'got "10.0.0.1"',
        SVC + 'spec.loadBalancerSourceRanges[2]: must be a CIDR (10.0.0.0/8, fd00::/64), '
        'got "x/8"',
        SVC + "spec.loadBalancerSourceRanges[3]: must be a string, got 7",
    ]
    not_lb = set_path(SERVICE, "spec.loadBalancerSourceRanges", ["10.0.0.0/8"])
    assert errors_of(not_lb) == [
        SVC + "spec.loadBalancerSourceRanges: may only be used when type is LoadBalancer"
    ]


def test_endpoint_hints_for_zones_and_nodes() -> None:
    hints = {"forZones": [{"name": "z1"}, {"name": "z2"}], "forNodes": [{"name": "node-a"}]}
    obj, errors = parse_object(set_path(SLICE, "endpoints.0.hints", hints), "web.yaml")
    assert errors == []
    endpoint = obj.endpoints[0]  # type: ignore[union-attr]
    assert endpoint.hint_zones == ("z1", "z2") and endpoint.hint_nodes == ("node-a",)
    bad = {"forZones": [{}], "forNodes": ["node-a", {"name": 3}]}
    assert errors_of(set_path(SLICE, "endpoints.0.hints", bad)) == [
        ES + "endpoints[0].hints.forZones[0].name: required",
        ES + 'endpoints[0].hints.forNodes[0]: must be a mapping with a name, got "node-a"',
        ES + "endpoints[0].hints.forNodes[1].name: must be a string, got 3",
    ]


def test_node_keeps_only_name_and_labels() -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "node-a",
            "resourceVersion": "42",
            "labels": {"topology.kubernetes.io/zone": "z1"},
        },
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    obj, errors = parse_object(doc, "nodes.yaml")
    assert errors == [] and obj is not None
    assert obj.key == ("Node", "", "node-a") and obj.zone == "z1"  # type: ignore[union-attr]
    heartbeat = set_path(doc, "metadata.resourceVersion", "43")
    assert parse_object(heartbeat, "nodes.yaml")[0] == obj  # not a change
    assert [str(e) for e in parse_object(set_path(doc, "metadata.name", ""), "n.yaml")[1]] == [
        "n.yaml: object (Node): metadata.name: required"
    ]


ES = "web.yaml: EndpointSlice default/web-1: "


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("addressType", "IPv5", 'addressType: must be one of IPv4, IPv6, FQDN, got "IPv5"'),
        ("addressType", DELETE, "addressType: required (IPv4, IPv6 or FQDN)"),
        (
            "metadata.labels",
            {},
            "metadata.labels[kubernetes.io/service-name]: required: the name of the Service",
        ),
        (
            "endpoints.0.addresses",
            ["10.244.0.256"],
            'endpoints[0].addresses[0]: must be a valid IPv4 address, got "10.244.0.256"',
        ),
        (
            "endpoints.0.addresses",
            ["fd00::1"],
            'endpoints[0].addresses[0]: must be a valid IPv4 address, got "fd00::1"',
        ),
        ("endpoints.0.addresses", [], "endpoints[0].addresses: required (at least one address)"),
        (
            "endpoints.0.conditions",
            {"ready": "yes"},
            'endpoints[0].conditions.ready: must be true or false, got "yes"',
        ),
        (
            "endpoints.0.conditions",
            {"ready": 1},
            "endpoints[0].conditions.ready: must be true or false, got 1",
        ),
        ("endpoints.0.nodeName", 0, "endpoints[0].nodeName: must be a string, got 0"),
        ("metadata.uid", 0, "metadata.uid: must be a string, got 0"),
        ("ports.0.port", 0, "ports[0].port: must be 1-65535, got 0"),
        (
            "ports.0.protocol",
            "ICMP",
            'ports[0].protocol: must be one of TCP, UDP, SCTP, got "ICMP"',
        ),
        ("ports.0.name", "Http", "ports[0].name: " + LABEL_MSG + '"Http"'),
        (
            "apiVersion",
            "discovery.k8s.io/v1beta1",
            'apiVersion: must be discovery.k8s.io/v1, got "discovery.k8s.io/v1beta1"',
        ),
    ],
)
def test_endpointslice_invalid(path: str, value: Any, expected: str) -> None:
    assert errors_of(set_path(SLICE, path, value)) == [ES + expected]


def test_endpointslice_ipv6_and_fqdn() -> None:
    v6 = set_path(set_path(SLICE, "addressType", "IPv6"), "endpoints.0.addresses", ["fd00::5"])
    assert errors_of(v6) == []
    bad = set_path(v6, "endpoints.0.addresses", ["10.0.0.1"])
    assert errors_of(bad) == [
        ES + 'endpoints[0].addresses[0]: must be a valid IPv6 address, got "10.0.0.1"'
    ]
    fqdn = set_path(
        set_path(SLICE, "addressType", "FQDN"), "endpoints.0.addresses", ["db.example.com"]
    )
    assert errors_of(fqdn) == []


def test_endpointslice_null_port_dropped() -> None:
    obj, errors = parse_object(set_path(SLICE, "ports.0.port", None), "web.yaml")
    assert errors == [] and obj is not None and obj.ports == ()  # type: ignore[union-attr]


ING = "web.yaml: Ingress shop/shop: "
RULE = "spec.rules[0]"
P0 = RULE + ".http.paths[0]"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "spec.rules.0.http.paths.0.pathType",
            DELETE,
            f"{P0}.pathType: required (Exact, Prefix or ImplementationSpecific)",
        ),
        (
            "spec.rules.0.http.paths.0.pathType",
            "Regex",
            f'{P0}.pathType: must be one of Exact, Prefix, ImplementationSpecific, got "Regex"',
        ),
        (
            "spec.rules.0.http.paths.0.path",
            "api",
            f'{P0}.path: must start with / for pathType Prefix, got "api"',
        ),
        ("spec.rules.0.http.paths.0.backend", DELETE, f"{P0}.backend: required"),
        (
            "spec.rules.0.http.paths.0.backend.service.name",
            DELETE,
            f"{P0}.backend.service.name: required",
        ),
        (
            "spec.rules.0.http.paths.0.backend.service.port",
            {},
            f"{P0}.backend.service.port: required (number or name)",
        ),
        (
            "spec.rules.0.http.paths.0.backend.service.port",
            {"number": 99999},
            f"{P0}.backend.service.port.number: must be 1-65535, got 99999",
        ),
        (
            "spec.rules.0.http.paths.0.backend.service.port",
            {"number": 80, "name": "http"},
            f"{P0}.backend.service.port: must have number or name, not both",
        ),
        (
            "spec.rules.0.http.paths.0.backend.service.port",
            {"name": "HTTP"},
            f'{P0}.backend.service.port.name: {IANA}"HTTP"',
        ),
        (
            "spec.rules.0.host",
            "shop.*.example.com",
            f"{RULE}.host: a wildcard is only allowed as the whole first label (*.example.com), "
            'got "shop.*.example.com"',
        ),
        (
            "spec.rules.0.host",
            "10.0.0.1",
            f'{RULE}.host: must be a DNS name, not an IP address, got "10.0.0.1"',
        ),
        (
            "spec.rules.0.host",
            "Shop.Example.com",
            f"{RULE}.host: must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', "
            "each part starting and ending with a letter or digit, at most 253 characters), "
            'got "Shop.Example.com"',
        ),
        ("spec.rules.0.http.paths", [], f"{RULE}.http.paths: required (at least one path)"),
        ("spec.tls.0.secretName", DELETE, "spec.tls[0].secretName: required"),
        (
            "spec.tls.0.hosts",
            ["*.Shop.com"],
            "spec.tls[0].hosts[0]: must be a DNS-1123 subdomain (lowercase letters, digits, "
            "'-' and '.', each part starting and ending with a letter or digit, at most 253 "
            'characters), got "*.Shop.com"',
        ),
        (
            "spec.tls.0.hosts",
            ["*"],
            "spec.tls[0].hosts[0]: a wildcard is only allowed as the whole first label "
            '(*.example.com), got "*"',
        ),
        ("spec.rules", [], "spec: must have rules or a defaultBackend"),
    ],
)
def test_ingress_invalid(path: str, value: Any, expected: str) -> None:
    assert errors_of(set_path(INGRESS, path, value)) == [ING + expected]


def test_ingress_exact_path_and_wildcard_host_ok() -> None:
    doc = set_path(INGRESS, "spec.rules.0.http.paths.0.pathType", "Exact")
    doc = set_path(doc, "spec.rules.0.host", "*.example.com")
    assert errors_of(doc) == []
    impl = set_path(INGRESS, "spec.rules.0.http.paths.0.pathType", "ImplementationSpecific")
    assert errors_of(set_path(impl, "spec.rules.0.http.paths.0.path", "")) == []


def test_ingress_class_annotation_fallback() -> None:
    doc = set_path(INGRESS, "metadata.annotations", {"kubernetes.io/ingress.class": "seaway"})
    obj, errors = parse_object(doc, "x.yaml")
    assert errors == [] and obj is not None
    assert obj.ingress_class_name == "seaway"  # type: ignore[union-attr]


def test_ingress_class_and_secret_invalid() -> None:
    cls = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": "seaway"},
        "spec": {},
    }
    assert errors_of(cls) == [
        "web.yaml: IngressClass seaway: spec.controller: required (e.g. seaway.dev/ingress)"
    ]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "tls", "namespace": "shop"},
        "data": {"tls.crt": "not base64!", "tls.key": ""},
    }
    assert errors_of(secret) == [
        "web.yaml: Secret shop/tls: data[tls.crt]: must be valid base64 (Only base64 data is "
        "allowed)",
        "web.yaml: Secret shop/tls: data[tls.key]: required for a kubernetes.io/tls Secret",
    ]


def test_object_without_name_or_kind() -> None:
    doc = set_path(SERVICE, "metadata", {"namespace": "x"})
    assert errors_of(doc) == ["web.yaml: document 1 (Service): metadata.name: required"]
    assert errors_of({"apiVersion": "v1", "metadata": {"name": "a"}}) == [
        "web.yaml: document 1: kind: required"
    ]


def test_every_error_of_a_file_and_good_objects_kept() -> None:
    text = """\
apiVersion: v1
kind: Service
metadata: {name: good}
spec:
  clusterIP: 10.96.0.1
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.2
  ports:
  - {name: a, port: 70000}
  - {name: b, port: 81, protocol: tcp}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1}
addressType: IPv4
endpoints: [{addresses: [10.0.0.999]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ignored}
"""
    objects, errors = parse_manifest_text(text, "web.yaml")
    assert [str(o.key) for o in objects] == ["Service default/good"]
    assert [str(e) for e in errors] == [
        "web.yaml: Service default/web: spec.ports[0].port: must be 1-65535, got 70000",
        "web.yaml: Service default/web: spec.ports[1].protocol: must be one of TCP, UDP, SCTP, "
        'got "tcp"',
        "web.yaml: EndpointSlice default/web-1: metadata.labels[kubernetes.io/service-name]: "
        "required: the name of the Service",
        "web.yaml: EndpointSlice default/web-1: endpoints[0].addresses[0]: must be a valid IPv4 "
        'address, got "10.0.0.999"',
    ]


def test_ingress_backend_service_and_resource_both() -> None:
    backend = {
        "service": {"name": "web", "port": {"number": 80}},
        "resource": {"kind": "Bucket", "name": "b"},
    }
    doc = set_path(INGRESS, "spec.rules.0.http.paths.0.backend", backend)
    assert errors_of(doc) == [
        ING + f"{P0}.backend: must have service or resource, not both",
    ]


def test_ingress_class_is_cluster_scoped() -> None:
    cls = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": "seaway", "namespace": "ignored"},
        "spec": {"controller": "seaway.dev/ingress"},
    }
    obj, errors = parse_object(cls, "c.yaml")
    assert errors == [] and obj is not None and obj.meta.namespace == ""
    bad = set_path(cls, "metadata.name", "Seaway")
    assert errors_of(bad) == [
        "web.yaml: IngressClass Seaway: metadata.name: must be a DNS-1123 subdomain (lowercase "
        "letters, digits, '-' and '.', each part starting and ending with a letter or digit, "
        'at most 253 characters), got "Seaway"'
    ]


def test_any_mapping_is_accepted() -> None:
    from types import MappingProxyType

    obj, errors = parse_object(MappingProxyType(SERVICE), "web.yaml")
    assert errors == [] and obj is not None and str(obj.key) == "Service default/web"


def test_unknown_kinds_are_ignored_silently() -> None:
    for doc in (
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {}},  # even unnamed
    ):
        assert parse_object(doc, "x.yaml") == (None, [])


def test_secrets_of_every_type_are_read() -> None:
    """An auth-secret may be of any type (ingress-nginx reads its `auth` key whatever the
    type); stringData wins over data, as kubectl apply merges them."""
    for doc, kind in (
        ({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "s"}},
         "Opaque"),
        ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}, "Opaque"),
        ({"apiVersion": "v1", "kind": "Secret", "type": "example.com/htpasswd",
          "metadata": {"name": "s"}, "data": {"auth": "dTpwCg=="},
          "stringData": {"auth": "user:{PLAIN}x"}}, "example.com/htpasswd"),
    ):  # fmt: skip
        obj, errors = parse_object(doc, "x.yaml")
        assert errors == [] and isinstance(obj, GenericSecret) and obj.secret_type == kind
        assert str(obj.key) == "Secret default/s"
    assert obj.data == {"auth": b"user:{PLAIN}x"}


def test_secret_data_errors_name_the_key() -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": "basic-auth", "namespace": "shop"},
        "data": {"auth": "not base64!", "other": 3},
        "stringData": {"map": ["x"]},
    }
    assert errors_of(doc) == [
        "web.yaml: Secret shop/basic-auth: data[auth]: must be valid base64 (Only base64 "
        "data is allowed)",
        "web.yaml: Secret shop/basic-auth: stringData[map]: must be a string, got a list",
        "web.yaml: Secret shop/basic-auth: data[other]: must be base64 text, got 3",
    ]


CONFIGMAP: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
    "data": {"proxy-body-size": "8m", "hsts": "false"},
    "binaryData": {"blob": "AAEC"},
}
CM = "web.yaml: ConfigMap ingress-nginx/ingress-nginx-controller: "


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("metadata.name", DELETE, ["web.yaml: document 1 (ConfigMap): metadata.name: required"]),
        ("data.hsts", True, [CM + "data[hsts]: must be a string, got true (quote it)"]),
        ("data.proxy-read-timeout", 60, [CM + "data[proxy-read-timeout]: must be a string, "
                                         "got 60 (quote it)"]),
        ("data.bad key", "x", [CM + "data[bad key]: keys must be letters, digits, '-', '_' "
                               "and '.'"]),
        ("data.list", ["a"], [CM + "data[list]: must be a string, got a list"]),
        ("data", "x", [CM + 'data: must be a mapping, got "x"']),
    ],
)
def test_configmap_errors(path: str, value: Any, expected: list[str]) -> None:
    assert errors_of(set_path(CONFIGMAP, path, value)) == expected


def test_configmap_keeps_string_data_and_drops_binary_data() -> None:
    obj, errors = parse_object(CONFIGMAP, "web.yaml")
    assert errors == []
    assert isinstance(obj, ConfigMap)
    assert obj.data == {"proxy-body-size": "8m", "hsts": "false"}
    assert str(obj.key) == "ConfigMap ingress-nginx/ingress-nginx-controller"
