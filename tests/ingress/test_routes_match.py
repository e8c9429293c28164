"""The route model's matcher (ingress/route_match.py): hosts, path kinds, conditions,
order, actions, weighted backends, sources, compile errors and explanations."""

from __future__ import annotations

import random
import re

import pytest

from discovery.snapshot import EndpointInfo
from ingress.context import ProxyContext
from ingress.outbox import Outbox
from ingress.request import RequestState, parse_request
from ingress.route_conditions import cookie_value, no_header, query_value
from ingress.route_filters import BodyLimit, Rewrite, Timeouts
from ingress.route_match import (
    NOT_FOUND_SOURCE,
    compile_table,
    matches_every_path,
    normalize_host,
    pick_weighted,
    request_path,
    route_problem,
)
from ingress.routes import (
    CookieMatch,
    FixedResponse,
    Forward,
    HeaderMatch,
    Listener,
    QueryMatch,
    Redirect,
    RegexReplace,
    RouteTable,
)
from ingress.settings import HttpSettings
from proxy.balancer import Lease
from tests.ingress.routemodel import Headers, ask, backend, name, route, table, vhost

# --- hosts --------------------------------------------------------------------------------
from tests.ingress.test_http_timeouts import connect


def test_host_bytes_are_normalised_and_none_is_the_empty_host() -> None:
    assert normalize_host(b"Shop.Example.COM.:8080") == b"shop.example.com"
    assert normalize_host(b"[FE80::1]:443") == b"[fe80::1]"
    t = table(vhost(["a.test"], route("exact")), vhost([], route("any")))
    assert name(ask(t, "/", "A.TEST:81")) == "exact"
    assert name(ask(t, "/", None)) == "any"
    assert name(ask(t, "/", "")) == "any"


def test_label_wildcard_is_one_label_and_suffix_wildcard_any_number() -> None:
    t = table(
        vhost(["*.k8s.test"], route("label")),
        vhost(["*.gw.test"], route("suffix"), wildcard="suffix"),
        vhost(["*.deep.gw.test"], route("deeper"), wildcard="suffix"),
    )
    assert name(ask(t, "/", "a.k8s.test")) == "label"
    assert name(ask(t, "/", "a.b.k8s.test")) == "404"
    assert name(ask(t, "/", "k8s.test")) == "404"
    assert name(ask(t, "/", "a.gw.test")) == "suffix"
    assert name(ask(t, "/", "a.b.c.gw.test")) == "suffix"
    assert name(ask(t, "/", "gw.test")) == "404"
    # Gateway API: the longest matching hostname first
    assert name(ask(t, "/", "x.deep.gw.test")) == "deeper"


def test_less_specific_hosts_are_tried_when_no_route_of_the_specific_one_matches() -> None:
    t = table(
        vhost(["a.test"], route("exact", "/only", "Exact")),
        vhost(["*.test"], route("wild", "/w")),
        vhost([], route("any", "/")),
        default=route("default-backend"),
    )
    assert name(ask(t, "/only")) == "exact"
    assert name(ask(t, "/w/1")) == "wild"
    assert name(ask(t, "/x")) == "any"
    t2 = table(vhost(["a.test"], route("exact", "/only", "Exact")), default=route("fallback"))
    assert name(ask(t2, "/nope")) == "fallback"


def test_one_host_in_two_virtual_hosts_is_a_compile_error_not_a_crash() -> None:
    t = table(vhost(["a.test"], route("first")), vhost(["A.test"], route("second")))
    assert name(ask(t, "/")) == "first"
    assert t.errors == ["listener test: host A.test in two virtual hosts"]


# --- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "path"),
    [
        (b"/a/b?x=1", b"/a/b"),
        (b"/a?b/c", b"/a"),
        (b"http://h.test/p/q?z", b"/p/q"),
        (b"http://h.test", b"/"),
        (b"http://h.test?x/y", b"/"),
        (b"*", b"*"),
        (b"/%41b", b"/%41b"),  # not decoded
    ],
)
def test_request_path(target: bytes, path: bytes) -> None:
    assert request_path(target) == path


