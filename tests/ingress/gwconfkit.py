"""The Gateway API conformance suite's HTTP machinery, for ported traffic tests.

What upstream runs in a cluster runs here on loopback, with the upstream manifests as
files (tests/ingress/gateway_conformance/, copied from kubernetes-sigs/gateway-api
conformance/base/manifests.yaml and conformance/tests/httproute-*.yaml) adapted the way a
cluster would make them real:

- every Deployment becomes one echo "pod" (an echo-basic look-alike, `EchoPod`) on a
  loopback address of its own; a Service selecting it gets an EndpointSlice naming that
  pod (what the EndpointSlice controller does), and the EndpointSlices a test writes
  without endpoints get the infra-backend-v1 pod (what the test's setup does);
- every Gateway gets a loopback address of its own in spec.addresses (the cluster's
  load balancer would give it one) and keeps its listeners' ports (80, 443, 8080...);
- the TLS Secret the suite creates is generated, valid for the names the tests use;
- objects get increasing creationTimestamps in file order (kubectl apply's order).

`Rig.apply(*files)` serves the base objects plus a test's manifests through one
IngressDataplane with real sockets (each apply reloads it in place), and returns the
status seaway computes (tests.discovery.gatewaykit.World) for the upstream status checks.
`Expected` and `compare` mirror conformance/utils/http/http.go (ExpectedResponse,
CompareRoundTrip), `round_trip` its roundtripper (Go's client: Host header, the
X-Echo-Set-Header request header, Location parsed into scheme/host/port/path).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httptools
import pytest
import yaml

from discovery.gateway_attach import GatewayConfig, attach_gateways
from discovery.manifest import parse_manifest_text
from discovery.snapshot_builder import build_snapshot
from ingress.dataplane import IngressConfig, IngressDataplane
from ingress.selfsigned import generate
from tests.discovery.gatewaykit import (
    CONTROLLER,
    World,
    gateway_and_routes_accepted,
    route_resolved_refs_true,
)
from tests.ingress.l7kit import LoopThread

MANIFESTS = Path(__file__).parent / "gateway_conformance"
INFRA = "gateway-conformance-infra"
APP = "gateway-conformance-app-backend"
WEB = "gateway-conformance-web-backend"
V1, V2, V3 = "infra-backend-v1", "infra-backend-v2", "infra-backend-v3"
SAME = (INFRA, "same-namespace")
NEEDS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the conformance Gateways listen on ports 80 and 443 (as their manifests say): "
    "binding them needs root",
)



# Loopback ranges of this suite: echo pods, then Gateways.
POD_NET = "127.0.14."
GATEWAY_NET = "127.0.13."
# The certificate the suite generates for tls-validity-checks-certificate, with the
# names its tests connect with.
CERT_NAMES = (
    "example.org",
    "*.example.org",
    "second-example.org",
    "unknown-example.org",
    "*.wildcard.org",
    "fourth-example.wildcard.org",
)
ECHO_PORTS = (3000, 3001)


# -- the echo pods ----------------------------------------------------------------------------


def _delay(target: str) -> float:
    """echo-basic's ?delay=1s / 500ms."""
    values = parse_qs(urlsplit(target).query).get("delay")
    if not values:
        return 0.0
    text = values[0]
    for unit, scale in (("ms", 0.001), ("s", 1.0)):
        if text.endswith(unit):
            try:
                return float(text[: -len(unit)]) * scale
            except ValueError:
                return 0.0
    return 0.0


