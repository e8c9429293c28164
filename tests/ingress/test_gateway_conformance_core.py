"""Gateway API conformance, HTTPRoute core: the upstream traffic tests, ported.

Each test is one upstream test (kubernetes-sigs/gateway-api conformance/tests/<file>.go,
its ShortName as the test name) run with that test's manifest and the base manifests as
files, over real sockets on loopback (tests/ingress/gwconfkit.py says how they are
adapted): the same status checks first, then the same requests with the same expected
responses (ExpectedResponse). The status-only tests are in
tests/discovery/test_gateway_conformance_status.py.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from tests.discovery.gatewaykit import (
    find_condition,
    gateway_and_routes_accepted,
    route_must_have_condition,
    route_resolved_refs_true,
)
from tests.ingress.gwconfkit import (
    APP,
    INFRA,
    NEEDS_ROOT,
    SAME,
    V1,
    V2,
    V3,
    WEB,
    Expected,
    ExpectedRequest,
    RedirectRequest,
    Request,
    Response,
    Rig,
    accepted,
    backend_name,
    certificate,
    compare,
    expect,
    round_trip,
)

pytestmark = NEEDS_ROOT


# -- httproute-simple-same-namespace.go ---------------------------------------------------------


def test_HTTPRouteSimpleSameNamespace(rig: Rig) -> None:
    w = rig.apply("httproute-simple-same-namespace.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "gateway-conformance-infra-test"))
    expect(
        rig,
        gw,
        [Expected(Request(path="/"), Response(200), backend=V1, namespace=INFRA)],
    )


# -- httproute-cross-namespace.go ---------------------------------------------------------------


def test_HTTPRouteCrossNamespace(rig: Rig) -> None:
    w = rig.apply("httproute-cross-namespace.yaml")
    gw = accepted(rig, w, (INFRA, "backend-namespaces"), (WEB, "cross-namespace"))
    expect(
        rig,
        gw,
        [Expected(Request(path="/"), Response(200), backend="web-backend", namespace=WEB)],
    )


# -- httproute-exact-path-matching.go -------------------------------------------------------------


def test_HTTPRouteExactPathMatching(rig: Rig) -> None:
    w = rig.apply("httproute-exact-path-matching.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "exact-matching"))
    expect(
        rig,
        gw,
        [
            Expected(Request(path="/one"), backend=V1, namespace=INFRA),
            Expected(Request(path="/two"), backend=V2, namespace=INFRA),
            Expected(Request(path="/"), Response(404)),
            Expected(Request(path="/one/example"), Response(404)),
            Expected(Request(path="/two/"), Response(404)),
            Expected(Request(path="/Two"), Response(404)),
        ],
    )


# -- httproute-header-matching.go ----------------------------------------------------------------


def test_HTTPRouteHeaderMatching(rig: Rig) -> None:
    w = rig.apply("httproute-header-matching.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "header-matching"))

    def case(headers: dict[str, str], backend: str = "", status: int = 0) -> Expected:
        if backend:
            return Expected(Request(path="/", headers=headers), backend=backend, namespace=INFRA)
        return Expected(Request(path="/", headers=headers), Response(status))

    expect(
        rig,
        gw,
        [
            case({"Version": "one"}, V1),
            case({"Version": "two"}, V2),
            case({"Version": "two", "Color": "orange"}, V1),
            case({"Version": "two", "Color": "blue"}, V2),
            case({"Color": "orange"}, status=404),
            case({"Some-Other-Header": "one"}, status=404),
            case({"Color": "blue"}, V1),
            case({"Color": "green"}, V1),
            case({"Color": "red"}, V2),
            case({"Color": "yellow"}, V2),
            case({"Color": "purple"}, status=404),
        ],
    )


# -- httproute-matching.go ------------------------------------------------------------------------


def test_HTTPRouteMatching(rig: Rig) -> None:
    w = rig.apply("httproute-matching.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "matching"))
    expect(
        rig,
        gw,
        [
            Expected(Request(path="/"), backend=V1, namespace=INFRA),
            Expected(Request(path="/example"), backend=V1, namespace=INFRA),
            Expected(Request(path="/", headers={"Version": "one"}), backend=V1, namespace=INFRA),
            Expected(Request(path="/v2"), backend=V2, namespace=INFRA),
            Expected(Request(path="/v2/example"), backend=V2, namespace=INFRA),
            Expected(Request(path="/", headers={"Version": "two"}), backend=V2, namespace=INFRA),
            Expected(Request(path="/v2/"), backend=V2, namespace=INFRA),
            # Not a path segment prefix so should not match /v2.
            Expected(Request(path="/v2example"), backend=V1, namespace=INFRA),
            Expected(Request(path="/foo/v2/example"), backend=V1, namespace=INFRA),
        ],
    )


# -- httproute-matching-across-routes.go ----------------------------------------------------------


def test_HTTPRouteMatchingAcrossRoutes(rig: Rig) -> None:
    w = rig.apply("httproute-matching-across-routes.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "matching-part1"), (INFRA, "matching-part2"))

    def case(host: str, path: str, backend: str, headers: dict[str, str] | None = None) -> Expected:
        req = Request(host=host, path=path, headers=headers or {})
        return Expected(req, backend=backend, namespace=INFRA)

    expect(
        rig,
        gw,
        [
            case("example.com", "/", V1),
            case("example.com", "/example", V1),
            case("example.net", "/example", V1),
            case("example.com", "/example", V1, {"Version": "one"}),
            case("example.com", "/v2", V2),
            # v2 matches are limited to example.com
            case("example.net", "/v2", V1),
            case("example.com", "/v2/example", V2),
            case("example.com", "/", V2, {"Version": "two"}),
        ],
    )


# -- httproute-hostname-intersection.go -----------------------------------------------------------


def test_HTTPRouteHostnameIntersection(rig: Rig) -> None:
    w = rig.apply("httproute-hostname-intersection.yaml")
    gateway = (INFRA, "httproute-hostname-intersection")
    routes = [
        (INFRA, "specific-host-matches-listener-specific-host"),
        (INFRA, "specific-host-matches-listener-wildcard-host"),
        (INFRA, "wildcard-host-matches-listener-specific-host"),
        (INFRA, "wildcard-host-matches-listener-wildcard-host"),
    ]
    gw = accepted(rig, w, gateway, *routes)

    def ok(host: str, path: str, backend: str) -> Expected:
        return Expected(Request(host=host, path=path), backend=backend, namespace=INFRA)

    def missing(host: str, path: str) -> Expected:
        return Expected(Request(host=host, path=path), Response(404))

    # HTTPRoutes that do have hostnames intersecting with listener hostnames
    expect(
        rig,
        gw,
        [
            # specific-host-matches-listener-specific-host
            ok("very.specific.com", "/s1", V1),
            # Port value within the Host header MUST not be considered while
            # performing match against hostname.
            ok("very.specific.com:1234", "/s1", V1),
            missing("non.matching.com", "/s1"),
            missing("foo.nonmatchingwildcard.io", "/s1"),
            missing("foo.wildcard.io", "/s1"),
            missing("very.specific.com", "/non-matching-prefix"),
            # specific-host-matches-listener-wildcard-host
            ok("foo.wildcard.io", "/s2", V2),
            ok("bar.wildcard.io", "/s2", V2),
            ok("foo.bar.wildcard.io", "/s2", V2),
            missing("non.matching.com", "/s2"),
            missing("wildcard.io", "/s2"),
            missing("very.specific.com", "/s2"),
            missing("foo.wildcard.io", "/non-matching-prefix"),
            # wildcard-host-matches-listener-specific-host
            ok("very.specific.com", "/s3", V3),
            missing("non.matching.com", "/s3"),
            missing("foo.specific.com", "/s3"),
            missing("foo.wildcard.io", "/s3"),
            missing("very.specific.com", "/non-matching-prefix"),
            # wildcard-host-matches-listener-wildcard-host
            ok("foo.anotherwildcard.io", "/s4", V1),
            ok("bar.anotherwildcard.io", "/s4", V1),
            ok("foo.bar.anotherwildcard.io", "/s4", V1),
            missing("anotherwildcard.io", "/s4"),
            missing("foo.wildcard.io", "/s4"),
            missing("very.specific.com", "/s4"),
            missing("foo.anotherwildcard.io", "/non-matching-prefix"),
        ],
    )
    # HTTPRoutes that do not have hostnames intersecting with listener hostnames
    parents = w.parents(INFRA, "no-intersecting-hosts")
    assert any(
        find_condition(p.conditions, "Accepted", "False", "NoMatchingListenerHostname")
        for p in parents
    ), parents
    expect(rig, gw, [missing("specific.but.wrong.com", "/s5"), missing("wildcard.io", "/s5")])
    attached = {ls.name: ls.attached_routes for ls in w.gateway(*gateway).listeners}
    assert attached == {"listener-1": 2, "listener-2": 1, "listener-3": 1}
    # HTTPRoutes that have hostnames matching a listener with no hostname
    every = (INFRA, "httproute-hostname-intersection-all")
    gw_all = accepted(rig, w, every, every)
    expect(
        rig,
        gw_all,
        [
            ok("first.com", "/", V2),
            ok("sub.first.com", "/", V2),
            ok("second.com", "/", V2),
            ok("sub.second.com", "/", V2),
            # Following should fail since it is not specified on the HTTPRoute
            Expected(Request(host="third.com", path="/"), Response(404), namespace=INFRA),
            Expected(Request(host="sub.third.com", path="/"), Response(404), namespace=INFRA),
        ],
    )


# -- httproute-listener-hostname-matching.go ------------------------------------------------------


def test_HTTPRouteListenerHostnameMatching(rig: Rig) -> None:
    w = rig.apply("httproute-listener-hostname-matching.yaml")
    gateway = (INFRA, "httproute-listener-hostname-matching")
    gateway_and_routes_accepted(w, gateway, (INFRA, "backend-v1"), sections=("listener-1",))
    gateway_and_routes_accepted(w, gateway, (INFRA, "backend-v2"), sections=("listener-2",))
    gateway_and_routes_accepted(
        w, gateway, (INFRA, "backend-v3"), sections=("listener-3", "listener-4")
    )
    for name in ("backend-v1", "backend-v2", "backend-v3"):
        route_resolved_refs_true(w, (INFRA, name), gateway)

    def ok(host: str, backend: str) -> Expected:
        return Expected(Request(host=host, path="/"), backend=backend, namespace=INFRA)

    expect(
        rig,
        rig.addr(*gateway),
        [
            ok("bar.com", V1),
            ok("foo.bar.com", V2),
            ok("baz.bar.com", V3),
            ok("boo.bar.com", V3),
            ok("multiple.prefixes.bar.com", V3),
            ok("multiple.prefixes.foo.com", V3),
            Expected(Request(host="foo.com", path="/"), Response(404)),
            Expected(Request(host="no.matching.host", path="/"), Response(404)),
        ],
    )


# -- httproute-https-listener.go --------------------------------------------------------------


def test_HTTPRouteHTTPSListener(rig: Rig) -> None:
    w = rig.apply("httproute-https-listener.yaml")
    gateway = (INFRA, "same-namespace-with-https-listener")
    routes = [(INFRA, "httproute-https-test"), (INFRA, "httproute-https-test-no-hostname")]
    gw = accepted(rig, w, gateway, *routes, port=443)
    for host, status, backend in [
        ("example.org", 200, V1),
        ("unknown-example.org", 404, ""),
        ("second-example.org", 200, V2),
    ]:
        case = Expected(Request(host=host, path="/"), Response(status), backend=backend)
        case.namespace = INFRA
        expect(rig, gw, [case], scheme="https", server_name=host)


# -- httproute-invalid-*.go: unusable backendRefs answer 500 ------------------------------------


@pytest.mark.parametrize(
    ("upstream", "manifest", "route", "reason", "path"),
    [
        (
            "HTTPRouteInvalidBackendRefUnknownKind",
            "httproute-invalid-backendref-unknown-kind.yaml",
            "invalid-backend-ref-unknown-kind",
            "InvalidKind",
            "/v2",
        ),
        (
            "HTTPRouteInvalidCrossNamespaceBackendRef",
            "httproute-invalid-cross-namespace-backend-ref.yaml",
            "invalid-cross-namespace-backend-ref",
            "RefNotPermitted",
            "/",
        ),
        (
            "HTTPRouteInvalidNonExistentBackendRef",
            "httproute-invalid-nonexistent-backendref.yaml",
            "invalid-nonexistent-backend-ref",
            "BackendNotFound",
            "/",
        ),
        (
            "HTTPRouteInvalidReferenceGrant",
            "httproute-invalid-reference-grant.yaml",
            "reference-grant",
            "RefNotPermitted",
            "/",
        ),
    ],
)
def test_HTTPRouteInvalidBackendRefs(
    rig: Rig, upstream: str, manifest: str, route: str, reason: str, path: str
) -> None:
    """conformance/tests/httproute-invalid-*.go (the ShortName is `upstream`): the
    route is Accepted, ResolvedRefs False with `reason`, and a request gets 500."""
    w = rig.apply(manifest)
    gateway_and_routes_accepted(w, SAME, (INFRA, route))
    route_must_have_condition(w, (INFRA, route), SAME, "ResolvedRefs", "False", reason)
    expect(rig, rig.addr(*SAME), [Expected(Request(method="GET", path=path), Response(500))])


# -- httproute-partially-invalid-via-invalid-reference-grant.go ----------------------------------


def test_HTTPRoutePartiallyInvalidViaInvalidReferenceGrant(rig: Rig) -> None:
    w = rig.apply("httproute-partially-invalid-via-invalid-reference-grant.yaml")
    route = (INFRA, "invalid-reference-grant")
    gateway = SAME
    gateway_and_routes_accepted(w, gateway, route)
    route_must_have_condition(w, route, gateway, "ResolvedRefs", "False", "RefNotPermitted")
    expect(
        rig,
        rig.addr(*gateway),
        [
            Expected(Request(method="GET", path="/v2"), Response(500)),
            Expected(Request(method="GET", path="/"), backend="app-backend-v1", namespace=APP),
        ],
    )


# -- httproute-reference-grant.go -----------------------------------------------------------------


def test_HTTPRouteReferenceGrant(rig: Rig) -> None:
    w = rig.apply("httproute-reference-grant.yaml")
    route = (INFRA, "reference-grant")
    gw = accepted(rig, w, SAME, route)
    expect(
        rig, gw, [Expected(Request(method="GET", path="/"), backend="web-backend", namespace=WEB)]
    )
    # Simple HTTP request should return 500 after deleting the relevant reference grant
    manifest = rig.manifest("httproute-reference-grant.yaml")
    rig.apply(extra=[d for d in manifest if d["kind"] != "ReferenceGrant"])
    expect(rig, gw, [Expected(Request(method="GET", path="/"), Response(500))])


# -- httproute-omitted-backendrefs.go -----------------------------------------------------------


def test_HTTPRouteNoBackendRefs(rig: Rig) -> None:
    w = rig.apply("httproute-omitted-backendrefs.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "omitted-backendrefs"))
    expect(
        rig,
        gw,
        [
            Expected(Request(path="/forward"), backend=V1, namespace=INFRA),
            Expected(Request(path="/omitted-no-forward"), Response(500)),
            Expected(Request(path="/empty-no-forward"), Response(500)),
        ],
    )


# -- httproute-multiple-gateways.go ------------------------------------------------------------


def test_HTTPRouteMultipleGateways(rig: Rig) -> None:
    w = rig.apply("httproute-multiple-gateways.yaml")
    shared = (INFRA, "multiple-gateways-shared-route")
    for gateway, dedicated, backend in [
        (SAME, "same-namespace-dedicated-route", V2),
        ((INFRA, "all-namespaces"), "all-namespaces-dedicated-route", V3),
    ]:
        gateway_and_routes_accepted(w, gateway, shared, (INFRA, dedicated))
        expect(
            rig,
            rig.addr(*gateway),
            [
                Expected(Request(path="/shared"), Response(200), backend=V1, namespace=INFRA),
                Expected(Request(path="/"), Response(200), backend=backend, namespace=INFRA),
            ],
        )


# -- httproute-path-match-order.go ---------------------------------------------------------------


def test_HTTPRoutePathMatchOrder(rig: Rig) -> None:
    w = rig.apply("httproute-path-match-order.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "path-matching-order"))
    expect(
        rig,
        gw,
        [
            Expected(Request(path="/match/exact/one"), backend=V3, namespace=INFRA),
            Expected(Request(path="/match/exact"), backend=V2, namespace=INFRA),
            Expected(Request(path="/match"), backend=V1, namespace=INFRA),
            Expected(Request(path="/match/prefix/one/any"), backend=V2, namespace=INFRA),
            Expected(Request(path="/match/prefix/any"), backend=V1, namespace=INFRA),
            Expected(Request(path="/match/any"), backend=V3, namespace=INFRA),
        ],
    )


# -- httproute-service-types.go ------------------------------------------------------------------


def test_HTTPRouteServiceTypes(rig: Rig) -> None:
    w = rig.apply("httproute-service-types.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "service-types"))
    expect(
        rig,
        gw,
        [
            Expected(Request(path="/" + path), Response(200), backend=V1, namespace=INFRA)
            for path in ("manual-endpointslices", "headless-manual-endpointslices", "headless")
        ],
    )


# -- httproute-weight.go -------------------------------------------------------------------------

TOTAL_REQUESTS = 500  # conformance/utils/weight.TestWeightedDistribution
CONCURRENT_REQUESTS = 10
TOLERANCE = 0.05
MAX_TEST_RETRIES = 10


def weighted_distribution(gw: str, expected: Expected, weights: dict[str, float]) -> str:
    """TestWeightedDistribution: 500 requests, 10 at a time; each backend's share within
    5 points of its weight; "" when it holds, else why not."""
    seen: Counter[str] = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    per_thread = TOTAL_REQUESTS // CONCURRENT_REQUESTS

    def send() -> None:
        for n in range(per_thread):
            req = Request(path="/", headers={"X-Jitter": str(n)})  # AddEntropy
            got = round_trip(gw, req)
            why = compare(req, "http", got, expected)
            with lock:
                if why:
                    errors.append(why)
                else:
                    seen[backend_name(str((got.request or {}).get("pod")))] += 1

    threads = [threading.Thread(target=send) for _ in range(CONCURRENT_REQUESTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        return f"error while sending requests: {errors[0]}"
    problems = []
    active = sum(1 for w in weights.values() if w > 0)
    if len(seen) != active:
        problems.append(f"expected {active} backends to receive traffic, but got {len(seen)}")
    for backend, want in weights.items():
        got = seen[backend] / TOTAL_REQUESTS
        if abs(got - want) > TOLERANCE:
            problems.append(
                f"backend {backend!r} weighted traffic of {got} not within tolerance {want} "
                f"(+/-{TOLERANCE})"
            )
    return "; ".join(problems)


def test_HTTPRouteWeight(rig: Rig) -> None:
    w = rig.apply("httproute-weight.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "weighted-backends"))
    expected = Expected(Request(path="/"), Response(statuses=(200,)), namespace=INFRA)
    expect(rig, gw, [expected])
    weights = {V1: 0.7, V2: 0.3, V3: 0.0}
    failures = []
    for attempt in range(MAX_TEST_RETRIES):
        why = weighted_distribution(gw, expected, weights)
        if not why:
            return
        failures.append(f"({attempt + 1}/{MAX_TEST_RETRIES}) {why}")
    pytest.fail("Weighted distribution tests failed:\n" + "\n".join(failures))


def test_conformance_certificate_is_the_served_one(rig: Rig) -> None:
    """The HTTPS listener serves the Secret's certificate (the client trusts only it)."""
    rig.apply("httproute-https-listener.yaml")
    got = round_trip(
        rig.addr(INFRA, "same-namespace-with-https-listener", 443),
        Request(host="example.org", path="/"),
        "https",
        "example.org",
        certificate()[0],
    )
    assert "second-example.org" in got.server_names


