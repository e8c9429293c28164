"""SnapshotBuilder: endpoint selection, incremental builds, and incremental == full."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime

import pytest

from discovery.model import (
    ConfigMap,
    EndpointSlice,
    KubeObject,
    ObjectKey,
)
from discovery.nginx_configmap import IngressNginxMode
from discovery.nginx_settings import NO_ANNOTATIONS
from discovery.snapshot import EndpointInfo, ServicePortInfo, ServicePortName
from discovery.snapshot_builder import SnapshotBuilder, build_snapshot, parse_trigger_time
from discovery.store import Store
from tests.discovery.factories import (
    ep,
    make_ingress,
    make_ingress_class,
    make_service,
    make_slice,
    make_tls_secret,
    meta,
    port,
)


def spn(
    name: str, port_name: str = "", protocol: str = "TCP", ns: str = "default"
) -> ServicePortName:
    return ServicePortName(ns, name, port_name, protocol)  # type: ignore[arg-type]


def addrs(endpoints: tuple[EndpointInfo, ...]) -> list[str]:
    return [e.address for e in endpoints]


def info_of(objects: list[KubeObject], name: ServicePortName) -> ServicePortInfo:
    return build_snapshot(objects).service_ports[name]


# -- service port fields ------------------------------------------------------------


def test_service_port_fields() -> None:
    svc = make_service(
        "web",
        ns="shop",
        cluster_ips=["10.96.0.10", "fd00::10"],
        ports=[port("http", 80, 8080, node_port=30080), port("dns", 53, 53, "UDP")],
        type="NodePort",
        session_affinity_timeout=600,
        external_traffic_policy="Local",
        internal_traffic_policy="Local",
        external_ips=["192.0.2.1"],
        load_balancer_ips=["198.51.100.1"],
    )
    snap = build_snapshot([svc])
    http = snap.service_ports[spn("web", "http", ns="shop")]
    assert http.cluster_ips == ("10.96.0.10", "fd00::10")
    assert (http.port, http.protocol, http.node_port) == (80, "TCP", 30080)
    assert http.session_affinity_timeout == 600
    assert http.external_traffic_policy == "Local"
    assert http.internal_traffic_policy == "Local"
    assert http.external_ips == ("192.0.2.1",)
    assert http.load_balancer_ips == ("198.51.100.1",)
    assert http.endpoints == () and http.all_endpoints == ()
    dns = snap.service_ports[spn("web", "dns", "UDP", ns="shop")]
    assert (dns.port, dns.protocol, dns.node_port) == (53, "UDP", None)
    assert snap.ports_by_service[("shop", "web")] == (http, dns)
    assert snap.services[("shop", "web")] is svc
    assert str(http.name) == "shop/web:http"


def test_headless_and_external_name_are_not_proxied_but_listed() -> None:
    headless = make_service("db", headless=True, ports=[5432])
    external = make_service("ext", type="ExternalName", external_name="example.com")
    no_ip = make_service("noip", cluster_ip=None)
    slices = [make_slice(headless, ["10.1.0.1"]), make_slice("ext", ["10.1.0.2"])]
    snap = build_snapshot([headless, external, no_ip, *slices])
    assert snap.service_ports == {}
    # The L7 proxy routes to endpoints: headless and IP-less Services are there for it.
    assert set(snap.ports_by_service) == {("default", "db"), ("default", "noip")}
    (db,) = snap.ports_by_service[("default", "db")]
    assert db.cluster_ips == () and [e.address for e in db.endpoints] == ["10.1.0.1:5432"]
    assert set(snap.services) == {("default", "db"), ("default", "ext"), ("default", "noip")}


# -- endpoint selection -----------------------------------------------------------


def test_ready_endpoints_are_usable_and_sorted_numerically() -> None:
    svc = make_service("web", ports=[80])
    eps = make_slice(
        svc,
        [("10.1.0.10", True, True, False, "node-b"), "10.1.0.9", ("10.1.0.2", False)],
        ports=[80],
    )
    info = info_of([svc, eps], spn("web"))
    assert addrs(info.all_endpoints) == ["10.1.0.2:80", "10.1.0.9:80", "10.1.0.10:80"]
    assert addrs(info.endpoints) == ["10.1.0.9:80", "10.1.0.10:80"]
    ten = info.all_endpoints[2]
    assert (ten.ready, ten.serving, ten.terminating, ten.node_name) == (True, True, False, "node-b")


def test_terminating_fallback_when_none_ready() -> None:
    svc = make_service("web", ports=[80])
    eps = make_slice(
        svc,
        [
            ("10.1.0.1", False, True, True),  # serving, terminating: fallback candidate
            ("10.1.0.2", False, False, True),  # terminating, not serving: never
            ("10.1.0.3", False, False, False),  # not ready: never
        ],
        ports=[80],
    )
    info = info_of([svc, eps], spn("web"))
    assert addrs(info.endpoints) == ["10.1.0.1:80"]
    assert len(info.all_endpoints) == 3


def test_terminating_not_used_when_one_is_ready() -> None:
    svc = make_service("web", ports=[80])
    eps = make_slice(svc, [("10.1.0.1", False, True, True), ("10.1.0.2", True)], ports=[80])
    assert addrs(info_of([svc, eps], spn("web")).endpoints) == ["10.1.0.2:80"]


def test_not_serving_excluded_even_as_fallback() -> None:
    svc = make_service("web", ports=[80])
    eps = make_slice(svc, [("10.1.0.1", False, False, True)], ports=[80])
    info = info_of([svc, eps], spn("web"))
    assert info.endpoints == ()
    assert addrs(info.all_endpoints) == ["10.1.0.1:80"]


def test_named_target_port_resolved_through_slice_ports() -> None:
    svc = make_service(
        "web", ports=[port("http", 80, "web-http"), port("metrics", 9090, "metrics")]
    )
    eps = make_slice(svc, ["10.1.0.1"], ports=[("http", 8080), ("metrics", 9100)])
    snap = build_snapshot([svc, eps])
    assert addrs(snap.service_ports[spn("web", "http")].endpoints) == ["10.1.0.1:8080"]
    assert addrs(snap.service_ports[spn("web", "metrics")].endpoints) == ["10.1.0.1:9100"]


def test_slice_port_must_match_name_and_protocol() -> None:
    svc = make_service("dns", ports=[port("dns", 53, 53, "UDP"), port("dns-tcp", 53, 53, "TCP")])
    eps = make_slice(svc, ["10.1.0.1"], ports=[("dns", 5353, "UDP"), ("dns", 5354, "TCP")])
    snap = build_snapshot([svc, eps])
    assert addrs(snap.service_ports[spn("dns", "dns", "UDP")].endpoints) == ["10.1.0.1:5353"]
    # "dns"/TCP in the slice feeds no service port (the TCP one is named "dns-tcp").
    assert snap.service_ports[spn("dns", "dns-tcp", "TCP")].endpoints == ()


def test_unnamed_port_matches_unnamed_slice_port_only() -> None:
    svc = make_service("web", ports=[80])
    eps = make_slice(svc, ["10.1.0.1"], ports=[("http", 8080)])
    assert info_of([svc, eps], spn("web")).all_endpoints == ()


def test_duplicates_across_slices_merged_preferring_ready() -> None:
    svc = make_service("web", ports=[80])
    a = make_slice(svc, [("10.1.0.1", False), "10.1.0.2"], ports=[8080], name="web-a")
    b = make_slice(svc, ["10.1.0.1", ("10.1.0.2", False), "10.1.0.3"], ports=[8080], name="web-b")
    info = info_of([svc, b, a], spn("web"))
    assert addrs(info.all_endpoints) == ["10.1.0.1:8080", "10.1.0.2:8080", "10.1.0.3:8080"]
    assert all(e.ready for e in info.all_endpoints)
    assert addrs(info.endpoints) == addrs(info.all_endpoints)


def test_same_ip_different_ports_are_distinct() -> None:
    svc = make_service("web", ports=[80])
    a = make_slice(svc, ["10.1.0.1"], ports=[8080], name="web-a")
    b = make_slice(svc, ["10.1.0.1"], ports=[8081], name="web-b")
    assert addrs(info_of([svc, a, b], spn("web")).endpoints) == ["10.1.0.1:8080", "10.1.0.1:8081"]


def test_wrong_address_family_and_fqdn_slices_ignored() -> None:
    v4 = make_service("web", cluster_ip="10.96.0.1", ports=[80])
    v6_slice = make_slice(v4, ["fd00::1"], ports=[80], address_type="IPv6")
    fqdn = make_slice(v4, ["db.example.com"], ports=[80], address_type="FQDN")
    v4_slice = make_slice(v4, ["10.1.0.1"], ports=[80])
    assert addrs(info_of([v4, v6_slice, fqdn, v4_slice], spn("web")).endpoints) == ["10.1.0.1:80"]

    v6 = make_service("web", cluster_ip="fd00:96::1", ports=[80])
    info = info_of([v6, v6_slice, fqdn, v4_slice], spn("web"))
    assert addrs(info.endpoints) == ["[fd00::1]:80"]


def test_dual_stack_service_takes_both_families() -> None:
    svc = make_service("web", cluster_ips=["10.96.0.1", "fd00:96::1"], ports=[80])
    v4 = make_slice(svc, ["10.1.0.1"], ports=[80])
    v6 = make_slice(svc, ["fd00::1"], ports=[80], address_type="IPv6")
    assert addrs(info_of([svc, v4, v6], spn("web")).endpoints) == ["10.1.0.1:80", "[fd00::1]:80"]


def test_slice_of_other_service_or_namespace_ignored() -> None:
    svc = make_service("web", ports=[80])
    other = make_slice("api", ["10.1.0.1"], ports=[80])
    other_ns = make_slice(svc, ["10.1.0.2"], ports=[80], ns="elsewhere")
    mine = make_slice(svc, ["10.1.0.3"], ports=[80])
    assert addrs(info_of([svc, other, other_ns, mine], spn("web")).endpoints) == ["10.1.0.3:80"]


def test_first_address_of_each_endpoint_only_and_empty_skipped() -> None:
    svc = make_service("web", ports=[80])
    eps = make_slice(svc, [ep(["10.1.0.1", "10.1.0.9"]), ep([])], ports=[80])
    assert addrs(info_of([svc, eps], spn("web")).all_endpoints) == ["10.1.0.1:80"]


# -- snapshot-level fields --------------------------------------------------------


def test_ingresses_classes_secrets() -> None:
    ing_b = make_ingress("b", ns="x")
    ing_a = make_ingress("z", ns="a")
    ing_c = make_ingress("a", ns="x")
    cls = make_ingress_class("seaway", default=True)
    secret = make_tls_secret("cert", ns="x", cert_pem=b"C", key_pem=b"K")
    snap = build_snapshot([ing_b, ing_a, ing_c, cls, secret])
    assert snap.ingresses == (ing_a, ing_c, ing_b)
    assert snap.ingress_classes == (cls,)
    assert snap.tls_secrets == {("x", "cert"): secret}


def test_parse_trigger_time() -> None:
    assert (
        parse_trigger_time("2024-03-01T12:00:00Z")
        == datetime(2024, 3, 1, 12, tzinfo=UTC).timestamp()
    )
    assert parse_trigger_time("2024-03-01T12:00:00.5+01:00") == pytest.approx(
        datetime(2024, 3, 1, 11, tzinfo=UTC).timestamp() + 0.5
    )
    assert parse_trigger_time("yesterday") is None
    assert parse_trigger_time(None) is None
    assert parse_trigger_time("") is None


def test_trigger_times_only_for_slices_changed_since_last_build() -> None:
    store = Store()
    svc = make_service("web", ports=[80])
    store.upsert(svc)
    store.upsert(make_slice(svc, ["10.1.0.1"], ports=[80], trigger_time="2024-03-01T12:00:00Z"))
    builder = SnapshotBuilder(store)
    first, _ = builder.build()
    assert first.trigger_times == (parse_trigger_time("2024-03-01T12:00:00Z"),)
    second, _ = builder.build()
    assert second.trigger_times == ()
    store.upsert(make_slice(svc, ["10.1.0.2"], ports=[80], trigger_time="2024-03-01T12:00:05Z"))
    third, _ = builder.build()
    assert third.trigger_times == (parse_trigger_time("2024-03-01T12:00:05Z"),)


def test_trigger_times_before_not_before_dropped() -> None:
    store = Store()
    store.upsert(make_slice("a", ["10.1.0.1"], trigger_time="2024-03-01T12:00:00Z", name="a"))
    store.upsert(make_slice("b", ["10.1.0.1"], trigger_time="2024-03-01T12:10:00Z", name="b"))
    cutoff = parse_trigger_time("2024-03-01T12:05:00Z")
    snap, _ = SnapshotBuilder(store, not_before=cutoff).build()
    assert snap.trigger_times == (parse_trigger_time("2024-03-01T12:10:00Z"),)


# -- incremental --------------------------------------------------------------------


@pytest.fixture
def store() -> Store:
    st = Store()
    for name in ("a", "b", "c"):
        svc = make_service(name, cluster_ip=f"10.96.0.{ord(name)}", ports=[("http", 80, 8080)])
        st.upsert(svc)
        st.upsert(make_slice(svc, [f"10.1.{ord(name)}.1", f"10.1.{ord(name)}.2"]))
    return st


def test_first_build_reports_every_port_and_generation_increments(store: Store) -> None:
    builder = SnapshotBuilder(store)
    snap1, changed1 = builder.build()
    assert changed1 == {spn("a", "http"), spn("b", "http"), spn("c", "http")}
    assert snap1.generation == 1
    snap2, changed2 = builder.build()
    assert changed2 == frozenset()
    assert snap2.generation == 2
    assert snap2.service_ports == snap1.service_ports


def test_slice_change_touches_only_its_service_and_shares_the_rest(store: Store) -> None:
    builder = SnapshotBuilder(store)
    snap1, _ = builder.build()
    store.upsert(make_slice(make_service("b", ports=[("http", 80, 8080)]), ["10.1.98.9"]))
    snap2, changed = builder.build()
    assert changed == {spn("b", "http")}
    assert addrs(snap2.service_ports[spn("b", "http")].endpoints) == ["10.1.98.9:8080"]
    assert snap2.service_ports[spn("a", "http")] is snap1.service_ports[spn("a", "http")]
    # The old snapshot is untouched.
    assert addrs(snap1.service_ports[spn("b", "http")].endpoints) == [
        "10.1.98.1:8080",
        "10.1.98.2:8080",
    ]
    # Unchanged fields are the same objects.
    assert snap2.services is snap1.services
    assert snap2.ingresses is snap1.ingresses


def test_equal_recompute_reports_nothing_and_reuses_info(store: Store) -> None:
    builder = SnapshotBuilder(store)
    snap1, _ = builder.build()
    key = ObjectKey("EndpointSlice", "default", "a-ipv4")
    old = store.get(key)
    assert isinstance(old, EndpointSlice)
    # A change that does not alter what the service resolves to (an extra label).
    meta = dataclasses.replace(old.meta, labels={**old.meta.labels, "extra": "1"})
    store.upsert(dataclasses.replace(old, meta=meta))
    snap2, changed = builder.build()
    assert changed == frozenset()
    assert snap2.service_ports[spn("a", "http")] is snap1.service_ports[spn("a", "http")]


def test_slice_moving_between_services_touches_both(store: Store) -> None:
    builder = SnapshotBuilder(store)
    builder.build()
    key = ObjectKey("EndpointSlice", "default", "a-ipv4")
    old = store.get(key)
    assert isinstance(old, EndpointSlice)
    store.upsert(dataclasses.replace(old, service_name="c"))
    snap, changed = builder.build()
    assert changed == {spn("a", "http"), spn("c", "http")}
    assert snap.service_ports[spn("a", "http")].endpoints == ()
    assert addrs(snap.service_ports[spn("c", "http")].endpoints) == [
        "10.1.97.1:8080",
        "10.1.97.2:8080",
        "10.1.99.1:8080",
        "10.1.99.2:8080",
    ]


def test_service_port_added_removed_renamed(store: Store) -> None:
    builder = SnapshotBuilder(store)
    builder.build()
    store.upsert(
        make_service("a", cluster_ip="10.96.0.97", ports=[("web", 80, 8080), ("admin", 81)])
    )
    store.delete(ObjectKey("Service", "default", "c"))
    snap, changed = builder.build()
    assert changed == {spn("a", "http"), spn("a", "web"), spn("a", "admin"), spn("c", "http")}
    assert set(snap.service_ports) == {spn("a", "web"), spn("a", "admin"), spn("b", "http")}
    assert ("default", "c") not in snap.services
    assert ("default", "c") not in snap.ports_by_service
    assert [i.name.port for i in snap.ports_by_service[("default", "a")]] == ["web", "admin"]


def test_service_becoming_headless_removes_its_ports(store: Store) -> None:
    builder = SnapshotBuilder(store)
    builder.build()
    store.upsert(make_service("b", headless=True, ports=[("http", 80, 8080)]))
    snap, changed = builder.build()
    assert changed == {spn("b", "http")}
    assert spn("b", "http") not in snap.service_ports
    assert snap.services[("default", "b")].headless


def test_ingress_change_replaces_only_ingresses(store: Store) -> None:
    builder = SnapshotBuilder(store)
    snap1, _ = builder.build()
    ing = make_ingress("site")
    store.upsert(ing)
    snap2, changed = builder.build()
    assert changed == frozenset()
    assert snap2.ingresses == (ing,)
    assert snap2.service_ports is snap1.service_ports
    store.upsert(make_tls_secret("cert"))
    store.upsert(make_ingress_class("seaway"))
    snap3, _ = builder.build()
    assert snap3.ingresses is snap2.ingresses
    assert set(snap3.tls_secrets) == {("default", "cert")}
    assert [c.meta.name for c in snap3.ingress_classes] == ["seaway"]
    assert snap2.tls_secrets == {}


# -- property: incremental == full rebuild ------------------------------------------

_NAMES = ["s0", "s1", "s2", "s3", "s4"]


def _random_object(rng: random.Random) -> KubeObject:
    name = rng.choice(_NAMES)
    ns = rng.choice(["default", "other"])
    other_kind = rng.random()
    if other_kind < 0.05:
        return make_ingress(name, ns, ingress_class_name=rng.choice([None, "a", "b"]))
    if other_kind < 0.08:
        return make_tls_secret(name, ns, cert_pem=rng.choice([b"1", b"2"]))
    if other_kind < 0.1:
        return make_ingress_class(rng.choice(["a", "b"]), default=rng.random() < 0.5)
    if rng.random() < 0.35:
        kind = rng.random()
        ports = rng.sample(
            [
                port("http", 80, "web"),
                port("", 81, 81),
                port("dns", 53, 53, "UDP"),
                port("m", 90, 9),
            ],
            k=rng.randint(0, 3),
        )
        if kind < 0.1:
            return make_service(name, ns, headless=True, ports=ports)
        family_ip = rng.choice(["10.96.0.1", "fd00::1"])
        return make_service(name, ns, cluster_ip=family_ip, ports=ports)
    svc_name = rng.choice(_NAMES)
    address_type = rng.choice(["IPv4", "IPv4", "IPv6"])
    endpoints = []
    for _ in range(rng.randint(0, 4)):
        last = rng.randint(1, 4)
        ip = f"10.1.0.{last}" if address_type == "IPv4" else f"fd00::{last}"
        ready = rng.random() < 0.6
        endpoints.append(ep(ip, ready, ready or rng.random() < 0.5, rng.random() < 0.3))
    slice_ports = rng.sample(
        [("http", 8080), ("", 81), ("dns", 53, "UDP"), ("dns", 54, "TCP"), ("m", 9)],
        k=rng.randint(0, 3),
    )
    return make_slice(
        svc_name,
        endpoints,
        ports=slice_ports,
        name=f"{svc_name}-{rng.randint(0, 2)}",
        ns=ns,
        address_type=address_type,  # type: ignore[arg-type]
    )


_KINDS = ("Service", "EndpointSlice", "Ingress", "IngressClass", "Secret")


@pytest.mark.parametrize("seed", range(40))
def test_incremental_equals_full_rebuild(seed: int) -> None:
    rng = random.Random(seed)
    store = Store()
    builder = SnapshotBuilder(store)
    previous = dict(builder.build()[0].service_ports)
    for _step in range(40):
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.25:
                kind = rng.choice(_KINDS)
                keys = list(store.objects(kind))
                if keys:
                    store.delete(rng.choice(keys))
            else:
                store.upsert(_random_object(rng))
        snap, changed = builder.build()
        current_objects: list[KubeObject] = [
            obj for kind in _KINDS for obj in store.objects(kind).values()
        ]
        fresh = build_snapshot(current_objects)
        assert snap.service_ports == fresh.service_ports
        assert snap.ports_by_service == fresh.ports_by_service
        assert snap.services == fresh.services
        assert snap.ingresses == fresh.ingresses
        assert snap.ingress_classes == fresh.ingress_classes
        assert snap.tls_secrets == fresh.tls_secrets
        expected_changed = {
            name
            for name in set(previous) | set(snap.service_ports)
            if previous.get(name) != snap.service_ports.get(name)
        }
        assert changed == expected_changed
        previous = dict(snap.service_ports)


def test_build_snapshot_of_nothing() -> None:
    snap = build_snapshot([])
    assert snap.generation == 1
    assert snap.service_ports == {} and snap.ingresses == ()


def test_repeated_port_name_keeps_the_first() -> None:
    store = Store()
    store.upsert(make_service("web", ports=[("http", 80), ("http", 81)]))
    builder = SnapshotBuilder(store)
    snap, _ = builder.build()
    assert [i.port for i in snap.ports_by_service[("default", "web")]] == [80]
    store.delete(ObjectKey("Service", "default", "web"))
    snap, changed = builder.build()
    assert changed == {spn("web", "http")} and snap.service_ports == {}


def test_reordered_ports_change_ports_by_service_only() -> None:
    store = Store()
    store.upsert(make_service("web", ports=[("a", 80), ("b", 81)]))
    builder = SnapshotBuilder(store)
    snap1, _ = builder.build()
    store.upsert(make_service("web", ports=[("b", 81), ("a", 80)]))
    snap2, changed = builder.build()
    assert changed == frozenset()
    assert [i.name.port for i in snap2.ports_by_service[("default", "web")]] == ["b", "a"]
    assert [i.name.port for i in snap1.ports_by_service[("default", "web")]] == ["a", "b"]
    assert snap2.service_ports is snap1.service_ports


def test_invalidate_reports_everything_including_removed(store: Store) -> None:
    builder = SnapshotBuilder(store)
    builder.build()
    store.delete(ObjectKey("Service", "default", "c"))
    builder.build()  # suppose a dataplane failed to apply this one
    builder.invalidate()
    store.upsert(make_service("d", ports=[80]))
    snap, changed = builder.build()
    assert changed == {spn("a", "http"), spn("b", "http"), spn("d")}
    assert set(snap.service_ports) == {spn("a", "http"), spn("b", "http"), spn("d")}
    builder.invalidate()
    store.delete(ObjectKey("Service", "default", "d"))
    snap, changed = builder.build()
    assert changed == {spn("a", "http"), spn("b", "http"), spn("d")}  # d: removed
    assert spn("d") not in snap.service_ports
    assert builder.build()[1] == frozenset()


class _FailingStore(Store):
    """A store whose get() raises while `fail` is set: a bug in the middle of a build."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = False

    def get(self, key: ObjectKey) -> KubeObject | None:
        if self.fail:
            raise RuntimeError("injected")
        return super().get(key)


