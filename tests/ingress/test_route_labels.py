"""Route labels for metrics and the access log, and route rows for the status page
(ingress/route_labels.py), from Ingresses translated and compiled as a worker does."""

from __future__ import annotations

from discovery.model import IngressBackend
from ingress.route_labels import NO_LABELS, RouteHosts, labels_of, route_rows, split_key
from ingress.route_match import RouteResult
from ingress.routes import RouteTable
from tests.ingress import routerkit as k

SHOP = k.ingress(
    "shop",
    k.rule("shop.test", k.path("/cart", "cart"), k.path("/api", "api", port="http")),
    k.rule("*.shop.test", k.path("/", "web")),
    k.rule("", k.path("/gone", "missing", port=8080)),
    ns="store",
    default=k.backend("web"),
)
PORTS = [
    k.service_port("cart", ns="store"),
    k.service_port("api", 8000, port_name="http", ns="store"),
    k.service_port("web", ns="store"),
]


def routed() -> k.Routed:
    return k.routed(k.snapshot([SHOP], PORTS))


def labels(r: k.Routed, host: str, path: str, hosts: RouteHosts | None = None) -> tuple[str, ...]:
    if hosts is None:
        hosts = RouteHosts()
        hosts.follow(r.translation.table)
    return labels_of(r.route(host, path), hosts)


def test_a_rule_path_is_named_by_its_ingress_service_port_host_and_path() -> None:
    r = routed()
    cart = ("store", "shop", "cart", "80", "shop.test", "/cart")
    assert labels(r, "shop.test", "/cart/1") == cart
    # A port named in the Ingress is labelled with its number, as a numbered one is.
    assert labels(r, "shop.test", "/api") == ("store", "shop", "api", "8000", "shop.test", "/api")
    # The rule's host, not the request's: a wildcard stays one label value.
    assert labels(r, "a.shop.test", "/x") == ("store", "shop", "web", "80", "*.shop.test", "/")


def test_catch_all_default_backend_missing_service_and_no_match() -> None:
    r = routed()
    missing = r.route("other.test", "/gone")
    assert missing.status == 503  # the proxy answers, and the route is still named
    assert labels(r, "other.test", "/gone") == ("store", "shop", "missing", "8080", "", "/gone")
    # spec.defaultBackend: no host, no path.
    assert labels(r, "other.test", "/elsewhere") == ("store", "shop", "web", "80", "", "")
    # Nothing owned at all: the built-in 404 has no labels.
    empty = k.routed(k.snapshot([], PORTS))
    assert labels(empty, "shop.test", "/") == NO_LABELS
    assert labels_of(None, RouteHosts()) == NO_LABELS


def test_hosts_survive_one_reload_but_not_two() -> None:
    first = routed()
    hosts = RouteHosts()
    hosts.follow(first.translation.table)
    counted = first.route("shop.test", "/cart")  # counted before a reload, taken after
    second = routed()
    hosts.follow(second.translation.table)
    assert labels_of(counted, hosts)[4:] == ("shop.test", "/cart")
    hosts.follow(second.translation.table)  # the same table again changes nothing
    assert labels_of(counted, hosts)[4:] == ("shop.test", "/cart")
    hosts.follow(routed().translation.table)
    assert labels_of(counted, hosts) == ("store", "shop", "cart", "80", "", "")


def test_split_key() -> None:
    assert split_key("store/cart:80") == ("cart", "80")
    assert split_key("store/api:http") == ("api", "http")
    assert split_key("store/resource:bucket") == ("resource", "bucket")
    assert split_key("") == ("", "")


def test_route_rows_for_the_status_page() -> None:
    r = routed()
    rows = {(row["host"], row["path"]): row for row in route_rows(r.translation.table)}
    assert set(rows) == {
        ("shop.test", "/cart"),
        ("shop.test", "/api"),
        ("*.shop.test", "/"),
        ("*", "/gone"),
        ("*", "(default backend)"),
    }
    cart = rows[("shop.test", "/cart")]
    assert cart["backend"] == "store/cart:80" and cart["status"] == 0
    assert cart["ingress"] == "store/shop" and cart["kind"] == "Ingress"
    assert "spec.rules[0].http.paths[0]" in str(cart["source"])
    assert rows[("*", "/gone")]["status"] == 503
    assert rows[("*", "(default backend)")]["backend"] == "store/web:80"
    assert route_rows(RouteTable()) == []


def test_a_resource_backend_is_named_by_its_resource() -> None:
    ing = k.ingress("files", ns="store", default=IngressBackend(resource="bucket"))
    r = k.routed(k.snapshot([ing], PORTS))
    result: RouteResult = r.route("f.test", "/")
    assert result.status == 503
    hosts = RouteHosts()
    hosts.follow(r.translation.table)
    assert labels_of(result, hosts) == ("store", "files", "resource", "bucket", "", "")