# -- httproute-request-header-modifier.go -----------------------------------------------------


# The cases the request and the response header modifier tests share: (path, headers the
# client sends or the backend answers with, headers expected on the other side, absent).
HEADER_EDITS: list[tuple[str, dict[str, str], dict[str, str], tuple[str, ...]]] = [
    (
        "/set",
        {"Some-Other-Header": "val"},
        {"Some-Other-Header": "val", "X-Header-Set": "set-overwrites-values"},
        (),
    ),
    (
        "/set",
        {"Some-Other-Header": "val", "X-Header-Set": "some-other-value"},
        {"Some-Other-Header": "val", "X-Header-Set": "set-overwrites-values"},
        (),
    ),
    (
        "/add",
        {"Some-Other-Header": "val"},
        {"Some-Other-Header": "val", "X-Header-Add": "add-appends-values"},
        (),
    ),
    (
        "/add",
        {"Some-Other-Header": "val", "X-Header-Add": "some-other-value"},
        {"Some-Other-Header": "val", "X-Header-Add": "some-other-value,add-appends-values"},
        (),
    ),
    ("/remove", {"X-Header-Remove": "val"}, {}, ("X-Header-Remove",)),
]


def request_header_modifier_cases() -> list[Expected]:
    """HTTPRouteRequestHeaderModifier's cases (HTTPRouteBackendRequestHeaderModifier runs
    the same test on another manifest)."""

    def case(
        path: str, sent: dict[str, str], seen: dict[str, str], absent: tuple[str, ...] = ()
    ) -> Expected:
        return Expected(
            Request(path=path, headers=sent),
            expected_request=ExpectedRequest(path=path, headers=seen, absent_headers=absent),
            backend=V1,
            namespace=INFRA,
        )

    return [
        *(case(*edit) for edit in HEADER_EDITS),
        case(
            "/multiple",
            {
                "X-Header-Set-2": "set-val-2",
                "X-Header-Add-2": "add-val-2",
                "X-Header-Remove-2": "remove-val-2",
                "Another-Header": "another-header-val",
            },
            {
                "X-Header-Set-1": "header-set-1",
                "X-Header-Set-2": "header-set-2",
                "X-Header-Add-1": "header-add-1",
                "X-Header-Add-2": "add-val-2,header-add-2",
                "X-Header-Add-3": "header-add-3",
                "Another-Header": "another-header-val",
            },
            ("X-Header-Remove-1", "X-Header-Remove-2"),
        ),
        case(
            "/case-insensitivity",
            # The filter uses canonicalized header names, the request lowercase names.
            {
                "x-header-set": "original-val-set",
                "x-header-add": "original-val-add",
                "x-header-remove": "original-val-remove",
                "Another-Header": "another-header-val",
            },
            {
                "X-Header-Set": "header-set",
                "X-Header-Add": "original-val-add,header-add",
                "Another-Header": "another-header-val",
            },
            ("x-header-remove", "X-Header-Remove"),
        ),
    ]


def test_HTTPRouteRequestHeaderModifier(rig: Rig) -> None:
    w = rig.apply("httproute-request-header-modifier.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "request-header-modifier"))
    expect(rig, gw, request_header_modifier_cases())


# -- httproute-redirect-host-and-status.go ----------------------------------------------------


def test_HTTPRouteRedirectHostAndStatus(rig: Rig) -> None:
    w = rig.apply("httproute-redirect-host-and-status.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "redirect-host-and-status"))
    expect(
        rig,
        gw,
        [
            Expected(
                Request(path="/hostname-redirect", unfollow_redirect=True),
                Response(302),
                redirect_request=RedirectRequest(host="example.org"),
                namespace=INFRA,
            ),
            Expected(
                Request(path="/host-and-status", unfollow_redirect=True),
                Response(301),
                redirect_request=RedirectRequest(host="example.org"),
                namespace=INFRA,
            ),
        ],
    )
