"""Ingress translation + route matching: hosts, merging, conflicts, ownership, default
backend, 404/503, backends (the tests of the former ingress/router.py, unchanged)."""

from __future__ import annotations

import pytest

from discovery.model import Ingress, IngressBackend, IngressClass, IngressPath
from discovery.ownership import owned_ingresses
from ingress.route_match import normalize_host
from tests.ingress import routerkit as k


def name_of(router: k.Routed, host: str, path: str) -> str:
    route = router.route(host, path)
    assert route.status == 0, route
    assert route.service is not None
    return route.service.name


# --- hosts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("example.com", "example.com"),
        ("Example.COM", "example.com"),
        ("example.com:8080", "example.com"),
        ("EXAMPLE.com:", "example.com"),
        ("example.com.", "example.com"),
        ("example.com.:80", "example.com"),
        ("[::1]:8080", "[::1]"),
        ("[::1]", "[::1]"),
        ("[FE80::1]:443", "[fe80::1]"),
        ("127.0.0.1:8080", "127.0.0.1"),
        ("", ""),
    ],
)
def test_normalize_host(header: str, expected: str) -> None:
    assert normalize_host(header.encode()) == expected.encode()


def host_router() -> k.Routed:
    ing = k.ingress(
        "hosts",
        k.rule("foo.bar.com", k.path("/a", "exact-host")),
        k.rule("*.bar.com", k.path("/", "wildcard")),
        k.rule("Upper.Example.COM", k.path("/", "upper")),
        k.rule("", k.path("/any", "any-host")),
    )
    return k.routed(
        k.snapshot([ing], k.services("exact-host", "wildcard", "upper", "any-host"))
    )


@pytest.mark.parametrize(
    ("host", "path", "expected"),
    [
        ("foo.bar.com", "/a", "exact-host"),
        ("FOO.Bar.com", "/a/b", "exact-host"),
        ("foo.bar.com:8443", "/a", "exact-host"),
        ("foo.bar.com.", "/a", "exact-host"),
        ("foo.bar.com", "/b", "wildcard"),  # exact host has no matching path: wildcard next
        ("other.bar.com", "/a", "wildcard"),
        ("OTHER.BAR.COM:80", "/x", "wildcard"),
        ("upper.example.com", "/", "upper"),
        ("UPPER.example.com:1", "/z", "upper"),
        ("a.b.bar.com", "/any/x", "any-host"),  # two labels: not the wildcard
        ("bar.com", "/any", "any-host"),
        ("[::1]:8080", "/any", "any-host"),
        ("[::1]", "/any", "any-host"),
        ("10.0.0.1:80", "/any", "any-host"),
        ("", "/any", "any-host"),
        ("foo.bar.com", "/any", "wildcard"),  # the wildcard's "/" matches before host ""
    ],
)
def test_host_lookup_order(host: str, path: str, expected: str) -> None:
    assert name_of(host_router(), host, path) == expected


def test_no_match_without_default_backend_is_404() -> None:
    router = host_router()
    for host, path in [("a.b.bar.com", "/"), ("example.org", "/a"), ("[::1]:80", "/")]:
        route = router.route(host, path)
        assert route.status == 404
        assert route.service is None and route.endpoints == () and route.key == ""


def test_hostless_rule_falls_back_after_exact_host_without_path() -> None:
    ing = k.ingress(
        "i",
        k.rule("app.example.com", k.path("/api", "api", "Exact")),
        k.rule("", k.path("/", "catchall")),
    )
    router = k.routed(k.snapshot([ing], k.services("api", "catchall")))
    assert name_of(router, "app.example.com", "/api") == "api"
    assert name_of(router, "app.example.com", "/api/") == "catchall"
    assert name_of(router, "x.example.com", "/api") == "catchall"
    assert router.hosts() == ["app.example.com", ""]


@pytest.mark.parametrize("bad", ["*", "*.", "foo.*.com", "**.foo.com", "a*.foo.com", "foo.com:80"])
def test_invalid_rule_hosts_are_skipped_with_a_warning(bad: str) -> None:
    ing = k.ingress("bad", k.rule(bad, k.path("/", "svc")))
    router = k.routed(k.snapshot([ing], k.services("svc")))
    assert router.route(bad, "/").status == 404
    assert router.route("x.foo.com", "/").status == 404
    assert router.hosts() == []
    assert len(router.warnings) == 1
    assert "Ingress default/bad: spec.rules[0].host" in router.warnings[0]


# --- merging and conflicts -----------------------------------------------------------------


