"""The HTTPRoute translator (ingress/translate_gateway.py, gateway_rules.py), pure: the
table it makes from Gateway API objects, asked requests through the compiled matcher."""

from __future__ import annotations

import pickle

from ingress.route_actions import find_filter
from ingress.route_conditions import no_header
from ingress.route_filters import (
    Mirror,
    RequestHeaders,
    ResponseHeaders,
    Retry,
    Rewrite,
    Timeouts,
)
from ingress.route_match import RouteResult, compile_table
from ingress.routes import (
    FixedResponse,
    Forward,
    Redirect,
    ReplaceFullPath,
    ReplacePrefix,
    RouteTable,
)
from ingress.translate_gateway import GatewayTranslation, listener_name, translate_gateways
from tests.discovery.gatewaykit import service, tls_secret, world

NS = "shop"
HEAD = f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: seaway}}
spec: {{controllerName: seaway.dev/gateway-controller}}
---
{service("v1", NS)}---
{service("v2", NS)}---
{service("v3", NS)}---
{service("v4", NS)}---
"""


def gateway(name: str, address: str, *listeners: str, namespace: str = NS) -> str:
    body = "\n".join(f"  - {x}" for x in listeners)
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  gatewayClassName: seaway
  addresses: [{{value: {address}}}]
  listeners:
{body}
---
"""


