"""Gateway API TCPRoute and UDPRoute on the userspace L4 proxy: real sockets on loopback.

Upstream: kubernetes-sigs/gateway-api conformance/tests/tcproute-weighted-routing.go
(TCPRouteWeightedRouting: 500 connections, 70/30 within 3 points, retried as upstream
retries), tcproute-parentref-port-and-section-name.go (attachment by sectionName and
port); the manifests adapted: Gateways on loopback addresses and free ports, backends
are echo servers this test starts (the suite's tcp-backend-v1/v2), reached through
headless Services with EndpointSlices.
"""

from __future__ import annotations

import asyncio

from discovery.gateway_attach import attach_gateways
from discovery.gateway_status import gateway_status, route_parents
from discovery.model_gateway import RouteGroupKind
from discovery.snapshot_builder import build_snapshot
from proxy.userspace.dataplane import UserspaceConfig, UserspaceDataplane
from proxy.userspace.listeners import ListenerKey
from tests.discovery.gatewaykit import BASE, CONTROLLER, INFRA, NOW, config, objects

from .helpers import NamedBackend, free_port, loopback_ip, run
from .test_udp import UdpEcho, _client

GROUP = "gateway.networking.k8s.io"


def headless(name: str, port: int, backend_port: int, protocol: str = "TCP") -> str:
    return f"""\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {INFRA}}}
spec:
  clusterIP: None
  ports: [{{name: p, port: {port}, targetPort: {backend_port}, protocol: {protocol}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-1
  namespace: {INFRA}
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: p, port: {backend_port}, protocol: {protocol}}}]
endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]
"""


def gateway(name: str, ip: str, listeners: str) -> str:
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: {INFRA}}}
spec:
  gatewayClassName: seaway
  addresses: [{{value: {ip}}}]
  listeners:
{listeners}"""


def dataplane() -> UserspaceDataplane:
    return UserspaceDataplane(
        UserspaceConfig(gateway=config()), local_addresses=frozenset, sweep_interval=0
    )


async def ask(ip: str, port: int) -> str:
    reader, writer = await asyncio.open_connection(ip, port)
    try:
        writer.write(b"hi")
        data = await asyncio.wait_for(reader.read(100), 5)
        return data.decode().split(":")[0]
    finally:
        writer.close()


def test_TCPRouteWeightedRouting() -> None:
    """tcproute-weighted-routing.go: tcp-backend-v1 weight 70, tcp-backend-v2 weight 30;
    500 connections split within 3 points of 70/30 (upstream retries a failed attempt;
    so does this port, up to 3 times)."""

    async def main() -> None:
        v1, v2 = NamedBackend("tcp-backend-v1"), NamedBackend("tcp-backend-v2")
        await v1.start()
        await v2.start()
        ip = loopback_ip()
        port = free_port(ip)
        route = f"""\
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {{name: tcp-weighted-route, namespace: {INFRA}}}
spec:
  parentRefs: [{{name: tcp-weighted-gateway, sectionName: tcp}}]
  rules:
  - backendRefs:
    - {{name: tcp-backend-v1, port: 8080, weight: 70}}
    - {{name: tcp-backend-v2, port: 8080, weight: 30}}
