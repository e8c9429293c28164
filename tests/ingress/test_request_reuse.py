"""Repeated plain requests on a pooled upstream connection: the finished RequestState is
reused for the next known request, and the route is remembered per connection; both must
give exactly what a fresh parse gives."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from discovery.snapshot import EndpointInfo
from ingress.context import ProxyContext
from ingress.http1 import HttpProtocol
from ingress.outbox import Outbox
from ingress.upstream import UpstreamConnection
from tests.ingress.test_http_timeouts import SETTINGS, FakeLoop, FakeTransport

EP = EndpointInfo("127.0.0.1", 9000)
KEY = (EP.ip, EP.port)
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
A = b"GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n"
B = b"GET /b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"


class Loop(FakeLoop):
    """FakeLoop that records connect tasks instead of running them."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[Coroutine[Any, Any, None]] = []

    def create_task(self, coro: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(coro)


class Route:
    def __init__(self, key: str) -> None:
        self.status = 0
        self.endpoints = (EP,)
        self.key = key
        self.split = None


class Router:
    def __init__(self, key: str) -> None:
        self.key = key
        self.split = None
        self.calls = 0

    uses_headers = False

    def match(self, host: object, target: bytes, method: bytes, header: object) -> Route:
        self.calls += 1
        return Route(self.key)


def setup() -> tuple[HttpProtocol, FakeTransport, UpstreamConnection, FakeTransport]:
    loop = Loop()
    ctx = ProxyContext(loop, SETTINGS, Router("one"), outbox=Outbox(None))  # type: ignore[arg-type]
    proto = HttpProtocol(ctx)
    client = FakeTransport()
    proto.connection_made(client)  # type: ignore[arg-type]
    up = UpstreamConnection(loop, ctx.pools, KEY, 60.0, ctx.outbox)  # type: ignore[arg-type]
    upt = FakeTransport()
    up.connection_made(upt)  # type: ignore[arg-type]
    up.keep_alive = True
    ctx.pools.get(KEY).release(up)
    return proto, client, up, upt


def exchange(proto: HttpProtocol, up: UpstreamConnection, head: bytes) -> None:
    proto.data_received(head)
    assert proto.upstream is up
    up.data_received(RESP)
    assert proto.upstream is None and proto.active is None


def upstream_head(upt: FakeTransport, n: int) -> bytes:
    """The n-th request head the backend received (0-based)."""
    heads = bytes(upt.out).split(b"\r\n\r\n")
    return heads[n] + b"\r\n\r\n"


def test_known_requests_reuse_state_and_send_their_own_heads() -> None:
    proto, client, up, upt = setup()
    exchange(proto, up, A)  # parsed
    exchange(proto, up, A)  # known: a fresh RequestState, kept when finished
    spare = proto._spare
    assert spare is not None
    exchange(proto, up, B)  # parsed (new head)
    exchange(proto, up, B)  # known: the spare one reused
    assert proto._spare is spare  # reused for B, then kept again
    exchange(proto, up, A)
    sent = [upstream_head(upt, i) for i in range(5)]
    assert sent[0] == sent[1] == sent[4] and sent[0].startswith(b"GET /a HTTP/1.1\r\n")
    assert sent[2] == sent[3] and sent[2].startswith(b"GET /b HTTP/1.1\r\n")
    assert b"Accept: */*\r\n" in sent[3] and b"Accept" not in sent[4]
    assert bytes(client.out) == RESP * 5 and not client.closed


def test_route_memo_follows_a_router_change() -> None:
    proto, _, up, _ = setup()
    exchange(proto, up, A)
    exchange(proto, up, A)
    assert proto._spare is not None and proto._spare.route.key == "one"  # type: ignore[attr-defined]
    router = Router("two")
    proto.ctx.set_router(router)  # type: ignore[arg-type]
    exchange(proto, up, A)
    assert router.calls == 1  # routed again under the new router, not the memo
    assert proto._spare is not None and proto._spare.route.key == "two"  # type: ignore[attr-defined]
    assert "two" in proto.ctx.balancers


def test_a_retried_request_is_not_reused() -> None:
    proto, _, up, _ = setup()
    exchange(proto, up, A)
    exchange(proto, up, A)
    spare = proto._spare
    proto.data_received(A)  # known, takes the spare, bound to the pooled connection
    req = proto.active
    assert req is spare and proto.upstream is up
    up.connection_lost(None)  # closed before any response byte: retried on a new connection
    assert req is not None and req.retries == 1 and proto._spare is None
    loop = proto.loop
    assert isinstance(loop, Loop) and len(loop.tasks) == 1  # the retry's connect
    loop.tasks.pop().close()
    up2 = UpstreamConnection(loop, proto.ctx.pools, KEY, 60.0, proto.ctx.outbox)  # type: ignore[arg-type]
    up2.connection_made(FakeTransport())  # type: ignore[arg-type]
    proto._bind(up2, reused=False)  # what the connect task does once connected
    up2.data_received(RESP)
    assert proto.active is None and req.response_done
    assert proto._spare is None  # a connect task held it: never reused