def test_the_query_is_not_part_of_the_path_and_nothing_is_decoded() -> None:
    t = table(vhost(["a.test"], route("exact", "/a", "Exact"), route("enc", "/%41")))
    assert name(ask(t, "/a?x=/b")) == "exact"
    assert name(ask(t, "/A")) == "404"
    assert name(ask(t, "/%41/b")) == "enc"
    assert name(ask(t, "http://a.test/a?q")) == "exact"


def test_regex_paths_are_searched_with_their_own_anchors_and_case_flag() -> None:
    t = table(
        vhost(
            ["a.test"],
            route("api", "^/api/v[0-9]+/", "Regex", ignore_case=True),
            route("img", r"\.png$", "Regex"),
            route("home", "/"),
        )
    )
    assert name(ask(t, "/api/v2/users")) == "api"
    assert name(ask(t, "/API/V2/users")) == "api"
    assert name(ask(t, "/x/api/v2/")) == "home"  # anchored at the start
    assert name(ask(t, "/static/logo.png?v=1")) == "img"  # unanchored start, $ at the end
    assert name(ask(t, "/static/logo.PNG")) == "home"  # case-sensitive without the flag


def test_a_regex_that_matches_every_path_is_known_as_such() -> None:
    """ingress-nginx's regex hosts often start with "^/" or "^/(.*)" (use-regex or
    rewrite-target on "/" or "/(.*)"): such a first route takes every path without its
    regex being run, and nothing else (the "*" of OPTIONS * goes on to the next host)."""
    rng = random.Random(3)
    alphabet = [b"/", b"a", b"A", b"%2F", b"?", b".", b"\r", b"\xff", b"\x00", b" ", b"$"]
    paths = [b"/" + b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9)))]
    for _ in range(300):
        paths.append(b"/" + bytes(rng.randrange(256) for _ in range(12)).replace(b"\n", b""))
    every = ["/", "/.*", "/(.*)", "^/", "^/.*", "^/(.*)", "^/(.*)$", "/.*$"]
    for pattern in every:
        assert matches_every_path(pattern)
        for ignore_case in (False, True):
            regex = re.compile(pattern.encode(), re.IGNORECASE if ignore_case else 0)
            assert all(regex.search(p) is not None for p in paths), pattern
    for pattern in ["^/a", "/(.+)", "^/(.*)/", "(.*)", "^(/.*)", "^/.?", "//"]:
        assert not matches_every_path(pattern), pattern
    for first in ("^/(.*)", "^/"):
        t = table(
            vhost(["a.test"], route("all", first, "Regex", ignore_case=True),
                  route("never", "^/a", "Regex", ignore_case=True)),
            vhost([], route("star", "^\\*$", "Regex")),
        )  # fmt: skip
        for target in ("/", "/a/b?c=1", "/%2Fx", "http://a.test/x?y", "http://a.test"):
            assert name(ask(t, target)) == "all", target
        assert name(ask(t, "*", method="OPTIONS")) == "star"


def test_route_order_is_the_tables_not_the_matchers() -> None:
    """A translator may put a short prefix first: then it wins, even over Exact."""
    kube = table(vhost(["a.test"], route("exact", "/a", "Exact"), route("root", "/")))
    assert name(ask(kube, "/a")) == "exact"
    other = table(vhost(["a.test"], route("root", "/"), route("exact", "/a", "Exact")))
    assert name(ask(other, "/a")) == "root"
    ex = other.explain(b"a.test", b"/a")
    assert [v.why for v in ex.verdicts] == [
        "",
        "matches too, but an earlier route of this virtual host comes first",
    ]


# --- conditions ----------------------------------------------------------------------------