def test_failed_build_is_followed_by_a_full_one() -> None:
    st = _FailingStore()
    web = make_service("web", ports=[80])
    st.upsert(web)
    builder = SnapshotBuilder(st)
    builder.build()
    st.upsert(make_slice(web, ["10.1.0.1"], ports=[80]))
    st.fail = True
    with pytest.raises(RuntimeError, match="injected"):
        builder.build()
    st.fail = False
    snap, changed = builder.build()  # the slice change was taken by the failed build
    assert changed == {spn("web")}
    assert addrs(snap.service_ports[spn("web")].endpoints) == ["10.1.0.1:80"]


# -- ingress-nginx annotations and settings ---------------------------------------------


def test_annotations_are_parsed_per_ingress_and_only_again_when_it_changes() -> None:
    n = "nginx.ingress.kubernetes.io/"
    store = Store()
    store.upsert(make_ingress("a", annotations={n + "proxy-body-size": "8m"}))
    store.upsert(make_ingress("b", annotations={n + "use-regex": "true"}))
    store.upsert(make_ingress("plain"))
    builder = SnapshotBuilder(store)
    first, _ = builder.build()
    assert set(first.ingress_annotations) == {("default", "a"), ("default", "b")}
    assert first.ingress_annotations[("default", "a")].limits.body_size == 8 * 2**20
    plain = next(i for i in first.ingresses if i.meta.name == "plain")
    assert first.annotations_of(plain) is NO_ANNOTATIONS
    # Nothing changed: the same map. A Service change: the same map too.
    store.upsert(make_service("web", cluster_ip="10.96.0.1", ports=[80]))
    second, _ = builder.build()
    assert second.ingress_annotations is first.ingress_annotations
    # One Ingress changes: a new map, the other entry shared, the first one's map intact.
    store.upsert(make_ingress("a", annotations={n + "proxy-body-size": "1k"}))
    third, _ = builder.build()
    assert third.ingress_annotations[("default", "a")].limits.body_size == 1024
    assert third.ingress_annotations[("default", "b")] is first.ingress_annotations[
        ("default", "b")
    ]
    assert first.ingress_annotations[("default", "a")].limits.body_size == 8 * 2**20
    # Annotations removed, and an Ingress deleted: their entries go.
    store.upsert(make_ingress("a"))
    store.delete(ObjectKey("Ingress", "default", "b"))
    fourth, _ = builder.build()
    assert fourth.ingress_annotations == {}
    # Incremental equals full.
    assert SnapshotBuilder(store).build()[0].ingress_annotations == fourth.ingress_annotations


