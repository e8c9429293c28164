"""Gateway API HTTPRoute cases expressed in the route model, as the HTTPRoute translator
will: each test builds the table an upstream conformance manifest describes (rules in
Gateway API precedence, via `gateway_sorted`) and checks the upstream expected answers.

Source: kubernetes-sigs/gateway-api conformance/tests/<name>.yaml and .go, named in each
test; the precedence rules and the ReplacePrefixMatch table are from apis/v1/
httproute_types.go.
"""

from __future__ import annotations

from typing import Any

import pytest

from ingress.route_actions import edit_header_lines, redirect_location, rewrite_target
from ingress.route_filters import RequestHeaders, Rewrite
from ingress.route_match import CompiledTable
from ingress.routes import (
    HeaderMatch,
    PathMatch,
    QueryMatch,
    Redirect,
    ReplaceFullPath,
    ReplacePrefix,
    Route,
)
from tests.ingress.routemodel import ask, backend, gateway_sorted, name, route, table, vhost

V1, V2, V3 = "infra-backend-v1", "infra-backend-v2", "infra-backend-v3"

# One rule: (matches, backend); a match: dict(path=..., kind=..., method=..., headers=[...],
# query=[...]). No matches means one match of PathPrefix "/".
Rule = tuple[list[dict[str, Any]], str]


def httproute(rules: list[Rule]) -> CompiledTable:
    routes: list[Route] = []
    for r, (matches, svc) in enumerate(rules):
        for m, spec in enumerate(matches or [{}]):
            routes.append(
                route(
                    svc,
                    spec.get("path", "/"),
                    spec.get("kind", "Prefix"),
                    method=spec.get("method", ""),
                    headers=[HeaderMatch(n, v) for n, v in spec.get("headers", [])],
                    query=[QueryMatch(n, v) for n, v in spec.get("query", [])],
                    rule=r,
                    match=m,
                )
            )
    return table(vhost([], *gateway_sorted(routes), wildcard="suffix"))


def expect(t: CompiledTable, cases: list[tuple[dict[str, Any], str]]) -> None:
    for request, want in cases:
        got = name(
            ask(
                t,
                request.get("path", "/"),
                host="gateway.test",
                method=request.get("method", "GET"),
                headers=request.get("headers"),
            )
        )
        assert got == want, (request, got, want)


def test_httproute_header_matching() -> None:
    """conformance/tests/httproute-header-matching: HTTPRouteHeaderMatching."""
    t = httproute(
        [
            ([{"headers": [("version", "one")]}], V1),
            ([{"headers": [("version", "two")]}], V2),
            ([{"headers": [("version", "two"), ("color", "orange")]}], V1),
            ([{"headers": [("color", "blue")]}, {"headers": [("color", "green")]}], V1),
            ([{"headers": [("color", "red")]}, {"headers": [("color", "yellow")]}], V2),
        ]
    )
    expect(
        t,
        [
            ({"headers": {"Version": "one"}}, V1),
            ({"headers": {"Version": "two"}}, V2),
            ({"headers": {"Version": "two", "Color": "orange"}}, V1),
            ({"headers": {"Version": "two", "Color": "blue"}}, V2),
            ({"headers": {"Color": "orange"}}, "404"),
            ({"headers": {"Some-Other-Header": "one"}}, "404"),
            ({"headers": {"Color": "blue"}}, V1),
            ({"headers": {"Color": "green"}}, V1),
            ({"headers": {"Color": "red"}}, V2),
            ({"headers": {"Color": "yellow"}}, V2),
            ({"headers": {"Color": "purple"}}, "404"),
        ],
    )