def test_method_header_query_and_cookie_conditions_all_must_hold() -> None:
    t = table(
        vhost(
            ["a.test"],
            route(
                "all",
                "/x",
                method="POST",
                headers=[HeaderMatch("X-Env", "prod")],
                query=[QueryMatch("v", "2")],
                cookies=[CookieMatch("beta", "yes")],
            ),
            route("fallback", "/"),
        )
    )
    good = {"x-env": "prod", "cookie": "a=1; beta=yes"}
    assert name(ask(t, "/x?v=2", method="POST", headers=good)) == "all"
    assert name(ask(t, "/x?v=2", method="GET", headers=good)) == "fallback"
    assert name(ask(t, "/x?v=3", method="POST", headers=good)) == "fallback"
    assert name(ask(t, "/x?v=2", method="POST", headers={"x-env": "prod"})) == "fallback"
    bad = {"x-env": "dev", "cookie": "beta=yes"}
    assert name(ask(t, "/x?v=2", method="POST", headers=bad)) == "fallback"
    ex = t.explain(b"a.test", b"/x?v=2", b"POST", Headers(bad))
    assert ex.verdicts[0].why == "header X-Env is 'dev', which is not 'prod'"


def test_value_kinds_exact_regex_present_and_ignore_case() -> None:
    t = table(
        vhost(
            ["a.test"],
            route("exact-ci", "/e", headers=[HeaderMatch("h", "Yes", ignore_case=True)]),
            route("regex", "/r", headers=[HeaderMatch("h", "^v[0-9]+$", "Regex")]),
            route("present", "/p", headers=[HeaderMatch("h", kind="Present")]),
            route("fallback", "/"),
        )
    )
    assert name(ask(t, "/e", headers={"h": "YES"})) == "exact-ci"
    assert name(ask(t, "/e", headers={"h": "yes!"})) == "fallback"
    assert name(ask(t, "/r", headers={"h": "v12"})) == "regex"
    assert name(ask(t, "/r", headers={"h": "xv12"})) == "fallback"
    assert name(ask(t, "/p", headers={"h": ""})) == "present"
    assert name(ask(t, "/p")) == "fallback"


def test_query_values_are_first_occurrence_and_percent_decoded() -> None:
    assert query_value(b"/p?a=1&a=2&b=%2Fx", b"a") == b"1"
    assert query_value(b"/p?a=1&a=2&b=%2Fx", b"b") == b"/x"
    assert query_value(b"/p?%61=z", b"a") == b"z"
    assert query_value(b"/p?flag&x=1", b"flag") == b""
    assert query_value(b"/p", b"a") is None
    assert cookie_value(b"a=1;  b=two ; c", b"b") == b"two"
    assert cookie_value(b"c", b"c") is None
    assert cookie_value(None, b"a") is None


def test_headers_are_read_only_for_routes_that_match_on_them() -> None:
    t = table(
        vhost(["h.test"], route("canary", "/", headers=[HeaderMatch("x-canary", "always")])),
        vhost(["plain.test"], route("plain", "/a"), route("regex", "^/b", "Regex")),
    )
    assert t.uses_headers
    lookup = Headers({"x-canary": "always"})
    for target in ("/a/1", "/b", "/zzz"):
        t.match(b"plain.test", target.encode(), b"GET", lookup)
    assert lookup.calls == 0
    assert name(t.match(b"h.test", b"/", b"GET", lookup)) == "canary"
    assert lookup.calls == 1
    assert not table(vhost(["a.test"], route("x", "/x", method="GET"))).uses_headers


def test_redirect_and_fixed_response_answer_their_status() -> None:
    moved = Redirect(301, scheme="https")
    teapot = FixedResponse(418, b"short and stout", (("content-type", "text/plain"),))
    t = table(vhost(["a.test"], route(moved, "/old"), route(teapot, "/tea", "Exact")))
    r = ask(t, "/old/x")
    assert (r.status, r.action, r.endpoints, r.key) == (301, moved, (), "")
    f = ask(t, "/tea")
    assert f.status == 418 and f.action == teapot


