"""The Ingress translator's output as a route table: its shape, order, sources, reports
and certificates (the routing behaviour itself is checked by test_router*.py)."""

from __future__ import annotations

import pickle

from discovery.model import IngressBackend, IngressPath
from ingress.routes import Forward, PathMatch, RouteTable
from ingress.translate_ingress import INGRESS_LISTENER, translate_ingresses
from tests.ingress import routerkit as k


def test_one_listener_of_label_wildcard_hosts_with_kubernetes_order() -> None:
    ing = k.ingress(
        "site",
        k.rule(
            "Shop.Test",
            k.path("/", "home"),
            k.path("/a/b/", "deep"),
            k.path("/a", "a"),
            k.path("/a/b", "exact", "Exact"),
            IngressPath("", "ImplementationSpecific", k.backend("impl")),
        ),
        k.rule("*.shop.test", k.path("/", "wild")),
        k.rule("", k.path("/", "any")),
        created="2024-01-01T00:00:00Z",
    )
    t = translate_ingresses(k.snapshot([ing], k.services("home", "deep", "a", "exact", "wild")))
    (listener,) = t.table.listeners
    assert listener.name == INGRESS_LISTENER and listener.port is None
    names = [(v.hostnames, v.wildcard) for v in listener.virtual_hosts]
    assert names == [(("shop.test",), "label"), (("*.shop.test",), "label"), ((), "label")]
    shop = listener.virtual_hosts[0]
    assert [r.match.path for r in shop.routes] == [
        PathMatch("Exact", "/a/b"),
        PathMatch("Prefix", "/a/b/"),
        PathMatch("Prefix", "/a"),
        PathMatch("Prefix", "/"),
    ]  # "" (ImplementationSpecific) is "/" again: a conflict, reported
    assert t.warnings == (
        "Ingress default/site: spec.rules[0].http.paths[4] (shop.test Prefix /): conflicts "
        "with Ingress default/site: spec.rules[0].http.paths[0] (shop.test Prefix /), which "
        "wins",
    )
    first = shop.routes[0].source
    assert (first.kind, first.namespace, first.name, first.rule, first.match) == (
        "Ingress",
        "default",
        "site",
        0,
        3,
    )
    assert [(r.kind, r.name, r.warnings) for r in t.reports] == [("Ingress", "site", t.warnings)]


def test_routes_to_one_backend_share_it_and_unusable_ones_say_why() -> None:
    ing = k.ingress(
        "i",
        k.rule("h.test", k.path("/a", "web"), k.path("/b", "web"), k.path("/c", "gone")),
        k.rule("h2.test", IngressPath("/", "Prefix", IngressBackend(resource="x/Y/z"))),
    )
    t = translate_ingresses(k.snapshot([ing], k.services("web")))
    a, b, c = t.table.listeners[0].virtual_hosts[0].routes
    assert isinstance(a.action, Forward) and a.action is b.action
    assert isinstance(c.action, Forward)
    (gone,) = c.action.backends
    assert (gone.status, gone.key, gone.service) == (503, "default/gone:80", None)
    assert gone.reason.startswith("does not exist")
    resource = t.table.listeners[0].virtual_hosts[1].routes[0].action
    assert isinstance(resource, Forward) and "resource backend" in resource.backends[0].reason
    assert t.services == {("default", "web"), ("default", "gone")}


def test_no_owned_ingress_is_no_listener_and_the_table_pickles() -> None:
    assert translate_ingresses(k.snapshot([])).table == RouteTable((), 1)
    ing = k.ingress("i", k.rule("h.test", k.path("/", "web")), tls=[(["H.test"], "cert")])
    table = translate_ingresses(k.snapshot([ing], k.services("web"))).table
    assert pickle.loads(pickle.dumps(table)) == table
    (cert,) = table.listeners[0].certificates
    assert (cert.hosts, cert.secret_key) == (("h.test",), ("default", "cert"))
    assert cert.source == "Ingress default/i: spec.tls[0].secretName"
    assert table.secrets() == {("default", "cert")}
    assert table.secret_users() == {("default", "cert"): [cert.source]}