def test_httproute_query_param_matching() -> None:
    """conformance/tests/httproute-query-param-matching: HTTPRouteQueryParamMatching."""
    t = httproute(
        [
            ([{"query": [("animal", "whale")]}], V1),
            ([{"query": [("animal", "dolphin")]}], V2),
            (
                [
                    {"query": [("animal", "dolphin"), ("color", "blue")]},
                    {"query": [("ANIMAL", "Whale")]},
                ],
                V3,
            ),
            ([{"path": "/path1", "query": [("animal", "whale")]}], V1),
            ([{"headers": [("version", "one")], "query": [("animal", "whale")]}], V2),
            (
                [
                    {
                        "path": "/path2",
                        "headers": [("version", "two")],
                        "query": [("animal", "whale")],
                    }
                ],
                V3,
            ),
            (
                [
                    {"path": "/path3", "query": [("animal", "shark")]},
                    {
                        "path": "/path4",
                        "headers": [("version", "three")],
                        "query": [("animal", "kraken")],
                    },
                ],
                V1,
            ),
            ([{"path": "/path5"}], V1),
            ([{"query": [("animal", "hydra")]}], V2),
            ([{"headers": [("version", "four")]}], V3),
        ]
    )
    expect(
        t,
        [
            ({"path": "/?animal=whale"}, V1),
            ({"path": "/?animal=dolphin"}, V2),
            ({"path": "/?animal=dolphin&color=blue"}, V3),
            ({"path": "/?ANIMAL=Whale"}, V3),
            ({"path": "/?animal=whale&otherparam=irrelevant"}, V1),
            ({"path": "/?animal=dolphin&color=yellow"}, V2),
            ({"path": "/?color=blue"}, "404"),
            ({"path": "/?animal=dog"}, "404"),
            ({"path": "/?animal=whaledolphin"}, "404"),
            ({"path": "/"}, "404"),
            ({"path": "/path1?animal=whale"}, V1),
            ({"path": "/?animal=whale", "headers": {"version": "one"}}, V2),
            ({"path": "/path2?animal=whale", "headers": {"version": "two"}}, V3),
            ({"path": "/path3?animal=shark"}, V1),
            ({"path": "/path4?animal=kraken", "headers": {"version": "three"}}, V1),
            ({"path": "/?animal=shark"}, "404"),
            ({"path": "/path4?animal=kraken"}, "404"),
            ({"path": "/path5?animal=hydra"}, V1),
            ({"path": "/?animal=hydra", "headers": {"version": "four"}}, V3),
        ],
    )


def test_httproute_method_matching() -> None:
    """conformance/tests/httproute-method-matching: HTTPRouteMethodMatching."""
    t = httproute(
        [
            ([{"method": "POST"}], V1),
            ([{"method": "GET"}], V2),
            ([{"path": "/path1", "method": "GET"}], V1),
            ([{"headers": [("version", "one")], "method": "PUT"}], V2),
            ([{"path": "/path2", "headers": [("version", "two")], "method": "POST"}], V3),
            (
                [
                    {"path": "/path3", "method": "PATCH"},
                    {"path": "/path4", "headers": [("version", "three")], "method": "DELETE"},
                ],
                V1,
            ),
            ([{"path": "/path5"}], V1),
            ([{"method": "PATCH"}], V2),
            ([{"headers": [("version", "four")]}], V3),
        ]
    )
    expect(
        t,
        [
            ({"method": "POST"}, V1),
            ({"method": "GET"}, V2),
            ({"method": "HEAD"}, "404"),
            ({"path": "/path1", "method": "GET"}, V1),
            ({"method": "PUT", "headers": {"version": "one"}}, V2),
            ({"path": "/path2", "method": "POST", "headers": {"version": "two"}}, V3),
            ({"path": "/path3", "method": "PATCH"}, V1),
            ({"path": "/path4", "method": "DELETE", "headers": {"version": "three"}}, V1),
            ({"method": "PUT"}, "404"),
            ({"path": "/path4", "method": "DELETE"}, "404"),
            ({"path": "/path5", "method": "PATCH"}, V1),
            ({"method": "PATCH", "headers": {"version": "four"}}, V2),
        ],
    )


def test_httproute_path_match_order() -> None:
    """conformance/tests/httproute-path-match-order: HTTPRoutePathMatchOrder."""
    t = httproute(
        [
            ([{"path": "/match", "kind": "Exact"}], V1),
            ([{"path": "/match/exact", "kind": "Exact"}], V2),
            ([{"path": "/match/exact/one", "kind": "Exact"}], V3),
            ([{"path": "/match/"}], V3),
            ([{"path": "/match/prefix/"}], V1),
            ([{"path": "/match/prefix/one"}], V2),
        ]
    )
    expect(
        t,
        [
            ({"path": "/match/exact/one"}, V3),
            ({"path": "/match/exact"}, V2),
            ({"path": "/match"}, V1),
            ({"path": "/match/prefix/one/any"}, V2),
            ({"path": "/match/prefix/any"}, V1),
            ({"path": "/match/any"}, V3),
        ],
    )


