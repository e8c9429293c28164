"""Compile a RouteTable (ingress/routes.py) for one worker, and match requests on bytes.

Entry point, per request (ProxyContext.route calls it)::

    table = compile_table(route_table)
    result = table.match(host, target, method, header)

``host``: the Host header as received (bytes, or None when absent); ``target``: the
request target as received (origin-form "/p?q", or absolute-form, or "*"); ``method``:
b"GET"...; ``header``: lower-case name -> first value or None, called only for routes
that have header or cookie conditions (pass ``no_header`` when
``table.uses_headers`` is false). The answer is a RouteResult built at compile time and
shared by every request it wins: no allocation, no decoding.

What a lookup costs, for the semantics documented in ingress/routes.py:

- the query is split off once; an absolute-form target is reduced to its path;
- Host: one dict lookup of the raw bytes (exact host names are stored normalised, so a
  Host header already in that form hits directly); else its normal form (a bounded cache
  maps raw Host bytes to it), then one lookup per wildcard candidate suffix;
- TLS passthrough (before any of this, on a ClientHello's SNI name): ``passthrough``, an
  SniRouter (ingress/sni_match.py) of RouteResults, None when the listener has no
  passthrough host;
- paths: a virtual host whose routes are plain Exact/Prefix paths in Kubernetes order is
  a PathMatcher (ingress/paths.py): one dict lookup for Exact, one per "/"-element for
  Prefix. Any other virtual host (regex paths, methods, headers, query, cookies, or
  another order) gets an index of the same shape whose entries are candidate lists in
  route order; only candidates whose path matches are tested further, and regex routes
  are searched in order, stopping at the first index past the best match so far. Both
  answer exactly as a first-match scan of the routes in order would. A virtual host of
  regex paths alone (ingress-nginx's use-regex) is that scan: each regex in order.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Final

from discovery.model import DEFAULT_LOAD_BALANCING, LoadBalancing
from discovery.snapshot import EndpointInfo, ServicePortName
from ingress import headscan
from ingress.paths import PathMatcher, element_prefixes, prefix_key
from ingress.route_conditions import Conditions, HeaderLookup, compile_pattern, no_header
from ingress.route_filters import Filter
from ingress.routes import (
    Action,
    Backend,
    FixedResponse,
    Forward,
    Listener,
    Route,
    RouteSource,
    RouteTable,
    VirtualHost,
)
from ingress.sni_match import SniRouter

# (compiled, a Final is read from a C static: an imported name costs a dict lookup per call)
_BEFORE_QUERY: Final[Callable[[bytes], bytes]] = headscan.before_query

if TYPE_CHECKING:
    from ingress.context import RoutePlanLike, RouteState

__all__ = [
    "HOST_CACHE_SIZE",
    "LAST_REGEX",
    "NOT_FOUND_SOURCE",
    "CompiledTable",
    "Explanation",
    "ListenerMatcher",
    "RegexHit",
    "RouteResult",
    "Verdict",
    "compile_table",
    "no_header",
    "normalize_host",
    "pick_weighted",
    "request_path",
    "route_problem",
]

# raw Host headers remembered with the virtual hosts they try, per listener
HOST_CACHE_SIZE: Final = 1024
NOT_FOUND_SOURCE: Final = "no matching rule and no default backend"



class RegexHit:
    """The match of the regex path that won the last request routed by one (see
    ``LAST_REGEX``): a route's rewrite (ingress/filters/rewrite.py), which runs right
    after routing and mostly has the route's own path as its pattern (ingress-nginx's
    rewrite-target), takes its captures from here instead of searching the path again.
    A reader checks that the match is of its pattern and of this request's path."""

    __slots__ = ("found",)

    def __init__(self) -> None:
        self.found: re.Match[bytes] | None = None


LAST_REGEX: Final = RegexHit()  # (a worker routes one request at a time)


def normalize_host(host: bytes) -> bytes:
    """Host header -> host name form: lower case, no port, no trailing dot.

    IPv6 literals keep their brackets: b"[::1]:8080" -> b"[::1]".
    """
    if host[:1] == b"[":
        end = host.find(b"]")
        if end > 0:
            host = host[: end + 1]
    else:
        colon = host.find(b":")
        if colon >= 0 and host.find(b":", colon + 1) < 0:
            host = host[:colon]
    host = host.lower()
    return host[:-1] if host[-1:] == b"." else host