def test_single_backend_results_carry_the_backend_directly() -> None:
    t = table(vhost(["a.test"], route("web", "/")))
    r = ask(t, "/")
    assert r.split is None and r.status == 0 and r.key == "default/web:80"
    assert r.cache is None
    _, _, proto = connect()
    state = r.cache = proto.ctx.route_state(r)  # a writable slot, kept on the shared result
    assert ask(t, "/x").cache is state
    assert r.pick(0.99) is r


def test_weighted_backends_split_exactly_by_weight() -> None:
    t = table(vhost(["a.test"], route([backend("v1", 70), backend("v2", 30), backend("v3", 0)])))
    r = ask(t, "/")
    assert r.split is not None and r.status == 0 and len(r.split) == 2  # weight 0 left out
    picks = [name(r.pick(i / 1000)) for i in range(1000)]
    assert (picks.count("v1"), picks.count("v2")) == (700, 300)
    for child in r.split:
        assert child.split is None and child.route is r.route and child.source == r.source


def test_pick_weighted_edges() -> None:
    assert pick_weighted((3, 4), 0.0) == 0
    assert pick_weighted((3, 4), 0.7499) == 0
    assert pick_weighted((3, 4), 0.75) == 1
    assert pick_weighted((1,), 0.999) == 0


def test_all_weights_zero_or_no_backend_is_500_and_one_usable_is_no_split() -> None:
    zero = table(vhost(["a.test"], route([backend("a", 0), backend("b", 0)])))
    assert ask(zero, "/").status == 500
    none = table(vhost(["a.test"], route(Forward(()))))
    assert ask(none, "/").status == 500
    one = ask(table(vhost(["a.test"], route([backend("a", 0), backend("b", 5)]))), "/")
    assert one.split is None and name(one) == "b"


def test_an_unusable_backend_answers_its_own_status_when_picked() -> None:
    t = table(vhost(["a.test"], route([backend("ok", 1), backend("gone", 1, status=500)])))
    r = ask(t, "/")
    assert [c.status for c in r.split or ()] == [0, 500]
    assert r.pick(0.9).status == 500


def test_filters_of_the_route_then_of_the_chosen_backend() -> None:
    rewrite = Rewrite(RegexReplace("^/api/(.*)", "/$1"))
    per_backend = BodyLimit(1024)
    b = backend("v2", 1)
    b2 = type(b)(b.key, b.endpoints, b.service, 0, "", 1, (per_backend,))
    t = table(vhost(["a.test"], route([backend("v1"), b2], "/api", filters=(rewrite, Timeouts(1)))))
    r = ask(t, "/api/x")
    assert r.filters == (rewrite, Timeouts(1))
    assert [c.filters for c in r.split or ()] == [
        (rewrite, Timeouts(1)),
        (rewrite, Timeouts(1), per_backend),
    ]
    assert ask(table(vhost(["a.test"], route("plain"))), "/").filters == ()


# --- sources, defaults, compile --------------------------------------------------------------


def test_every_result_says_where_it_came_from() -> None:
    t = table(vhost(["a.test"], route("web", "/", rule=3, match=1)))
    r = ask(t, "/")
    assert r.origin is not None
    assert (r.origin.kind, r.origin.namespace, r.origin.name) == ("HTTPRoute", "default", "r")
    assert (r.origin.rule, r.origin.match) == (3, 1)
    assert r.source == "HTTPRoute default/r: spec.rules[3].matches[1]"
    nf = ask(t, "/", "elsewhere.test")
    assert (nf.status, nf.origin, nf.source) == (404, None, NOT_FOUND_SOURCE)


