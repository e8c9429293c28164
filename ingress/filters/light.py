"""LightExchange: the Exchange (ingress/exchange.py) of a request whose route's plan acts
on it while it is under way only by choosing its endpoint and editing its answer.

That is the common annotated route: a sticky cookie (CookieAffinity) or a consistent hash
of the route's key (HashBy) picks the endpoint, and the response head gets the route's
CORS fields, response edits and the sticky cookie (Answers.response_head). Nothing else
is kept per request: no timers, authentication, tries, mirrors, error pages or TLS; a
plan with any of those makes a FilteredExchange (ingress/filters/exchange.py), which
extends this class. ``RoutePlan.full`` says which one a plan makes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Final

from discovery.snapshot import EndpointInfo
from ingress.exchange import Exchange
from ingress.filters.admission import Answers
from ingress.filters.cors import REPLACED
from ingress.filters.fieldscan import add_fields
from ingress.filters.headers import field_lines
from ingress.http1 import HttpProtocol
from ingress.request import RequestState
from proxy.acceptor import COUNTERS
from proxy.balancer import Balancer, Lease

if TYPE_CHECKING:
    from ingress.filters.plan import RoutePlan

Header = tuple[bytes, bytes]

# (compiled, a Final is read from a C static: a plain imported name costs a dict lookup)
_ADD_FIELDS: Final[Callable[[bytes, int, bytes, bytes], bytes | None]] = add_fields


class LightExchange(Exchange, Answers):
    """Made at admission (``RequestState.plan``); ``begin`` sends it on its way."""

    __slots__ = ("auth_cookies", "cookie", "https", "origin", "plan", "reply_to")

    def __init__(
        self, client: HttpProtocol, req: RequestState, plan: RoutePlan, origin: bytes | None
    ) -> None:
        Exchange.__init__(self, client, req)
        self.plan = plan
        self.https = client.scheme == b"https"
        self.origin = origin
        self.cookie: bytes | None = None  # the Set-Cookie of a new sticky client
        self.edits_response = plan.edits_response
        # (Answers reads these; only a FilteredExchange sets them.)
        self.reply_to: tuple[int, list[Header], bytes | None] | None = None
        self.auth_cookies: list[bytes] | None = None

    # -- hooks of ingress/http1.py (see ingress/filters/admission.py) --------------------
    def begin(self, client: HttpProtocol) -> None:
        """The request becomes the connection's active one: sent (start, inline)."""
        client.exchange = self
        if self.plan.plain_pick:
            Exchange.start(self)  # the backend's balancer
            return
        n = self.pick()
        if n:
            self._send(n, False)

    def finished(self) -> None:
        """The request ended (answered, or its connection lost): nothing to release but
        the request's reference to this exchange (a cycle otherwise: the cycle collector,
        not reference counting, would free both, and run more often for it)."""
        self.req.plan = None

    def response_head(self, data: bytes, end: int) -> bytes:
        """A response from the backend (`data`: its head, ending at `end`, then maybe body
        bytes) as the client gets it: the route's response edits and CORS fields (the
        backend's of those names removed), the sticky cookie, the auth cookies. When the
        head only gains fields (the common case), they are spliced in before its blank
        line in one copy of `data`."""
        plan = self.plan
        edits = plan.https_edits_all if self.https else plan.response_edits
        origin = self.origin
        cors = plan.cors if origin is not None else None
        extra = b""
        if cors is not None and origin is not None:
            extra = cors.any_lines if origin == b"*" else cors.response_lines(origin)
        if self.cookie is not None:
            extra += b"Set-Cookie: " + self.cookie + b"\r\n"
        cookies = self.auth_cookies
        if cookies and (self.status < 400 or plan.always_auth_cookies):
            extra += field_lines((b"Set-Cookie", c) for c in cookies)
        remover = cors.remover if cors is not None else None
        if not edits and remover is not None:
            # One scan and one copy, unless the backend sent fields of the names CORS sets
            # (then they go first, below).
            added = _ADD_FIELDS(data, end, extra, REPLACED)
            if added is not None:
                return added
        if edits or (remover is not None and remover.search(data, 0, end) is not None):
            head = data[:end]
            for edit in edits:
                head = edit.apply(head)
            if remover is not None:
                head = remover.sub(b"", head)
            data = head + data[end:]
            end = len(head)
        return data[: end - 2] + extra + data[end - 2 :] if extra else data

    # -- going upstream ------------------------------------------------------------------
    def start(self, fresh: bool = False) -> None:
        if self.plan.plain_pick:
            Exchange.start(self, fresh)  # the backend's balancer
            return
        n = self.pick()
        if n:
            self._send(n, fresh)

    def _send(self, n: int, fresh: bool) -> None:
        """Send to the endpoint `pick` leased (one of `n`), from its pool."""
        lease = self.lease
        route = self.req.route
        assert lease is not None and route is not None and route.cache is not None  # (pick)
        self.send_to(lease.endpoint, route.cache.pool_of(lease), n, fresh)

    def pick(self) -> int:
        """Lease the endpoint the sticky cookie or the hash names, else the balancer's;
        the number of endpoints, or 0 when none could be had (then answered 502/503).
        A pinned endpoint at its per-endpoint cap, already tried or out for its health is
        passed over for the next one (the hash ring's next, or a new pick that the cookie
        is re-pinned to) rather than answered 503."""
        client = self.client
        ctx = client.ctx
        route = self.req.route
        assert route is not None  # (routed)
        state = route.cache
        if state is None or state.owner is not ctx:
            state = route.cache = ctx.route_state(route)
        bal: Balancer = state.balancer
        eps = bal.endpoints
        # what was tried, and the endpoints out for their health (proxy/outlier.py)
        skip: Collection[EndpointInfo] = bal.avoiding(self.tried or ())
        if self.lease is not None:  # a retry: the failed try ends first
            self.end_lease()
        plan = self.plan
        sticky = plan.sticky
        now = ctx.loop.time() if bal.observes else 0.0
        lease: Lease | None = None
        ep: EndpointInfo | None = None
        while True:
            if sticky is not None:
                # The endpoint the cookie names, by its index; else the balancer's choice,
                # and a cookie that names it. (A failed try re-pins; the cookie is read in
                # the head, in place.)
                i = -1
                if not (skip and sticky.spec.change_on_failure):
                    i = sticky.index_in_head(self.req.head, eps, skip)
                if i < 0:
                    i = self._place(bal, eps, skip)
                    if i < 0:
                        lease = self.lease = None
                        break
                lease = self.lease = bal.hold_at(i, now)
                if lease is not None:
                    break
                ep = eps[i]
            else:
                ep = self._hashed(eps, skip) if plan.hash_key is not None else None
                # The hash's endpoint is held as it is; without one, the balancer picks
                # (ingress/exchange.py).
                lease = self.lease = bal.lease(None, skip, now) if ep is None else bal.hold(ep, now)
                if lease is not None or ep is None:
                    break
            assert ep is not None
            skip = {*skip, ep}  # pinned but at its cap: the next one (a cookie re-pins)
        if lease is None:
            if bal.saturated:
                COUNTERS.endpoint_overflows += 1
            client.answer(503 if bal.saturated else 502, close=not self.req.complete)
            return 0
        return len(eps)

    def _place(
        self, bal: Balancer, eps: tuple[EndpointInfo, ...], skip: Collection[EndpointInfo]
    ) -> int:
        """A new sticky client: the index of the balancer's choice (held by the caller),
        or -1; and the cookie that names it, for the answer."""
        sticky = self.plan.sticky
        assert sticky is not None
        picked = bal.choose_index(skip)
        if picked < 0:
            return -1
        i, key = sticky.new_index(picked, eps, skip)
        agent = None
        if sticky.spec.conditional_samesite_none:
            agent = self.req.header(b"user-agent")
        self.cookie = sticky.set_cookie(key, self.https, self.plan.runtime.wall(), agent)
        return i

    def _hashed(
        self, eps: tuple[EndpointInfo, ...], skip: Collection[EndpointInfo]
    ) -> EndpointInfo | None:
        """The endpoint the route's hash key maps to (within its subset, at random)."""
        plan = self.plan
        assert plan.hash_key is not None
        scheme = b"https" if self.https else b"http"
        key = plan.hash_key.expand(self.req, self.client.client_ip, scheme)
        route = self.req.route
        assert route is not None  # (routed)
        route_key = route.key
        if plan.hash_subset:
            subset = plan.runtime.subsets(route_key, eps, plan.hash_subset).pick(key)
            usable = [e for e in subset if e not in skip]
            return random.choice(usable) if usable else None
        return plan.runtime.ring(route_key, eps).pick(key, skip)
