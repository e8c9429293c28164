"""ssl-passthrough -> PassthroughHosts, and the SNI router they compile to.

Reference: ingress-nginx docs/user-guide/nginx-configuration/annotations.md#ssl-passthrough,
docs/user-guide/tls.md#ssl-passthrough, internal/ingress/controller/controller.go
(createServers: a server's SSLPassthrough; getBackendServers: the "/" location only),
internal/ingress/controller/nginx.go (the passthrough backends), pkg/tcpproxy/tcp.go
(the SNI name compared with each server's host name).
"""

from __future__ import annotations

from ingress.route_match import compile_table
from ingress.routes import Backend, Forward, PassthroughHost, Route, RouteMatch, RouteSource
from ingress.sni_match import SniRouter
from tests.ingress.nginxkit import ann, ing, path, translate

PASS = ann(ssl_passthrough="true")


def hosts_of(t: object) -> dict[str, str]:
    """host -> the backend key a passthrough host relays to."""
    listener = t.listener  # type: ignore[attr-defined]
    out: dict[str, str] = {}
    for relayed in listener.passthrough:
        assert isinstance(relayed.route.action, Forward)
        for name in relayed.hostnames:
            out[name] = relayed.route.action.backends[0].key
    return out


def test_the_root_path_of_a_passthrough_host_is_relayed() -> None:
    """tls.md#ssl-passthrough: the host's TLS goes to the Service of its "/" path; the
    host keeps its HTTP routes (plain HTTP requests still reach nginx)."""
    t = translate(
        ing("pass", "Pass.Example.com", path("/", "tls"), annotations=PASS),
        ing("plain", "web.example.com", path("/", "web")),
        services=("web", "tls"),
        ssl_passthrough=True,
    )
    assert hosts_of(t) == {"pass.example.com": "default/tls:80"}
    assert t.ask("pass.example.com", "/").key == "default/tls:80"  # HTTP still routed
    (relayed,) = t.listener.passthrough
    assert relayed.route.source.name == "pass"
    assert "ssl-passthrough" in relayed.route.source.text
    sni = t.table.listener("ingress").passthrough  # type: ignore[union-attr]
    assert sni is not None
    result = sni.match("pass.example.com")
    assert result is not None and result.key == "default/tls:80" and not result.status
    assert sni.match("web.example.com") is None and sni.match(None) is None
    assert any("relayed unterminated" in line for line in t.applied("pass"))


def test_without_the_flag_nothing_is_relayed() -> None:
    """flags.go --enable-ssl-passthrough (default false): the annotation alone does not
    start the SNI proxy; the host is terminated and routed as any other."""
    t = translate(ing("pass", "pass.example.com", path("/", "tls"), annotations=PASS),
                  services=("tls",))
    assert t.listener.passthrough == ()
    assert t.table.listener("ingress").passthrough is None  # type: ignore[union-attr]


def test_the_oldest_ingress_of_the_host_decides() -> None:
    """controller.go createServers: the server (and its SSLPassthrough) is made by the
    first Ingress with a rule for the host, oldest first."""
    older_plain = translate(
        ing("a", "h.test", path("/", "tls"), created="2024-01-01T00:00:00Z"),
        ing("b", "h.test", path("/b", "tls"), annotations=PASS, created="2024-02-01T00:00:00Z"),
        services=("tls",),
        ssl_passthrough=True,
    )
    assert hosts_of(older_plain) == {}
    older_pass = translate(
        ing("a", "h.test", path("/a", "tls"), annotations=PASS, created="2024-01-01T00:00:00Z"),
        ing("b", "h.test", path("/", "web"), created="2024-02-01T00:00:00Z"),
        services=("tls", "web"),
        ssl_passthrough=True,
    )
    # the "/" path is the younger Ingress's: that is where the TLS goes
    assert hosts_of(older_pass) == {"h.test": "default/web:80"}
    assert any("/a" in w and "not passed through" in w for w in older_pass.warnings())


def test_a_host_without_root_path_is_not_relayed() -> None:
    """controller.go: 'ignoring ssl passthrough of %v as it doesn't have a default backend
    (root context)'."""
    t = translate(ing("pass", "h.test", path("/api", "tls"), annotations=PASS),
                  services=("tls",), ssl_passthrough=True)
    assert hosts_of(t) == {}
    assert any('no "/" path' in w for w in t.warnings())