def test_a_bad_regex_skips_its_route_and_is_reported() -> None:
    bad = route("bad", "^/(unclosed", "Regex")
    assert route_problem(bad).startswith("invalid regular expression")
    assert route_problem(route("good", "^/ok", "Regex")) == ""
    t = table(vhost(["a.test"], bad, route("good", "/")))
    assert name(ask(t, "/unclosed")) == "good"
    assert len(t.errors) == 1 and "invalid regular expression" in t.errors[0]


def test_empty_table_answers_404_and_iterates_its_results() -> None:
    t = compile_table(RouteTable())
    r = t.match(b"a.test", b"/", b"GET", no_header)
    assert r.status == 404 and list(t) == [r]
    t2 = table(vhost(["a.test"], route([backend("a"), backend("b")]), route("c", "/c")))
    assert len(list(t2)) == 1 + 2 + 1 + 1  # split route, its 2 backends, /c, the 404


def test_listeners_are_compiled_by_name() -> None:
    t = compile_table(RouteTable((Listener("one", (vhost([], route("first")),)), Listener("two"))))
    assert name(t.match(None, b"/", b"GET", no_header)) == "first"
    two = t.listener("two")
    assert two is not None and two.match(None, b"/", b"GET", no_header).status == 404
    assert t.listener("three") is None


# --- the hot path's entry: ProxyContext.route ---------------------------------------------------


class _Loop:
    def time(self) -> float:
        return 0.0


def _request(host: bytes, url: bytes, lines: list[bytes]) -> RequestState:
    head = b"GET " + url + b" HTTP/1.1\r\n" + b"".join(lines) + b"\r\n"
    req = parse_request(head, HttpSettings())
    assert req.host == host and req.url == url
    return req


def test_proxy_context_routes_on_bytes_and_picks_weighted_backends() -> None:
    t = table(
        vhost(["a.test"], route("canary", "/", headers=[HeaderMatch("x-canary", "always")])),
        vhost(["b.test"], route([backend("v1", 1), backend("v2", 1)])),
    )
    ctx = ProxyContext(_Loop(), HttpSettings(), t, outbox=Outbox(None))  # type: ignore[arg-type]
    yes = _request(b"a.test", b"/", [b"Host: a.test\r\nX-Canary: always\r\n"])
    assert name(ctx.route(yes)) == "canary"  # type: ignore[arg-type]
    no = _request(b"a.test", b"/", [b"Host: a.test\r\n"])
    assert ctx.route(no).status == 404
    seen = {ctx.route(_request(b"b.test", b"/", [b"Host: b.test\r\n"])).key for _ in range(200)}
    assert seen == {"default/v1:80", "default/v2:80"}


def test_route_state_finds_each_leased_endpoints_pool_by_index() -> None:
    """RouteState.pool_of gives the pool PoolSet.get gives for the leased endpoint's
    address: by the lease's index while the balancer's endpoints stay, again after they
    change (a new generation: indexes move), and by address for a lease made by hand."""
    t = table(vhost(["a.test"], route(backend("web"))))
    ctx = ProxyContext(_Loop(), HttpSettings(), t, outbox=Outbox(None))  # type: ignore[arg-type]
    r = ask(t, "/")
    state = ctx.route_state(r)
    bal = state.balancer
    first = bal.endpoints
    more = (EndpointInfo("10.9.200.1", 8080), *first, EndpointInfo("10.9.200.2", 8080))
    for eps in (first, more, more[1:]):
        if bal.endpoints != eps:
            bal.update(eps)
        for _ in range(3 * len(eps)):
            lease = bal.lease(None, (), 0.0)
            assert lease is not None and lease.index >= 0
            ep = lease.endpoint
            assert state.pool_of(lease) is ctx.pools.get((ep.ip, ep.port))
            lease.end(None)
    by_hand = Lease(bal, more[2], 0.0)  # (index -1: looked up by address)
    assert state.pool_of(by_hand) is ctx.pools.get((more[2].ip, more[2].port))
    assert {p.key for p in ctx.pools.endpoints()} == {(e.ip, e.port) for e in more}