def request_path(target: bytes) -> bytes:
    """The path of a request target: query cut off; absolute-form reduced to its path."""
    path = _BEFORE_QUERY(target)
    if path[:1] != b"/":
        scheme = path.find(b"://")
        if scheme > 0:
            slash = path.find(b"/", scheme + 3)
            path = path[slash:] if slash > 0 else b"/"
    return path


def pick_weighted(cumulative: tuple[int, ...], value: float) -> int:
    """Index of the weighted choice for a uniform `value` in [0, 1): `cumulative` holds
    the running sums of the weights (weights 3, 1 -> (3, 4): 0 for value < 0.75)."""
    return bisect_right(cumulative, value * cumulative[-1])


class RouteResult:
    """What the proxy does with a request; one per Route (and per backend of a weighted
    Forward), made at compile time.

    ``status``: 0 forwards to ``endpoints`` (balanced under ``key`` by ``balancing``, the
    Service's choice), anything else is the status to answer: a Redirect's or
    FixedResponse's (see ``action``), 404 when nothing matched, 503/500 for an unusable
    backend. ``split`` is set on a Forward to several weighted backends: call
    ``pick(random_value)`` for the RouteResult of one backend (ProxyContext.route does).
    ``filters``: the route's filters, then the chosen backend's. ``cache`` is the hot
    path's own per-worker slot (balancer, pool), None until it sets it; ``plan`` the
    compiled filters and action (ingress/filters/), None for a result that only forwards
    or answers a bare status. ``source`` says readably where the route came from,
    ``origin`` is the RouteSource (None for the built-in 404).
    """

    __slots__ = (
        "action",
        "backend",
        "balancing",
        "cache",
        "cumulative",
        "endpoints",
        "filters",
        "key",
        "origin",
        "plan",
        "repeatable",
        "route",
        "service",
        "source",
        "split",
        "status",
    )

    def __init__(
        self,
        status: int,
        action: Action,
        source: str,
        route: Route | None = None,
        backend: Backend | None = None,
        filters: tuple[Filter, ...] = (),
        split: tuple[RouteResult, ...] | None = None,
        repeatable: bool = True,
    ) -> None:
        self.status = status
        # False for a backend picked at random from a weighted split: the same request
        # may go elsewhere next time, so per-connection memos must route it again.
        self.repeatable = repeatable
        self.action = action
        self.route = route
        self.origin: RouteSource | None = route.source if route is not None else None
        self.source = source
        self.backend = backend
        self.endpoints: tuple[EndpointInfo, ...] = backend.endpoints if backend else ()
        self.key = backend.key if backend else ""
        self.service: ServicePortName | None = backend.service if backend else None
        self.balancing: LoadBalancing = backend.balancing if backend else DEFAULT_LOAD_BALANCING
        self.filters = filters
        self.split = split
        self.cumulative: tuple[int, ...] = ()
        if split is not None:
            weights = (r.backend.weight if r.backend else 0 for r in split)
            self.cumulative = tuple(accumulate(weights))
        self.cache: RouteState | None = None  # the hot path's per-worker state
        self.plan: RoutePlanLike | None = None  # compiled filters, per worker (ingress/filters/)

    def pick(self, value: float) -> RouteResult:
        """The backend's RouteResult for a uniform `value` in [0, 1), by weight; self when
        there is no split."""
        split = self.split
        if split is None:
            return self
        return split[pick_weighted(self.cumulative, value)]

    def __repr__(self) -> str:
        return (
            f"RouteResult(status={self.status}, key={self.key!r}, "
            f"endpoints={len(self.endpoints)}, source={self.source!r})"
        )


def _backend_result(route: Route, backend: Backend, repeatable: bool = True) -> RouteResult:
    return RouteResult(
        backend.status,
        route.action,
        str(route.source),
        route,
        backend,
        route.filters + backend.filters,
        repeatable=repeatable,
    )


