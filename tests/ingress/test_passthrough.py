"""ssl-passthrough on seaway's HTTPS listener, with real sockets: pods that terminate TLS
with their own certificates, curl and Python ssl clients.

Reference: ingress-nginx docs/user-guide/tls.md#ssl-passthrough and
test/e2e/settings/ssl_passthrough.go (ported as a daemon test in
tests/test_ssl_passthrough_daemon.py); here the details that e2e test does not look at.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingress import selfsigned
from ingress.relay_stats import BYTES_IN, BYTES_OUT, CONNECTIONS, FAILURES, PASSTHROUGH
from ingress.settings import HttpSettings
from ingress.stats import ENDPOINTS
from tests.ingress.l7kit import HOST, Backend, LoopThread, port_info
from tests.ingress.nginxkit import ann, ing, path
from tests.ingress.passthroughkit import (
    Pem,
    Seaway,
    TlsPod,
    curl,
    handshake,
    snapshot,
)

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
PASS = ann(ssl_passthrough="true")


@pytest.fixture(scope="module")
def pems() -> dict[str, Pem]:
    return {
        "pod-a": selfsigned.generate("pod-a", ["pass.test"]),
        "pod-b": selfsigned.generate("pod-b", ["pass.test"]),
        "seaway-web": selfsigned.generate("seaway-web", ["web.test"]),
        "seaway-pass": selfsigned.generate("seaway-pass", ["pass.test"]),
    }


class Rig:
    def __init__(self, lt: LoopThread, pems: dict[str, Pem]) -> None:
        self.lt = lt
        self.pems = pems
        self.pods = [lt.run(TlsPod(n, pems[n]).start()) for n in ("pod-a", "pod-b")]
        self.web = lt.run(Backend("web").start())
        self.seaway = Seaway(lt, HttpSettings(header_timeout=0.5, connect_timeout=2.0))

    def serve(self, pods: list[TlsPod] | None = None, passthrough: bool = True,
              extra: list[object] | None = None) -> None:
        eps = [p.endpoint for p in (self.pods if pods is None else pods)]
        ingresses = [
            ing("pass", "pass.test", path("/", "tls", port=443), annotations=PASS,
                tls=[(["pass.test"], "seaway-pass")], created="2024-01-01T00:00:00Z"),
            ing("web", "web.test", path("/", "web"), tls=[(["web.test"], "seaway-web")],
                created="2024-01-02T00:00:00Z"),
        ]
        ports = [port_info("tls", eps, port=443), port_info("web", [self.web.endpoint])]
        secrets = {n: self.pems[n] for n in ("seaway-web", "seaway-pass")}
        self.seaway.serve(snapshot(ingresses, ports, secrets, ssl_passthrough=passthrough))

    def relayed(self) -> dict[tuple[str, ...], list[float]]:
        return self.seaway.state.take_stats().tables[PASSTHROUGH]

    def close(self) -> None:
        self.seaway.close()
        for pod in self.pods:
            self.lt.run(pod.close())
        self.lt.run(self.web.close())


@pytest.fixture
def rig(lt: LoopThread, pems: dict[str, Pem]) -> Iterator[Rig]:
    r = Rig(lt, pems)
    try:
        yield r
    finally:
        r.close()


KEY = ("default", "pass", "tls", "443", "pass.test")


@needs_curl
def test_the_passthrough_host_sees_the_pods_certificate_others_seaways(rig: Rig) -> None:
    """tls.md#ssl-passthrough: the pod terminates TLS (its certificate, its answer), even
    though seaway holds a certificate for that host; other hosts, no SNI (an IP address
    URL) and an unknown SNI name are terminated by seaway as before."""
    rig.serve()
    port = rig.seaway.port
    body, cn = curl("pass.test", port)
    assert cn in ("pod-a", "pod-b") and body == cn
    body, cn = curl("web.test", port)
    assert cn == "seaway-web" and '"name": "web"' in body
    _, cn = curl("other.test", port)
    assert cn in ("seaway-web", "seaway-pass")  # seaway's default certificate
    _, cn = curl(HOST, port, "/", "-H", "Host: pass.test")  # no SNI for an IP address
    assert not cn.startswith("pod-")
    assert rig.pods[0].connections + rig.pods[1].connections == 1


def test_relays_go_through_the_services_balancer_and_are_counted(rig: Rig) -> None:
    """The endpoint is the Service's balancer's choice (round robin here: the pods take
    turns), and each relay is counted with its bytes under the route's labels."""
    rig.serve()
    seen = [handshake(rig.seaway.port, "pass.test")[0] for _ in range(4)]
    assert seen in (["pod-a", "pod-b"] * 2, ["pod-b", "pod-a"] * 2)
    rows = rig.relayed()
    assert rows[KEY][CONNECTIONS] == 4 and rows[KEY][FAILURES] == 0
    assert rows[KEY][BYTES_IN] > 4 * 200 and rows[KEY][BYTES_OUT] > 4 * 300