def test_annotations_prefix_and_configmap_settings_follow_the_mode() -> None:
    store = Store()
    store.upsert(make_ingress("a", annotations={"custom.io/proxy-body-size": "2k"}))
    cm_key = ("ingress-nginx", "controller")
    mode = IngressNginxMode("custom.io", cm_key, enabled=True)
    builder = SnapshotBuilder(store, nginx=mode)
    snap, _ = builder.build()
    assert snap.ingress_annotations[("default", "a")].limits.body_size == 2048
    assert snap.nginx is not None and snap.nginx.source.endswith("not found)")
    store.upsert(ConfigMap(meta("controller", "ingress-nginx"), {"proxy-body-size": "3m"}))
    store.upsert(ConfigMap(meta("other", "ingress-nginx"), {"proxy-body-size": "9m"}))
    snap2, _ = builder.build()
    assert snap2.nginx is not None and snap2.nginx.proxy_body_size == 3 * 2**20
    # Another ConfigMap changing does not touch the settings.
    store.upsert(ConfigMap(meta("other", "ingress-nginx"), {"proxy-body-size": "1m"}))
    snap3, _ = builder.build()
    assert snap3.nginx is snap2.nginx
    store.delete(ObjectKey("ConfigMap", *cm_key))
    snap4, _ = builder.build()
    assert snap4.nginx is not None and snap4.nginx.proxy_body_size == 2**20
    # Not in ingress-nginx mode: no global settings at all.
    assert SnapshotBuilder(store).build()[0].nginx is None
