"""Gateway API conformance, HTTPRoute extended features: the upstream traffic tests, ported.

As tests/ingress/test_gateway_conformance_core.py: each test is the upstream test of its
name (kubernetes-sigs/gateway-api conformance/tests/<file>.go), its manifest and the base
manifests as files, real sockets on loopback, the same expected responses; the filters
(header edits, redirects, rewrites, mirrors, timeouts) are carried out by the hot path's
filter runtime (ingress/filters/).

Not ported (not supported): CORS, retries, backend protocol h2c,
HTTPSListenerDetectMisdirectedRequests (it speaks HTTP/2).
"""

from __future__ import annotations

import asyncio
import math
import threading
import uuid

import aiohttp
import pytest

from tests.ingress.gwconfkit import (
    INFRA,
    NEEDS_ROOT,
    SAME,
    V1,
    V2,
    V3,
    Expected,
    ExpectedRequest,
    RedirectRequest,
    Request,
    Response,
    Rig,
    accepted,
    compare,
    expect,
    round_trip,
)
from tests.ingress.test_gateway_conformance_core import (
    HEADER_EDITS,
    request_header_modifier_cases,
)

pytestmark = NEEDS_ROOT


def ok(path: str, backend: str, **headers: str) -> Expected:
    return Expected(Request(path=path, headers=headers), backend=backend, namespace=INFRA)


def missing(path: str, **headers: str) -> Expected:
    return Expected(Request(path=path, headers=headers), Response(404))


def ok_method(method: str, path: str, backend: str, **headers: str) -> Expected:
    req = Request(method=method, path=path, headers=headers)
    return Expected(req, backend=backend, namespace=INFRA)


def missing_method(method: str, path: str) -> Expected:
    return Expected(Request(method=method, path=path), Response(404))


# -- httproute-method-matching.go ----------------------------------------------------------------


