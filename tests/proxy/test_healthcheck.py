"""Health-check node ports: what is served (pure), kube-proxy's TestServer sequence
(pkg/proxy/healthcheck/healthcheck_test.go) over real HTTP on loopback, and the daemon
serving them in userspace mode, asked by curl."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from pathlib import Path

import aiohttp
import pytest

from discovery.snapshot import EndpointInfo, ServicePortInfo, Snapshot
from proxy.healthcheck import ServiceHealth, answer, desired_health_checks
from proxy.healthcheck_server import HealthCheckConfig, HealthCheckServer
from tests.proxy.iptables.helpers import spn
from tests.support import free_port, seaway, wait_until

NODE = "node-a"


def local(*ips: str, ready: bool = True, node: str = NODE) -> tuple[EndpointInfo, ...]:
    return tuple(
        EndpointInfo(ip, 8080, ready=ready, serving=True, terminating=not ready, node_name=node)
        for ip in ips
    )


def lb(
    ns: str, name: str, hc: int | None, endpoints: tuple[EndpointInfo, ...] = (), port: str = ""
) -> ServicePortInfo:
    n = spn(name, port, ns=ns)
    return ServicePortInfo(
        n, ("10.96.0.1",), 80, "TCP", health_check_node_port=hc, all_endpoints=endpoints
    )


def snap(*ports: ServicePortInfo) -> Snapshot:
    return Snapshot(service_ports={p.name: p for p in ports})


def test_desired_ports_count_distinct_local_ready_addresses() -> None:
    eps = local("10.1.0.1", "10.1.0.2") + local("10.1.0.9", node="node-b")
    eps += local("10.1.0.3", ready=False)  # terminating: does not keep the node in
    desired = desired_health_checks(
        snap(
            lb("shop", "web", 32001, eps, port="http"),
            lb("shop", "web", 32001, local("10.1.0.1"), port="https"),  # same address
            lb("shop", "plain", None, eps),  # no health-check port: not served
            lb("other", "clash", 32001, eps),  # the port is taken (name order wins)
        ),
        NODE,
    )
    assert desired == {32001: ServiceHealth("other", "clash", 2)}
    only = desired_health_checks(snap(lb("shop", "web", 32001, eps, port="http")), NODE)
    assert only == {32001: ServiceHealth("shop", "web", 2)}


def test_answer_is_kube_proxys() -> None:
    status, headers, body = answer(ServiceHealth("a", "b", 18), True)
    assert status == 200
    assert headers == {
        "Content-Type": "application/json",
        "X-Content-Type-Options": "nosniff",
        "X-Load-Balancing-Endpoint-Weight": "18",
    }
    assert body == (
        b'{\n\t"service": {\n\t\t"namespace": "a",\n\t\t"name": "b"\n\t},\n'
        b'\t"localEndpoints": 18,\n\t"serviceProxyHealthy": true\n}'
    )
    assert answer(ServiceHealth("a", "b", 0), True)[0] == 503
    assert answer(ServiceHealth("a", "b", 3), False)[0] == 503


async def ask(port: int, path: str = "/healthz") -> tuple[int, dict[str, object], str]:
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"http://127.0.0.1:{port}{path}") as resp,
    ):
        return resp.status, json.loads(await resp.read()), resp.headers["Content-Type"]


def distinct_ports(n: int) -> list[int]:
    """n free ports, all different (free_port alone may hand the same one out twice)."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def n_local(n: int) -> tuple[EndpointInfo, ...]:
    return local(*(f"10.1.0.{i}" for i in range(1, n + 1)))


