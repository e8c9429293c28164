"""Ingress routes on Snapshots made by the real snapshot builder from model objects."""

from __future__ import annotations

from discovery.snapshot_builder import build_snapshot
from tests.discovery import factories as f
from tests.ingress import routerkit as k


def test_router_over_built_snapshot() -> None:
    web = f.make_service("web", ports=[("http", 80, 8080), ("metrics", 9090, 9090)])
    web_eps = f.make_slice(
        web,
        endpoints=[f.ep("10.1.0.2"), f.ep("10.1.0.1"), f.ep("10.1.0.3", ready=False)],
    )
    single = f.make_service("single", ns="shop", cluster_ip="10.96.0.2", ports=[8000])
    single_eps = f.make_slice(single, endpoints=[f.ep("10.2.0.1")])
    down = f.make_service("down", cluster_ip="10.96.0.3", ports=[("http", 80, 8080)])
    down_eps = f.make_slice(down, endpoints=[f.ep("10.3.0.1", ready=False)])
    draining = f.make_service("draining", cluster_ip="10.96.0.4", ports=[("http", 80, 8080)])
    draining_eps = f.make_slice(
        draining, endpoints=[f.ep("10.4.0.1", ready=False, serving=True, terminating=True)]
    )
    main = f.make_ingress(
        "main",
        rules=[
            f.rule(
                "app.example.com",
                f.path("/", "web", "http"),
                f.path("/metrics", "web", 9090, "Exact"),
                f.path("/down", "down", "http"),
                f.path("/draining", "draining", 80),
            )
        ],
        ingress_class_name="seaway",
    )
    shop = f.make_ingress(
        "shop",
        "shop",
        rules=[f.rule("shop.example.com", f.path("/", "single", 8000))],
        ingress_class_name="seaway",
    )
    snap = build_snapshot(
        [
            web, web_eps, single, single_eps, down, down_eps, draining, draining_eps,
            main, shop, f.make_ingress_class("seaway"),
        ]
    )  # fmt: skip
    router = k.routed(snap)

    route = router.route("app.example.com", "/anything")
    assert route.status == 0
    assert route.key == "default/web:80"
    assert [(e.ip, e.port) for e in route.endpoints] == [("10.1.0.1", 8080), ("10.1.0.2", 8080)]

    metrics = router.route("app.example.com", "/metrics")
    assert metrics.key == "default/web:9090"
    assert metrics.service is not None and metrics.service.port == "metrics"
    assert router.route("app.example.com", "/metrics/x").key == "default/web:80"

    shop_route = router.route("SHOP.example.com:443", "/cart")
    assert shop_route.status == 0
    assert shop_route.key == "shop/single:8000"
    assert [e.ip for e in shop_route.endpoints] == ["10.2.0.1"]

    assert router.route("app.example.com", "/down").status == 503
    # serving-and-terminating endpoints are used when no endpoint is ready
    draining_route = router.route("app.example.com", "/draining")
    assert draining_route.status == 0
    assert [e.ip for e in draining_route.endpoints] == ["10.4.0.1"]
    assert router.route("other.example.com", "/").status == 404
