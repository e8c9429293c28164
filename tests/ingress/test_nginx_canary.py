"""ingress-nginx canaries in the route table: by header (always/never, value, pattern),
by cookie, by weight, their precedence, and the cases where ingress-nginx does not use a
canary. Cases from test/e2e/annotations/canary.go and rootfs/etc/nginx/lua/balancer.lua
route_to_alternative_balancer."""

from __future__ import annotations

import random

from ingress.route_filters import CookieAffinity
from ingress.route_match import RouteResult
from tests.ingress.nginxkit import Translated, ann, ing, name, path, translate

HOST = "foo"
MAIN = "httpbun"
CANARY = "canary"


def canary(**rules: str) -> Translated:
    """The e2e setup: a main Ingress for foo /info and a canary Ingress for the same."""
    return translate(
        ing("foo", HOST, path("/info", MAIN), created="1"),
        ing("foo-canary", HOST, path("/info", CANARY), created="2",
            annotations=ann(canary="true", **rules)),
        services=(MAIN, CANARY),
    )


def ask(t: Translated, headers: dict[str, str] | None = None) -> RouteResult:
    return t.ask(HOST, "/info", headers=headers)


def test_header_always_and_never() -> None:
    """canary.go "when canaried by header with no value": always -> canary, never ->
    main, anything else (or none) -> main (no weight)."""
    t = canary(canary_by_header="CanaryByHeader")
    assert name(ask(t, {"CanaryByHeader": "always"})) == CANARY
    assert name(ask(t, {"CanaryByHeader": "never"})) == MAIN
    assert name(ask(t, {"CanaryByHeader": "badheadervalue"})) == MAIN
    assert name(ask(t)) == MAIN
    assert ask(t, {"CanaryByHeader": "always"}).source.endswith(
        "canary default/foo-canary by header CanaryByHeader: always"
    )


def test_header_value_turns_off_the_keywords() -> None:
    """canary.go "when canaried by header with value": DoCanary -> canary; "always" is
    now just another value -> main."""
    t = canary(canary_by_header="CanaryByHeader", canary_by_header_value="DoCanary")
    assert name(ask(t, {"CanaryByHeader": "DoCanary"})) == CANARY
    assert name(ask(t, {"CanaryByHeader": "always"})) == MAIN
    assert name(ask(t, {"CanaryByHeader": "docanary"})) == MAIN  # exact, case-sensitive


def test_header_pattern() -> None:
    """canary.go "when canaried by header with value and pattern": "DoCanary" matches
    ^Do[A-Z][a-z]+y$, "Docanary" does not; with both value and pattern, the value wins."""
    t = canary(canary_by_header="CanaryByHeader", canary_by_header_pattern="^Do[A-Z][a-z]+y$")
    assert name(ask(t, {"CanaryByHeader": "DoCanary"})) == CANARY
    assert name(ask(t, {"CanaryByHeader": "Docanary"})) == MAIN
    t = canary(canary_by_header="CanaryByHeader", canary_by_header_value="DoCanary",
               canary_by_header_pattern="^Do[A-Z][a-z]+y$")
    assert name(ask(t, {"CanaryByHeader": "DoCananry"})) == MAIN


def test_a_pattern_that_does_not_compile_sends_the_header_to_main() -> None:
    """canary.go "should routes to mainline upstream when the given Regex causes error":
    with the header, main, even with the cookie at "always" (the Lua returns at once);
    without the header the cookie still counts."""
    t = canary(canary_by_header="CanaryByHeader", canary_by_header_pattern="[][**da?$&*",
               canary_by_cookie="CanaryByCookie")
    headers = {"CanaryByHeader": "DoCanary", "Cookie": "CanaryByCookie=always"}
    assert name(ask(t, headers)) == MAIN
    assert name(ask(t, {"Cookie": "CanaryByCookie=always"})) == CANARY


def test_header_then_cookie_then_weight() -> None:
    """canary.go "when canaried by header with value and cookie": a header that does not
    match falls through to the cookie ("always" -> canary); "never" in either stops
    there; balancer.lua: header, then cookie, then weight."""
    t = canary(canary_by_header="CanaryByHeader", canary_by_header_value="DoCanary",
               canary_by_cookie="CanaryByCookie", canary_weight="100")
    both = {"CanaryByHeader": "otherheadervalue", "Cookie": "CanaryByCookie=always"}
    assert name(ask(t, both)) == CANARY
    assert name(ask(t, {"Cookie": "a=1; CanaryByCookie=never"})) == MAIN
    assert name(ask(t, {"Cookie": "CanaryByCookie=maybe"})) == CANARY  # falls to weight 100
    t = canary(canary_by_header="H", canary_by_cookie="C")
    assert name(ask(t, {"H": "never", "Cookie": "C=always"})) == MAIN
    assert name(ask(t, {"H": "always", "Cookie": "C=never"})) == CANARY


def test_weight_0_100_and_total() -> None:
    """canary.go "when canaried by weight": weight 0 -> only main; 100 -> only canary;
    weight equal to canary-weight-total -> only canary; 100 of 200 -> a split."""
    assert name(ask(canary(canary_weight="0"))) == MAIN
    assert ask(canary(canary_weight="0")).split is None
    for rules in ({"canary_weight": "100"}, {"canary_weight": "1000",
                                             "canary_weight_total": "1000"}):
        r = ask(canary(**rules))
        assert r.split is None and name(r) == CANARY
    r = ask(canary(canary_weight="100", canary_weight_total="200"))
    assert r.split is not None and r.cumulative == (100, 200)