def canonical(name: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey ("x-header-add" -> "X-Header-Add"): the echo
    server groups a request's fields by it, as Go's net/http does."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


class _EchoProtocol(asyncio.Protocol):
    """echo-basic: answers JSON describing the request (path with its query, host,
    method, headers, namespace, pod); X-Echo-Set-Header "name:value,..." sets response
    headers; ?delay= delays the answer."""

    def __init__(self, pod: EchoPod) -> None:
        self.pod = pod
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.websocket: _WebSocketEcho | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.websocket is not None:
            self.websocket.feed(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            if self.websocket is not None:  # the 101 was sent: frames may follow at once
                self.websocket.feed(data[upgrade.args[0] :])
            elif self.transport is not None:
                self.transport.close()
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_message_complete(self) -> None:
        target = self.url.decode("latin-1")
        headers: dict[str, list[str]] = {}
        for name, value in self.headers:
            headers.setdefault(canonical(name), []).append(value)
        host = next((v for n, v in self.headers if n.lower() == "host"), "")
        method = self.parser.get_method().decode()
        captured = {
            "path": target,
            "host": host,
            "method": method,
            "proto": "HTTP/1.1",
            "headers": headers,
            "namespace": self.pod.namespace,
            "ingress": "",
            "service": "",
            "pod": self.pod.name,
        }
        self.pod.requests.append(captured)
        ws_key = headers.get("Sec-Websocket-Key")
        if ws_key and ",".join(headers.get("Upgrade", ())).lower() == "websocket":
            self._accept_websocket(ws_key[0])
            return
        extra = b""
        for name, values in headers.items():
            if name != "X-Echo-Set-Header":
                continue
            for pair in ",".join(values).split(","):
                key, sep, val = pair.partition(":")
                if sep and key.strip():
                    extra += f"{key.strip()}: {val.strip()}\r\n".encode()
        body = json.dumps(captured).encode()
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + extra
            + b"Content-Length: %d\r\n\r\n" % len(body)
        )
        delay = _delay(target)
        loop = asyncio.get_running_loop()
        if delay:
            loop.call_later(delay, self._send, head + body)
        else:
            self._send(head + body)

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _accept_websocket(self, key: str) -> None:
        """echo-basic's /ws: the RFC 6455 handshake, then every message echoed."""
        digest = hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()
        accept = base64.b64encode(digest)
        self._send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.websocket = _WebSocketEcho(self._send, self._close)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class _WebSocketEcho:
    """RFC 6455 frames in (masked, from a client), the same frames out unmasked; a close
    is answered with a close, a ping with a pong."""

    def __init__(self, send: Callable[[bytes], None], close: Callable[[], None]) -> None:
        self.send = send
        self.close = close
        self.buffer = b""

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while (frame := self._frame()) is not None:
            first, payload = frame
            opcode = first & 0x0F
            if opcode == 0x9:  # ping -> pong
                first = (first & 0xF0) | 0xA
            self.send(bytes([first]) + _length(len(payload)) + payload)
            if opcode == 0x8:
                self.close()
                return

    def _frame(self) -> tuple[int, bytes] | None:
        b = self.buffer
        if len(b) < 2:
            return None
        size, at = b[1] & 0x7F, 2
        if size == 126:
            size, at = int.from_bytes(b[2:4], "big"), 4
        elif size == 127:
            size, at = int.from_bytes(b[2:10], "big"), 10
        mask = b[at : at + 4] if b[1] & 0x80 else b""
        at += len(mask)
        if len(b) < at + size:
            return None
        payload = b[at : at + size]
        if mask:
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        self.buffer = b[at + size :]
        return b[0], payload


def _length(n: int) -> bytes:
    if n < 126:
        return bytes([n])
    if n < 1 << 16:
        return bytes([126]) + n.to_bytes(2, "big")
    return bytes([127]) + n.to_bytes(8, "big")


class EchoPod:
    """One pod of a conformance Deployment: echo servers on its address's ECHO_PORTS."""

    def __init__(self, name: str, namespace: str, address: str) -> None:
        self.name = name
        self.namespace = namespace
        self.address = address
        self.requests: list[dict[str, Any]] = []
        self.servers: list[asyncio.AbstractServer] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for port in ECHO_PORTS:
            server = await loop.create_server(
                lambda: _EchoProtocol(self), self.address, port, reuse_address=True
            )
            self.servers.append(server)

    async def stop(self) -> None:
        for server in self.servers:
            server.close()


def pod_name(deployment: str, index: int) -> str:
    """{deployment}-{replicaset hash}-{pod hash}, as upstream's weight helper expects."""
    return f"{deployment}-5c9d7f8b6-x{index:04d}"


def backend_name(pod: str) -> str:
    """conformance/utils/weight.extractBackendName."""
    parts = pod.split("-")
    return pod if len(parts) < 3 else "-".join(parts[:-2])


# -- manifests ---------------------------------------------------------------------------------


def _docs(path: Path) -> list[dict[str, Any]]:
    text = path.read_text().replace("{GATEWAY_CLASS_NAME}", "seaway")
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


_CERT: tuple[bytes, bytes] | None = None


def certificate() -> tuple[bytes, bytes]:
    """(cert PEM, key PEM) of tls-validity-checks-certificate (made once)."""
    global _CERT
    if _CERT is None:
        _CERT = generate("gateway-conformance", CERT_NAMES)
    return _CERT


def _secret(name: str, namespace: str) -> dict[str, Any]:
    cert, key = certificate()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace},
        "data": {
            "tls.crt": base64.b64encode(cert).decode(),
            "tls.key": base64.b64encode(key).decode(),
        },
    }