def _route_result(route: Route) -> RouteResult:
    action = route.action
    if not isinstance(action, Forward):
        return RouteResult(action.status, action, str(route.source), route, None, route.filters)
    usable = [b for b in action.backends if b.weight > 0]
    if len(usable) == 1:
        return _backend_result(route, usable[0])
    if not usable:  # Gateway API: no backend, or every weight 0: 500
        return RouteResult(500, action, str(route.source), route, None, route.filters)
    split = tuple(_backend_result(route, b, repeatable=False) for b in usable)
    return RouteResult(0, action, str(route.source), route, None, route.filters, split)


def route_problem(route: Route) -> str:
    """Why the compiler would skip `route` ("" when it is fine): for translators, to
    report a bad pattern on the object instead of losing the route silently."""
    try:
        _Candidate(0, route, None)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    return ""


class _Candidate:
    """One route of a virtual host, compiled: its path test, other conditions, result."""

    __slots__ = ("cond", "index", "key", "kind", "regex", "result")

    def __init__(self, index: int, route: Route, result: RouteResult | None) -> None:
        path = route.match.path
        self.index = index
        self.kind = path.kind
        raw = path.value.encode()
        self.key = prefix_key(raw or b"/") if path.kind == "Prefix" else raw
        self.regex = compile_pattern(path.value, path.ignore_case) if path.kind == "Regex" else None
        self.cond = Conditions.of(route.match)
        self.result = result

    def path_matches(self, path: bytes) -> bool:
        if self.kind == "Exact":
            return path == self.key
        if self.regex is not None:
            return self.regex.search(path) is not None
        key = self.key
        return not key or (path.startswith(key) and path[len(key) : len(key) + 1] in (b"", b"/"))

    def why_not(self, path: bytes, target: bytes, method: bytes, header: HeaderLookup) -> str:
        """ "" when this route matches the request, else why not."""
        if not self.path_matches(path):
            shown = self.key.decode() if self.kind != "Prefix" else (self.key or b"/").decode()
            return f"path {path.decode('latin-1')} does not match {self.kind} {shown}"
        if self.cond is None:
            return ""
        return self.cond.why_not(target, method, header)


def _layers_ascend(cands: list[_Candidate]) -> bool:
    """Whether the lookup order (Exact, then Prefix from the longest key, then Regex) meets
    the candidates in ascending route order, so the first hit is the answer."""
    by_length: dict[int, list[int]] = {}
    for c in cands:
        if c.kind == "Prefix":
            by_length.setdefault(len(c.key), []).append(c.index)
    layers = [
        [c.index for c in cands if c.kind == "Exact"],
        *(by_length[n] for n in sorted(by_length, reverse=True)),
        [c.index for c in cands if c.kind == "Regex"],
    ]
    highest = -1
    for layer in layers:
        if layer:
            if min(layer) < highest:
                return False
            highest = max(layer)
    return True


class Finder:
    """What answers for one virtual host: `find` gives the RouteResult of a request's
    path (None: no route of the host matches). A base class, so compiled, the matcher
    calls each host's finder directly rather than a bound method by name."""

    __slots__ = ()

    def find(
        self, path: bytes, target: bytes, method: bytes, header: HeaderLookup
    ) -> RouteResult | None:
        raise NotImplementedError


class _Paths(Finder):
    """The finder of a virtual host of plain Exact and Prefix paths (a PathMatcher)."""

    __slots__ = ("paths",)

    def __init__(self, paths: PathMatcher[RouteResult]) -> None:
        self.paths = paths

    def find(
        self, path: bytes, target: bytes, method: bytes, header: HeaderLookup
    ) -> RouteResult | None:
        return self.paths.match(path)