@pytest.mark.parametrize(
    ("records", "pieces"),
    [([1, 3, 60], None), (None, [3, 2, 40]), ([5, 90], [1, 6, 20, 200])],
    ids=["records", "segments", "both"],
)
def test_a_client_hello_in_pieces_is_still_read(
    rig: Rig, records: list[int] | None, pieces: list[int] | None
) -> None:
    """A ClientHello fragmented over TLS records and/or TCP segments arriving apart: the
    peek waits for the missing bytes (no byte consumed) and the pod gets it all."""
    rig.serve()
    cn, body = handshake(rig.seaway.port, "pass.test", pieces, records)
    assert cn in ("pod-a", "pod-b") and body == cn.encode()


def test_an_unreachable_endpoint_is_skipped(rig: Rig, lt: LoopThread) -> None:
    """A refused connect tries the next endpoint (as the L4 proxy does), counted as a
    connect failure of that endpoint."""
    dead = TlsPod("dead", rig.pems["pod-a"])
    lt.run(dead.start())
    lt.run(dead.close())  # its port now refuses
    rig.serve([dead, rig.pods[1]])
    assert [handshake(rig.seaway.port, "pass.test")[0] for _ in range(3)] == ["pod-b"] * 3
    stats = rig.seaway.state.take_stats()
    assert stats.tables[PASSTHROUGH][KEY][CONNECTIONS] == 3
    failures = stats.tables[ENDPOINTS][(f"{HOST}:{dead.port}",)][1]
    assert failures >= 1


def test_no_endpoint_resets_the_client(rig: Rig) -> None:
    rig.serve([])
    with pytest.raises((ConnectionError, OSError)):
        handshake(rig.seaway.port, "pass.test")
    assert rig.relayed()[KEY][FAILURES] == 1
    _, cn = curl("web.test", rig.seaway.port) if shutil.which("curl") else ("", "seaway-web")
    assert cn == "seaway-web"  # the listener serves on


def test_a_silent_client_is_dropped_after_the_header_timeout(rig: Rig) -> None:
    rig.serve()
    with socket.create_connection((HOST, rig.seaway.port), timeout=10) as sock:
        assert sock.recv(1) == b""  # closed by seaway (header_timeout 0.5 s here)
    assert rig.relayed() == {}


def test_a_client_that_stops_mid_hello_goes_to_tls_which_fails(rig: Rig) -> None:
    """Half a ClientHello then EOF: not a passthrough name (none was read), so the
    connection goes to seaway's TLS, whose handshake fails; no relay, no hang."""
    rig.serve()
    hello = _hello("pass.test")
    with socket.create_connection((HOST, rig.seaway.port), timeout=10) as sock:
        sock.sendall(hello[: len(hello) // 2])
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
    assert rig.relayed() == {}
    assert rig.pods[0].connections + rig.pods[1].connections == 0


@needs_curl
def test_large_transfers_in_both_directions_arrive_whole(rig: Rig, tmp_path: Path) -> None:
    """8 MB from the pod through the relay (flow control: the client side's buffer fills
    and the pod's side pauses), and a 3 MB upload."""
    rig.serve()
    body, cn = curl("pass.test", rig.seaway.port, "/big/8000000")
    assert len(body) == 8_000_000 and set(body) == {"p"} and cn.startswith("pod-")
    upload = tmp_path / "upload"
    upload.write_bytes(b"u" * 3_000_000)
    body, _ = curl("pass.test", rig.seaway.port, "/", "--data-binary", f"@{upload}")
    assert body in ("pod-a", "pod-b")
    assert sum(pod.received for pod in rig.pods) == 3_000_000
    assert rig.relayed()[KEY][BYTES_IN] > 3_000_000


@needs_curl
def test_turning_passthrough_off_terminates_the_host_again(rig: Rig) -> None:
    """A config change takes effect for new connections; without passthrough hosts the
    listener does not peek at all."""
    rig.serve()
    assert curl("pass.test", rig.seaway.port)[1].startswith("pod-")
    assert rig.seaway.state.server is not None
    https = rig.seaway.state.server.https
    assert https is not None and https.passthrough is not None
    rig.serve(passthrough=False)
    assert curl("pass.test", rig.seaway.port)[1] == "seaway-pass"
    assert https.passthrough is None


def _hello(name: str) -> bytes:
    import ssl

    ctx = ssl.create_default_context()
    out = ssl.MemoryBIO()
    tls = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return out.read()


@needs_curl
def test_a_proxy_header_comes_off_before_the_client_hello_is_read(
    lt: LoopThread, pems: dict[str, Pem]
) -> None:
    """--proxy-protocol with ssl-passthrough (a cloud load balancer in front, as
    ingress-nginx's use-proxy-protocol + ssl-passthrough): the PROXY header is consumed
    first, then the ClientHello is peeked; the pod gets the TLS stream without the header,
    and the other hosts are still terminated by seaway. Without the header: closed."""
    r = Rig(lt, pems)
    r.seaway.close()
    settings = HttpSettings(header_timeout=0.5, connect_timeout=2.0, proxy_protocol=True)
    r.seaway = Seaway(lt, settings)
    try:
        r.serve()
        port = r.seaway.port
        body, cn = curl("pass.test", port, "/", "--haproxy-protocol")
        assert cn in ("pod-a", "pod-b") and body == cn  # the pod answered its own TLS
        body, cn = curl("web.test", port, "/", "--haproxy-protocol")
        assert cn == "seaway-web" and '"name": "web"' in body
        body, cn = curl("pass.test", port)  # no header: refused before any TLS
        assert (body, cn) == ("", "")
    finally:
        r.close()