"""
        snap = build_snapshot(objects(
            BASE,
            gateway("tcp-weighted-gateway", ip,
                    f"  - {{name: tcp, port: {port}, protocol: TCP}}\n"),
            route,
            headless("tcp-backend-v1", 8080, v1.port),
            headless("tcp-backend-v2", 8080, v2.port),
        ))  # fmt: skip
        attachment = attach_gateways(snap, config())
        state = attachment.gateway(INFRA, "tcp-weighted-gateway")
        assert state is not None
        (listener,) = gateway_status(state, NOW).listeners
        assert listener.supported_kinds == (RouteGroupKind("TCPRoute", GROUP),)
        assert listener.attached_routes == 1
        (tcp_route,) = snap.tcp_routes
        (parent,) = route_parents(tcp_route, attachment.routes[0], CONTROLLER, NOW)
        assert {c.type: c.status for c in parent.conditions} == {
            "Accepted": "True", "ResolvedRefs": "True"
        }
        dp = dataplane()
        await dp.start()
        try:
            await dp.sync(snap, frozenset())
            assert ListenerKey("TCP", ip, port) in dp.listening()
            for _attempt in range(3):
                seen = [await ask(ip, port) for _ in range(500)]
                share = seen.count("tcp-backend-v1") / len(seen)
                assert set(seen) == {"tcp-backend-v1", "tcp-backend-v2"}
                if abs(share - 0.7) <= 0.03:
                    break
            else:
                raise AssertionError(f"tcp-backend-v1 got {share:.2%} of 500, not 70% +/- 3")
            # The route goes: the listener closes.
            await dp.sync(build_snapshot(objects(BASE, gateway(
                "tcp-weighted-gateway", ip, f"  - {{name: tcp, port: {port}, protocol: TCP}}\n"
            ))), frozenset())  # fmt: skip
            assert ListenerKey("TCP", ip, port) not in dp.listening()
        finally:
            await dp.stop()
            for b in (v1, v2):
                assert b.server is not None
                b.server.close()

    run(main(), timeout=120)


def test_TCPRouteParentRefPortAndSectionName_and_a_UDPRoute() -> None:
    """tcproute-parentref-port-and-section-name.go: routes attach to a TCP listener by
    sectionName and by port; a UDPRoute on a UDP listener relays datagrams (UDP echo)."""

    async def main() -> None:
        a, b = NamedBackend("a"), NamedBackend("b")
        await a.start()
        await b.start()
        loop = asyncio.get_running_loop()
        echo = UdpEcho("udp")
        transport, _ = await loop.create_datagram_endpoint(
            echo.factory, local_addr=("127.0.0.1", 0)
        )
        udp_backend = transport.get_extra_info("sockname")[1]
        ip = loopback_ip()
        p1, p2, p3 = free_port(ip), free_port(ip), free_port(ip, 2)  # 2: SOCK_DGRAM
        listeners = (
            f"  - {{name: by-section, port: {p1}, protocol: TCP}}\n"
            f"  - {{name: by-port, port: {p2}, protocol: TCP}}\n"
            f"  - {{name: dgram, port: {p3}, protocol: UDP}}\n"
        )
        routes = f"""\
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {{name: section, namespace: {INFRA}}}
spec:
  parentRefs: [{{name: gw, sectionName: by-section}}]
  rules: [{{backendRefs: [{{name: svc-a, port: 80}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {{name: port, namespace: {INFRA}}}
spec:
  parentRefs: [{{name: gw, port: {p2}}}]
  rules: [{{backendRefs: [{{name: svc-b, port: 80}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: UDPRoute
metadata: {{name: dgram, namespace: {INFRA}}}
spec:
  parentRefs: [{{name: gw, sectionName: dgram}}]
  rules: [{{backendRefs: [{{name: svc-u, port: 53}}]}}]
"""
        snap = build_snapshot(objects(
            BASE, gateway("gw", ip, listeners), routes,
            headless("svc-a", 80, a.port), headless("svc-b", 80, b.port),
            headless("svc-u", 53, udp_backend, "UDP"),
        ))  # fmt: skip
        state = attach_gateways(snap, config()).gateway(INFRA, "gw")
        assert state is not None
        counts = {ls.name: ls.attached_routes for ls in gateway_status(state, NOW).listeners}
        assert counts == {"by-section": 1, "by-port": 1, "dgram": 1}
        dp = dataplane()
        await dp.start()
        try:
            await dp.sync(snap, frozenset())
            assert await ask(ip, p1) == "a"
            assert await ask(ip, p2) == "b"
            client = await _client()
            answer, _ = await client.ask(b"ping", ip, p3)
            assert answer == b"udp:ping"
            client.close()
        finally:
            await dp.stop()
            transport.close()
            for backend in (a, b):
                assert backend.server is not None
                backend.server.close()

    run(main(), timeout=60)