def test_rules_of_several_ingresses_merge_per_host() -> None:
    a = k.ingress("a", k.rule("shop.example.com", k.path("/cart", "cart")))
    b = k.ingress("b", k.rule("shop.example.com", k.path("/pay", "pay", "Exact")), ns="team-b")
    c = k.ingress("c", k.rule("shop.example.com", k.path("/", "home")))
    ports = [*k.services("cart", "home"), *k.services("pay", ns="team-b")]
    router = k.routed(k.snapshot([a, b, c], ports))
    assert name_of(router, "shop.example.com", "/cart/1") == "cart"
    assert name_of(router, "shop.example.com", "/pay") == "pay"
    assert router.route("shop.example.com", "/pay").key == "team-b/pay:80"
    assert name_of(router, "shop.example.com", "/pay/x") == "home"
    assert name_of(router, "shop.example.com", "/") == "home"
    assert router.warnings == ()
    assert [i.meta.name for i in router.owned_ingresses] == ["a", "c", "b"]


@pytest.mark.parametrize("order", [0, 1])
def test_conflict_oldest_creation_timestamp_wins(order: int) -> None:
    old = k.ingress("zzz", k.rule("h.com", k.path("/x", "old")), created="2024-01-01T00:00:00Z")
    new = k.ingress("aaa", k.rule("h.com", k.path("/x", "new")), created="2025-06-01T00:00:00Z")
    ings = [old, new] if order == 0 else [new, old]
    router = k.routed(k.snapshot(ings, k.services("old", "new")))
    assert name_of(router, "h.com", "/x/y") == "old"
    assert len(router.warnings) == 1
    assert router.warnings[0].startswith("Ingress default/aaa: spec.rules[0].http.paths[0]")
    assert "conflicts with Ingress default/zzz" in router.warnings[0]


def test_conflict_same_timestamp_namespace_then_name_wins() -> None:
    ts = "2024-01-01T00:00:00Z"
    ings = [
        k.ingress("b", k.rule("h.com", k.path("/p", "ns-a-b")), ns="a", created=ts),
        k.ingress("a", k.rule("h.com", k.path("/p", "ns-b-a")), ns="b", created=ts),
        k.ingress("a", k.rule("h.com", k.path("/p", "ns-a-a")), ns="a", created=ts),
    ]
    ports = [*k.services("ns-a-b", "ns-a-a", ns="a"), *k.services("ns-b-a", ns="b")]
    router = k.routed(k.snapshot(ings, ports))
    assert name_of(router, "h.com", "/p") == "ns-a-a"
    assert len(router.warnings) == 2


def test_equivalent_prefix_paths_conflict_but_other_path_types_do_not() -> None:
    old = k.ingress(
        "old",
        k.rule("h.com", k.path("/foo", "old-prefix")),
        created="2024-01-01T00:00:00Z",
    )
    new = k.ingress(
        "new",
        k.rule(
            "H.com",
            k.path("/foo/", "new-prefix"),
            k.path("/foo", "new-impl", "ImplementationSpecific"),
            k.path("/foo", "new-exact", "Exact"),
        ),
        created="2024-02-01T00:00:00Z",
    )
    router = k.routed(
        k.snapshot([new, old], k.services("old-prefix", "new-prefix", "new-impl", "new-exact"))
    )
    assert name_of(router, "h.com", "/foo") == "new-exact"
    assert name_of(router, "h.com", "/foo/") == "old-prefix"
    assert name_of(router, "h.com", "/foo/bar") == "old-prefix"
    assert len(router.warnings) == 2


def test_first_rule_wins_within_one_ingress() -> None:
    ing = k.ingress(
        "dup",
        k.rule("h.com", k.path("/", "first")),
        k.rule("h.com", k.path("/", "second")),
    )
    router = k.routed(k.snapshot([ing], k.services("first", "second")))
    assert name_of(router, "h.com", "/") == "first"
    assert "spec.rules[1].http.paths[0]" in router.warnings[0]


def test_same_path_on_different_hosts_is_no_conflict() -> None:
    a = k.ingress("a", k.rule("a.com", k.path("/", "a")))
    b = k.ingress("b", k.rule("b.com", k.path("/", "b")))
    w = k.ingress("w", k.rule("*.a.com", k.path("/", "w")))
    router = k.routed(k.snapshot([a, b, w], k.services("a", "b", "w")))
    assert name_of(router, "a.com", "/") == "a"
    assert name_of(router, "b.com", "/") == "b"
    assert name_of(router, "x.a.com", "/") == "w"
    assert router.warnings == ()
    assert router.hosts() == ["a.com", "b.com", "*.a.com"]


# --- ownership -----------------------------------------------------------------------------


def _owned(
    ingresses: list[Ingress],
    classes: list[IngressClass],
    watch: bool = False,
    controller: str = k.CONTROLLER,
) -> list[str]:
    snap = k.snapshot(ingresses, classes=classes)
    return [i.meta.name for i in owned_ingresses(snap, controller, watch)]