def test_HTTPRouteMethodMatching(rig: Rig) -> None:
    w = rig.apply("httproute-method-matching.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "method-matching"))
    expect(
        rig,
        gw,
        [
            ok_method("POST", "/", V1),
            ok_method("GET", "/", V2),
            missing_method("HEAD", "/"),
            # Combinations of method matching with other core matches.
            ok_method("GET", "/path1", V1),
            ok_method("PUT", "/", V2, version="one"),
            ok_method("POST", "/path2", V3, version="two"),
            # Combinations of matches which are OR'd together match even if only one
            # of them is used in the request.
            ok_method("PATCH", "/path3", V1),
            ok_method("DELETE", "/path4", V1, version="three"),
            # Combinations of match types which are ANDed together do not match when
            # only a subset of match types is used in the request.
            missing_method("PUT", "/"),
            missing_method("DELETE", "/path4"),
            # Requests that satisfy multiple matches: the spec's precedence.
            ok_method("PATCH", "/path5", V1),
            ok_method("PATCH", "/", V2, version="four"),
        ],
    )


# -- httproute-query-param-matching.go -------------------------------------------------------------


def test_HTTPRouteQueryParamMatching(rig: Rig) -> None:
    w = rig.apply("httproute-query-param-matching.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "query-param-matching"))
    expect(
        rig,
        gw,
        [
            ok("/?animal=whale", V1),
            ok("/?animal=dolphin", V2),
            ok("/?animal=dolphin&color=blue", V3),
            ok("/?ANIMAL=Whale", V3),
            ok("/?animal=whale&otherparam=irrelevant", V1),
            ok("/?animal=dolphin&color=yellow", V2),
            missing("/?color=blue"),
            missing("/?animal=dog"),
            missing("/?animal=whaledolphin"),
            missing("/"),
            # Combinations of query param matching with other core matches.
            ok("/path1?animal=whale", V1),
            ok("/?animal=whale", V2, version="one"),
            ok("/path2?animal=whale", V3, version="two"),
            # OR'd matches match with only one of them used.
            ok("/path3?animal=shark", V1),
            ok("/path4?animal=kraken", V1, version="three"),
            # ANDed match types do not match with only a subset used.
            missing("/?animal=shark"),
            missing("/path4?animal=kraken"),
            # Precedence between matches a request satisfies.
            ok("/path5?animal=hydra", V1),
            ok("/?animal=hydra", V3, version="four"),
        ],
    )


# -- httproute-listener-port-matching.go ---------------------------------------------------------


def test_HTTPRouteListenerPortMatching(rig: Rig) -> None:
    w = rig.apply("httproute-listener-port-matching.yaml")
    gateway = (INFRA, "httproute-listener-port-matching")
    routes = {80: "backend-v1", 8080: "backend-v2", 8090: "backend-v3"}
    addresses = {
        port: accepted(rig, w, gateway, (INFRA, r), port=port) for port, r in routes.items()
    }
    cases = [
        (Request(host="foo.com", path="/"), V1, 200),
        (Request(host="foo.com:8080", path="/"), V2, 200),
        (Request(host="bar.com:8080", path="/"), V2, 200),
        (Request(host="foo.com:8090", path="/"), V3, 200),
        (Request(host="bar.com:8090", path="/"), "", 404),
    ]
    for req, backend, status in cases:
        port = int(req.host.partition(":")[2] or 80)
        case = Expected(req, Response(status), backend=backend, namespace=INFRA if backend else "")
        expect(rig, addresses[port], [case])


# -- httproute-named-rule.go -----------------------------------------------------------------------


def test_HTTPRouteNamedRule(rig: Rig) -> None:
    w = rig.apply("httproute-named-rule.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "http-named-rules"))
    expect(
        rig,
        gw,
        [
            Expected(Request(path="/named"), Response(200), namespace=INFRA),
            Expected(Request(path="/unnamed"), Response(200), namespace=INFRA),
        ],
    )


# -- httproute-request-header-modifier.go (HTTPRouteBackendRequestHeaderModifier) ---------------


def test_HTTPRouteBackendRequestHeaderModifier(rig: Rig) -> None:
    w = rig.apply("httproute-request-header-modifier-backend.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "request-header-modifier"))
    expect(rig, gw, request_header_modifier_cases())


# -- httproute-request-header-modifier-backend-weights.go ---------------------------------------


def test_HTTPRouteRequestHeaderModifierBackendWeights(rig: Rig) -> None:
    w = rig.apply("httproute-request-header-modifier-backend-weights.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "request-header-modifier-backend-weights"))
    req = Request(path="/")
    for _ in range(100):
        got = round_trip(gw, req)
        assert got.status == 200, got.status
        seen = got.request or {}
        backends = {k.lower(): v for k, v in seen.get("headers", {}).items()}.get("backend", [])
        assert len(backends) == 1, (
            f"expected a single 'Backend' header to have been set, got {len(backends)}"
        )
        assert str(seen.get("pod")).startswith(backends[0]), (seen.get("pod"), backends[0])


# -- httproute-response-header-modifier.go -------------------------------------------------------


def _response_case(
    path: str,
    backend_sets: dict[str, str],
    headers: dict[str, str],
    absent: tuple[str, ...] = (),
) -> Expected:
    return Expected(
        Request(path=path),
        Response(headers=headers, absent_headers=absent),
        backend_set_response_headers=backend_sets,
        backend=V1,
        namespace=INFRA,
    )


def test_HTTPRouteResponseHeaderModifier(rig: Rig) -> None:
    w = rig.apply("httproute-response-header-modifier.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "response-header-modifier"))
    both = Expected(
        Request(
            path="/response-and-request-header-modifiers",
            headers={
                "X-Header-Remove": "remove-val",
                "X-Header-Add-Append": "append-val-1",
                "X-Header-Echo": "echo",
            },
        ),
        Response(
            headers={
                "X-Header-Set-1": "header-set-1",
                "X-Header-Set-2": "header-set-2",
                "X-Header-Add-1": "header-add-1",
                "X-Header-Add-2": "add-val-2,header-add-2",
                "Another-Header": "another-header-val",
                "X-Header-Echo": "echo",
            },
            absent_headers=("X-Header-Remove-1", "X-Header-Remove-2"),
        ),
        expected_request=ExpectedRequest(
            path="/response-and-request-header-modifiers",
            headers={
                "X-Header-Add": "header-val-1",
                "X-Header-Set": "set-overwrites-values",
                "X-Header-Add-Append": "append-val-1,header-val-2",
                "X-Header-Echo": "echo",
            },
            absent_headers=("X-Header-Remove",),
        ),
        backend_set_response_headers={
            "X-Header-Set-2": "set-val-2",
            "X-Header-Add-2": "add-val-2",
            "X-Header-Remove-2": "remove-val-2",
            "Another-Header": "another-header-val",
            "X-Header-Remove-1": "remove-val-1",
            "X-Header-Echo": "echo",
        },
        backend=V1,
        namespace=INFRA,
    )
    expect(
        rig,
        gw,
        [
            *(_response_case(*edit) for edit in HEADER_EDITS),
            _response_case(
                "/multiple",
                {
                    "X-Header-Set-2": "set-val-2",
                    "X-Header-Add-2": "add-val-2",
                    "X-Header-Remove-2": "remove-val-2",
                    "Another-Header": "another-header-val",
                    "X-Header-Remove-1": "val",
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
            _response_case(
                "/case-insensitivity",
                {
                    "x-header-set": "original-val-set",
                    "x-header-add": "original-val-add",
                    "x-header-remove": "original-val-remove",
                    "Another-Header": "another-header-val",
                },
                {
                    "X-Header-Set": "header-set",
                    "X-Header-Add": "original-val-add,header-add",
                    "X-Lowercase-Add": "lowercase-add",
                    "X-Mixedcase-Add-1": "mixedcase-add-1",
                    "X-Mixedcase-Add-2": "mixedcase-add-2",
                    "X-Uppercase-Add": "uppercase-add",
                    "Another-Header": "another-header-val",
                },
                ("x-header-remove", "X-Header-Remove"),
            ),
            both,
        ],
    )


# -- redirects: httproute-redirect-*.go, httproute-30x-redirect.go ------------------------------


def redirect(
    path: str,
    status: int = 302,
    *,
    method: str = "",
    request_host: str = "",
    scheme: str = "",
    host: str = "",
    port: str = "",
    to: str = "",
) -> Expected:
    """A request expected to be redirected (`to` is the path of Location)."""
    return Expected(
        Request(host=request_host, method=method, path=path, unfollow_redirect=True),
        Response(status),
        redirect_request=RedirectRequest(scheme, host, port, to),
        namespace=INFRA,
    )


def test_HTTPRouteRedirectPort(rig: Rig) -> None:
    w = rig.apply("httproute-redirect-port.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "redirect-port"))
    expect(
        rig,
        gw,
        [
            redirect("/port", port="8083"),
            redirect("/port-and-host", host="example.org", port="8083"),
            redirect("/port-and-status", 301, port="8083"),
            redirect("/port-and-host-and-status", port="8083", host="example.org"),
        ],
    )


def test_HTTPRouteRedirectScheme(rig: Rig) -> None:
    w = rig.apply("httproute-redirect-scheme.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "redirect-scheme"))
    expect(
        rig,
        gw,
        [
            redirect("/scheme", scheme="https"),
            redirect("/scheme-and-host", host="example.org", scheme="https"),
            redirect("/scheme-and-status", 301, scheme="https"),
            redirect("/scheme-and-host-and-status", scheme="https", host="example.org"),
        ],
    )


def test_HTTPRouteRedirectPath(rig: Rig) -> None:
    w = rig.apply("httproute-redirect-path.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "redirect-path"))
    expect(
        rig,
        gw,
        [
            redirect("/original-prefix/lemon", to="/replacement-prefix/lemon"),
            redirect("/full/path/original", to="/full-path-replacement"),
            redirect("/path-and-host", host="example.org", to="/replacement-prefix"),
            redirect("/path-and-status", 301, to="/replacement-prefix"),
            redirect("/full-path-and-host", host="example.org", to="/replacement-full"),
            redirect("/full-path-and-status", 301, to="/replacement-full"),
        ],
    )


def test_HTTPRouteRedirectPortAndScheme(rig: Rig) -> None:
    """NOTE from upstream: a missing expected port means the scheme's well-known port,
    written or not."""
    rig.apply("httproute-redirect-port-and-scheme.yaml")
    on_80 = rig.addr(*SAME)
    on_8080 = rig.addr(INFRA, "same-namespace-with-http-listener-on-8080", 8080)
    on_443 = rig.addr(INFRA, "same-namespace-with-https-listener", 443)
    org = "example.org"
    expect(
        rig,
        on_80,
        [
            redirect("/scheme-nil-and-port-nil", scheme="http", host=org),
            redirect("/scheme-nil-and-port-80", scheme="http", host=org),
            redirect("/scheme-nil-and-port-8080", scheme="http", port="8080", host=org),
            redirect("/scheme-https-and-port-nil", scheme="https", host=org),
            redirect("/scheme-https-and-port-443", scheme="https", host=org),
            redirect("/scheme-https-and-port-8443", scheme="https", port="8443", host=org),
        ],
    )
    expect(
        rig,
        on_8080,
        [
            redirect("/scheme-nil-and-port-nil", scheme="http", port="8080", host=org),
            redirect("/scheme-nil-and-port-80", scheme="http", host=org),
            redirect("/scheme-https-and-port-nil", scheme="https", host=org),
        ],
    )
    expect(
        rig,
        on_443,
        [
            redirect(path, request_host=org, scheme=scheme, port=port, host=org)
            for path, scheme, port in [
                ("/scheme-nil-and-port-nil", "https", ""),
                ("/scheme-nil-and-port-443", "https", ""),
                ("/scheme-nil-and-port-8443", "https", "8443"),
                ("/scheme-http-and-port-nil", "http", ""),
                ("/scheme-http-and-port-80", "http", ""),
                ("/scheme-http-and-port-8080", "http", "8080"),
            ]
        ],
        scheme="https",
        server_name=org,
    )


@pytest.mark.parametrize(
    ("upstream", "manifest", "route", "status", "path", "method"),
    [
        ("HTTPRoute303Redirect", "httproute-303-redirect.yaml", "303-redirect", 303,
         "/see-other", "POST"),
        ("HTTPRoute307Redirect", "httproute-307-redirect.yaml", "307-redirect", 307,
         "/temporary", ""),
        ("HTTPRoute308Redirect", "httproute-308-redirect.yaml", "308-redirect", 308,
         "/permanent", ""),
    ],
)  # fmt: skip
def test_HTTPRoute30xRedirect(
    rig: Rig, upstream: str, manifest: str, route: str, status: int, path: str, method: str
) -> None:
    """conformance/tests/httproute-30x-redirect.go (the ShortName is `upstream`)."""
    w = rig.apply(manifest)
    gw = accepted(rig, w, SAME, (INFRA, route))
    expect(rig, gw, [redirect(path, status, method=method, to=path)])


def test_HTTPRouteBackendRequestRedirect(rig: Rig) -> None:
    w = rig.apply("httproute-backend-request-redirect.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "backend-request-redirect"))
    expect(
        rig,
        gw,
        [
            redirect("/full/original", to="/redirected-full"),
            redirect("/prefix/original", to="/redirected-prefix/original"),
        ],
    )


# -- rewrites: httproute-rewrite-*.go, httproute-backend-url-rewrite.go ---------------------------


def rewritten(path: str, to: str, backend: str = V1, host: str = "", seen_host: str = "",
              headers: dict[str, str] | None = None, seen: dict[str, str] | None = None,
              absent: tuple[str, ...] = ()) -> Expected:  # fmt: skip
    return Expected(
        Request(host=host, path=path, headers=headers or {}),
        expected_request=ExpectedRequest(
            host=seen_host, path=to, headers=seen or {}, absent_headers=absent
        ),
        backend=backend,
        namespace=INFRA,
    )


MODIFIED = {
    "X-Header-Add": "header-val-1",
    "X-Header-Add-Append": "append-val-1,header-val-2",
    "X-Header-Set": "set-overwrites-values",
}
SENT = {"X-Header-Remove": "remove-val", "X-Header-Add-Append": "append-val-1"}


def test_HTTPRouteRewriteHost(rig: Rig) -> None:
    w = rig.apply("httproute-rewrite-host.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "rewrite-host"))
    host = "rewrite.example"
    expect(
        rig,
        gw,
        [
            rewritten("/one", "/one", V1, host, "one.example.org"),
            rewritten("/two", "/two", V2, host, "example.org"),
            rewritten(
                "/rewrite-host-and-modify-headers",
                "/rewrite-host-and-modify-headers",
                V2,
                host,
                "test.example.org",
                SENT,
                MODIFIED,
                ("X-Header-Remove",),
            ),
        ],
    )


def test_HTTPRouteRewritePath(rig: Rig) -> None:
    w = rig.apply("httproute-rewrite-path.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "rewrite-path"))
    expect(
        rig,
        gw,
        [
            rewritten("/prefix/one/two", "/one/two"),
            rewritten("/strip-prefix/three", "/three"),
            rewritten("/strip-prefix", "/"),
            rewritten("/full/one/two", "/one"),
            rewritten(
                "/full/rewrite-path-and-modify-headers/test",
                "/test",
                headers=SENT,
                seen=MODIFIED,
                absent=("X-Header-Remove",),
            ),
            rewritten(
                "/prefix/rewrite-path-and-modify-headers/one",
                "/prefix/one",
                headers=SENT,
                seen=MODIFIED,
                absent=("X-Header-Remove",),
            ),
        ],
    )


def test_HTTPRouteBackendURLRewrite(rig: Rig) -> None:
    w = rig.apply("httproute-backend-url-rewrite.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "backend-url-rewrite"))
    expect(
        rig,
        gw,
        [
            rewritten("/full/original", "/rewritten-full"),
            rewritten("/prefix/original", "/rewritten-prefix/original"),
        ],
    )


# -- mirrors: httproute-request-*mirror*.go -------------------------------------------------------


def with_request_id(case: Expected) -> Expected:
    """AddRequestIDQueryParam: a unique query parameter on the request and the expected
    request, so the mirror backend's log names this request only."""
    param = f"gateway-api-conformance-request-id={uuid.uuid4()}"
    case.request.path += ("&" if "?" in case.request.path else "?") + param
    if case.expected_request is not None:
        case.expected_request.path += ("&" if "?" in case.expected_request.path else "?") + param
    return case


def mirror_case(path: str, *mirrors: str, modify: bool = False) -> Expected:
    return Expected(
        Request(path=path, headers=SENT if modify else {}),
        expected_request=ExpectedRequest(
            path=path,
            headers=MODIFIED if modify else {},
            absent_headers=("X-Header-Remove",) if modify else (),
        ),
        backend=V1,
        namespace=INFRA,
        mirrored_to=tuple((m, INFRA) for m in mirrors),
    )


def test_HTTPRouteRequestMirror(rig: Rig) -> None:
    w = rig.apply("httproute-request-mirror.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "request-mirror"))
    for case in (
        mirror_case("/mirror", V2),
        mirror_case("/mirror-and-modify-headers", V2, modify=True),
    ):
        expect(rig, gw, [with_request_id(case)])


def test_HTTPRouteRequestMultipleMirrors(rig: Rig) -> None:
    w = rig.apply("httproute-request-multiple-mirrors.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "request-multiple-mirrors"))
    for case in (
        mirror_case("/multi-mirror", V2, V3),
        mirror_case("/multi-mirror-and-modify-request-headers", V2, V3, modify=True),
    ):
        expect(rig, gw, [with_request_id(case)])


MIRROR_TOTAL = 500  # httproute-request-percentage-mirror.go: totalRequests
MIRROR_CONCURRENT = 10
MIRROR_STD_DEVS = 3.0
MIRROR_CHECKS = 5


def mirrored_share(rig: Rig, gw: str, case: Expected, percent: float) -> str:
    """One distribution check: MIRROR_TOTAL requests, the mirror's count within
    MIRROR_STD_DEVS standard deviations of the binomial's mean; "" when it holds."""
    with_request_id(case)
    errors: list[str] = []
    lock = threading.Lock()

    def send() -> None:
        for _ in range(MIRROR_TOTAL // MIRROR_CONCURRENT):
            got = round_trip(gw, case.request)
            why = compare(case.request, "http", got, case)
            if why:
                with lock:
                    errors.append(why)

    threads = [threading.Thread(target=send) for _ in range(MIRROR_CONCURRENT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        return errors[0]
    ((name, _),) = case.mirrored_to
    count = sum(
        1 for p in rig.pods_of(name) for r in list(p.requests) if r["path"] == case.request.path
    )
    p = percent / 100
    margin = MIRROR_STD_DEVS * math.sqrt(MIRROR_TOTAL * p * (1 - p))
    low, high = MIRROR_TOTAL * p - margin, MIRROR_TOTAL * p + margin
    if not low <= count <= high:
        return f"{name}: expected between {low:.1f} and {high:.1f} mirrored, got {count}"
    return ""


def test_HTTPRouteRequestPercentageMirror(rig: Rig) -> None:
    w = rig.apply("httproute-request-percentage-mirror.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "request-percentage-mirror"))
    for path, percent, modify in [
        ("/percent-mirror", 20, False),
        ("/percent-mirror-fraction", 50, False),
        ("/percent-mirror-and-modify-headers", 35, True),
    ]:
        expect(rig, gw, [mirror_case(path, modify=modify)])
        problems = []
        for _ in range(MIRROR_CHECKS):
            why = mirrored_share(rig, gw, mirror_case(path, V2, modify=modify), percent)
            if not why:
                break
            problems.append(why)
            if why.endswith(" got 0"):
                break  # nothing mirrored at all: another try cannot help
        else:
            pytest.fail(f"{path}: percentage based mirror distribution failed: {problems}")


# -- timeouts: httproute-timeout-*.go -------------------------------------------------------------


@pytest.mark.parametrize(
    ("upstream", "manifest", "route", "prefix"),
    [
        ("HTTPRouteTimeoutRequest", "httproute-timeout-request.yaml", "request-timeout",
         "request-timeout"),
        ("HTTPRouteTimeoutBackendRequest", "httproute-timeout-backend-request.yaml",
         "backend-request-timeout", "backend-timeout"),
    ],
)  # fmt: skip
def test_HTTPRouteTimeouts(rig: Rig, upstream: str, manifest: str, route: str, prefix: str) -> None:
    """conformance/tests/httproute-timeout-*.go (the ShortName is `upstream`): 500 ms, a
    backend that answers after 1 s gets 504; "0s" disables the timeout."""
    w = rig.apply(manifest)
    gw = accepted(rig, w, SAME, (INFRA, route))
    expect(
        rig,
        gw,
        [
            Expected(Request(path=f"/{prefix}"), Response(200), namespace=INFRA),
            Expected(Request(path=f"/{prefix}?delay=1s"), Response(504), namespace=INFRA),
            Expected(Request(path=f"/disable-{prefix}?delay=1s"), Response(200), namespace=INFRA),
        ],
    )


# -- gateway-http-listener-isolation.go -----------------------------------------------------------

ISOLATION_LISTENERS = (
    ("bar.com", "/empty-hostname"),
    ("bar.example.com", "/wildcard-example-com"),
    ("bar.foo.example.com", "/wildcard-foo-example-com"),
    ("abc.foo.example.com", "/abc-foo-example-com"),
)


def isolation_cases() -> list[Expected]:
    """The upstream testCases: each host reaches only the routes of the most specific
    listener it matches, so every other listener's path answers 404."""
    cases = []
    for host, own in ISOLATION_LISTENERS:
        for _, path in ISOLATION_LISTENERS:
            if path == own:
                cases.append(Expected(Request(host=host, path=path), backend=V1, namespace=INFRA))
            else:
                cases.append(Expected(Request(host=host, path=path), Response(404)))
    return cases


@pytest.mark.parametrize(
    ("manifest", "suffix"),
    [
        ("gateway-http-listener-isolation.yaml", ""),
        ("gateway-http-listener-isolation-with-hostname-intersection.yaml",
         "-with-hostname-intersection"),
    ],
    ids=["hostnames are configured only in listeners",
         "intersecting hostnames are configured in listeners and HTTPRoutes"],
)
def test_GatewayHTTPListenerIsolation(rig: Rig, manifest: str, suffix: str) -> None:
    w = rig.apply(manifest)
    gateway = (INFRA, "http-listener-isolation" + suffix)
    routes = [
        (INFRA, f"attaches-to-{name}{suffix}")
        for name in (
            "empty-hostname",
            "wildcard-example-com",
            "wildcard-foo-example-com",
            "abc-foo-example-com",
        )
    ]
    gw = accepted(rig, w, gateway, *routes)
    expect(rig, gw, isolation_cases())


# -- httproute-backend-protocol-websocket.go ------------------------------------------------------


def test_HTTPRouteBackendProtocolWebSocket(rig: Rig) -> None:
    """The backend's Service port has appProtocol kubernetes.io/ws: seaway carries the
    Upgrade through and tunnels the frames both ways."""
    w = rig.apply("httproute-backend-protocol-websocket.yaml")
    gw = accepted(rig, w, SAME, (INFRA, "backend-protocol-ws"))

    async def exchange() -> tuple[str, bytes]:
        async with aiohttp.ClientSession() as session:
            origin = "ws://gateway/test_HTTPRouteBackendProtocolWebSocket"
            async with session.ws_connect(f"ws://{gw}/ws", origin=origin) as ws:
                await ws.send_str("Websocket Support!")
                text = await asyncio.wait_for(ws.receive_str(), 5)
                await ws.send_bytes(bytes([1, 2, 3, 4, 5, 6, 7]))
                data = await asyncio.wait_for(ws.receive_bytes(), 5)
                return text, data

    text, data = asyncio.run(exchange())
    assert text == "Websocket Support!"
    assert data == bytes([1, 2, 3, 4, 5, 6, 7])
    (upgrade,) = [r for r in rig.pods[V1].requests if r["path"] == "/ws"]
    assert upgrade["headers"]["Upgrade"] == ["websocket"]
