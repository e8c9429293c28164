"""What a request of a route with a plan carries after admission (``RequestState.plan``):
a LocalAnswer when the proxy answers it itself, else its FilteredExchange
(ingress/filters/exchange.py). Both answer ingress/http1.py's hooks, only for such
requests: ``begin`` instead of making a plain Exchange; ``reply`` for every answer the
proxy makes itself (its own, with Location, WWW-Authenticate or a body, but also a 502 or
504: each gets the route's CORS fields and response edits); ``body_received`` while a
body streams in (the route's body limit); ``finished`` when the request ends or its
connection is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mypy_extensions import trait

from ingress.errors import PeerError
from ingress.filters.headers import HeadEdit
from ingress.filters.reply import local_response
from ingress.request import RequestPlan, RequestState

if TYPE_CHECKING:
    from ingress.filters.plan import RoutePlan

Header = tuple[bytes, bytes]


@trait
class Answers(RequestPlan):
    """The answer side shared by LocalAnswer and LightExchange (a trait: LightExchange's
    base class is ingress/exchange.py's Exchange) (attributes: ``plan``,
    ``req``, ``https``, ``origin`` (Access-Control-Allow-Origin, None: no CORS),
    ``reply`` (the proxy's own answer: status, fields, body, or None), ``cookie`` (a
    Set-Cookie for the sticky endpoint chosen), ``auth_cookies`` (the external auth
    answer's Set-Cookie values, or None))."""

    __slots__ = ()

    plan: RoutePlan
    req: RequestState
    https: bool
    origin: bytes | None
    reply_to: tuple[int, list[Header], bytes | None] | None
    cookie: bytes | None
    auth_cookies: list[bytes] | None

    def reply(self, status: int, close: bool) -> bytes:
        """The bytes of an answer the proxy makes itself for this request."""
        own = self.reply_to
        fields: list[Header] = []
        body = None
        if own is not None and own[0] == status:
            fields = list(own[1])
            body = own[2]
        cors = self.plan.cors
        if self.origin is not None and cors is not None:
            fields += cors.fields(self.origin)
        cookies = self.auth_cookies
        if cookies and (status < 400 or self.plan.always_auth_cookies):
            fields += [(b"Set-Cookie", c) for c in cookies]
        data = local_response(status, fields, body, close, self.req.method == b"HEAD")
        edits = self.edits()
        if edits:
            end = data.find(b"\r\n\r\n") + 4
            head = data[:end]
            for edit in edits:
                head = edit.apply(head)
            data = head + data[end:]
        return data

    def edits(self) -> tuple[HeadEdit, ...]:
        """The route's response edits for this request (HTTPS-only ones on HTTPS)."""
        plan = self.plan
        return plan.https_edits_all if self.https else plan.response_edits

    def body_received(self, received: int) -> None:
        limit = self.plan.body_limit
        if limit and received > limit:
            raise PeerError(413, "request body too large for its route")


class LocalAnswer(Answers):
    """A request admission answered (redirect, preflight, refusal...)."""

    __slots__ = ("auth_cookies", "cookie", "https", "origin", "plan", "reply_to", "req")

    def __init__(
        self,
        plan: RoutePlan,
        req: RequestState,
        https: bool,
        origin: bytes | None,
        reply: tuple[int, list[Header], bytes | None],
    ) -> None:
        self.plan = plan
        self.req = req
        self.https = https
        self.origin = origin
        self.reply_to = reply
        self.cookie = None
        self.auth_cookies = None

    def begin(self, client: Any) -> None:
        raise AssertionError("a request answered by the proxy is never forwarded")

    def finished(self) -> None:
        self.req.plan = None  # (a cycle otherwise: see LightExchange.finished)
