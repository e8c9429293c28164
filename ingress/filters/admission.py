"""FilteredRequest: what a request of a route with a plan carries after admission
(``RequestState.plan``), from its start to its end.

ingress/http1.py talks to it at four points, only for such requests: ``start`` instead
of making a plain Exchange; ``reply`` for every answer the proxy makes itself (its own
answer with Location, WWW-Authenticate or a body, but also a 502 or 504: each gets the
route's CORS fields and response edits); ``body_received`` while a body streams in (the
route's body limit); ``finished`` when the request ends or its connection is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingress.errors import PeerError
from ingress.filters.exchange import FilteredExchange
from ingress.filters.headers import HeadEdit, append_fields, field_lines
from ingress.filters.reply import local_response
from ingress.request import RequestState

if TYPE_CHECKING:
    from ingress.exchange import Downstream
    from ingress.filters.plan import Client, RoutePlan

Header = tuple[bytes, bytes]


class FilteredRequest:
    __slots__ = (
        "auth_cookies",
        "client_ip",
        "cookie",
        "exchange",
        "holding",
        "https",
        "origin",
        "plan",
        "reply_body",
        "reply_fields",
        "reply_status",
        "req",
    )

    def __init__(
        self, plan: RoutePlan, client: Client, req: RequestState, origin: bytes | None
    ) -> None:
        self.plan = plan
        self.req = req
        self.client_ip = client.client_ip
        self.https = client.scheme == b"https"
        self.origin = origin  # Access-Control-Allow-Origin for the answer (None: no CORS)
        self.reply_status = 0  # the proxy's own answer, when admission decided one
        self.reply_fields: list[Header] = []
        self.reply_body: bytes | None = None
        self.cookie: bytes | None = None  # a Set-Cookie for the sticky endpoint chosen
        self.auth_cookies: list[bytes] = []  # Set-Cookie values of the external auth answer
        self.holding = False  # counted in the route's requests under way
        self.exchange: FilteredExchange | None = None

    def set_reply(self, status: int, fields: list[Header], body: bytes | None = None) -> None:
        self.reply_status = status
        self.reply_fields = fields
        self.reply_body = body

    # -- hooks of ingress/http1.py -------------------------------------------------------
    def start(self, client: Downstream) -> None:
        """Send the request on its way: counted under way (or refused over the route's
        limit), then a FilteredExchange."""
        plan = self.plan
        zone = plan.concurrency
        if zone is not None and (plan.exempt is None or self.client_ip not in plan.exempt):
            if not zone.acquire(self.client_ip):
                client.answer(plan.connection_status, close=not self.req.complete)
                return
            self.holding = True
        ex = self.exchange = FilteredExchange(client, self.req, self)
        client.exchange = ex
        ex.start()

    def reply(self, status: int, close: bool) -> bytes:
        """The bytes of an answer the proxy makes itself for this request."""
        own = status == self.reply_status
        fields = list(self.reply_fields) if own else []
        cors = self.plan.cors
        if self.origin is not None and cors is not None:
            fields += cors.fields(self.origin)
        if self.auth_cookies and (status < 400 or self.plan.always_auth_cookies):
            fields += [(b"Set-Cookie", c) for c in self.auth_cookies]
        head_only = self.req.method == b"HEAD"
        data = local_response(status, fields, self.reply_body if own else None, close, head_only)
        edits = self.edits()
        if edits:
            end = data.find(b"\r\n\r\n") + 4
            head = data[:end]
            for edit in edits:
                head = edit.apply(head)
            data = head + data[end:]
        return data

    def body_received(self, received: int) -> None:
        limit = self.plan.body_limit
        if limit and received > limit:
            raise PeerError(413, "request body too large for its route")

    def finished(self) -> None:
        """The request ended (answered, or its connection lost)."""
        if self.holding:
            self.holding = False
            zone = self.plan.concurrency
            if zone is not None:
                zone.release(self.client_ip)
        ex = self.exchange
        if ex is not None:
            ex.stop_timers()

    def edits(self) -> tuple[HeadEdit, ...]:
        """The route's response edits for this request (HTTPS-only ones on HTTPS)."""
        plan = self.plan
        if self.https and plan.https_edits:
            return plan.response_edits + plan.https_edits
        return plan.response_edits

    # -- the response from the backend ---------------------------------------------------
    def response_head(self, head: bytes, status: int) -> bytes:
        """The backend's response head as the client gets it: the route's response edits,
        CORS fields (replacing the backend's), the sticky cookie, the auth cookies."""
        plan = self.plan
        for edit in self.edits():
            head = edit.apply(head)
        extra = b""
        cors = plan.cors
        if self.origin is not None and cors is not None:
            if cors.remover is not None:
                head = cors.remover.sub(b"", head)
            extra = cors.response_lines(self.origin)
        if self.cookie is not None:
            extra += b"Set-Cookie: " + self.cookie + b"\r\n"
        if self.auth_cookies and (status < 400 or plan.always_auth_cookies):
            extra += field_lines((b"Set-Cookie", c) for c in self.auth_cookies)
        return append_fields(head, extra)
