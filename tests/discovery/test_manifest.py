"""Real manifests, as `kubectl get -o yaml/json` prints them, parse into the model."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from discovery.manifest import load_path, parse_manifest_text
from discovery.model import (
    ConfigMap,
    Endpoint,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
    GenericSecret,
    Ingress,
    IngressBackend,
    IngressClass,
    IngressPath,
    IngressRule,
    IngressTLS,
    KubeObject,
    Service,
    ServicePort,
    TLSSecret,
)

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> list[KubeObject]:
    path = FIXTURES / name
    objects, errors = parse_manifest_text(path.read_bytes(), str(path))
    assert errors == []
    return objects


def test_service_as_kubectl_prints_it() -> None:
    [svc] = load("service-web.yaml")
    assert isinstance(svc, Service)
    assert svc.meta.name == "web"
    assert svc.meta.namespace == "shop"
    assert svc.meta.uid == "6c3f1f0e-8a51-4c8e-9d7e-0b1e0c2b9a11"
    assert svc.meta.resource_version == "48213"
    assert svc.meta.creation_timestamp == "2024-03-11T09:21:44Z"
    assert svc.meta.labels == {"app": "web"}
    assert set(svc.meta.annotations) == {"kubectl.kubernetes.io/last-applied-configuration"}
    assert svc.type == "ClusterIP"
    assert svc.cluster_ips == ("10.96.12.34",)
    assert not svc.headless
    assert svc.ports == (
        ServicePort("http", "TCP", 80, "http"),
        ServicePort("https", "TCP", 443, 8443),
    )
    assert svc.session_affinity_timeout is None
    assert svc.internal_traffic_policy == "Cluster"
    assert svc.proxied


def test_load_balancer_headless_and_external_name() -> None:
    edge, db, upstream = load("service-edge.yaml")
    assert isinstance(edge, Service)
    assert edge.type == "LoadBalancer"
    # nodePort 8080 is outside the default 30000-32767 range: a cluster setting, accepted.
    assert edge.ports == (
        ServicePort("dns-udp", "UDP", 53, 5353, 30053),
        ServicePort("http", "TCP", 80, 8080, 8080),
    )
    assert edge.session_affinity_timeout == 600
    assert edge.external_traffic_policy == "Local"
    assert edge.internal_traffic_policy == "Local"
    assert edge.external_ips == ("203.0.113.10",)
    assert edge.load_balancer_ips == ("198.51.100.20",)  # hostname-only entry skipped
    assert edge.health_check_node_port == 31778

    assert isinstance(db, Service)
    assert db.headless and db.cluster_ips == () and not db.proxied
    assert db.ports == (ServicePort("", "TCP", 5432, 5432),)  # targetPort defaults to port

    assert isinstance(upstream, Service)
    assert upstream.meta.namespace == "default"  # absent namespace
    assert upstream.type == "ExternalName" and upstream.external_name == "api.example.com"
    assert not upstream.proxied


def test_endpointslice_as_kubectl_prints_it() -> None:
    [es] = load("endpointslice-web.yaml")
    assert isinstance(es, EndpointSlice)
    assert es.service_name == "web"
    assert es.meta.name == "web-8v2kq"
    assert es.meta.annotations == {
        "endpoints.kubernetes.io/last-change-trigger-time": "2024-03-11T09:22:05Z"
    }
    assert es.address_type == "IPv4"
    assert es.endpoints == (
        Endpoint(
            ("10.244.1.17",),
            EndpointConditions(ready=True, serving=True, terminating=False),
            node_name="node-a",
            zone="zone-1",
            hint_zones=("zone-1",),
        ),
        Endpoint(
            ("10.244.2.9",),
            EndpointConditions(ready=False, serving=True, terminating=True),
            node_name="node-b",
            zone="zone-2",
        ),
        # conditions: {} -> ready and serving unset mean true, as kube-proxy reads them
        Endpoint(("10.244.3.4",), EndpointConditions(True, True, False)),
    )
    assert es.ports == (EndpointPort("http", 8080, "TCP"), EndpointPort("https", 8443, "TCP"))


def test_ingress_and_class() -> None:
    cls, ing = load("ingress.yaml")
    assert isinstance(cls, IngressClass)
    assert cls.controller == "seaway.dev/ingress"
    assert cls.is_default
    assert cls.meta.namespace == ""
    assert str(cls.key) == "IngressClass seaway"

    assert isinstance(ing, Ingress)
    assert ing.ingress_class_name == "seaway"
    assert ing.default_backend == IngressBackend("web", port_number=80)
    assert ing.rules == (
        IngressRule(
            "shop.example.com",
            (
                IngressPath("/", "Prefix", IngressBackend("web", port_name="http")),
                IngressPath("/api/v1/orders", "Exact", IngressBackend("api", port_number=8080)),
            ),
        ),
        IngressRule(
            "*.shop.example.com",
            (
                IngressPath(
                    "/static",
                    "ImplementationSpecific",
                    IngressBackend(resource="k8s.example.com/StorageBucket/static-assets"),
                ),
            ),
        ),
    )
    assert ing.tls == (IngressTLS(("shop.example.com", "*.shop.example.com"), "shop-tls"),)


def test_tls_secret_decoded_opaque_secret_read_other_kinds_ignored() -> None:
    objects = load("secrets-and-others.yaml")
    # The Deployment is skipped; ConfigMaps are read (one may hold ingress-nginx settings:
    # --configmap); an Opaque Secret is read too (an auth-secret may name it): which
    # Secrets are kept is the sources' decision (discovery/secret_refs.py).
    assert [str(o.key) for o in objects] == [
        "Secret shop/shop-tls",
        "Secret shop/db-password",
        "ConfigMap shop/settings",
    ]
    secret, opaque, configmap = objects
    assert isinstance(configmap, ConfigMap) and configmap.data == {"enabled": "on"}
    assert isinstance(secret, TLSSecret) and secret.ca_pem == b""
    assert secret.cert_pem.startswith(b"-----BEGIN CERTIFICATE-----\n")
    assert secret.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert isinstance(opaque, GenericSecret) and opaque.secret_type == "Opaque"
    assert opaque.data == {"password": b"password"}
    assert "password" not in repr(opaque).replace("db-password", "")  # data not in logs


def test_list_yaml_with_unquoted_timestamp() -> None:
    svc, es = load("list.yaml")
    assert isinstance(svc, Service) and isinstance(es, EndpointSlice)
    # YAML loads an unquoted timestamp as a date; it comes back as RFC 3339 text.
    assert svc.meta.creation_timestamp == "2024-03-11T09:21:44Z"
    assert svc.ports == (ServicePort("", "TCP", 8080, 8080),)
    assert es.ports == (EndpointPort("", 8080, "TCP"),)


def test_json_list_equals_yaml() -> None:
    from_json = load("list.json")
    assert from_json == load("service-web.yaml") + load("endpointslice-web.yaml")


def test_load_path_directory_and_duplicate_warning(tmp_path: Path) -> None:
    result = load_path(str(FIXTURES))
    assert result.errors == []
    files = [Path(f).name for f in result.objects_by_file]
    assert files == sorted(files) and "list.json" in files and "ingress.yaml" in files
    keys = sorted(str(o.key) for o in result.objects())
    assert keys == sorted(set(keys))  # one object per key
    assert len(keys) == 12  # ten, plus the ConfigMap and Opaque Secret of secrets-and-others
    # list.json repeats web and its slice: the later file (sorted order) wins, warned.
    assert any("Service shop/web is defined in" in w for w in result.warnings)


def test_load_path_skips_dotfiles_and_editor_files(tmp_path: Path) -> None:
    good = (FIXTURES / "service-web.yaml").read_text()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "web.yml").write_text(good)
    for junk in (".web.yaml.swp", "#web.yaml#", "web.yaml~", ".hidden.yaml", "notes.txt"):
        (tmp_path / junk).write_text("not: [valid")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.yaml").write_text("not: [valid")
    result = load_path(str(tmp_path))
    assert result.errors == []
    assert list(result.objects_by_file) == [str(tmp_path / "sub" / "web.yml")]


def test_load_path_missing_is_an_error_not_an_exception(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    result = load_path(missing)
    assert [str(e) for e in result.errors] == [f"{missing}: no such file or directory"]


def test_secret_string_data(tmp_path: Path) -> None:
    text = """
apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata:
  name: s
stringData:
  tls.crt: "-----BEGIN CERTIFICATE-----"
data:
  tls.key: {}
""".format(base64.b64encode(b"KEY").decode())
    [secret], errors = parse_manifest_text(text, "s.yaml")
    assert errors == []
    assert isinstance(secret, TLSSecret)
    assert secret.cert_pem == b"-----BEGIN CERTIFICATE-----" and secret.key_pem == b"KEY"


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir()))
def test_every_fixture_same_through_both_decoders(name: str) -> None:
    """The fast decoder (rapidyaml) and the reference (PyYAML) agree on real manifests."""
    from discovery import manifest, yaml_decode

    data = (FIXTURES / name).read_bytes()
    docs_fast = yaml_decode.decode_fast(data)
    if docs_fast is None:
        pytest.skip("rapidyaml not installed")
    fast = manifest._convert(docs_fast, name)
    exact = manifest._convert(yaml_decode.decode_exact(data), name)
    assert fast == exact and fast[1] == []