def test_server_sequence_as_kube_proxys_test_server() -> None:
    """TestServer: sync nothing; a service (503, 0); 18 endpoints (200); zero (503); the
    service deleted (port closed); three services; one removed, one left, one moved to
    another port, one added; an unhealthy proxy answers 503 with the counts kept."""
    p1, p2, p3, p3b, p4 = distinct_ports(5)
    healthy = [True]

    async def main() -> None:
        hc = HealthCheckServer(HealthCheckConfig(NODE), proxy_healthy=lambda: healthy[0])
        await hc.start()
        try:
            await hc.sync(snap(), frozenset())
            assert hc.ports() == []
            await hc.sync(snap(lb("a", "b", p1)), frozenset())
            assert hc.ports() == [p1]
            status, body, ctype = await ask(p1)
            assert (status, body["localEndpoints"], ctype) == (503, 0, "application/json")
            assert body["service"] == {"namespace": "a", "name": "b"}
            await hc.sync(snap(lb("a", "b", p1, n_local(18))), frozenset())
            assert (await ask(p1))[:2] == (200, {**body, "localEndpoints": 18})
            await hc.sync(snap(lb("a", "b", p1)), frozenset())
            assert (await ask(p1))[0] == 503
            await hc.sync(snap(), frozenset())
            assert hc.ports() == [] and refused(p1)

            three = [lb("a", "b", p1, n_local(9)), lb("c", "d", p2, n_local(3))]
            await hc.sync(snap(*three, lb("e", "f", p3, n_local(7))), frozenset())
            assert hc.ports() == sorted([p1, p2, p3])
            assert [(await ask(p))[1]["localEndpoints"] for p in (p1, p2, p3)] == [9, 3, 7]
            await hc.sync(
                snap(three[1], lb("e", "f", p3b, n_local(7)), lb("g", "h", p4, n_local(6))),
                frozenset(),
            )
            assert hc.ports() == sorted([p2, p3b, p4]) and refused(p1) and refused(p3)
            assert [(await ask(p))[1]["localEndpoints"] for p in (p2, p3b, p4)] == [3, 7, 6]

            healthy[0] = False
            for p, count in ((p2, 3), (p3b, 7), (p4, 6)):
                status, body, _ = await ask(p, "/any/path")
                assert status == 503
                assert (body["localEndpoints"], body["serviceProxyHealthy"]) == (count, False)
        finally:
            await hc.stop()
        assert refused(p2) and refused(p4)

    asyncio.run(main())


def test_busy_port_is_retried_at_the_next_sync() -> None:
    port = free_port()

    async def main() -> None:
        hc = HealthCheckServer(HealthCheckConfig(NODE))
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("0.0.0.0", port))
        blocker.listen()
        try:
            await hc.sync(snap(lb("a", "b", port, n_local(1))), frozenset())
            assert hc.ports() == []  # logged, not raised: other dataplanes keep syncing
        finally:
            blocker.close()
        try:
            await hc.sync(snap(lb("a", "b", port, n_local(1))), frozenset())
            assert hc.ports() == [port] and (await ask(port))[0] == 200
        finally:
            await hc.stop()

    asyncio.run(main())


LB_MANIFEST = """\
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  healthCheckNodePort: {hc}
  clusterIP: 127.0.90.1
  ports: [{{port: {port}, targetPort: 8080, nodePort: {node_port}}}]
status: {{loadBalancer: {{ingress: [{{ip: 127.0.90.2}}]}}}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: shop
  labels: {{kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{{port: 8080}}]
endpoints:
{endpoints}
"""


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_daemon_serves_health_check_node_ports_in_userspace_mode(tmp_path: Path) -> None:
    hc, port, node_port = distinct_ports(3)

    def write(*nodes: str) -> None:
        eps = "".join(
            f"- {{addresses: [127.0.0.{i + 11}], nodeName: {n}}}\n" for i, n in enumerate(nodes)
        )
        text = LB_MANIFEST.format(hc=hc, port=port, node_port=node_port, endpoints=eps or "[]")
        (tmp_path / "web.yaml").write_text(text)

    def curl() -> tuple[int, dict[str, object]]:
        out = subprocess.run(
            ["curl", "-s", "-m", "2", "-w", "\n%{http_code}", f"http://127.0.0.1:{hc}/"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        body, _, code = out.rpartition("\n")
        return int(code or 0), json.loads(body) if body else {}

    write("node-a", "node-a", "node-b")
    args = [
        "run",
        "-c",
        str(tmp_path),
        "--proxy-mode",
        "userspace",
        "--hostname-override",
        "node-a",
        "--healthz-bind-address",
        f"127.0.0.1:{free_port()}",
        "--metrics-bind-address",
        f"127.0.0.1:{free_port()}",
        "--http-bind-address",
        f"127.0.0.1:{free_port()}",
        "--workers",
        "1",
    ]
    with seaway(args):
        wait_until(lambda: curl()[0] == 200, what="health-check port answering 200")
        status, body = curl()
        assert status == 200 and body["localEndpoints"] == 2
        assert body["service"] == {"namespace": "shop", "name": "web"}
        write("node-b")  # no local endpoint left: the load balancer must drain this node
        wait_until(lambda: curl()[0] == 503, what="503 without local endpoints")
        assert curl()[1]["localEndpoints"] == 0
