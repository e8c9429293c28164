"""Gateway listeners served by the L7 dataplane, end to end on loopback: a socket per
Gateway address:port beside the Ingress listener, each routed by its own listener, TLS by
SNI per listener hostname, sockets opened, moved and closed as Gateways change, requests
under way kept across reloads, a clash with the Ingress listener reported."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from discovery.gateway_attach import GatewayConfig
from discovery.snapshot import Snapshot
from discovery.snapshot_builder import build_snapshot
from ingress import selfsigned
from ingress.dataplane import IngressConfig, IngressDataplane
from tests.discovery.gatewaykit import CONTROLLER, objects
from tests.ingress.gwconfkit import EchoPod
from tests.ingress.l7kit import LoopThread
from tests.support import free_port

NS = "shop"
ONE, TWO = "127.0.21.101", "127.0.21.102"  # echo pods
GW_A, GW_B = "127.0.21.1", "127.0.21.2"  # Gateway addresses


def backend_docs() -> str:
    docs = []
    for name, address in (("one", ONE), ("two", TWO)):
        docs.append(f"""\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {NS}}}
spec:
  clusterIP: 10.96.21.{address.rsplit(".", 1)[1]}
  ports: [{{name: http, port: 80, targetPort: 3000}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-x
  namespace: {NS}
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, port: 3000}}]
endpoints: [{{addresses: [{address}], conditions: {{ready: true}}}}]
""")
    return "---\n".join(docs)


CLASS = f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: seaway}}
spec: {{controllerName: {CONTROLLER}}}
"""


def gateway(name: str, address: str, *listeners: str) -> str:
    body = "\n".join(f"  - {x}" for x in listeners)
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: {NS}}}
spec:
  gatewayClassName: seaway
  addresses: [{{value: {address}}}]
  listeners:
{body}
"""


def route(name: str, parent: str, to: str, hostnames: str = "[]", section: str = "") -> str:
    ref = f"{{name: {parent}, sectionName: {section}}}" if section else f"{{name: {parent}}}"
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {NS}}}
spec:
  parentRefs: [{ref}]
  hostnames: {hostnames}
  rules: [{{backendRefs: [{{name: {to}, port: 80}}]}}]
"""


def snapshot(*docs: str, generation: int = 1) -> Snapshot:
    snap = build_snapshot(objects(CLASS, backend_docs(), *docs))
    return snap


def http_listener(port: int, name: str = "http", hostname: str = "") -> str:
    host = f", hostname: '{hostname}'" if hostname else ""
    return f"{{name: {name}, port: {port}, protocol: HTTP{host}}}"


@pytest.fixture(scope="module")
def pods(lt: LoopThread) -> Iterator[dict[str, EchoPod]]:
    found = {"one": EchoPod("one-abc-1", NS, ONE), "two": EchoPod("two-abc-1", NS, TWO)}
    for pod in found.values():
        lt.run(pod.start())
    yield found
    for pod in found.values():
        lt.run(pod.stop())


@pytest.fixture
def dp(lt: LoopThread, pods: dict[str, EchoPod]) -> Iterator[IngressDataplane]:
    config = IngressConfig(
        http_bind_address=("127.0.21.50", free_port("127.0.21.50")),
        https_bind_address=None,
        gateway=GatewayConfig(CONTROLLER, "127.0.21.250", ("127.0.21.250",)),
    )
    plane = IngressDataplane(config)
    lt.run(plane.start())
    yield plane
    lt.run(plane.stop())


def sync(lt: LoopThread, dp: IngressDataplane, snap: Snapshot) -> None:
    lt.run(dp.sync(snap, frozenset()))