def share(r: RouteResult, draws: int = 20000, seed: int = 11) -> float:
    """The canary's share of `draws` uniform picks (the hot path's pick)."""
    rng = random.Random(seed)
    return sum(name(r.pick(rng.random())) == CANARY for _ in range(draws)) / draws


def test_weight_split_is_statistically_right() -> None:
    """canary.go "should route requests split between mainline and canary if canary
    weight is 50" (and 100 of 200; a total under 100 counts as 100: balancer.lua):
    the canary's share within 3 standard deviations of the weight / total."""
    for rules, expected in [
        ({"canary_weight": "50"}, 0.5),
        ({"canary_weight": "100", "canary_weight_total": "200"}, 0.5),
        ({"canary_weight": "10"}, 0.1),
        ({"canary_weight": "10", "canary_weight_total": "20"}, 0.1),
    ]:
        got = share(ask(canary(**rules)))
        tolerance = 3 * (expected * (1 - expected) / 20000) ** 0.5
        assert abs(got - expected) < tolerance, (rules, got)


def test_no_main_ingress_means_no_canary() -> None:
    """canary.go "should return 404 status for requests to the canary if no matching
    ingress is found" and "Single canary Ingress": a canary serves nothing itself."""
    t = translate(
        ing("foo-canary", HOST, path("/info", CANARY), annotations=ann(
            canary="true", canary_by_header="CanaryByHeader")),
        ing("other", "other.test", path("/", MAIN)),
        services=(MAIN, CANARY),
    )
    assert name(t.ask(HOST, "/info", headers={"CanaryByHeader": "always"})) == "404"
    assert any("no main Ingress serves host foo" in w for w in t.warnings())


def test_a_canary_path_without_a_main_path_is_reported() -> None:
    """controller.go mergeAlternativeBackends: only the same host, path and path type."""
    t = translate(
        ing("foo", HOST, path("/info", MAIN), created="1"),
        ing("foo-canary", HOST, path("/other", CANARY), created="2",
            annotations=ann(canary="true", canary_weight="100")),
        services=(MAIN, CANARY),
    )
    assert name(t.ask(HOST, "/info")) == MAIN
    assert name(t.ask(HOST, "/other")) == "404"
    assert any("no main Ingress serves this host and path" in w for w in t.warnings())


def test_the_canary_applies_to_every_route_of_the_main_service_port() -> None:
    """ingress-nginx attaches the canary to the main Service port's upstream, so another
    path (or host) forwarding to that Service port is canaried too (kubernetes/
    ingress-nginx issues 4667, 8689): kept, as a migrated cluster routes as before."""
    t = translate(
        ing("foo", HOST, path("/info", MAIN), path("/hi", MAIN), created="1"),
        ing("foo-canary", HOST, path("/info", CANARY), created="2",
            annotations=ann(canary="true", canary_by_header="X")),
        services=(MAIN, CANARY),
    )
    assert name(t.ask(HOST, "/hi", headers={"X": "always"})) == CANARY


def test_canary_takes_the_main_ingress_filters() -> None:
    """annotations.md#canary: a canary Ingress takes every other annotation from the main
    Ingress (its own are ignored, the parser reports them)."""
    t = translate(
        ing("foo", HOST, path("/info", MAIN), created="1",
            annotations=ann(proxy_body_size="8m")),
        ing("foo-canary", HOST, path("/info", CANARY), created="2",
            annotations=ann(canary="true", canary_by_header="X", proxy_body_size="1k")),
        services=(MAIN, CANARY),
    )
    assert ask(t, {"X": "always"}).filters == ask(t).filters != ()


def test_canary_is_sticky_with_the_main_affinity_by_default() -> None:
    """canary.go "canary affinity behavior": sticky (default) gives the canary's Service
    port the main one's cookie affinity; legacy keeps the canary's own (none here)."""
    t = canary(canary_by_header="X")
    main_affinity = translate(
        ing("foo", HOST, path("/info", MAIN), created="1", annotations=ann(affinity="cookie")),
        ing("foo-canary", HOST, path("/info", CANARY), created="2",
            annotations=ann(canary="true", canary_by_header="X")),
        services=(MAIN, CANARY),
    )
    got = ask(main_affinity, {"X": "always"})
    assert got.filters == (CookieAffinity("INGRESSCOOKIE", "/info"),)
    legacy = translate(
        ing("foo", HOST, path("/info", MAIN), created="1", annotations=ann(affinity="cookie")),
        ing("foo-canary", HOST, path("/info", CANARY), created="2",
            annotations=ann(canary="true", canary_by_header="X",
                            affinity_canary_behavior="legacy")),
        services=(MAIN, CANARY),
    )
    assert ask(legacy, {"X": "always"}).filters == ()
    assert ask(t, {"X": "always"}).filters == ()


def test_a_canary_service_named_first_by_a_main_ingress_gets_no_rules() -> None:
    """controller.go createUpstreams: the first Ingress naming a Service port creates its
    upstream; when that is a main Ingress, the canary's traffic rules are never set
    (kubernetes/ingress-nginx issue 9458)."""
    t = translate(
        ing("direct", "canary.test", path("/", CANARY), created="0"),
        ing("foo", HOST, path("/info", MAIN), created="1"),
        ing("foo-canary", HOST, path("/info", CANARY), created="2",
            annotations=ann(canary="true", canary_weight="100")),
        services=(MAIN, CANARY),
    )
    assert name(ask(t)) == MAIN
    assert any("gives it no canary rules" in w for w in t.warnings())