def test_httproute_weight() -> None:
    """conformance/tests/httproute-weight: HTTPRouteWeight (70/30/0). The upstream test
    samples requests within a tolerance; the split here is exact over uniform values."""
    t = table(vhost([], route([backend(V1, 70), backend(V2, 30), backend(V3, 0)])))
    r = ask(t, "/")
    counts = {V1: 0, V2: 0, V3: 0}
    for i in range(10_000):
        counts[name(r.pick(i / 10_000))] += 1
    assert counts == {V1: 7000, V2: 3000, V3: 0}


def test_httproute_hostname_precedence_and_fallthrough() -> None:
    """apis/v1/httproute_types.go Hostnames: precedence to the route with the longest
    matching non-wildcard hostname, then the longest matching hostname; rules of a less
    specific hostname still match when the more specific ones have no matching rule."""
    t = table(
        vhost(["foo.bar.test"], route(V1, "/exact-only", "Exact")),
        vhost(["*.bar.test"], route(V2, "/")),
        vhost(["*.test"], route(V3, "/"), wildcard="suffix"),
        vhost([], route("catch-all", "/")),
    )
    assert name(ask(t, "/exact-only", "foo.bar.test")) == V1
    assert name(ask(t, "/other", "foo.bar.test")) == V2
    assert name(ask(t, "/", "a.b.test")) == V3
    assert name(ask(t, "/", "x.y.z.test")) == V3
    assert name(ask(t, "/", "elsewhere")) == "catch-all"


# --- filters and redirects ---------------------------------------------------------------------


def _redirect(action: Redirect, target: str, prefix: str, scheme: bytes = b"http") -> bytes:
    matched = PathMatch("Prefix", prefix)
    return redirect_location(action, scheme, b"gateway.test", target.encode(), matched)


def test_httproute_redirect_path() -> None:
    """conformance/tests/httproute-redirect-path: HTTPRouteRedirectPath."""
    cases = [
        (Redirect(path=ReplacePrefix("/replacement-prefix")), "/original-prefix/lemon",
         "/original-prefix", "http://gateway.test/replacement-prefix/lemon"),
        (Redirect(path=ReplaceFullPath("/full-path-replacement")), "/full/path/original",
         "/full", "http://gateway.test/full-path-replacement"),
        (Redirect(hostname="example.org", path=ReplacePrefix("/replacement-prefix")),
         "/path-and-host", "/path-and-host", "http://example.org/replacement-prefix"),
        (Redirect(301, path=ReplacePrefix("/replacement-prefix")), "/path-and-status",
         "/path-and-status", "http://gateway.test/replacement-prefix"),
        (Redirect(hostname="example.org", path=ReplaceFullPath("/replacement-full")),
         "/full-path-and-host", "/full-path-and-host", "http://example.org/replacement-full"),
    ]  # fmt: skip
    for action, target, prefix, location in cases:
        t = table(vhost([], route(action, prefix)))
        r = ask(t, target, host="gateway.test")
        assert r.status == action.status and r.action is action
        assert _redirect(action, target, prefix) == location.encode()


@pytest.mark.parametrize(
    ("action", "location"),
    [
        # the listener on port 80: the translator writes the listener port when the spec
        # says the redirect keeps it (scheme and port unset)
        (Redirect(hostname="example.org", port=80), "http://example.org/p"),
        (Redirect(hostname="example.org", port=8080), "http://example.org:8080/p"),
        (Redirect(scheme="https", hostname="example.org"), "https://example.org/p"),
        (Redirect(scheme="https", hostname="example.org", port=443), "https://example.org/p"),
        (Redirect(scheme="https", hostname="example.org", port=8443), "https://example.org:8443/p"),
    ],
)
def test_httproute_redirect_port_and_scheme(action: Redirect, location: str) -> None:
    """conformance/tests/httproute-redirect-port-and-scheme: HTTPRouteRedirectPortAndScheme
    (well-known ports are not written)."""
    assert _redirect(action, "/p", "/p") == location.encode()