def _slice(service: Mapping[str, Any], pod: EchoPod) -> dict[str, Any]:
    meta = service["metadata"]
    ports = []
    for sp in service["spec"].get("ports", ()):
        target = sp.get("targetPort", sp["port"])
        ports.append({"name": sp.get("name", ""), "port": target, "protocol": "TCP"})
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{meta['name']}-abcde",
            "namespace": meta.get("namespace", "default"),
            "labels": {"kubernetes.io/service-name": meta["name"]},
        },
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": [
            {
                "addresses": [pod.address],
                "conditions": {"ready": True},
                "targetRef": {"kind": "Pod", "name": pod.name},
            }
        ],
    }


# -- the rig: seaway serving the manifests ----------------------------------------------------


HTTP_DEPLOYMENTS = (V1, V2, V3, "app-backend-v1", "app-backend-v2", "web-backend")


class Rig:
    """Echo pods and one IngressDataplane serving base + test manifests on loopback."""

    def __init__(self, lt: LoopThread) -> None:
        self.lt = lt
        self.base = _docs(MANIFESTS / "base-manifests.yaml")
        self.pods: dict[str, EchoPod] = {}  # by app label (the Deployment's name)
        for doc in self.base:
            meta = doc["metadata"]
            if doc["kind"] == "Deployment" and meta["name"] in HTTP_DEPLOYMENTS:
                address = f"{POD_NET}{len(self.pods) + 1}"
                pod = EchoPod(pod_name(meta["name"], 1), meta["namespace"], address)
                self.pods[meta["name"]] = pod
        self.addresses: dict[tuple[str, str], str] = {}
        default = f"{GATEWAY_NET}254"
        self.config = GatewayConfig(CONTROLLER, default, (default,))
        self.dataplane = IngressDataplane(
            IngressConfig(http_bind_address=None, https_bind_address=None, gateway=self.config)
        )
        lt.run(self._start())

    async def _start(self) -> None:
        for pod in self.pods.values():
            await pod.start()
        await self.dataplane.start()

    def close(self) -> None:
        async def stop() -> None:
            await self.dataplane.stop()
            for pod in self.pods.values():
                await pod.stop()

        self.lt.run(stop())

    # -- manifests -> objects -> served ---------------------------------------------------

    def gateway_address(self, namespace: str, name: str) -> str:
        key = (namespace, name)
        if key not in self.addresses:
            self.addresses[key] = f"{GATEWAY_NET}{len(self.addresses) + 1}"
        return self.addresses[key]

    def _adapt(self, docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "GatewayClass",
                "metadata": {"name": "seaway"},
                "spec": {"controllerName": CONTROLLER},
            },
            _secret("tls-validity-checks-certificate", INFRA),
        ]
        for number, doc in enumerate(docs):
            kind = doc.get("kind")
            meta = doc.setdefault("metadata", {})
            ns = meta.get("namespace", "default")
            meta["creationTimestamp"] = f"2026-01-01T00:{number // 60:02d}:{number % 60:02d}Z"
            if kind in ("Deployment", "ConfigMap"):
                continue
            spec = doc.get("spec") or {}
            if kind == "Gateway" and not spec.get("addresses"):
                spec["addresses"] = [
                    {"type": "IPAddress", "value": self.gateway_address(ns, meta["name"])}
                ]
            if kind == "Service":
                app = (spec.get("selector") or {}).get("app")
                if app in self.pods:
                    out.append(_slice(doc, self.pods[app]))
            manual = kind == "EndpointSlice" and not doc.get("endpoints")
            if manual and doc.get("addressType") == "IPv4":  # what the test's setup does
                pod = self.pods[V1]
                doc["endpoints"] = [{"addresses": [pod.address], "conditions": {"ready": True}}]
            out.append(doc)
        return out

    def apply(self, *files: str, extra: Iterable[dict[str, Any]] = ()) -> World:
        """Serve the base objects plus `files` (names in gateway_conformance/) and
        `extra` documents; the status seaway computes for them."""
        docs = list(self.base)
        for name in files:
            docs += _docs(MANIFESTS / name)
        docs += list(extra)
        text = yaml.safe_dump_all(self._adapt(_copy(docs)))
        objects, errors = parse_manifest_text(text, "conformance.yaml")
        assert not errors, "\n".join(str(e) for e in errors)
        snapshot = build_snapshot(objects)
        self.lt.run(self.dataplane.sync(snapshot, frozenset()))
        return World(snapshot, attach_gateways(snapshot, self.config))

    def manifest(self, name: str) -> list[dict[str, Any]]:
        """The documents of a manifest in gateway_conformance/ (for edited re-applies)."""
        return _docs(MANIFESTS / name)

    def addr(self, namespace: str, name: str, port: int = 80) -> str:
        """gwAddr of a Gateway: its address and a listener port."""
        return f"{self.addresses[(namespace, name)]}:{port}"

    def pods_of(self, backend: str) -> list[EchoPod]:
        return [p for p in self.pods.values() if backend_name(p.name) == backend]


