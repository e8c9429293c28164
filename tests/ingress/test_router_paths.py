"""Every row of the Kubernetes documentation's Ingress examples tables.

Source: https://kubernetes.io/docs/concepts/services-networking/ingress/#examples (path
types) and #hostname-wildcards. Each configured path routes to its own service so the
test checks WHICH path matched; a row that says "No" must fall to the default backend.
"""

from __future__ import annotations

import pytest

from discovery.model import PathType
from ingress.paths import PathMatcher
from tests.ingress import routerkit as k

DEFAULT = "default-backend"


def svc_name(path: str, path_type: str) -> str:
    return f"{path_type.lower()}{path.replace('/', '-')}"


def build(paths: list[tuple[str, PathType]], host: str = "") -> k.Routed:
    ing = k.ingress(
        "paths",
        k.rule(host, *(k.path(p, svc_name(p, t), t) for p, t in paths)),
        default=k.backend(DEFAULT),
    )
    names = [svc_name(p, t) for p, t in paths] + [DEFAULT]
    return k.routed(k.snapshot([ing], k.services(*names)))


def matched(router: k.Routed, request: str, host: str = "example.com") -> str:
    route = router.route(host, request)
    assert route.status == 0, route
    assert route.service is not None
    return route.service.name


# (kind of the configured paths, configured paths, request path, expected match or None)
P: PathType = "Prefix"
E: PathType = "Exact"
DOC_PATH_TABLE: list[tuple[list[tuple[str, PathType]], str, tuple[str, PathType] | None]] = [
    # Prefix | / | (all paths) | Yes
    ([("/", P)], "/", ("/", P)),
    ([("/", P)], "/foo", ("/", P)),
    ([("/", P)], "/foo/bar/", ("/", P)),
    ([("/", P)], "//x", ("/", P)),
    # Exact | /foo | /foo | Yes
    ([("/foo", E)], "/foo", ("/foo", E)),
    # Exact | /foo | /bar | No
    ([("/foo", E)], "/bar", None),
    # Exact | /foo | /foo/ | No
    ([("/foo", E)], "/foo/", None),
    # Exact | /foo/ | /foo | No
    ([("/foo/", E)], "/foo", None),
    # Prefix | /foo | /foo, /foo/ | Yes
    ([("/foo", P)], "/foo", ("/foo", P)),
    ([("/foo", P)], "/foo/", ("/foo", P)),
    # Prefix | /foo/ | /foo, /foo/ | Yes
    ([("/foo/", P)], "/foo", ("/foo/", P)),
    ([("/foo/", P)], "/foo/", ("/foo/", P)),
    # Prefix | /aaa/bb | /aaa/bbb | No
    ([("/aaa/bb", P)], "/aaa/bbb", None),
    # Prefix | /aaa/bbb | /aaa/bbb | Yes
    ([("/aaa/bbb", P)], "/aaa/bbb", ("/aaa/bbb", P)),
    # Prefix | /aaa/bbb/ | /aaa/bbb | Yes, ignores trailing slash
    ([("/aaa/bbb/", P)], "/aaa/bbb", ("/aaa/bbb/", P)),
    # Prefix | /aaa/bbb | /aaa/bbb/ | Yes, matches trailing slash
    ([("/aaa/bbb", P)], "/aaa/bbb/", ("/aaa/bbb", P)),
    # Prefix | /aaa/bbb | /aaa/bbb/ccc | Yes, matches subpath
    ([("/aaa/bbb", P)], "/aaa/bbb/ccc", ("/aaa/bbb", P)),
    # Prefix | /aaa/bbb | /aaa/bbbxyz | No, does not match string prefix
    ([("/aaa/bbb", P)], "/aaa/bbbxyz", None),
    # Prefix | /, /aaa | /aaa/ccc | Yes, matches /aaa prefix
    ([("/", P), ("/aaa", P)], "/aaa/ccc", ("/aaa", P)),
    # Prefix | /, /aaa, /aaa/bbb | /aaa/bbb | Yes, matches /aaa/bbb prefix
    ([("/", P), ("/aaa", P), ("/aaa/bbb", P)], "/aaa/bbb", ("/aaa/bbb", P)),
    # Prefix | /, /aaa, /aaa/bbb | /ccc | Yes, matches / prefix
    ([("/", P), ("/aaa", P), ("/aaa/bbb", P)], "/ccc", ("/", P)),
    # Prefix | /aaa | /ccc | No, uses default backend
    ([("/aaa", P)], "/ccc", None),
    # Mixed | /foo (Prefix), /foo (Exact) | /foo | Yes, prefers Exact
    ([("/foo", P), ("/foo", E)], "/foo", ("/foo", E)),
    ([("/foo", E), ("/foo", P)], "/foo", ("/foo", E)),
]


