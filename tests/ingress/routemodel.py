"""Builders for route model tests: Backends, Routes and RouteTables made by hand, the
way a translator makes them, and `ask()` to route a request through the compiled table.

`gateway_sorted` orders routes by Gateway API's match precedence (what the HTTPRoute
translator will do): it shows the precedence is representable as an explicit order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from discovery.snapshot import EndpointInfo, ServicePortName
from ingress.route_filters import Filter
from ingress.route_match import CompiledTable, RouteResult, compile_table
from ingress.routes import (
    Action,
    Backend,
    CookieMatch,
    Forward,
    HeaderMatch,
    Listener,
    PathKind,
    PathMatch,
    QueryMatch,
    Route,
    RouteMatch,
    RouteSource,
    RouteTable,
    VirtualHost,
    WildcardMode,
)

_ip = iter(range(1, 1_000_000))


def backend(name: str, weight: int = 1, ns: str = "default", status: int = 0) -> Backend:
    """A usable backend named after a Service (one endpoint), or one with `status`."""
    spn = ServicePortName(ns, name, "http", "TCP")
    n = next(_ip)
    eps = (EndpointInfo(f"10.9.{n // 250}.{n % 250}", 8080),) if not status else ()
    return Backend(f"{ns}/{name}:80", eps, spn, status, "unusable" if status else "", weight)


def route(
    to: str | Backend | Action | Sequence[Backend],
    path: str = "/",
    kind: PathKind = "Prefix",
    *,
    method: str = "",
    headers: Iterable[HeaderMatch] = (),
    query: Iterable[QueryMatch] = (),
    cookies: Iterable[CookieMatch] = (),
    filters: tuple[Filter, ...] = (),
    ignore_case: bool = False,
    rule: int = 0,
    match: int = 0,
    kind_of_source: str = "HTTPRoute",
) -> Route:
    """A Route; `to` is a Service name, a Backend, several weighted Backends or an action."""
    if isinstance(to, str):
        action: Action = Forward((backend(to),))
    elif isinstance(to, Backend):
        action = Forward((to,))
    elif isinstance(to, Sequence):
        action = Forward(tuple(to))
    else:
        action = to
    match_ = RouteMatch(
        PathMatch(kind, path, ignore_case), method, tuple(headers), tuple(query), tuple(cookies)
    )
    text = f"spec.rules[{rule}].matches[{match}]"
    source = RouteSource(kind_of_source, "default", "r", rule, match, text)
    return Route(match_, action, source, filters)


def vhost(names: Sequence[str], *routes: Route, wildcard: WildcardMode = "label") -> VirtualHost:
    return VirtualHost(tuple(names), tuple(routes), wildcard)


def table(*vhosts: VirtualHost, default: Route | None = None) -> CompiledTable:
    return compile_table(RouteTable((Listener("test", tuple(vhosts), default),), 7))


class Headers:
    """A `header` callable over a dict that counts its calls."""

    def __init__(self, fields: dict[str, str] | None = None) -> None:
        self.fields = {k.lower().encode(): v.encode() for k, v in (fields or {}).items()}
        self.calls = 0

    def __call__(self, name: bytes) -> bytes | None:
        self.calls += 1
        return self.fields.get(name)


def ask(
    compiled: CompiledTable,
    target: str,
    host: str | None = "a.test",
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> RouteResult:
    """Route a request; the result's identity is checked against explain() too."""
    raw_host = host.encode() if host is not None else None
    lookup = Headers(headers)
    found = compiled.match(raw_host, target.encode(), method.encode(), lookup)
    explained = compiled.explain(raw_host, target.encode(), method.encode(), Headers(headers))
    assert explained.result is found, (explained, found)
    return found


def name(result: RouteResult) -> str:
    """The Service a forwarding result goes to, else "<status>"."""
    if result.status == 0 and result.service is not None:
        return result.service.name
    return str(result.status)


def gateway_sorted(routes: Iterable[Route]) -> list[Route]:
    """Routes in Gateway API precedence: Exact path, then RegularExpression, then the
    longest PathPrefix; then a method match; then more header matches; then more query
    matches; then (ties) the order given (oldest route, namespace/name, rule, match)."""

    def key(item: tuple[int, Route]) -> tuple[int, int, int, int, int, int]:
        index, r = item
        m = r.match
        kind = {"Exact": 0, "Regex": 1, "Prefix": 2}[m.path.kind]
        length = -len(m.path.value.rstrip("/")) if m.path.kind == "Prefix" else 0
        return (kind, length, 0 if m.method else 1, -len(m.headers), -len(m.query), index)

    return [r for _, r in sorted(enumerate(routes), key=key)]