def get(address: str, port: int, host: str, path: str = "/") -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection(address, port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        body = resp.read()
        doc = json.loads(body) if resp.getheader("content-type") == "application/json" else {}
        return resp.status, doc
    finally:
        conn.close()


def refused(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_each_gateway_socket_routes_with_its_own_listener(
    lt: LoopThread, dp: IngressDataplane
) -> None:
    port = free_port(GW_A)
    snap = snapshot(
        gateway("a", GW_A, http_listener(port)),
        gateway("b", GW_B, http_listener(port)),
        route("to-one", "a", "one"),
        route("to-two", "b", "two"),
    )
    sync(lt, dp, snap)
    assert get(GW_A, port, "x.test")[1]["pod"] == "one-abc-1"
    assert get(GW_B, port, "x.test")[1]["pod"] == "two-abc-1"
    assert set(dp.gateway_addresses()) == {f"gateway {GW_A}:{port}", f"gateway {GW_B}:{port}"}
    assert dp.addresses()[0] is None  # no Ingress: no Ingress listener


def test_listeners_sharing_a_port_split_by_hostname(lt: LoopThread, dp: IngressDataplane) -> None:
    port = free_port(GW_A)
    snap = snapshot(
        gateway(
            "a",
            GW_A,
            http_listener(port, "shop", "shop.test"),
            http_listener(port, "rest", "*.test"),
        ),
        route("shop", "a", "one", section="shop"),
        route("rest", "a", "two", section="rest"),
    )
    sync(lt, dp, snap)
    assert get(GW_A, port, "shop.test")[1]["pod"] == "one-abc-1"
    assert get(GW_A, port, "a.b.test")[1]["pod"] == "two-abc-1"
    assert get(GW_A, port, "other.example")[0] == 404


def test_sockets_follow_gateways_and_requests_under_way_finish(
    lt: LoopThread, dp: IngressDataplane, pods: dict[str, EchoPod]
) -> None:
    first, moved = free_port(GW_A), free_port(GW_A)
    sync(lt, dp, snapshot(gateway("a", GW_A, http_listener(first)), route("r", "a", "one")))
    # A request under way (the backend answers after 0.5 s), and a kept-alive connection.
    result: list[int] = []
    slow = threading.Thread(target=lambda: result.append(get(GW_A, first, "x", "/?delay=500ms")[0]))
    seen = len(pods["one"].requests)
    slow.start()
    deadline = time.monotonic() + 10
    while len(pods["one"].requests) == seen and time.monotonic() < deadline:
        time.sleep(0.005)  # until the backend has it: the request is under way
    kept = http.client.HTTPConnection(GW_A, first, timeout=10)
    kept.request("GET", "/", headers={"Host": "x"})
    assert kept.getresponse().read()
    # The port changes: the old socket closes, the new one serves.
    sync(lt, dp, snapshot(gateway("a", GW_A, http_listener(moved)), route("r", "a", "two")))
    assert refused(GW_A, first)
    assert get(GW_A, moved, "x")[1]["pod"] == "two-abc-1"
    slow.join(10)
    assert result == [200]
    kept.request("GET", "/", headers={"Host": "x"})  # the old connection still answers
    assert kept.getresponse().status == 200
    kept.close()
    # The Gateway goes: its socket closes.
    sync(lt, dp, snapshot())
    assert refused(GW_A, moved)
    assert dp.gateway_addresses() == {}


def test_a_reload_keeps_an_unchanged_socket(lt: LoopThread, dp: IngressDataplane) -> None:
    port = free_port(GW_A)
    sync(lt, dp, snapshot(gateway("a", GW_A, http_listener(port)), route("r", "a", "one")))
    conn = http.client.HTTPConnection(GW_A, port, timeout=10)
    conn.request("GET", "/", headers={"Host": "x"})
    assert json.loads(conn.getresponse().read())["pod"] == "one-abc-1"
    sync(lt, dp, snapshot(gateway("a", GW_A, http_listener(port)), route("r", "a", "two")))
    conn.request("GET", "/", headers={"Host": "x"})  # same connection, new routes
    assert json.loads(conn.getresponse().read())["pod"] == "two-abc-1"
    conn.close()


def test_a_gateway_on_the_ingress_listeners_address_is_reported_not_served(
    lt: LoopThread, dp: IngressDataplane, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.ingress import routerkit as k

    ingress_addr = dp.config.http_bind_address
    assert ingress_addr is not None
    clash = gateway("a", "127.0.21.50", http_listener(ingress_addr[1]))
    other = free_port(GW_B)
    objs = objects(
        CLASS,
        backend_docs(),
        clash,
        gateway("b", GW_B, http_listener(other)),
        route("r", "a", "one"),
    )
    objs += [k.ingress_class(), k.ingress("site", k.rule("", k.path("/", "two")))]
    # the Ingress names Service "two" in namespace default: a 503 from the Ingress listener
    snap = build_snapshot(objs)
    with caplog.at_level(logging.ERROR):
        sync(lt, dp, snap)
    name = f"gateway 127.0.21.50:{ingress_addr[1]}"
    assert dp.state is not None
    assert any(name in e and "Ingress listener" in e for e in dp.state.socket_errors)
    assert any("Ingress listener's" in r.getMessage() for r in caplog.records)
    assert get(*ingress_addr, "x")[0] == 503  # still the Ingress listener's answer
    assert f"gateway {GW_B}:{other}" in dp.gateway_addresses()


def test_https_listeners_terminate_tls_with_the_certificate_of_their_hostname(
    lt: LoopThread, dp: IngressDataplane
) -> None:
    port = free_port(GW_A)
    certs = {
        "c-a": selfsigned.generate("a", ["a.test"]),
        "c-w": selfsigned.generate("w", ["*.w.test"]),
        "c-any": selfsigned.generate("any", ["default.test"]),
    }
    secrets = "---\n".join(
        f"""\
apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata: {{name: {name}, namespace: {NS}}}
data: {{tls.crt: {_b64(cert)}, tls.key: {_b64(key)}}}
"""
        for name, (cert, key) in certs.items()
    )

    def https(name: str, secret: str, hostname: str = "") -> str:
        host = f", hostname: '{hostname}'" if hostname else ""
        return (
            f"{{name: {name}, port: {port}, protocol: HTTPS{host}, "
            f"tls: {{certificateRefs: [{{name: {secret}}}]}}}}"
        )

    snap = snapshot(
        secrets,
        gateway("a", GW_A, https("one", "c-a", "a.test"), https("w", "c-w", "*.w.test"),
                https("any", "c-any")),
        route("r-a", "a", "one", section="one"),
        route("r-w", "a", "two", section="w"),
        route("r-any", "a", "one", section="any"),
    )  # fmt: skip
    sync(lt, dp, snap)
    for sni, want, pod in [
        ("a.test", "a.test", "one-abc-1"),
        ("x.y.w.test", "*.w.test", "two-abc-1"),  # Gateway wildcards: any number of labels
        ("other.test", "default.test", "one-abc-1"),
    ]:
        names, status, doc = tls_get(port, sni)
        assert names == [want], (sni, names)
        assert (status, doc.get("pod")) == (200, pod)


def tls_get(port: int, sni: str) -> tuple[list[str], int, dict[str, Any]]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((GW_A, port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=sni) as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return san.get_values_for_type(x509.DNSName), status, json.loads(body) if body else {}


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def listening(address: str, port: int) -> int:
    """How many sockets listen on address:port (one per process with SO_REUSEPORT)."""
    out = subprocess.run(
        ["ss", "-Hltn", f"src {address}:{port}"], capture_output=True, text=True, check=True
    ).stdout
    return len(out.splitlines())


@pytest.mark.skipif(shutil.which("ss") is None, reason="ss (iproute2) is not installed")
def test_worker_processes_serve_the_gateway_sockets_too(
    lt: LoopThread, pods: dict[str, EchoPod]
) -> None:
    config = IngressConfig(
        http_bind_address=None,
        https_bind_address=None,
        workers=2,
        gateway=GatewayConfig(CONTROLLER, "127.0.21.250", ("127.0.21.250",)),
    )
    plane = IngressDataplane(config)
    lt.run(plane.start())
    port, moved = free_port(GW_A), free_port(GW_A)
    try:
        sync(lt, plane, snapshot(gateway("a", GW_A, http_listener(port)), route("r", "a", "one")))
        deadline = time.monotonic() + 20
        while listening(GW_A, port) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the worker process binds once it has the config
        assert listening(GW_A, port) == 2
        assert {get(GW_A, port, "x")[1]["pod"] for _ in range(20)} == {"one-abc-1"}
        # A moved port moves in every process.
        sync(lt, plane, snapshot(gateway("a", GW_A, http_listener(moved)), route("r", "a", "two")))
        while listening(GW_A, moved) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (listening(GW_A, moved), listening(GW_A, port)) == (2, 0)
        assert {get(GW_A, moved, "x")[1]["pod"] for _ in range(20)} == {"two-abc-1"}
    finally:
        lt.run(plane.stop())


@pytest.mark.parametrize(
    ("a", "b", "clash"),
    [
        (("127.0.0.1", 80), ("127.0.0.1", 80), True),
        (("127.0.0.1", 80), ("127.0.0.1", 81), False),
        (("0.0.0.0", 80), ("127.0.0.1", 80), True),
        (("127.0.0.1", 80), ("0.0.0.0", 80), True),
        (("127.0.0.1", 80), ("127.0.0.2", 80), False),
        (("::", 80), ("127.0.0.1", 80), True),  # a dual-stack wildcard takes IPv4 too
        (("0.0.0.0", 80), ("::1", 80), False),
        (("::1", 80), ("::", 80), True),
    ],
)
def test_which_addresses_would_share_connections(
    a: tuple[str, int], b: tuple[str, int], clash: bool
) -> None:
    from ingress.apply import overlaps

    assert overlaps(a, b) is clash


def test_a_graceful_drain_closes_the_gateway_sockets_too(
    lt: LoopThread, dp: IngressDataplane
) -> None:
    port = free_port(GW_A)
    sync(lt, dp, snapshot(gateway("a", GW_A, http_listener(port)), route("r", "a", "one")))
    assert get(GW_A, port, "x")[0] == 200
    lt.run(dp.drain())
    assert refused(GW_A, port)
    sync(lt, dp, snapshot(gateway("a", GW_A, http_listener(port)), route("r", "a", "two")))
    assert refused(GW_A, port)  # draining: nothing opens again


def test_a_gateway_socket_does_not_take_the_ingress_listeners_folded_defaults(
    lt: LoopThread, pods: dict[str, EchoPod]
) -> None:
    """ingress-nginx's ConfigMap defaults (a body limit here) are the Ingress listener's
    filters, folded into the worker's settings (ingress/filters/runtime.py); a Gateway
    socket keeps the settings as configured."""
    from discovery.snapshot import EndpointInfo
    from ingress.route_filters import BodyLimit
    from ingress.route_match import compile_table
    from ingress.routes import (
        Backend,
        Forward,
        Listener,
        PathMatch,
        Route,
        RouteMatch,
        RouteSource,
        RouteTable,
        VirtualHost,
    )
    from ingress.server import SocketSpec, WorkerServer
    from ingress.settings import HttpSettings

    to_one = Forward((Backend("shop/one:80", (EndpointInfo(ONE, 3000),)),))
    route_ = Route(RouteMatch(PathMatch()), to_one, RouteSource("Test", NS, "r"))
    vhosts = (VirtualHost((), (route_,)),)
    port, gw_port = free_port("127.0.21.50"), free_port(GW_A)
    name = f"gateway {GW_A}:{gw_port}"
    table = RouteTable(
        (
            Listener("ingress", vhosts, filters=(BodyLimit(1024),)),
            Listener(name, vhosts, port=gw_port, address=GW_A, protocol="HTTP"),
        )
    )
    compiled = compile_table(table)

    async def serve() -> WorkerServer:
        server = WorkerServer(asyncio.get_running_loop(), HttpSettings(), compiled)
        router = compiled.listener(name)
        assert router is not None
        spec = SocketSpec(name, (GW_A, gw_port), router)
        assert await server.apply(compiled, ("127.0.21.50", port), None, None, [spec]) == []
        return server

    server = lt.run(serve())
    try:
        assert server.ctx.settings.max_body_size == 1024
        assert server.sockets[name].ctx.settings.max_body_size == 0
        body = b"x" * 4096
        assert post(("127.0.21.50", port), body) == 413
        assert post((GW_A, gw_port), body) == 200
    finally:
        lt.run(server.close())


def post(address: tuple[str, int], body: bytes) -> int:
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request("POST", "/", body=body, headers={"Host": "x"})
        return conn.getresponse().status
    finally:
        conn.close()
