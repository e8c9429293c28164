"""RoutePlan: a RouteResult's action and filters compiled for the hot path, and the checks
run when a request is routed (``admit``).

A plan is made once per RouteResult per worker (ingress/filters/runtime.py) and only
for results that need one: filters, or an action that answers with more than a bare
status (a Redirect, a FixedResponse with a body or headers). ingress/http1.py asks
``route.plan`` and, when it is None, does exactly what it did before plans existed.

``admit`` runs what nginx runs before content, in nginx's phase order whatever the
order of the filters in the tuple (ingress-nginx relies on it: a CORS preflight is
answered before authentication, a redirect before allow lists):

0. find-config: BodyLimit (413 for a declared length over the limit; a chunked body is
   counted as it comes);
1. rewrite phase: HttpsRedirect (plain-HTTP requests only), CORS preflight, the route's
   own answer (Redirect with its Location, FixedResponse, an unusable backend's status);
2. preaccess: RateLimit rates (per client address, ``exempt`` addresses skipped);
3. access: SourceRanges, BasicAuth (401 with WWW-Authenticate; a slow hash form not
   checked recently is checked in a thread before the request goes on), ExternalAuth
   (asked by the FilteredExchange before the request goes on);
4. the upstream head: Rewrite (target, Host, X-Forwarded-Prefix), RequestHeaders edits
   and copies (Authorization removed under BasicAuth).

What remains per request (CORS and response edits, the sticky cookie, external auth,
limits on requests under way, timeouts, tries, mirrors, error pages, TLS) is carried by
a FilteredRequest (ingress/filters/admission.py) made only for plans that need one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal

from ingress.context import RoutePlanLike
from ingress.filters.admission import LocalAnswer
from ingress.filters.affinity import StickyCookie
from ingress.filters.auth_basic import BasicAuthCheck
from ingress.filters.auth_external import ExternalAuthCheck
from ingress.filters.cors import PREFLIGHT_STATUS, CorsPolicy
from ingress.filters.exchange import FilteredExchange
from ingress.filters.headers import HeadEdit, replace_host
from ingress.filters.light import LightExchange
from ingress.filters.ranges import AddressSet, SourceFilter
from ingress.filters.ratelimit import ConcurrencyZone, RateZone
from ingress.filters.rewrite import TargetRewrite
from ingress.filters.upstream_tls import UpstreamTLS
from ingress.filters.variables import Template
from ingress.request import RequestState
from ingress.retry import RetryPolicy
from ingress.route_actions import (
    find_filter,
    forwarded_prefix,
    https_redirect_location,
    redirect_location,
)
from ingress.route_filters import (
    BasicAuth,
    BodyLimit,
    CookieAffinity,
    Cors,
    ErrorPages,
    ExternalAuth,
    Filter,
    HashBy,
    HttpsRedirect,
    Mirror,
    RateLimit,
    RequestHeaders,
    ResponseHeaders,
    Retry,
    Rewrite,
    SourceRanges,
    Timeouts,
    UpstreamProtocol,
)
from ingress.route_match import RouteResult, request_path
from ingress.routes import FixedResponse, PathMatch, Redirect

if TYPE_CHECKING:
    from ingress.filters.runtime import FilterRuntime
    from ingress.http1 import HttpProtocol

Header = tuple[bytes, bytes]

_PREFIX: Final = HeadEdit(remove=("x-forwarded-prefix",))


def needs_plan(result: RouteResult, filters: tuple[Filter, ...]) -> bool:
    """Whether `result` (with these effective `filters`) does more than forward or
    answer a bare status."""
    if filters:
        return True
    action = result.action
    if isinstance(action, Redirect):
        return True
    return (
        isinstance(action, FixedResponse)
        and result.status == action.status
        and (action.body is not None or bool(action.headers))
    )


def compile_plan(
    result: RouteResult, runtime: FilterRuntime, filters: tuple[Filter, ...] | None = None
) -> RoutePlan | None:
    """The plan of `result` with `filters` (default: its own), or None when it needs none
    (see ``needs_plan``)."""
    f = result.filters if filters is None else filters
    return RoutePlan(result, runtime, f) if needs_plan(result, f) else None


def _merged_timeouts(filters: tuple[Filter, ...]) -> Timeouts | None:
    """Every Timeouts filter folded into one (a later one's fields win where set)."""
    found = [f for f in filters if isinstance(f, Timeouts)]
    if not found:
        return None
    merged: dict[str, float | None] = {}
    for t in found:
        for name in ("connect", "read", "send", "request", "backend_request"):
            value = getattr(t, name)
            if value is not None:
                merged[name] = value
    return Timeouts(**merged)


class HeaderCopy:
    """RequestHeaders.copy: field ``name`` set to the request's ``source`` field."""

    __slots__ = ("name", "remove", "source")

    def __init__(self, name: str, source: str) -> None:
        self.name = name.encode()
        self.source = source.lower().encode()
        self.remove = HeadEdit(remove=(name,))

    def apply(self, head: bytes, req: RequestState) -> bytes:
        value = req.header(self.source)
        if value is None:
            return head
        return self.remove.apply(head, self.name + b": " + value + b"\r\n")


class RoutePlan(RoutePlanLike):
    __slots__ = (
        "always_auth_cookies",
        "basic",
        "body_limit",
        "checks",
        "concurrency",
        "connection_status",
        "copies",
        "cors",
        "edits_head",
        "edits_response",
        "error_pages",
        "exempt",
        "external",
        "fixed",
        "forwarded_prefix",
        "full",
        "hash_key",
        "hash_subset",
        "http_plain",
        "https_edits",
        "https_edits_all",
        "https_redirect",
        "idle_timeout",
        "matched",
        "mirrors",
        "per_request",
        "plain_pick",
        "rate_status",
        "rates",
        "read_timeout",
        "redirect",
        "repeatable",
        "request_edits",
        "response_edits",
        "result",
        "retry_policy",
        "rewrite",
        "runtime",
        "send_timeout",
        "sources",
        "sources_status",
        "status",
        "sticky",
        "timeouts",
        "tls",
        "tls_auto",
        "upstream_host",
    )

    def __init__(self, result: RouteResult, runtime: FilterRuntime, f: tuple[Filter, ...]) -> None:
        self.result = result
        self.runtime = runtime
        self.status = result.status
        action = result.action
        self.redirect = action if isinstance(action, Redirect) else None
        fixed = action if isinstance(action, FixedResponse) else None
        self.fixed = fixed if fixed is not None and fixed.status == result.status else None
        self.matched = result.route.match.path if result.route is not None else PathMatch()
        self.https_redirect = find_filter(f, HttpsRedirect)
        cors = find_filter(f, Cors)
        self.cors = CorsPolicy(cors) if cors is not None else None
        self._compile_limits(f, result, runtime)
        ranges = find_filter(f, SourceRanges)
        self.sources = SourceFilter(ranges.allow, ranges.deny) if ranges is not None else None
        self.sources_status = ranges.status if ranges is not None else 403
        basic = find_filter(f, BasicAuth)
        self.basic = BasicAuthCheck(basic.realm, basic.users) if basic is not None else None
        ext = find_filter(f, ExternalAuth)
        self.external = ExternalAuthCheck(ext) if ext is not None else None
        self.always_auth_cookies = ext is not None and ext.always_set_cookie
        body = find_filter(f, BodyLimit)
        self.body_limit = body.max_bytes if body is not None else 0
        rewrites = [r for r in f if isinstance(r, Rewrite)]
        paths = tuple(r.path for r in rewrites if r.path is not None)
        self.rewrite = TargetRewrite(paths, self.matched) if paths else None
        hosts = [r.hostname for r in rewrites if r.hostname]
        self.upstream_host = hosts[-1].encode() if hosts else None
        prefixed = [r for r in rewrites if r.forwarded_prefix is not None]
        self.forwarded_prefix = prefixed[-1] if prefixed else None
        headers = [e for e in f if isinstance(e, RequestHeaders)]
        edits = [HeadEdit.of(e) for e in headers]
        if basic is not None:
            edits.append(HeadEdit(remove=("authorization",)))  # never forwarded
        self.request_edits = tuple(e for e in edits if e)
        self.copies = tuple(HeaderCopy(n, src) for e in headers for n, src in e.copy)
        responses = [e for e in f if isinstance(e, ResponseHeaders)]
        self.response_edits = tuple(HeadEdit.of(e) for e in responses if not e.https_only)
        self.https_edits = tuple(HeadEdit.of(e) for e in responses if e.https_only)
        self.https_edits_all = self.response_edits + self.https_edits
        affinity = find_filter(f, CookieAffinity)
        self.sticky = StickyCookie(affinity, result.key) if affinity is not None else None
        hashed = find_filter(f, HashBy)
        self.hash_key = Template(hashed.key) if hashed is not None else None
        self.hash_subset = hashed.subset_size if hashed is not None else 0
        self.timeouts = t = _merged_timeouts(f)
        # The upstream connection's idle timeouts while this route's request is on it
        # (reads and writes both reset them; 0: the worker's setting): send until the
        # request is all read from the client, read after (nginx's proxy_send_timeout and
        # proxy_read_timeout); idle_timeout: whether the route sets either.
        self.read_timeout = (t.read or 0.0) if t is not None else 0.0
        self.send_timeout = (t.send or 0.0) if t is not None else 0.0
        self.idle_timeout = self.read_timeout or self.send_timeout
        retry = find_filter(f, Retry)
        # The route's own retry rule (ingress/retry.py), or None: the worker's defaults.
        self.retry_policy = RetryPolicy.of(retry) if retry is not None else None
        self.mirrors = tuple(m for m in f if isinstance(m, Mirror))
        self.error_pages = find_filter(f, ErrorPages)
        protocol = find_filter(f, UpstreamProtocol)
        self.tls: UpstreamTLS | None = None
        if protocol is not None:
            self.tls = runtime.upstream_tls(protocol)
        self.tls_auto = protocol is not None and protocol.protocol == "AUTO"
        # What a request under way needs: a LightExchange (ingress/filters/light.py) when
        # it only has its endpoint chosen and its answer edited, else a FilteredExchange.
        full = bool(
            self.external is not None
            or self.concurrency is not None
            or self.timeouts is not None
            or self.retry_policy is not None
            or self.mirrors
            or self.error_pages is not None
            or self.tls is not None
        )
        self.full = full  # (else a LightExchange)
        kept = full or bool(
            self.cors is not None
            or self.response_edits
            or self.sticky is not None
            or self.hash_key is not None
        )
        self.per_request = kept or bool(self.https_edits)
        # Only HTTPS-only edits (ingress-nginx's HSTS, on every route in its mode): a plain
        # HTTP request goes as on a route without filters.
        self.http_plain = (
            not kept
            and not self.status
            and not (
                self.https_redirect
                or self.rates
                or self.sources
                or self.basic
                or self.body_limit
                or self.rewrite
                or self.upstream_host
                or self.request_edits
                or self.copies
                or self.forwarded_prefix
            )
        )
        # Checks before the request goes on other than CORS (which admit runs inline
        # when it is the only one).
        self.checks = bool(
            self.https_redirect or self.status or self.rates or self.sources or self.body_limit
        )
        self.edits_head = bool(  # (but the rewrite, which admit does itself)
            self.upstream_host or self.request_edits or self.copies or self.forwarded_prefix
        )
        # Whether the upstream connection hands each response head to the exchange.
        self.edits_response = bool(
            self.cors
            or self.response_edits
            or self.https_edits
            or self.sticky
            or self.external
            or self.error_pages
            or (retry is not None and retry.statuses)
        )
        # Whether the endpoint is chosen otherwise than by the backend's balancer alone.
        self.plain_pick = not (
            self.sticky
            or self.hash_key
            or self.tls
            or (self.timeouts is not None and self.timeouts.backend_request)
        )
        # The exact-bytes memo (ingress/http1.py) repeats a request's route, local status
        # and upstream head, not its ``plan``: only plans that never answer themselves and
        # keep nothing per request (head edits alone) may be repeated.
        self.repeatable = not (
            self.per_request or self.checks or self.cors or self.basic or self.copies
        )

    def _compile_limits(
        self, f: tuple[Filter, ...], result: RouteResult, rt: FilterRuntime
    ) -> None:
        limit = find_filter(f, RateLimit)
        rates: list[RateZone] = []
        self.concurrency: ConcurrencyZone | None = None
        self.exempt: AddressSet | None = None
        self.rate_status = self.connection_status = 503
        self.rates: tuple[RateZone, ...] = ()
        if limit is None:
            return
        where = (result.origin, result.key)
        if limit.rps:
            burst = limit.rps * limit.burst_multiplier
            rates.append(rt.rate_zone(("rps", where, limit), limit.rps, burst))
        if limit.rpm:
            burst = limit.rpm * limit.burst_multiplier
            rates.append(rt.rate_zone(("rpm", where, limit), limit.rpm / 60.0, burst))
        if limit.connections:
            self.concurrency = rt.concurrency_zone(("conn", where, limit), limit.connections)
        self.rates = tuple(rates)
        self.exempt = AddressSet(limit.exempt) if limit.exempt else None
        self.rate_status = limit.status
        self.connection_status = limit.connection_status

    # -- admission -----------------------------------------------------------------------
    def admit(self, client: HttpProtocol, req: RequestState, route: RouteResult) -> None:
        """Route `req` here: answer it (``req.local``, with ``req.plan`` holding the
        answer's fields), or build its upstream head (and ``req.plan`` when the request
        needs per-request handling)."""
        req.route = route
        if self.http_plain and client.scheme == b"http":
            req.upstream_head = req.upstream_head_with(client.lines)
            return
        origin: bytes | None = None
        cors = self.cors
        if self.checks:
            checked = self._check(client, req)
            if checked is False:
                return
            origin = checked
        elif cors is not None:  # (the only check: _check's, inline)
            origin = b"*" if cors.any_origin else cors.origin(req.header(b"origin"))
            if origin is not None and req.method == b"OPTIONS":
                self._preflight(req, client, cors, origin)
                return
        pending = None
        basic = self.basic
        if basic is not None:
            verdict = basic.check(req.header(b"authorization"))
            if verdict is False:
                self._answer(req, client, 401, [(b"WWW-Authenticate", basic.challenge)], origin)
                return
            if verdict is not True:
                pending = verdict  # a slow hash: checked off the event loop, then sent
        head = req.upstream_head_with(client.lines)
        rewrite = self.rewrite
        if rewrite is not None:  # its request line starts with the method, a space, the URL
            url = req.url
            target = rewrite.apply(url)
            if target != url:  # (a regex rewrite often gives the path back: "/(.*)" "/$1")
                at = len(req.method) + 1
                head = head[:at] + target + head[at + len(url) :]
        if self.edits_head:
            head = self._edit_head(head, req)
        req.upstream_head = head
        if pending is not None:
            ex = req.plan = FilteredExchange(client, req, self, origin)
            ex.check_credentials(pending)
        elif self.per_request or (self.body_limit and req.chunked):
            if self.full:
                req.plan = FilteredExchange(client, req, self, origin)
            else:
                req.plan = LightExchange(client, req, self, origin)

    def _check(self, client: HttpProtocol, req: RequestState) -> bytes | Literal[False] | None:
        """Phases 0-3 (module docstring) but basic auth: False when the request was
        answered, else the Access-Control-Allow-Origin for its answer (None: no CORS)."""
        limit = self.body_limit
        if limit and req.content_length > limit:
            req.keep_alive = False  # the body is not wanted: the connection closes after
            self._answer(req, client, 413, ())
            return False
        https = self.https_redirect
        if https is not None and client.scheme == b"http":
            location = https_redirect_location(https, req.host, req.url)
            self._answer(req, client, https.status, [(b"Location", location)])
            return False
        origin = None
        cors = self.cors
        if cors is not None:
            origin = b"*" if cors.any_origin else cors.origin(req.header(b"origin"))
            if origin is not None and req.method == b"OPTIONS":
                self._preflight(req, client, cors, origin)
                return False
        if self.status:
            self._answer_action(req, client, origin)
            return False
        ip = client.client_ip
        if self.rates and (self.exempt is None or ip not in self.exempt):
            for zone in self.rates:
                if not zone.allow(ip):
                    self._answer(req, client, self.rate_status, (), origin)
                    return False
        if self.sources is not None and not self.sources.allows(ip):
            self._answer(req, client, self.sources_status, (), origin)
            return False
        return origin

    def _preflight(
        self, req: RequestState, client: HttpProtocol, cors: CorsPolicy, origin: bytes
    ) -> None:
        fields = cors.fields(origin, preflight=True)
        self._answer(req, client, PREFLIGHT_STATUS, fields, answered_cors=True)

    def _edit_head(self, head: bytes, req: RequestState) -> bytes:
        """Phase 4 (after the rewrite): the upstream head's Host, edits, copies and
        X-Forwarded-Prefix."""
        if self.upstream_host is not None:
            head = replace_host(head, self.upstream_host)
        for edit in self.request_edits:
            head = edit.apply(head)
        for copy in self.copies:
            head = copy.apply(head, req)
        prefixed = self.forwarded_prefix
        if prefixed is not None:
            prefix = forwarded_prefix(prefixed, request_path(req.url))
            if prefix is not None:
                head = _PREFIX.apply(head, b"X-Forwarded-Prefix: " + prefix + b"\r\n")
        return head

    def _answer_action(self, req: RequestState, client: HttpProtocol, origin: bytes | None) -> None:
        redirect = self.redirect
        if redirect is not None:
            location = redirect_location(redirect, client.scheme, req.host, req.url, self.matched)
            self._answer(req, client, redirect.status, [(b"Location", location)], origin)
            return
        fixed = self.fixed
        if fixed is not None:
            fields = [(n.encode(), v.encode("latin-1")) for n, v in fixed.headers]
            self._answer(req, client, self.status, fields, origin, fixed.body)
            return
        pages = self.error_pages
        if (
            pages is not None
            and pages.backend is not None
            and self.status in pages.codes
            and (req.complete or not req.has_body)
        ):
            # A custom error page for the proxy's own status (a Service without usable
            # endpoints: ingress-nginx's default backend answers with X-Code 503).
            req.upstream_head = req.upstream_head_with(client.lines)
            ex = req.plan = FilteredExchange(client, req, self, origin)
            ex.answer_first = self.status
            return
        self._answer(req, client, self.status, (), origin)

    def _answer(
        self,
        req: RequestState,
        client: HttpProtocol,
        status: int,
        fields: list[Header] | tuple[()],
        origin: bytes | None = None,
        body: bytes | None = None,
        answered_cors: bool = False,
    ) -> None:
        req.local = status
        origin = None if answered_cors else origin
        req.plan = LocalAnswer(
            self, req, client.scheme == b"https", origin, (status, list(fields), body)
        )
