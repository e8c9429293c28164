"""The compiled matcher answers exactly as the model's semantics say (ingress/routes.py):
random tables (paths of every kind in random order, with method, header, query and cookie
conditions, over exact, wildcard and catch-all hosts) against an oracle written here from
the documented rules, a plain first-match scan. Seeded, so a failure replays."""

from __future__ import annotations

import random
import re
from urllib.parse import unquote_to_bytes

import pytest

from ingress.route_match import RouteResult
from ingress.routes import CookieMatch, HeaderMatch, PathKind, QueryMatch, Route, ValueMatch
from tests.ingress.routemodel import Headers, route, table, vhost

SEGMENTS = ["a", "b", "ab", "A", ""]
HOSTS = [None, "a.test", "A.TEST:8080", "b.test", "x.b.test", "x.y.b.test", "other"]


def random_path(rng: random.Random) -> str:
    path = "/" + "/".join(rng.choice(SEGMENTS) for _ in range(rng.randint(0, 3)))
    return path + "/" if rng.random() < 0.2 else path


def random_value(rng: random.Random, cls: type[ValueMatch], name: str) -> ValueMatch:
    kind = rng.choice(["Exact", "Exact", "Regex", "Present"])
    value = {"Exact": rng.choice(["1", "2", "x"]), "Regex": rng.choice(["^1", "2$", "[xy]"])}
    return cls(name, value.get(kind, ""), kind, ignore_case=rng.random() < 0.2)  # type: ignore[arg-type]


def random_route(rng: random.Random, n: int) -> Route:
    kind: PathKind = rng.choice(["Exact", "Prefix", "Prefix", "Regex"])
    path = random_path(rng)
    if kind == "Regex":
        path = rng.choice(["^", "", "^/a"]) + re.escape(path.rstrip("/")) + rng.choice(["", "$"])
    return route(
        f"svc{n}",
        path,
        kind,
        ignore_case=kind == "Regex" and rng.random() < 0.3,
        method=rng.choice(["", "", "", "GET", "POST"]),
        headers=[random_value(rng, HeaderMatch, "h")] if rng.random() < 0.25 else [],  # type: ignore[list-item]
        query=[random_value(rng, QueryMatch, "q")] if rng.random() < 0.2 else [],  # type: ignore[list-item]
        cookies=[random_value(rng, CookieMatch, "c")] if rng.random() < 0.1 else [],  # type: ignore[list-item]
    )


# --- the oracle: the documented semantics, written independently of route_match ------------


def path_holds(r: Route, path: bytes) -> bool:
    p = r.match.path
    value = p.value.encode()
    if p.kind == "Exact":
        return path == value
    if p.kind == "Regex":
        flags = re.IGNORECASE if p.ignore_case else 0
        return re.search(value, path, flags) is not None
    rule = value.rstrip(b"/").split(b"/")  # Kubernetes: element-wise prefix
    return rule == [b""] or path.split(b"/")[: len(rule)] == rule


def value_holds(m: ValueMatch, got: bytes | None) -> bool:
    if got is None:
        return False
    if m.kind == "Present":
        return True
    if m.kind == "Regex":
        return re.search(m.value.encode(), got, re.IGNORECASE if m.ignore_case else 0) is not None
    return got.lower() == m.value.encode().lower() if m.ignore_case else got == m.value.encode()


def first_param(query: bytes, name: bytes) -> bytes | None:
    for part in query.split(b"&"):
        key, _, value = part.partition(b"=")
        if unquote_to_bytes(key) == name:
            return unquote_to_bytes(value)
    return None


def holds(r: Route, path: bytes, query: bytes | None, method: bytes, hdrs: Headers) -> bool:
    m = r.match
    if not path_holds(r, path) or (m.method and m.method.encode() != method):
        return False
    if not all(value_holds(h, hdrs.fields.get(h.name.encode())) for h in m.headers):
        return False
    q = query if query is not None else None
    if not all(value_holds(x, first_param(q, b"q") if q is not None else None) for x in m.query):
        return False
    jar = dict(
        part.strip().split(b"=", 1)
        for part in hdrs.fields.get(b"cookie", b"").split(b";")
        if b"=" in part
    )
    return all(value_holds(c, jar.get(c.name.encode())) for c in m.cookies)


def oracle(
    vhosts: dict[str, list[Route]], host: str | None, target: str, method: str, hdrs: Headers
) -> Route | None:
    name = (host or "").lower().split(":")[0]
    chain = [name] if name in vhosts else []
    labels = name.split(".")
    if len(labels) >= 2 and "*." + ".".join(labels[1:]) == "*.b.test":
        chain.append("*.b.test")  # a "label" wildcard: exactly one more label
    chain.append("")
    raw, _, query = target.encode().partition(b"?")
    for key in chain:
        for r in vhosts.get(key, []):
            if holds(r, raw, query if b"?" in target.encode() else None, method.encode(), hdrs):
                return r
    return None


@pytest.mark.parametrize("seed", range(40))
def test_compiled_matcher_agrees_with_a_first_match_scan(seed: int) -> None:
    rng = random.Random(seed)
    n = iter(range(10_000))
    vhosts = {
        key: [random_route(rng, next(n)) for _ in range(rng.randint(0, 12))]
        for key in ("a.test", "*.b.test", "")
    }
    compiled = table(*(vhost([k] if k else [], *routes) for k, routes in vhosts.items()))
    assert compiled.errors == []
    results: dict[int, RouteResult] = {}
    for r in compiled:
        if r.route is not None:
            results[id(r.route)] = r
    for _ in range(300):
        host = rng.choice(HOSTS)
        target = random_path(rng)
        if rng.random() < 0.4:
            target += "?" + rng.choice(["q=1", "q=2&q=1", "x=1&q=x", "q=%31", "q"])
        method = rng.choice(["GET", "POST", "PUT"])
        fields = {}
        if rng.random() < 0.5:
            fields["h"] = rng.choice(["1", "2", "X", "y"])
        if rng.random() < 0.3:
            fields["cookie"] = rng.choice(["c=1", "a=b; c=x", "c=Y"])
        hdrs = Headers(fields)
        want = oracle(vhosts, host, target, method, hdrs)
        got = compiled.match(
            host.encode() if host is not None else None, target.encode(), method.encode(), hdrs
        )
        if want is None:
            assert got.status == 404 and got.route is None, (host, target, method, fields)
        else:
            assert got.route is want, (host, target, method, fields, got.source, want.source)
