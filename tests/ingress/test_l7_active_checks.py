"""Active health checks end to end on real sockets, as the daemon wires them: the checker
probes `GET /healthz` of a Service's endpoints, and its verdicts reach the L7 dataplane's
own worker and, over the pipe, its worker process (--workers 2). An endpoint whose health
path fails leaves rotation after exactly unhealthy-threshold (3) failed checks, and
comes back after exactly healthy-threshold (2) passes."""

from __future__ import annotations

import asyncio

from discovery.model import EndpointHealth, LoadBalancing
from discovery.snapshot import EndpointInfo
from ingress.dataplane import IngressDataplane
from proxy.active_checker import ActiveChecker
from proxy.app.options import Options
from proxy.outlier import Address
from tests.ingress import routerkit as k
from tests.ingress.l7kit import HOST, HeadReader, LoopThread, get, port_info
from tests.support import wait_until

HEALTH = EndpointHealth(check_path="/healthz", check_interval=0.2, check_timeout=1.0,
                        healthy_threshold=2, unhealthy_threshold=3)


class Pod(HeadReader):
    """Answers `GET /healthz` with 200 or 503 (`state.healthy`), anything else with its
    name; counts its health checks by result."""

    def __init__(self, state: PodState) -> None:
        super().__init__()
        self.state = state

    def on_head(self, head: bytes, transport: asyncio.Transport) -> None:
        if head.startswith(b"GET /healthz "):
            ok = self.state.healthy
            self.state.checks[ok] += 1
            status = b"200 OK" if ok else b"503 Service Unavailable"
            transport.write(b"HTTP/1.1 %s\r\nContent-Length: 0\r\n\r\n" % status)
        else:
            name = self.state.name.encode()
            transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(name), name))


class PodState:
    def __init__(self, name: str) -> None:
        self.name = name
        self.healthy = True
        self.checks = {True: 0, False: 0}
        self.port = 0

    @property
    def address(self) -> Address:
        return (HOST, self.port)


async def start_pod(state: PodState) -> asyncio.AbstractServer:
    server = await asyncio.get_running_loop().create_server(lambda: Pod(state), HOST, 0)
    state.port = server.sockets[0].getsockname()[1]
    return server


def test_a_failing_health_path_leaves_rotation_and_comes_back(lt: LoopThread) -> None:
    good, bad = PodState("good"), PodState("bad")
    servers = [lt.run(start_pod(s)) for s in (good, bad)]
    dp = IngressDataplane(
        Options(http_bind_address=(HOST, 0), https_bind_address=(HOST, 0), workers=2)
        .ingress_config()
    )
    verdicts: list[tuple[frozenset[Address], dict[bool, int]]] = []

    def on_change(down: frozenset[Address]) -> None:
        verdicts.append((down, dict(bad.checks)))
        dp.set_health_verdicts(down)

    async def make_checker() -> ActiveChecker:
        return ActiveChecker(asyncio.get_running_loop(), on_change)

    lt.run(dp.start())
    checker = lt.run(make_checker())
    try:
        eps = [EndpointInfo(*good.address), EndpointInfo(*bad.address)]
        snap = k.snapshot(
            [k.ingress("a", k.rule("a.test", k.path("/", "web")))],
            [port_info("web", eps, balancing=LoadBalancing(health=HEALTH))],
        )
        lt.run(dp.sync(snap, frozenset(snap.service_ports)))
        lt.loop.call_soon_threadsafe(checker.update, snap)
        http, _ = dp.addresses()
        assert http is not None

        def names(n: int) -> set[bytes]:  # fresh connections: both processes serve
            return {get(http[1], "/", host="a.test")[1] for _ in range(n)}

        wait_until(lambda: names(10) == {b"good", b"bad"}, 20, "both pods in rotation")
        wait_until(lambda: bad.checks[True] >= 2, 10, "health checks passing")

        bad.healthy = False
        wait_until(lambda: bool(verdicts) and verdicts[-1][0] == {bad.address}, 10,
                   "the failing pod out")
        assert verdicts[-1][1][False] == 3  # exactly unhealthy-threshold failed checks
        # The worker process hears it over its pipe: soon nothing goes to the bad pod.
        wait_until(lambda: names(20) == {b"good"}, 10, "no request to the failing pod")
        assert names(40) == {b"good"}

        passes = bad.checks[True]
        bad.healthy = True
        wait_until(lambda: verdicts[-1][0] == frozenset(), 10, "the pod back")
        assert verdicts[-1][1][True] - passes == 2  # exactly healthy-threshold passes
        wait_until(lambda: b"bad" in names(10), 10, "requests reach it again")
    finally:
        lt.loop.call_soon_threadsafe(checker.close)
        lt.run(dp.stop())
        for s in servers:
            s.close()