def test_redirect_keeps_the_query_and_the_request_port_unless_told() -> None:
    keep = Redirect(path=ReplaceFullPath("/new"))
    assert _redirect(keep, "/old?a=1", "/old") == b"http://gateway.test/new?a=1"
    loc = redirect_location(keep, b"http", b"Gateway.test:8080", b"/old", PathMatch())
    assert loc == b"http://gateway.test:8080/new"
    drop = Redirect(keep_query=False, scheme="https")
    loc = redirect_location(drop, b"http", b"h.test:8080", b"/x?q", PathMatch())
    assert loc == b"https://h.test/x"
    whole = Redirect(308, location="https://elsewhere.test/landing")
    assert _redirect(whole, "/x?y", "/") == b"https://elsewhere.test/landing"


@pytest.mark.parametrize(
    ("request_path", "prefix", "replace", "modified"),
    [
        ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
        ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
        ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),
        ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
        ("/foo", "/foo", "/xyz", "/xyz"),
        ("/foo/", "/foo", "/xyz", "/xyz/"),
        ("/foo/bar", "/foo", "", "/bar"),
        ("/foo/", "/foo", "", "/"),
        ("/foo", "/foo", "", "/"),
        ("/foo/", "/foo", "/", "/"),
        ("/foo", "/foo", "/", "/"),
    ],
)
def test_replace_prefix_match_table(
    request_path: str, prefix: str, replace: str, modified: str
) -> None:
    """apis/v1/httproute_types.go HTTPPathModifier.ReplacePrefixMatch, every row."""
    matched = PathMatch("Prefix", prefix)
    assert rewrite_target(ReplacePrefix(replace), request_path.encode(), matched) == (
        modified.encode()
    )


def test_httproute_rewrite_path_and_header_modifier() -> None:
    """conformance/tests/httproute-rewrite-path: HTTPRouteRewritePath."""
    headers = RequestHeaders(
        set=(("X-Header-Set", "set-overwrites-values"),),
        add=(("X-Header-Add", "header-val-1"), ("X-Header-Add-Append", "header-val-2")),
        remove=("X-Header-Remove",),
    )
    routes = [
        route(V1, "/prefix/one", filters=(Rewrite(ReplacePrefix("/one")),)),
        route(V1, "/strip-prefix", filters=(Rewrite(ReplacePrefix("/")),)),
        route(V1, "/full/one", filters=(Rewrite(ReplaceFullPath("/one")),)),
        route(V1, "/full/rewrite-path-and-modify-headers",
              filters=(Rewrite(ReplaceFullPath("/test")), headers)),
        route(V1, "/prefix/rewrite-path-and-modify-headers",
              filters=(Rewrite(ReplacePrefix("/prefix")), headers)),
    ]  # fmt: skip
    t = table(vhost([], *gateway_sorted(routes)))
    for target, rewritten in [
        ("/prefix/one/two", "/one/two"),
        ("/strip-prefix/three", "/three"),
        ("/strip-prefix", "/"),
        ("/full/one/two", "/one"),
        ("/full/rewrite-path-and-modify-headers/test", "/test"),
        ("/prefix/rewrite-path-and-modify-headers/one", "/prefix/one"),
    ]:
        r = ask(t, target)
        assert name(r) == V1 and r.route is not None
        rewrite = r.filters[0]
        assert isinstance(rewrite, Rewrite) and rewrite.path is not None
        got = rewrite_target(rewrite.path, target.encode(), r.route.match.path)
        assert got == rewritten.encode(), target
    r = ask(t, "/full/rewrite-path-and-modify-headers/test")
    edits = r.filters[1]
    assert isinstance(edits, RequestHeaders)
    sent = edit_header_lines(
        [
            b"Host: gateway.test\r\n",
            b"X-Header-Remove: remove-val\r\n",
            b"X-Header-Add-Append: append-val-1\r\n",
            b"X-Header-Set: set-val\r\n",
        ],
        edits,
    )
    assert sent == [
        b"Host: gateway.test\r\n",
        b"X-Header-Add-Append: append-val-1\r\n",
        b"X-Header-Set: set-overwrites-values\r\n",
        b"X-Header-Add: header-val-1\r\n",
        b"X-Header-Add-Append: header-val-2\r\n",
    ]