class _RouteIndex(Finder):
    """A virtual host's routes that a PathMatcher cannot answer for (see module doc)."""

    __slots__ = ("_ascending", "_exact", "_prefix", "_scan", "_sizes")

    def __init__(self, cands: list[_Candidate]) -> None:
        self._exact: dict[bytes, list[_Candidate]] = {}
        self._prefix: dict[bytes, list[_Candidate]] = {}
        for c in cands:
            if c.kind != "Regex":
                table = self._exact if c.kind == "Exact" else self._prefix
                table.setdefault(c.key, []).append(c)
        self._sizes = tuple(sorted({len(k) for k in self._prefix}, reverse=True))
        self._scan = [c for c in cands if c.kind == "Regex"]
        self._ascending = _layers_ascend(cands)

    def find(
        self, path: bytes, target: bytes, method: bytes, header: HeaderLookup
    ) -> RouteResult | None:
        best: _Candidate | None = None
        ascending = self._ascending
        group = self._exact.get(path)
        if group is not None:
            for c in group:
                if c.cond is None or c.cond.holds(target, method, header):
                    best = c
                    break
            if best is not None and ascending:
                return best.result
        if self._prefix:
            for key in element_prefixes(path, self._sizes):
                group = self._prefix.get(key)
                if group is None:
                    continue
                for c in group:
                    if best is not None and c.index > best.index:
                        break
                    if c.cond is None or c.cond.holds(target, method, header):
                        best = c
                        break
                if best is not None and ascending:
                    return best.result
        for c in self._scan:
            if best is not None and c.index > best.index:
                break
            regex = c.regex
            if regex is None:
                continue
            found = regex.search(path)
            if found is not None and (c.cond is None or c.cond.holds(target, method, header)):
                LAST_REGEX.found = found
                best = c
                break
        return best.result if best is not None else None


class _Always(Finder):
    """The finder of a virtual host whose first route matches every request."""

    __slots__ = ("result",)

    def __init__(self, result: RouteResult) -> None:
        self.result = result

    def find(
        self, path: bytes, target: bytes, method: bytes, header: HeaderLookup
    ) -> RouteResult | None:
        return self.result


# Path regexes that match every path ("/" and what follows: "." takes any byte of a path
# but LF, which none has), with or without a "^": ingress-nginx's "/" and "/(.*)" paths
# of a regex host.
_EVERY_PATH: Final = frozenset({"/", "/.*", "/(.*)", "/.*$", "/(.*)$"})


def matches_every_path(regex: str) -> bool:
    """Whether a path regex matches every path (one that starts with "/")."""
    return (regex[1:] if regex.startswith("^") else regex) in _EVERY_PATH


class _Slash(_Always):
    """The finder of a virtual host whose first route's regex matches every path (see
    _EVERY_PATH): no regex to run; only a target that is not a path ("*") goes on."""

    __slots__ = ()

    def find(
        self, path: bytes, target: bytes, method: bytes, header: HeaderLookup
    ) -> RouteResult | None:
        return self.result if path.startswith(b"/") else None


class _Regexes(Finder):
    """The finder of a virtual host whose routes are all regexes without other conditions
    (an ingress-nginx host with use-regex or rewrite-target): the first that matches."""

    __slots__ = ("_tests",)

    def __init__(self, cands: list[_Candidate]) -> None:
        self._tests = tuple((c.regex.search, c.result) for c in cands if c.regex is not None)

    def find(
        self, path: bytes, target: bytes, method: bytes, header: HeaderLookup
    ) -> RouteResult | None:
        for search, result in self._tests:
            found = search(path)
            if found is not None:
                LAST_REGEX.found = found
                return result
        return None