def http_route(
    name: str,
    rules: str,
    hostnames: str = "[]",
    parent: str = "gw",
    created: str = "",
    extra: str = "",
) -> str:
    stamp = f", creationTimestamp: '{created}'" if created else ""
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {NS}{stamp}}}
spec:
  parentRefs: [{{name: {parent}{extra}}}]
  hostnames: {hostnames}
  rules:
{rules}
---
"""


def translate(*docs: str) -> GatewayTranslation:
    w = world(HEAD + "".join(docs), base=False)
    return translate_gateways(w.snapshot, w.attachment)


def ask(
    t: GatewayTranslation,
    host: str,
    path: str = "/",
    method: str = "GET",
    headers: dict[str, str] | None = None,
    socket: str = "",
) -> RouteResult:
    table = compile_table(RouteTable(t.listeners))
    assert not table.errors, table.errors
    name = socket or t.listeners[0].name
    matcher = table.listener(name)
    assert matcher is not None, f"no listener {name}: {[x.name for x in t.listeners]}"
    fields = {k.lower().encode(): v.encode() for k, v in (headers or {}).items()}
    return matcher.match(
        host.encode(), path.encode(), method.encode(), fields.get if fields else no_header
    )


def who(result: RouteResult) -> str:
    """The Service a result forwards to ("v1"), else its status as text."""
    if (
        result.backend is not None
        and result.status in (0, 503)
        and not result.backend.reason.startswith("Service")
    ):
        return result.key.split("/")[1].split(":")[0]
    return str(result.status)


HTTP = "{name: http, port: 80, protocol: HTTP}"


def rule(path: str, to: str, kind: str = "PathPrefix", extra: str = "") -> str:
    return (
        f"  - matches: [{{path: {{type: {kind}, value: '{path}'}}{extra}}}]\n"
        f"    backendRefs: [{{name: {to}, port: 8080}}]"
    )


# -- sockets ------------------------------------------------------------------------------------


def test_one_socket_per_address_and_port_shared_by_listeners_and_gateways() -> None:
    t = translate(
        gateway(
            "gw", "127.0.20.1", HTTP, "{name: alt, port: 8080, protocol: HTTP, hostname: a.test}"
        ),
        gateway("gw2", "127.0.20.1", "{name: other, port: 8080, protocol: HTTP, hostname: b.test}"),
    )
    names = [x.name for x in t.listeners]
    assert names == [listener_name("127.0.20.1", 80), listener_name("127.0.20.1", 8080)]
    assert names[0] == "gateway 127.0.20.1:80"
    second = t.listeners[1]
    assert (second.address, second.port, second.protocol) == ("127.0.20.1", 8080, "HTTP")
    members = (t.members or {})[second.name]
    assert [(m.gateway, m.listener, m.hostname) for m in members] == [
        ("shop/gw", "alt", "a.test"),
        ("shop/gw2", "other", "b.test"),
    ]
    assert listener_name("::1", 80) == "gateway [::1]:80"
    pickle.loads(pickle.dumps(RouteTable(t.listeners)))  # goes to worker processes


def test_unserved_listeners_get_no_socket_and_a_warning() -> None:
    """An unsupported protocol and a conflicted listener are warned about; a TCP listener
    gets no L7 socket either (the userspace L4 proxy serves it), without a warning."""
    t = translate(
        gateway("gw", "127.0.20.1", HTTP, "{name: tcp, port: 9000, protocol: TCP}",
                "{name: odd, port: 9001, protocol: example.com/odd}"),
        gateway(
            "late",
            "127.0.20.1",
            "{name: dup, port: 80, protocol: HTTP}",
            "{name: ok, port: 81, protocol: HTTP}",
        ),
    )
    assert [x.port for x in t.listeners] == [80, 81]
    assert any("listener odd not served: UnsupportedProtocol" in w for w in t.warnings)
    assert not any("listener tcp" in w for w in t.warnings)
    assert any(
        "Gateway shop/late: listener dup not served: HostnameConflict" in w for w in t.warnings
    )


# -- precedence ------------------------------------------------------------------------------------


def test_rules_across_routes_in_the_spec_precedence() -> None:
    old = http_route(
        "old",
        "\n".join(
            [
                rule("/a", "v1"),
                rule("/a/b", "v2"),
                rule("/a/b/c", "v3", "Exact"),
                rule("/a/.*", "v4", "RegularExpression"),
            ]
        ),
        created="2024-01-01T00:00:00Z",
    )
    young = http_route(
        "young",
        "\n".join(
            [
                rule("/a", "v4", extra=", method: GET"),
                rule("/a", "v3", extra=", headers: [{name: x, value: '1'}, {name: y, value: '2'}]"),
                rule("/a", "v2", extra=", headers: [{name: x, value: '1'}]"),
                rule("/a/b", "v4"),  # ties with old's /a/b: the older route wins
            ]
        ),
        created="2025-01-01T00:00:00Z",
    )
    t = translate(gateway("gw", "127.0.20.1", HTTP), old, young)
    assert who(ask(t, "x.test", "/a/b/c")) == "v3"  # Exact first
    assert who(ask(t, "x.test", "/a/b/d")) == "v2"  # the longest prefix, oldest route
    assert who(ask(t, "x.test", "/a/z")) == "v4"  # method beats no method at /a
    assert who(ask(t, "x.test", "/a/z", "POST", {"x": "1", "y": "2"})) == "v3"  # 2 headers
    assert who(ask(t, "x.test", "/a/z", "POST", {"x": "1"})) == "v2"
    assert who(ask(t, "x.test", "/a/z", "POST")) == "v1"  # the plain prefix beats the regex
    assert who(ask(t, "x.test", "/ab/z", "POST")) == "404"  # regex is a whole-path match


def test_equal_routes_tie_on_namespace_and_name_then_rule_order() -> None:
    a = http_route("a", rule("/p", "v1") + "\n" + rule("/p", "v3"))
    b = http_route("b", rule("/p", "v2"))
    t = translate(gateway("gw", "127.0.20.1", HTTP), b, a)
    assert who(ask(t, "x.test", "/p")) == "v1"


def test_more_specific_route_hostname_first_then_fall_through_within_the_listener() -> None:
    exact = http_route("exact", rule("/only", "v1"), hostnames="[a.example.com]")
    wild = http_route("wild", rule("/", "v2"), hostnames="['*.example.com']")
    t = translate(gateway("gw", "127.0.20.1", HTTP), exact, wild)
    assert who(ask(t, "a.example.com", "/only")) == "v1"
    assert who(ask(t, "a.example.com", "/else")) == "v2"  # the wildcard route serves it too
    assert who(ask(t, "b.c.example.com", "/only")) == "v2"  # suffix wildcards: any labels
    assert who(ask(t, "example.com", "/")) == "404"


def test_a_host_belongs_to_the_most_specific_listener_only() -> None:
    """conformance HTTPRouteListenerHostnameMatching, and what it implies: a request for a
    host a specific listener takes never reaches the routes of a wildcard listener."""
    listeners = (
        "{name: foo, port: 80, protocol: HTTP, hostname: foo.bar.com}",
        "{name: wild, port: 80, protocol: HTTP, hostname: '*.bar.com'}",
        "{name: any, port: 80, protocol: HTTP}",
    )
    t = translate(
        gateway("gw", "127.0.20.1", *listeners),
        http_route("r-foo", rule("/foo", "v1"), extra=", sectionName: foo"),
        http_route("r-wild", rule("/", "v2"), extra=", sectionName: wild"),
        http_route(
            "r-any", rule("/", "v3"), hostnames="[foo.bar.com, x.test]", extra=", sectionName: any"
        ),
    )
    assert who(ask(t, "foo.bar.com", "/foo")) == "v1"
    assert who(ask(t, "foo.bar.com", "/other")) == "404"  # not the wildcard listener's v2
    assert who(ask(t, "a.bar.com", "/other")) == "v2"
    assert who(ask(t, "x.test", "/")) == "v3"
    assert who(ask(t, "y.test", "/")) == "404"
    closing = ask(t, "foo.bar.com", "/other")
    assert isinstance(closing.action, FixedResponse)
    assert closing.origin is not None and closing.origin.kind == "Gateway"


# -- actions and filters --------------------------------------------------------------------------


def test_redirects_carry_the_listener_port_when_neither_port_nor_scheme_is_given() -> None:
    rules = """\
  - matches: [{path: {value: /same}}]
    filters: [{type: RequestRedirect, requestRedirect: {hostname: example.org}}]
  - matches: [{path: {value: /https}}]
    filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301}}]
  - matches: [{path: {value: /path}}]
    filters:
    - type: RequestRedirect
      requestRedirect:
        port: 8443
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}
"""
    t = translate(
        gateway("gw", "127.0.20.1", "{name: http, port: 8080, protocol: HTTP}"),
        http_route("r", rules.rstrip("\n")),
    )
    same = ask(t, "x.test", "/same").action
    https = ask(t, "x.test", "/https").action
    path = ask(t, "x.test", "/path/a").action
    assert same == Redirect(302, None, "example.org", 8080)
    assert https == Redirect(301, "https", None, None)
    assert path == Redirect(302, None, None, 8443, ReplacePrefix("/new"))


def test_backends_weights_invalid_refs_and_missing_backend_refs() -> None:
    rules = """\
  - matches: [{path: {value: /split}}]
    backendRefs:
    - {name: v1, port: 8080, weight: 3}
    - {name: gone, port: 8080}
    - {name: v2, port: 8080, weight: 0}
  - matches: [{path: {value: /zero}}]
    backendRefs: [{name: v1, port: 8080, weight: 0}]
  - matches: [{path: {value: /none}}]
  - matches: [{path: {value: /kind}}]
    backendRefs: [{name: v1, kind: Bucket, group: example.com, port: 8080}]