def test_ownership_by_class_controller() -> None:
    ours = k.ingress_class("seaway")
    theirs = k.ingress_class("nginx", controller="k8s.io/ingress-nginx")
    ings = [
        k.ingress("mine", cls="seaway"),
        k.ingress("nginx", cls="nginx"),
        k.ingress("unknown-class", cls="missing"),
        k.ingress("classless", cls=None),
    ]
    assert _owned(ings, [ours, theirs]) == ["mine"]
    assert _owned(ings, [ours, theirs], watch=True) == ["classless", "mine"]  # by age, name
    assert _owned(ings, [ours, theirs], controller="k8s.io/ingress-nginx") == ["nginx"]
    assert _owned(ings, [], watch=True) == ["classless"]


def test_classless_ingresses_taken_when_our_class_is_default() -> None:
    ings = [k.ingress("classless", cls=None), k.ingress("mine", cls="seaway")]
    assert _owned(ings, [k.ingress_class("seaway", default=True)]) == ["classless", "mine"]
    other_default = k.ingress_class("nginx", controller="k8s.io/ingress-nginx", default=True)
    assert _owned(ings, [k.ingress_class("seaway"), other_default]) == ["mine"]


def test_legacy_class_annotation_is_the_class_name() -> None:
    ann = "kubernetes.io/ingress.class"
    ings = [
        k.ingress("legacy-ours", cls=None, annotations={ann: "seaway"}),
        k.ingress("legacy-nginx", cls=None, annotations={ann: "nginx"}),
    ]
    assert _owned(ings, [k.ingress_class("seaway")], watch=True) == ["legacy-ours"]


def test_router_serves_only_owned_ingresses() -> None:
    mine = k.ingress("mine", k.rule("h.com", k.path("/mine", "mine")))
    theirs = k.ingress("theirs", k.rule("h.com", k.path("/", "theirs")), cls="nginx")
    snap = k.snapshot(
        [mine, theirs],
        k.services("mine", "theirs"),
        classes=[k.ingress_class(), k.ingress_class("nginx", controller="nginx.org/x")],
    )
    router = k.routed(snap)
    assert name_of(router, "h.com", "/mine") == "mine"
    assert router.route("h.com", "/").status == 404
    assert [i.meta.name for i in router.owned_ingresses] == ["mine"]
    custom = k.routed(snap, controller="nginx.org/x")
    assert name_of(custom, "h.com", "/mine") == "theirs"


# --- default backend, 404, 503 --------------------------------------------------------------


def test_default_backend_of_oldest_ingress() -> None:
    a = k.ingress("a", default=k.backend("def-a"), created="2024-03-01T00:00:00Z")
    b = k.ingress(
        "b",
        k.rule("h.com", k.path("/b", "b")),
        default=k.backend("def-b"),
        created="2024-01-01T00:00:00Z",
    )
    router = k.routed(k.snapshot([a, b], k.services("def-a", "def-b", "b")))
    assert name_of(router, "h.com", "/b") == "b"
    assert name_of(router, "h.com", "/c") == "def-b"
    assert name_of(router, "other", "/") == "def-b"
    assert "Ingress default/a: spec.defaultBackend: ignored" in router.warnings[0]


def test_default_backend_alone_catches_everything() -> None:
    ing = k.ingress("only-default", default=k.backend("fallback", "http"))
    router = k.routed(k.snapshot([ing], [k.service_port("fallback", 8080, "http")]))
    route = router.route("anything:1", "/x")
    assert (route.status, route.key) == (0, "default/fallback:8080")


@pytest.mark.parametrize(
    ("backend", "key"),
    [
        (k.backend("missing"), "default/missing:80"),
        (k.backend("web", 81), "default/web:81"),
        (k.backend("web", "nope"), "default/web:nope"),
        (k.backend("empty"), "default/empty:80"),
        (k.backend("dns", 53), "default/dns:53"),
        (
            IngressBackend(resource="storage.k8s.io/Bucket/assets"),
            "default/resource:storage.k8s.io/Bucket/assets",
        ),
    ],
    ids=["no-service", "no-port-number", "no-port-name", "no-endpoints", "udp-only", "resource"],
)
def test_unusable_backends_give_503(backend: IngressBackend, key: str) -> None:
    ports = [
        k.service_port("web", 80, "http"),
        k.service_port("empty", 80, endpoints=()),
        k.service_port("dns", 53, "dns", protocol="UDP"),
    ]
    ing = k.ingress("i", k.rule("h.com", IngressPath("/", "Prefix", backend)))
    route = k.routed(k.snapshot([ing], ports)).route("h.com", "/x")
    assert route.status == 503
    assert route.endpoints == ()
    assert route.key == key


