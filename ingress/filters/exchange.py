"""FilteredExchange: the Exchange (ingress/exchange.py) of a request whose route has a
plan that acts while the request is under way in more ways than a LightExchange
(ingress/filters/light.py) does, which it extends.

On top of the light exchange (the endpoint picked by the sticky cookie (CookieAffinity)
or a consistent hash of the route's key (HashBy; see ingress/filters/hashring.py), else
by the backend's balancer; every response head handed to Answers.response_head: CORS,
edits, cookies) it:
- asks the external auth service first (ExternalAuth) and goes on only on a 2xx;
- mirrors the request (Mirror): a copy to the mirror backend, its answer dropped;
- speaks TLS to the pod (UpstreamProtocol HTTPS) on connections of their own;
- applies per-route timeouts: connect, send and read (the upstream connection's idle
  timer, which reads and writes both reset: ``send`` while the request is still being
  read from the client, ``read`` once it is all read),
  ``request`` (the whole exchange) and ``backend_request`` (one attempt), 504 when they
  fire before the response began (after it began, the client connection is cut);
- retries by the route's Retry filter (ingress-nginx proxy-next-upstream, -tries,
  -timeout; the rule is ingress/retry.py's): besides the plain exchange's cases, an
  attempt past its ``backend_request`` timeout, and a response whose status the filter
  lists (intercepted before any of it reaches the client);
- a pinned endpoint (sticky cookie, hash) at its per-endpoint cap, or whose attempt
  failed, is passed over for the next one (the hash ring's next, or a new pick that the
  cookie is re-pinned to) rather than answered 503;
- replaces an answer whose status is in ErrorPages.codes by the answer of its backend
  (asked ``/`` with X-Code, X-Format, X-Original-URI...: ingress-nginx custom-http-errors).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from discovery.snapshot import EndpointInfo
from ingress.exchange import Exchange
from ingress.filter_headers import error_page_headers
from ingress.filters.auth_external import parse_url, signin_location
from ingress.filters.headers import HeadEdit, field_lines, replace_target
from ingress.filters.light import LightExchange
from ingress.filters.subrequest import SubResponse, fetch
from ingress.filters.upstream_tls import UpstreamTLS
from ingress.pool import EndpointPool
from ingress.request import RequestState
from ingress.retry import ERROR, NO_RETRY, STATUS, TIMEOUT, RetryPolicy
from ingress.route_filters import ErrorPages
from ingress.route_match import RouteResult
from ingress.routes import Forward
from ingress.upstream import UpstreamConnection

if TYPE_CHECKING:
    from ingress.filters.plan import RoutePlan
    from ingress.http1 import HttpProtocol

log = logging.getLogger(__name__)

AUTH_TIMEOUT: Final = 5.0  # seconds for an answer of the external auth service
MIRROR_TIMEOUT: Final = 10.0


class FilteredExchange(LightExchange):
    """Made at admission (``RequestState.plan``); ``begin`` sends it on its way."""

    __slots__ = (
        "_attempt_timer",
        "_request_timer",
        "again",
        "answer_first",
        "authorized",
        "client_ip",
        "endpoint",
        "error_route",
        "holding",
        "pending_basic",
        "timed",
    )

    def __init__(
        self, client: HttpProtocol, req: RequestState, plan: RoutePlan, origin: bytes | None
    ) -> None:
        super().__init__(client, req, plan, origin)
        self.client_ip = client.client_ip
        self.holding = False  # counted in the route's requests under way
        self.again = False  # the response head just intercepted is retried (a status)
        self.authorized = plan.external is None
        self.pending_basic: tuple[str, str] | None = None
        self.endpoint: EndpointInfo | None = None
        self.error_route: RouteResult | None = None  # set once an error page is asked for
        self._request_timer: asyncio.TimerHandle | None = None
        self._attempt_timer: asyncio.TimerHandle | None = None
        self.timed = False  # a timer of its own runs
        self.answer_first = 0  # the proxy's own status, to replace by an error page at once

    # -- hooks of ingress/http1.py (see ingress/filters/admission.py) --------------------
    def begin(self, client: HttpProtocol) -> None:
        """The request becomes the connection's active one: counted under way (or refused
        over the route's limit), timed, mirrored, sent."""
        plan = self.plan
        zone = plan.concurrency
        if zone is not None and (plan.exempt is None or self.client_ip not in plan.exempt):
            if not zone.acquire(self.client_ip):
                client.answer(plan.connection_status, close=not self.req.complete)
                return
            self.holding = True
        client.exchange = self
        t = plan.timeouts
        if t is not None and t.request:
            loop = client.ctx.loop
            self._request_timer = loop.call_later(t.request, self._timed_out, True)
            self.timed = True
        if self.answer_first:
            self.status = self.answer_first
            self.intercepted()
            return
        if plan.mirrors:
            self._mirror()
        self.start()

    def finished(self) -> None:
        """The request ended (answered, or its connection lost)."""
        self.req.plan = None  # (see LightExchange.finished)
        if self.holding:
            self.holding = False
            zone = self.plan.concurrency
            if zone is not None:
                zone.release(self.client_ip)
        if self.timed:
            self.stop_timers()

    def check_credentials(self, found: tuple[str, str]) -> None:
        """Basic auth credentials to check (in a thread) before the request goes on."""
        self.pending_basic = found
        self.authorized = False

    def set_reply(self, status: int, fields: list[tuple[bytes, bytes]]) -> None:
        """The answer `reply` gives for `status` (external auth's 302, 401, 403)."""
        self.reply_to = (status, fields, None)

    # -- going upstream ------------------------------------------------------------------
    def start(self, fresh: bool = False) -> None:
        if not self.authorized:
            self.authorized = True
            self.client.ctx.loop.create_task(self._authorize())
            return
        plan = self.plan
        if plan.plain_pick or self.error_route is not None:
            Exchange.start(self, fresh)  # the backend's balancer, plain connections
            return
        n = self.pick()
        if not n:
            return
        ctx = self.client.ctx
        t = plan.timeouts
        if t is not None and t.backend_request:
            if self._attempt_timer is not None:
                self._attempt_timer.cancel()
            timeout = t.backend_request
            self._attempt_timer = ctx.loop.call_later(timeout, self._timed_out, False)
            self.timed = True
        ep = self.lease.endpoint  # type: ignore[union-attr]  # (leased by pick)
        tls = self._tls()
        pools = ctx.pools if tls is None else plan.runtime.tls_pools(tls.context)
        self.send_to(ep, pools.get((ep.ip, ep.port)), n, fresh)

    def send_to(self, ep: EndpointInfo, pool: EndpointPool, n: int, fresh: bool) -> None:
        self.endpoint = ep  # (for Retry: the endpoint a failed attempt went to)
        super().send_to(ep, pool, n, fresh)

    def open_connection(
        self, factory: Callable[[], UpstreamConnection], ep: EndpointInfo
    ) -> Awaitable[tuple[asyncio.BaseTransport, UpstreamConnection]]:
        ctx = self.client.ctx
        plan = self.plan
        t = plan.timeouts
        timeout = t.connect if t is not None and t.connect else ctx.settings.connect_timeout
        tls = self._tls()
        if tls is None:
            connect = ctx.loop.create_connection(factory, ep.ip, ep.port)
        else:
            connect = ctx.loop.create_connection(
                factory, ep.ip, ep.port, ssl=tls.context, server_hostname=tls.server_hostname
            )
        return asyncio.wait_for(connect, timeout)

    def _tls(self) -> UpstreamTLS | None:
        """TLS to the endpoint: the route's HTTPS (AUTO: when the client used HTTPS); never
        to the error page backend."""
        plan = self.plan
        if self.error_route is not None or (plan.tls_auto and not self.https):
            return None
        return plan.tls

    def bind(self, conn: UpstreamConnection, reused: bool, pipeline: bool = False) -> None:
        plan = self.plan
        if plan.idle_timeout and self.error_route is None:
            read = plan.read_timeout or self.client.ctx.settings.upstream_timeout
            conn.set_timeouts(read, plan.send_timeout)
        super().bind(conn, reused, pipeline)

    # -- basic and external auth ---------------------------------------------------------
    async def _authorize(self) -> None:
        """The checks that wait: a slow basic-auth hash (in a thread), then external auth;
        then the request goes on, or is answered."""
        client = self.client
        req = self.req
        found = self.pending_basic
        basic = self.plan.basic
        if found is not None and basic is not None:
            self.pending_basic = None
            ok = await client.ctx.loop.run_in_executor(None, basic.verify, found)
            if client.exchange is not self or client.closing:
                return
            if not ok:
                self.set_reply(401, [(b"WWW-Authenticate", basic.challenge)])
                client.answer(401, close=not req.complete)
                return
        if self.plan.external is None:
            self.start()
        else:
            await self._external()

    async def _external(self) -> None:
        client = self.client
        ctx = client.ctx
        check = self.plan.external
        assert check is not None
        req = self.req
        scheme = b"https" if self.https else b"http"
        target = parse_url(check.url.expand(req, self.client_ip, scheme))
        answer: SubResponse | None = None
        if target is None:
            log.warning("external auth: %s is not an http(s) URL", check.url.text)
        else:
            head = check.request_head(target, req, req.forward, self.client_ip, scheme)
            tls = self.plan.runtime.auth_tls if target.scheme == "https" else None
            where = (target.host, target.port, tls)
            rt = self.plan.runtime
            answer = await fetch(
                ctx.loop, rt.subrequest_pools, rt.resolver, where, head, AUTH_TIMEOUT
            )
        if client.exchange is not self or client.closing:
            return
        status = answer.status if answer is not None else 0
        if answer is not None:
            self.auth_cookies = answer.values(b"set-cookie") or None
        if 200 <= status < 300:
            assert answer is not None
            copied = [(n, answer.value(n)) for n in check.copied]
            found = [(n, v) for n, v in copied if v]
            if copied:
                names = [n.decode() for n, _ in copied]
                head = HeadEdit(remove=names).apply(req.upstream_head, field_lines(found))
                req.upstream_head = head
            self.start()
            return
        if status == 401 and check.signin is not None:
            signin = check.signin.expand(req, self.client_ip, scheme)
            location = signin_location(signin, check.signin_param, scheme, req)
            self.set_reply(302, [(b"Location", location)])
            client.answer(302, close=not req.complete)
            return
        if status in (401, 403):
            fields = []
            challenge = answer.value(b"www-authenticate") if answer is not None else None
            if challenge:
                fields.append((b"WWW-Authenticate", challenge))
            self.set_reply(status, fields)
            client.answer(status, close=not req.complete)
            return
        client.answer(500, close=not req.complete)

    # -- mirrors -------------------------------------------------------------------------
    def _mirror(self) -> None:
        """A copy of the request to each Mirror backend (only when its body, if any, is
        all here: a mirror never holds up the request)."""
        req = self.req
        if req.has_body and not req.complete:
            return
        body = b"".join(req.pending or ())
        if body and req.chunked:
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        elif req.chunked:
            body = b"0\r\n\r\n"
        ctx = self.client.ctx
        rt = self.plan.runtime
        for mirror in self.plan.mirrors:
            if mirror.percent < 100.0 and random.random() * 100.0 >= mirror.percent:
                continue
            eps = mirror.backend.endpoints
            if not eps:
                continue
            ep = eps[random.randrange(len(eps))]
            where = (ep.ip, ep.port, None)
            job = fetch(
                ctx.loop,
                rt.subrequest_pools,
                rt.resolver,
                where,
                req.upstream_head + body,
                MIRROR_TIMEOUT,
                keep=False,
            )
            ctx.loop.create_task(job)

    # -- timeouts and retries ------------------------------------------------------------
    def _timed_out(self, whole: bool) -> None:
        if whole:
            self._request_timer = None
        else:
            self._attempt_timer = None
        client = self.client
        if client.exchange is not self or client.closing:
            return
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.abandon(self)
        if self.sent:
            client.close()  # the client has part of the answer: it must see the cut
        elif whole or not self.retry(TIMEOUT, 504, self.endpoint):
            client.answer(504, close=not self.req.complete)

    def stop_timers(self) -> None:
        for timer in (self._request_timer, self._attempt_timer):
            if timer is not None:
                timer.cancel()
        self._request_timer = self._attempt_timer = None
        self.timed = False

    def retry_policy(self) -> RetryPolicy:
        """The route's Retry filter, else the worker's defaults; none for the request to
        an error page's backend."""
        if self.error_route is not None:
            return NO_RETRY
        policy = self.plan.retry_policy
        return policy if policy is not None else self.client.ctx.retry_policy()

    def failed(self, status: int, retryable: bool, kind: int = ERROR) -> None:
        client = self.client
        if client.exchange is not self or client.closing:
            return
        self.conn = None
        if self.retry(self._failed_kind(status, retryable, kind), status, self.endpoint):
            return
        if self._error_page(status):
            self.status = status  # the failure's 502/504 gets the custom error page
            self.intercepted()
            return
        client.answer(status, close=not self.req.complete)

    def response_done(self) -> None:
        if self.timed:
            self.stop_timers()
        conn = self.conn
        if conn is not None and self.plan.idle_timeout:
            # back to the pool (a timer still armed serves an exchange pipelined behind)
            conn.set_timeouts(self.client.ctx.settings.upstream_timeout, rearm=False)
        super().response_done()

    # -- the response head ---------------------------------------------------------------
    def intercepts(self, status: int) -> bool:
        """Whether a response head with `status` is replaced: tried again on another
        endpoint (a status the Retry filter lists, while the rule allows), or answered by
        an error page."""
        policy = self.plan.retry_policy
        if (
            policy is not None
            and status in policy.statuses
            and self.error_route is None
            and self.may_retry(STATUS, status, self.endpoint)
        ):
            self.again = True
            return True
        return self._error_page(status)

    def _error_page(self, status: int) -> bool:
        pages = self.plan.error_pages
        if pages is None or self.error_route is not None or status not in pages.codes:
            return False
        backend = pages.backend
        if backend is None:
            return True  # seaway's own page for that status replaces the answer
        return self.req.complete and not backend.status and bool(backend.endpoints)

    def intercepted(self) -> None:
        self.conn = None
        if self.again:  # a status to retry (see intercepts)
            self.again = False
            self.retries += 1
            self.start(fresh=True)
            return
        pages = self.plan.error_pages
        assert pages is not None
        if pages.backend is None:
            self.client.answer(self.status, close=not self.req.complete)
            return
        req = self.req
        route = self.error_route = RouteResult(
            0, Forward((pages.backend,)), "custom-http-errors", None, pages.backend
        )
        req.route = route
        req.upstream_head = self._error_head(pages, self.status)
        req.pending = None
        self.tried = None
        self.start()

    def _error_head(self, pages: ErrorPages, code: int) -> bytes:
        """The request for the error page: ``/`` with X-Code and the context headers
        (ingress/filter_headers.py), no body: ingress-nginx's custom error location."""
        req = self.req
        head = HeadEdit(remove=("content-length", "transfer-encoding"), protected=frozenset())
        fields = error_page_headers(pages, code, req.header(b"accept"), req.url)
        if req.has_body:
            fields.append(("Content-Length", "0"))
        lines = field_lines((n.encode(), v.encode("latin-1")) for n, v in fields if v)
        return replace_target(head.apply(req.upstream_head, lines), b"/")