"""
    t = translate(gateway("gw", "127.0.20.1", HTTP), http_route("r", rules.rstrip("\n")))
    split = ask(t, "x.test", "/split")
    assert split.split is not None and split.cumulative == (3, 4)  # weight 0 left out
    assert [r.status for r in split.split] == [503, 500]  # v1 has no endpoints; gone: 500
    assert "not found" in (split.split[1].backend.reason if split.split[1].backend else "")
    assert ask(t, "x.test", "/zero").status == 500
    none = ask(t, "x.test", "/none")
    assert none.status == 500 and isinstance(none.action, FixedResponse)
    assert ask(t, "x.test", "/kind").status == 500
    assert any("BackendNotFound" in w and "gets 500" in w for w in t.warnings)


def test_filters_in_order_with_per_backend_filters_mirrors_and_timeouts() -> None:
    rules = """\
  - matches: [{path: {value: /f}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: a, value: '1'}], remove: [b]}
    - type: URLRewrite
      urlRewrite: {hostname: up.test, path: {type: ReplaceFullPath, replaceFullPath: /x}}
    - type: RequestMirror
      requestMirror:
        backendRef: {name: v3, port: 8080}
        fraction: {numerator: 1, denominator: 4}
    - {type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: c, value: '2'}]}}
    backendRefs:
    - name: v1
      port: 8080
      filters:
      - {type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: backend, value: v1}]}}
    timeouts: {request: 2s, backendRequest: 500ms}