def test_503_default_backend_is_still_the_default() -> None:
    ing = k.ingress("i", k.rule("h.com", k.path("/a", "a")), default=k.backend("gone"))
    router = k.routed(k.snapshot([ing], k.services("a")))
    assert router.route("h.com", "/b").status == 503
    assert router.route("h.com", "/a").status == 0


# --- backends ----------------------------------------------------------------------------


def test_backend_port_by_name_and_by_number() -> None:
    http = k.service_port("web", 80, "http", endpoints=("10.1.0.1", "10.1.0.2"))
    admin = k.service_port("web", 9000, "admin", endpoints=("10.1.0.3",))
    ing = k.ingress(
        "i",
        k.rule(
            "h.com",
            k.path("/num", "web", port=80),
            k.path("/name", "web", port="admin"),
            k.path("/num-admin", "web", port=9000),
        ),
    )
    router = k.routed(k.snapshot([ing], [http, admin]))
    by_number = router.route("h.com", "/num")
    assert by_number.service == http.name and by_number.service.port == "http"
    assert by_number.endpoints == http.endpoints and len(by_number.endpoints) == 2
    assert by_number.key == "default/web:80"
    by_name = router.route("h.com", "/name")
    assert by_name.service == admin.name
    assert by_name.endpoints == admin.endpoints
    assert by_name.key == "default/web:9000"
    # the same service port by name or by number gets the same key
    assert router.route("h.com", "/num-admin").key == by_name.key


def test_backend_resolves_in_the_ingress_namespace() -> None:
    ing = k.ingress("i", k.rule("h.com", k.path("/", "web")), ns="prod")
    ports = [*k.services("web", ns="prod"), k.service_port("web", 80, endpoints=("9.9.9.9",))]
    route = k.routed(k.snapshot([ing], ports)).route("h.com", "/")
    assert route.service is not None and route.service.namespace == "prod"
    assert route.key == "prod/web:80"
    assert [e.ip for e in route.endpoints] == ["10.1.0.1"]


def test_routes_are_precomputed() -> None:
    ing = k.ingress("i", k.rule("h.com", k.path("/a", "a"), k.path("/b", "b")))
    router = k.routed(k.snapshot([ing], k.services("a", "b")))
    first = router.route("h.com", "/a/1")
    assert router.route("H.COM:80", "/a/2") is first
    assert router.route("h.com", "/b") is not first
    routes = list(router)
    assert len(routes) == 3  # /a, /b and the 404
    assert first in routes
    assert router.services == frozenset({("default", "a"), ("default", "b")})
    assert router.generation == 1
    assert "spec.rules[0].http.paths[0]" in first.source


def test_empty_snapshot_routes_everything_to_404() -> None:
    router = k.routed(k.snapshot([]))
    assert router.route("h.com", "/").status == 404
    assert router.tls_hosts() == {}
    assert router.owned_ingresses == []


# --- TLS hosts -------------------------------------------------------------------------------


def test_tls_hosts() -> None:
    old = k.ingress(
        "old",
        k.rule("a.com", k.path("/", "a")),
        tls=[(["A.com", "*.wild.com"], "cert-a")],
        created="2024-01-01T00:00:00Z",
        ns="x",
    )
    new = k.ingress(
        "new",
        k.rule("b.com", k.path("/", "b")),
        k.rule("c.com", k.path("/", "b")),
        tls=[(["a.com"], "cert-new"), ([], "cert-rules")],
        created="2024-02-01T00:00:00Z",
    )
    ignored = k.ingress("other", tls=[(["z.com"], "cert-z")], cls="nginx")
    router = k.routed(k.snapshot([new, old, ignored], k.services("a", "b")))
    assert router.tls_hosts() == {
        "a.com": ("x", "cert-a"),
        "*.wild.com": ("x", "cert-a"),
        "b.com": ("default", "cert-rules"),
        "c.com": ("default", "cert-rules"),
    }


def test_host_cache_is_bounded_and_keeps_answers_right() -> None:
    from ingress.route_match import HOST_CACHE_SIZE

    ing = k.ingress("i", k.rule("h.com", k.path("/", "h")), k.rule("*.w.com", k.path("/", "w")))
    router = k.routed(k.snapshot([ing], k.services("h", "w")))
    for i in range(HOST_CACHE_SIZE * 2 + 5):
        assert router.route(f"H.com:{i}", "/").key == "default/h:80"
        assert router.route(f"x{i}.W.com", "/").key == "default/w:80"
        assert router.route(f"x{i}.h.com", "/").status == 404
        assert len(router._host_cache) <= HOST_CACHE_SIZE