class _VHost:
    """A compiled VirtualHost: its `finder` answers for it; `candidates` (route order)
    explain."""

    __slots__ = ("candidates", "finder", "label")

    def __init__(self, label: str, candidates: list[_Candidate]) -> None:
        self.label = label
        self.candidates = candidates
        plain = all(c.kind != "Regex" and c.cond is None for c in candidates)
        first = candidates[0] if candidates else None
        self.finder: Finder
        if first is not None and first.kind == "Prefix" and not first.key and first.cond is None:
            # Prefix / without conditions first: it answers every request (one backend
            # per host is common), and no later route is ever reached.
            assert first.result is not None
            self.finder = _Always(first.result)
        elif plain and _layers_ascend(candidates):
            paths: PathMatcher[RouteResult] = PathMatcher()
            for c in candidates:
                assert c.result is not None
                paths.add(c.key, c.kind, c.result)
            self.finder = _Paths(paths)
        elif all(c.kind == "Regex" and c.cond is None for c in candidates):
            assert first is not None
            if matches_every_path(first.key.decode()):
                assert first.result is not None
                self.finder = _Slash(first.result)
            else:
                self.finder = _Regexes(candidates)
        else:
            self.finder = _RouteIndex(candidates)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One route considered for a request: ``why`` is "" for the winner, else why it did
    not match or why it lost."""

    host: str  # the virtual host it belongs to: a host name, "*.x", or "*" (catch-all)
    result: RouteResult
    why: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """Every route a request was tried against, in order, and the answer."""

    host: bytes  # normalised
    path: bytes
    result: RouteResult
    verdicts: tuple[Verdict, ...]


class ListenerMatcher:
    """The compiled routes of one Listener."""

    __slots__ = (
        "_any",
        "_exact",
        "_host_cache",
        "_label",
        "_suffix",
        "default",
        "errors",
        "name",
        "passthrough",
        "results",
        "uses_headers",
    )

    def __init__(self, listener: Listener, not_found: RouteResult) -> None:
        self.name = listener.name
        # Whether some route reads request headers (a socket's router, see RouterLike).
        self.uses_headers = any(
            r.match.needs_headers for v in listener.virtual_hosts for r in v.routes
        )
        self.errors: list[str] = []
        self.results: list[RouteResult] = []
        self._exact: dict[bytes, _VHost] = {}
        self._label: dict[bytes, _VHost] = {}  # ".a.com" for "*.a.com", one label
        self._suffix: dict[bytes, _VHost] = {}  # ".a.com" for "*.a.com", any labels
        self._any: _VHost | None = None
        made: dict[int, RouteResult] = {}
        for vhost in listener.virtual_hosts:
            self._add_vhost(vhost, made)
        self.default = not_found
        if listener.default is not None:
            self.default = self._result(listener.default, made)
        # SNI name -> the result a TLS connection is relayed by; None: no passthrough host
        self.passthrough: SniRouter[RouteResult] | None = None
        if listener.passthrough:
            self.passthrough = SniRouter(
                self.name, listener.passthrough, lambda route: self._result(route, made)
            )
            self.errors += self.passthrough.errors
        # raw Host header -> the finders it tries (see _finders)
        self._host_cache: dict[bytes, tuple[Finder, ...]] = {}

    def _result(self, route: Route, made: dict[int, RouteResult]) -> RouteResult:
        result = made.get(id(route))
        if result is None:
            result = made[id(route)] = _route_result(route)
            self.results.append(result)
        return result

    def _add_vhost(self, vhost: VirtualHost, made: dict[int, RouteResult]) -> None:
        cands: list[_Candidate] = []
        for index, route in enumerate(vhost.routes):
            try:
                cand = _Candidate(index, route, None)
            except re.error as exc:
                self.errors.append(f"{route.source}: invalid regular expression: {exc}")
                continue
            cand.result = self._result(route, made)
            cands.append(cand)
        names = vhost.hostnames or ("*",)
        compiled = _VHost(", ".join(names), cands)
        if not vhost.hostnames:
            if self._any is not None:
                self.errors.append(f"listener {self.name}: a second catch-all virtual host")
                return
            self._any = compiled
        for name in vhost.hostnames:
            raw = name.lower().encode()
            if raw.startswith(b"*."):
                table = self._label if vhost.wildcard == "label" else self._suffix
                raw = raw[1:]
            else:
                table = self._exact
            if raw in table:
                self.errors.append(f"listener {self.name}: host {name} in two virtual hosts")
                continue
            table[raw] = compiled

    def match(
        self, host: bytes | None, target: bytes, method: bytes, header: HeaderLookup
    ) -> RouteResult:
        """The RouteResult for a request (see the module docstring)."""
        if host is None:
            host = b""
        finders = self._host_cache.get(host)
        if finders is None:
            finders = self._finders(host)
        path = _BEFORE_QUERY(target)
        if path[:1] != b"/":
            path = request_path(path)
        for finder in finders:
            found = finder.find(path, target, method, header)
            if found is not None:
                return found
        return self.default

    def _finders(self, host: bytes) -> tuple[Finder, ...]:
        """The finders of the virtual hosts a raw Host header tries, in order (its exact
        host, wildcards, the catch-all), remembered per raw Host (HOST_CACHE_SIZE)."""
        cache = self._host_cache
        if len(cache) >= HOST_CACHE_SIZE:
            cache.clear()
        finders = cache[host] = tuple(v.finder for v in self.chain(normalize_host(host)))
        return finders

    def chain(self, host: bytes) -> list[_VHost]:
        """The virtual hosts a request for `host` (normalised) tries, in order."""
        found = [self._exact[host]] if host in self._exact else []
        dot = host.find(b".")
        if dot > 0:
            if host[dot:] in self._label:
                found.append(self._label[host[dot:]])
            while dot > 0:
                if host[dot:] in self._suffix:
                    found.append(self._suffix[host[dot:]])
                dot = host.find(b".", dot + 1)
        if self._any is not None:
            found.append(self._any)
        return found

    def explain(
        self, host: bytes | None, target: bytes, method: bytes, header: HeaderLookup
    ) -> Explanation:
        """Every route tried for this request, in order, with why it won or lost."""
        normal = normalize_host(host or b"")
        path = request_path(target)
        winner: RouteResult | None = None
        won_in = ""
        verdicts: list[Verdict] = []
        for vhost in self.chain(normal):
            for c in vhost.candidates:
                assert c.result is not None
                why = c.why_not(path, target, method, header)
                if not why and winner is None:
                    winner, won_in = c.result, vhost.label
                elif not why:
                    why = (
                        "matches too, but an earlier route of this virtual host comes first"
                        if won_in == vhost.label
                        else f"matches too, but virtual host {won_in} is more specific"
                    )
                verdicts.append(Verdict(vhost.label, c.result, why))
        result = winner if winner is not None else self.default
        return Explanation(normal, path, result, tuple(verdicts))

    def __iter__(self) -> Iterator[RouteResult]:
        """Every RouteResult this listener can give (a split's backends too)."""
        for result in self.results:
            yield result
            yield from result.split or ()
        if self.default not in self.results:
            yield self.default


class CompiledTable:
    """A RouteTable compiled for one worker; read only. ``match`` routes on the first
    listener (the Ingress listener); ``listener(name)`` gives the others (each a router of
    its own: ``match`` and ``uses_headers``, for the sockets of Gateway listeners)."""

    __slots__ = ("_main", "errors", "generation", "listeners", "match", "table", "uses_headers")

    def __init__(self, table: RouteTable) -> None:
        self.table = table
        self.generation = table.generation
        not_found = RouteResult(404, FixedResponse(404), NOT_FOUND_SOURCE)
        self.listeners = {x.name: ListenerMatcher(x, not_found) for x in table.listeners}
        main = next(iter(self.listeners.values()), None)
        if main is None:
            main = ListenerMatcher(Listener(""), not_found)
        self._main = main
        self.match: Callable[[bytes | None, bytes, bytes, HeaderLookup], RouteResult]
        self.match = main.match
        self.errors = [e for x in self.listeners.values() for e in x.errors]
        self.uses_headers: bool = main.uses_headers

    def listener(self, name: str) -> ListenerMatcher | None:
        return self.listeners.get(name)

    def main(self) -> ListenerMatcher:
        """The listener ``match`` answers for."""
        return self._main

    def explain(
        self,
        host: bytes | None,
        target: bytes,
        method: bytes = b"GET",
        header: HeaderLookup = no_header,
    ) -> Explanation:
        return self.main().explain(host, target, method, header)

    def __iter__(self) -> Iterator[RouteResult]:
        """Every distinct RouteResult the table can give (for metrics and status pages)."""
        seen: set[int] = set()
        for result in self._all():
            if id(result) not in seen:
                seen.add(id(result))
                yield result

    def _all(self) -> Iterator[RouteResult]:
        if not self.listeners:
            yield self.main().default
        for listener in self.listeners.values():
            yield from listener


def compile_table(table: RouteTable) -> CompiledTable:
    """Compile `table` for this worker. Never raises on table content: a route the
    compiler cannot use (a bad regex) is skipped and named in ``errors``."""
    return CompiledTable(table)