"""
    t = translate(gateway("gw", "127.0.20.1", HTTP), http_route("r", rules.rstrip("\n")))
    got = ask(t, "x.test", "/f")
    first, rewrite, mirror, response, timeouts, per_backend = got.filters
    assert first == RequestHeaders(set=(("a", "1"),), remove=("b",))
    assert rewrite == Rewrite(ReplaceFullPath("/x"), "up.test")
    assert isinstance(mirror, Mirror) and mirror.percent == 25.0
    assert mirror.backend.key == "shop/v3:8080"
    assert response == ResponseHeaders(add=(("c", "2"),))
    assert timeouts == Timeouts(request=2.0, backend_request=0.5)
    assert per_backend == RequestHeaders(add=(("backend", "v1"),))
    assert isinstance(got.action, Forward)


def test_dropped_rules_and_unsupported_fields_are_reported_per_route() -> None:
    rules = """\
  - matches: [{path: {value: /cors}}]
    filters: [{type: CORS, cors: {allowOrigins: ['*']}}]
    backendRefs: [{name: v1, port: 8080}]
  - matches: [{path: {value: /ok}}]
    backendRefs: [{name: v2, port: 8080}]
    retry: {attempts: 2}
"""
    t = translate(gateway("gw", "127.0.20.1", HTTP), http_route("r", rules.rstrip("\n")))
    assert who(ask(t, "x.test", "/cors")) == "404"
    assert who(ask(t, "x.test", "/ok")) == "v2"
    (report,) = [r for r in t.reports if r.kind == "HTTPRoute"]
    assert any("spec.rules[0] dropped: filter CORS is not supported" in w for w in report.warnings)
    assert not any("retry" in w for w in report.warnings)  # (GEP-1731 retry is served)


def test_httproute_retry_is_a_retry_filter() -> None:
    """GEP-1731 HTTPRouteRetry: attempts are retries after the first try; codes are the
    statuses retried, connection errors and timeouts are retried too
    (RetryConnectionError, RetryBackendTimeout); a backoff is reported (retries go at
    once)."""
    rules = """  - matches: [{path: {value: /r}}]
    backendRefs: [{name: v1, port: 8080}]
    retry: {attempts: 2, codes: [503, 500], backoff: 100ms}
  - matches: [{path: {value: /none}}]
    backendRefs: [{name: v1, port: 8080}]
    retry: {attempts: 0}
"""
    t = translate(gateway("gw", "127.0.20.1", HTTP), http_route("r", rules.rstrip("\n")))
    retried = find_filter(ask(t, "x.test", "/r").filters, Retry)
    assert retried == Retry(3, ("error", "timeout"), (500, 503))
    assert find_filter(ask(t, "x.test", "/none").filters, Retry) == Retry(1, ("error", "timeout"))
    (report,) = [r for r in t.reports if r.kind == "HTTPRoute"]
    assert any("spec.rules[0].retry.backoff is not supported" in w for w in report.warnings)


# -- TLS -------------------------------------------------------------------------------------------


def test_https_sockets_carry_a_certificate_per_listener_hostname() -> None:
    def https(name: str, secret: str, hostname: str = "") -> str:
        host = f", hostname: '{hostname}'" if hostname else ""
        return (
            f"{{name: {name}, port: 443, protocol: HTTPS{host}, "
            f"tls: {{certificateRefs: [{{name: {secret}}}]}}}}"
        )

    listeners = (
        https("any", "c-any"),
        https("one", "c-a", "a.test"),
        https("wild", "c-w", "*.w.test"),
    )
    t = translate(
        tls_secret("c-any", NS)
        + "---\n"
        + tls_secret("c-a", NS)
        + "---\n"
        + tls_secret("c-w", NS)
        + "---\n",
        gateway("gw", "127.0.20.1", *listeners),
        http_route("r", rule("/", "v1")),
    )
    (sock,) = t.listeners
    assert sock.protocol == "HTTPS"
    assert [(c.hosts, c.secret) for c in sock.certificates] == [
        (("a.test",), "c-a"),
        (("*.w.test",), "c-w"),
        ((), "c-any"),
    ]
    assert "listener one" in sock.certificates[0].source