def test_exact_root_counts_and_prefix_root_comes_first() -> None:
    exact = translate(ing("p", "h.test", path("/", "tls", "Exact"), annotations=PASS),
                      services=("tls",), ssl_passthrough=True)
    assert hosts_of(exact) == {"h.test": "default/tls:80"}
    both = translate(
        ing("p", "h.test", path("/", "web", "Exact"), path("/", "tls"), annotations=PASS),
        services=("tls", "web"),
        ssl_passthrough=True,
    )
    assert hosts_of(both) == {"h.test": "default/tls:80"}


def test_wildcard_and_hostless_rules_never_match_a_name() -> None:
    """tcp.go Get: the ClientHello's name is compared with each server's host name as a
    string, so "*.example.com" and the "_" server of a rule without host never match."""
    t = translate(
        ing("w", "*.example.com", path("/", "tls"), annotations=PASS),
        ing("n", "", path("/", "tls"), annotations=PASS),
        services=("tls",),
        ssl_passthrough=True,
    )
    assert hosts_of(t) == {}
    warnings = " ".join(t.warnings())
    assert "*.example.com never applies" in warnings and "(no host) never applies" in warnings


def test_every_other_annotation_is_moot_on_the_http_side_too() -> None:
    """annotations.md#ssl-passthrough: 'invalidates all the other annotations'; seaway
    applies none of them to the host's plain HTTP routes either."""
    anns = {**PASS, **ann(rewrite_target="/x", enable_cors="true")}
    t = translate(ing("p", "h.test", path("/", "tls"), annotations=anns),
                  services=("tls",), ssl_passthrough=True)
    assert t.ask("h.test", "/").filters == ()


# -- the SNI router ------------------------------------------------------------------------


def _host(names: tuple[str, ...], key: str, wildcard: str = "label") -> PassthroughHost:
    route = Route(RouteMatch(), Forward((Backend(key),)), RouteSource("T", "ns", key))
    return PassthroughHost(names, route, wildcard)  # type: ignore[arg-type]


def test_sni_router_exact_then_wildcards_longest_first() -> None:
    router = SniRouter(
        "l",
        [
            _host(("a.example.com",), "exact"),
            _host(("*.example.com",), "label"),
            _host(("*.b.example.org", "*.example.org"), "suffix", "suffix"),
        ],
        lambda route: route.source.name,
    )
    assert router.match("a.example.com") == "exact"
    assert router.match("x.example.com") == "label"
    assert router.match("y.x.example.com") is None  # a label wildcard covers one label
    assert router.match("c.b.example.org") == "suffix"
    assert router.match("d.c.b.example.org") == "suffix"  # suffix: any number of labels
    assert router.match("example.com") is None and router.match("") is None
    assert router.match("com") is None


def test_sni_router_refuses_a_name_twice() -> None:
    router = SniRouter(
        "l", [_host(("a.test",), "first"), _host(("A.test",), "second")], lambda r: r.source.name
    )
    assert router.match("a.test") == "first"
    assert router.errors == ["listener l: passthrough host a.test named twice (T ns/second loses)"]


def test_compiled_passthrough_results_are_counted_with_the_table() -> None:
    """A passthrough host's result is among the table's results (metrics, status page)."""
    t = translate(ing("pass", "p.test", path("/", "tls"), annotations=PASS),
                  services=("tls",), ssl_passthrough=True)
    table = compile_table(t.translation.table)
    sni = table.listener("ingress").passthrough  # type: ignore[union-attr]
    assert sni is not None
    assert sni.match("p.test") in list(table)


def test_trace_shows_the_relay_instead_of_http_routing() -> None:
    """`seaway trace --url https://HOST/...` for a passthrough host: no HTTP routing, the
    relay and its backend; http:// (and other hosts) are routed as usual."""
    from ingress.trace import trace_request
    from tests.ingress.nginxkit import snapshot

    snap = snapshot(
        [ing("pass", "pass.test", path("/", "tls"), annotations=PASS)],
        services=("tls",),
        ssl_passthrough=True,
    )
    lines = trace_request(snap, "https://Pass.Test:8443/any/path")
    assert lines[0] == "request https://Pass.Test:8443/any/path (SNI Pass.Test)"
    assert lines[1].startswith("  TLS: not terminated")
    assert "ssl-passthrough" in lines[2]
    assert lines[-1].startswith("  -> relayed, ") and "1 endpoint(s)" in lines[-1]
    plain = trace_request(snap, "http://pass.test/any/path")
    assert not any("not terminated" in line for line in plain)