def _copy(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return json.loads(json.dumps(docs))  # type: ignore[no-any-return]


# -- the client (conformance/utils/roundtripper) -------------------------------------------------


@dataclass
class Request:
    host: str = ""
    method: str = ""
    path: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    unfollow_redirect: bool = False


@dataclass
class ExpectedRequest(Request):
    absent_headers: tuple[str, ...] = ()


@dataclass
class Response:
    status: int = 0
    statuses: tuple[int, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    absent_headers: tuple[str, ...] = ()

    def codes(self) -> tuple[int, ...]:
        codes = tuple(self.statuses)
        if self.status and self.status not in codes:
            codes += (self.status,)
        return codes or (200,)


@dataclass
class RedirectRequest:
    scheme: str = ""
    host: str = ""
    port: str = ""
    path: str = ""


@dataclass
class Expected:
    """conformance/utils/http.ExpectedResponse."""

    request: Request
    response: Response = field(default_factory=Response)
    expected_request: ExpectedRequest | None = None
    redirect_request: RedirectRequest | None = None
    backend_set_response_headers: Mapping[str, str] = field(default_factory=dict)
    backend: str = ""
    namespace: str = ""
    mirrored_to: tuple[tuple[str, str], ...] = ()  # (name, namespace) of mirror backends
    name: str = ""

    def test_name(self, index: int) -> str:
        """GetTestCaseName."""
        if self.name:
            return self.name
        with_headers = " with headers" if self.request.headers else ""
        text = f"{index} request to '{self.request.host}{self.request.path}'{with_headers}"
        if self.backend:
            return f"{text} should go to {self.backend}"
        return f"{text} should receive one of {list(self.response.codes())}"


@dataclass
class Captured:
    status: int
    headers: dict[str, list[str]]  # names lower-cased
    request: dict[str, Any] | None  # what the echo pod saw (None: not JSON)
    redirect: RedirectRequest | None
    server_names: tuple[str, ...] = ()  # subjectAltNames of the certificate served


REDIRECTS = (300, 301, 302, 303, 307, 308)


def calculate_host(gw_addr: str, scheme: str) -> str:
    """CalculateHost: the port is left out when it is the scheme's."""
    host, _, port = gw_addr.rpartition(":")
    if (scheme, port) in (("http", "80"), ("https", "443")):
        return host
    return gw_addr


def round_trip(
    gw_addr: str,
    req: Request,
    scheme: str = "http",
    server_name: str = "",
    ca: bytes | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> Captured:
    """One request as the conformance roundtripper makes it (no redirect followed)."""
    ip, _, port = gw_addr.rpartition(":")
    sock: socket.socket = socket.create_connection((ip, int(port)), timeout=10)
    names: tuple[str, ...] = ()
    try:
        if scheme == "https":
            ctx = ssl.create_default_context(cadata=(ca or certificate()[0]).decode())
            sock = ctx.wrap_socket(sock, server_hostname=server_name or req.host or ip)
            peer = sock.getpeercert() or {}
            names = tuple(v for k, v in peer.get("subjectAltName", ()) if k == "DNS")
        conn = http.client.HTTPConnection(ip, int(port), timeout=10)
        conn.sock = sock
        conn.putrequest(req.method or "GET", req.path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", req.host or calculate_host(gw_addr, scheme))
        conn.putheader("User-Agent", "Go-http-client/1.1")
        for name, value in req.headers.items():
            conn.putheader(name, value)
        for name, value in (extra_headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        headers: dict[str, list[str]] = {}
        for name, value in resp.getheaders():
            headers.setdefault(name.lower(), []).append(value)
        captured = None
        if headers.get("content-type") == ["application/json"]:
            captured = json.loads(body)
        redirect = None
        if resp.status in REDIRECTS:
            location = headers.get("location")
            assert location, f"a {resp.status} redirect without Location"
            url = urlsplit(location[0])
            redirect = RedirectRequest(
                url.scheme, url.hostname or "", str(url.port or ""), url.path
            )
        conn.close()
        return Captured(resp.status, headers, captured, redirect, names)
    finally:
        sock.close()


def compare(req: Request, scheme: str, got: Captured, exp: Expected) -> str:
    """CompareRoundTrip: "" when `got` is what `exp` says, else what differs."""
    codes = exp.response.codes()
    if got.status not in codes:
        return f"expected status code to be one of {list(codes)}, got {got.status}"
    if got.status in (200, 204):
        want = exp.expected_request or ExpectedRequest(
            exp.request.host, exp.request.method, exp.request.path, exp.request.headers
        )
        seen = got.request or {"method": want.method or "GET", "headers": {}}
        if want.host and want.host != seen.get("host"):
            return f"expected host to be {want.host}, got {seen.get('host')}"
        if want.path != seen.get("path"):
            return f"expected path to be {want.path}, got {seen.get('path')}"
        if (want.method or "GET") != seen.get("method"):
            return f"expected method to be {want.method or 'GET'}, got {seen.get('method')}"
        if exp.namespace != seen.get("namespace", ""):
            return f"expected namespace to be {exp.namespace}, got {seen.get('namespace')}"
        received = {k.lower(): v for k, v in seen.get("headers", {}).items()}
        for name, value in want.headers.items():
            actual = received.get(name.lower())
            if actual is None:
                return f"expected {name} header to be set, actual headers: {received}"
            if ",".join(actual) != value:
                return f"expected {name} header to be set to {value}, got {','.join(actual)}"
        for name, value in exp.response.headers.items():
            actual = got.headers.get(name.lower())
            if actual is None:
                return f"expected {name} response header to be set, got {got.headers}"
            if ",".join(actual) != value:
                return f"expected {name} response header {value}, got {','.join(actual)}"
        for name in exp.response.absent_headers:
            if name.lower() in got.headers:
                return f"expected {name} response header to not be set, got {got.headers}"
        for name in want.absent_headers:
            if name.lower() in received:
                return f"expected {name} header to not be set, got {received[name.lower()]}"
        if not str(seen.get("pod", "")).startswith(exp.backend):
            return f"expected pod name to start with {exp.backend}, got {seen.get('pod')}"
    elif got.status in REDIRECTS and exp.redirect_request is not None:
        want_r = exp.redirect_request
        have = got.redirect
        assert have is not None
        host = want_r.host or have.host
        if host != have.host:
            return f"expected redirected hostname to be {host!r}, got {have.host!r}"
        if not want_r.port:
            if have.scheme.lower() == "http" and have.port not in ("80", ""):
                return f"for http scheme, expected port 80 or none, got {have.port!r}"
            if have.scheme.lower() == "https" and have.port not in ("443", ""):
                return f"for https scheme, expected port 443 or none, got {have.port!r}"
        elif want_r.port != have.port:
            return f"expected redirected port to be {want_r.port!r}, got {have.port!r}"
        want_scheme = want_r.scheme or scheme
        if want_scheme != have.scheme:
            return f"expected redirected scheme to be {want_scheme!r}, got {have.scheme!r}"
        want_path = want_r.path or urlsplit(req.path).path
        if want_path != have.path:
            return f"expected redirected path to be {want_path!r}, got {have.path!r}"
    return ""


def expect(
    rig: Rig,
    gw_addr: str,
    cases: Iterable[Expected],
    scheme: str = "http",
    server_name: str = "",
) -> None:
    """MakeRequestAndExpectEventuallyConsistentResponse for each case (the config is in
    place when `apply` returns, so one round trip each), every failure reported."""
    failures = []
    for index, case in enumerate(cases):
        req = case.request
        set_headers = ",".join(f"{k}:{v}" for k, v in case.backend_set_response_headers.items())
        got = round_trip(
            gw_addr,
            req,
            scheme,
            server_name or req.host,
            extra_headers={"X-Echo-Set-Header": set_headers},
        )
        why = compare(req, scheme, got, case)
        if not why and case.mirrored_to:
            why = mirrored(rig, case.mirrored_to, req.path)
        if why:
            failures.append(f"{case.test_name(index)}: {why}")
    assert not failures, "\n".join(failures)


def mirrored(rig: Rig, backends: Iterable[tuple[str, str]], path: str, wait: float = 3.0) -> str:
    """ExpectMirroredRequest: each mirror backend saw a request for `path`."""
    deadline = time.monotonic() + wait
    missing = list(backends)
    while missing and time.monotonic() < deadline:
        missing = [
            (name, ns)
            for name, ns in missing
            if not any(r["path"] == path for p in rig.pods_of(name) for r in list(p.requests))
        ]
        if missing:
            time.sleep(0.02)
    return f"no mirrored request for {path} in {missing}" if missing else ""


def accepted(
    rig: Rig, w: World, gateway: tuple[str, str], *routes: tuple[str, str], port: int = 80
) -> str:
    """GatewayAndHTTPRoutesMustBeAccepted, then every route's ResolvedRefs; the gwAddr."""
    gateway_and_routes_accepted(w, gateway, *routes)
    for route in routes:
        route_resolved_refs_true(w, route, gateway)
    return rig.addr(*gateway, port)