def _ids() -> list[str]:
    return [f"{'+'.join(f'{t}:{p}' for p, t in paths)}<-{req}" for paths, req, _ in DOC_PATH_TABLE]


@pytest.mark.parametrize(("paths", "request_path", "expected"), DOC_PATH_TABLE, ids=_ids())
def test_documented_path_examples(
    paths: list[tuple[str, PathType]], request_path: str, expected: tuple[str, PathType] | None
) -> None:
    router = build(paths)
    want = DEFAULT if expected is None else svc_name(*expected)
    assert matched(router, request_path) == want


@pytest.mark.parametrize(
    ("paths", "request_path", "expected"),
    [row for row in DOC_PATH_TABLE if all(t == "Prefix" for _, t in row[0])],
)
def test_implementation_specific_behaves_as_prefix(
    paths: list[tuple[str, PathType]], request_path: str, expected: tuple[str, PathType] | None
) -> None:
    impl: list[tuple[str, PathType]] = [(p, "ImplementationSpecific") for p, _ in paths]
    router = build(impl)
    want = DEFAULT if expected is None else svc_name(expected[0], "ImplementationSpecific")
    assert matched(router, request_path) == want


@pytest.mark.parametrize(
    ("rule_host", "host_header", "matches"),
    [
        ("*.foo.com", "bar.foo.com", True),  # Matches based on shared suffix
        ("*.foo.com", "baz.bar.foo.com", False),  # No match, wildcard covers a single label
        ("*.foo.com", "foo.com", False),  # No match, wildcard covers a single label
    ],
)
def test_documented_wildcard_examples(rule_host: str, host_header: str, matches: bool) -> None:
    router = build([("/", P)], host=rule_host)
    assert matched(router, "/", host=host_header) == (svc_name("/", P) if matches else DEFAULT)


@pytest.mark.parametrize(
    ("request_path", "expected"),
    [
        ("/aaa", "/aaa"),
        ("/aaa//bbb", "/aaa"),  # an empty element is still an element
        ("/aaaa", "/"),
        ("/AAA", "/"),  # case-sensitive
        ("/aaa/bbb/ccc/ddd/eee", "/aaa/bbb/ccc"),
        ("/aaa/bbb/cc", "/aaa/bbb"),
        ("/aaa/bbb/ccc/", "/aaa/bbb/ccc"),
        ("/aaa/bbb/ccc//", "/aaa/bbb/ccc"),
        ("", "/"),
        ("*", "/"),
    ],
)
def test_matcher_walks_elements_longest_first(request_path: str, expected: str) -> None:
    m: PathMatcher[str] = PathMatcher()
    for p in ("/", "/aaa", "/aaa/bbb", "/aaa/bbb/ccc"):
        assert m.add(p.encode(), "Prefix", p) is None
    assert m.match(request_path.encode()) == expected


def test_matcher_without_root_prefix_can_miss() -> None:
    m: PathMatcher[str] = PathMatcher()
    m.add(b"/api", "Prefix", "api")
    m.add(b"/api/v1/health", "Exact", "health")
    assert m.match(b"/api/v1/health") == "health"
    assert m.match(b"/api/v1/health/") == "api"
    assert m.match(b"/api/v1/Health") == "api"
    assert m.match(b"/apiv1") is None
    assert m.match(b"/") is None
    assert m.match(b"") is None


def test_matcher_reports_equivalent_prefix_as_conflict() -> None:
    m: PathMatcher[str] = PathMatcher()
    assert m.add(b"/foo", "Prefix", "first") is None
    assert m.add(b"/foo/", "Prefix", "second") == "first"
    assert m.add(b"/foo", "ImplementationSpecific", "third") == "first"
    assert m.add(b"/foo", "Exact", "exact") is None
    assert m.add(b"/foo", "Exact", "again") == "exact"
    assert m.add(b"/foo/", "Exact", "slash") is None  # Exact /foo/ is a different path
    assert len(m) == 3
    assert m.match(b"/foo/x") == "first"
    assert m.match(b"/foo/") == "slash"
