"""IngressDataplane end to end: listeners follow ownership, TLS by SNI, worker processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from discovery.snapshot import EndpointInfo, Snapshot
from ingress import selfsigned
from ingress.dataplane import IngressDataplane
from proxy.app.options import Options
from tests.ingress import routerkit as k
from tests.ingress.l7kit import HOST, Backend, LoopThread, get, port_info


def site(
    endpoints: list[EndpointInfo],
    cls: str = k.CLASS,
    tls: bool = False,
    secrets: tuple[tuple[str, bytes, bytes], ...] = (),
    generation: int = 1,
) -> Snapshot:
    ing_a = k.ingress(
        "a",
        k.rule("a.test", k.path("/", "web")),
        cls=cls,
        tls=[(["a.test"], "cert-a")] if tls else [],
    )
    ing_b = k.ingress(
        "b",
        k.rule("b.test", k.path("/", "web")),
        cls=cls,
        tls=[(["b.test"], "cert-b")] if tls else [],
    )
    return k.snapshot(
        [ing_a, ing_b],
        [port_info("web", endpoints)],
        secrets=[k.tls_secret(name, cert, key) for name, cert, key in secrets],
        generation=generation,
    )


@pytest.fixture(scope="module")
def backends(lt: LoopThread) -> Iterator[list[Backend]]:
    bs = [lt.run(Backend(n).start()) for n in ("one", "two")]
    yield bs
    for b in bs:
        lt.run(b.close())


def start(lt: LoopThread, workers: int = 1) -> IngressDataplane:
    dp = IngressDataplane(
        Options(
            http_bind_address=(HOST, 0), https_bind_address=(HOST, 0), workers=workers
        ).ingress_config()
    )
    lt.run(dp.start())
    return dp


def sync(lt: LoopThread, dp: IngressDataplane, snap: Snapshot) -> None:
    lt.run(dp.sync(snap, frozenset(snap.service_ports)))


def refused(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_listener_follows_owned_ingresses(lt: LoopThread, backends: list[Backend]) -> None:
    dp = start(lt)
    try:
        sync(lt, dp, site([backends[0].endpoint], cls="someone-else"))
        assert dp.addresses() == (None, None)
        sync(lt, dp, site([backends[0].endpoint], generation=2))
        http, https = dp.addresses()
        assert https is None and http is not None
        status, body = get(http[1], "/", host="a.test")
        assert status == 200 and json.loads(body)["name"] == "one"
        # Endpoints change: the next request goes to the new backend.
        sync(lt, dp, site([backends[1].endpoint], generation=3))
        assert json.loads(get(http[1], "/", host="b.test")[1])["name"] == "two"
        # Nothing owned any more: the listener closes.
        sync(lt, dp, site([backends[1].endpoint], cls="someone-else", generation=4))
        assert dp.addresses() == (None, None)
        assert refused(http[1])
    finally:
        lt.run(dp.stop())


def test_unrelated_changes_do_not_recompile(lt: LoopThread, backends: list[Backend]) -> None:
    dp = start(lt)
    try:
        snap = site([backends[0].endpoint])
        sync(lt, dp, snap)
        assert dp.syncs == 1
        lt.run(dp.sync(snap, frozenset()))
        assert dp.syncs == 1
        sync(lt, dp, site([backends[1].endpoint], generation=2))
        assert dp.syncs == 2
    finally:
        lt.run(dp.stop())


def common_name(der: bytes) -> str:
    cert = x509.load_der_x509_certificate(der)
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def tls_get(port: int, server_name: str, host: str) -> tuple[str, bytes]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((HOST, port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=server_name) as s,
    ):
        der = s.getpeercert(binary_form=True)
        assert der is not None
        s.sendall(f"GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return common_name(der), data


def test_tls_two_sni_hosts_and_default(lt: LoopThread, backends: list[Backend]) -> None:
    cert_a, key_a = selfsigned.generate("a.test", ["a.test"])
    cert_b, key_b = selfsigned.generate("b.test", ["b.test"])
    secrets = (("cert-a", cert_a, key_a), ("cert-b", cert_b, key_b))
    dp = start(lt)
    try:
        sync(lt, dp, site([backends[0].endpoint], tls=True, secrets=secrets))
        _, https = dp.addresses()
        assert https is not None
        cn, data = tls_get(https[1], "a.test", "a.test")
        assert cn == "a.test"
        assert data.startswith(b"HTTP/1.1 200 ")
        doc = json.loads(data.partition(b"\r\n\r\n")[2])
        assert doc["headers"]["X-Forwarded-Proto"] == "https"
        assert tls_get(https[1], "b.test", "b.test")[0] == "b.test"
        # No certificate for the name: the default, the first secret in sort order.
        assert tls_get(https[1], "unknown.test", "a.test")[0] == "a.test"
        # A certificate change is taken without restart.
        cert_b2, key_b2 = selfsigned.generate("b2.test", ["b.test"])
        secrets2 = (("cert-a", cert_a, key_a), ("cert-b", cert_b2, key_b2))
        sync(lt, dp, site([backends[0].endpoint], tls=True, secrets=secrets2, generation=2))
        assert tls_get(https[1], "b.test", "b.test")[0] == "b2.test"
    finally:
        lt.run(dp.stop())


@pytest.mark.slow
def test_workers_share_the_port_and_follow_config(lt: LoopThread, backends: list[Backend]) -> None:
    dp = start(lt, workers=2)
    try:
        assert len(dp.pool.pids()) == 1  # the daemon serves too: 1 + 1 processes
        sync(lt, dp, site([backends[0].endpoint]))
        http, _ = dp.addresses()
        assert http is not None
        served_before = len(backends[0].stats.requests)
        conns_before = backends[0].stats.connections
        # Sequential requests reuse one upstream connection per process: a second backend
        # connection means the worker process (it binds once it has its first config)
        # served some; SO_REUSEPORT spreads new client connections over both sockets.
        names: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and backends[0].stats.connections - conns_before < 2:
            status, body = get(http[1], "/", host="a.test")
            assert status == 200
            names.append(json.loads(body)["name"])
        assert backends[0].stats.connections - conns_before >= 2
        assert set(names) == {"one"}
        assert len(backends[0].stats.requests) - served_before == len(names)
        # A config change reaches every process: soon, every request goes to "two".
        sync(lt, dp, site([backends[1].endpoint], generation=2))
        tail: list[str] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and tail[-30:] != ["two"] * 30:
            tail.append(json.loads(get(http[1], "/", host="a.test")[1])["name"])
        assert tail[-30:] == ["two"] * 30
    finally:
        lt.run(dp.stop())
    assert refused(http[1])


@pytest.mark.slow
def test_a_killed_worker_is_restarted_with_the_config(
    lt: LoopThread, backends: list[Backend]
) -> None:
    dp = start(lt, workers=2)
    try:
        sync(lt, dp, site([backends[0].endpoint]))
        http, _ = dp.addresses()
        assert http is not None
        (old,) = dp.pool.pids()
        deadline = time.monotonic() + 20  # readiness polls, not timing assertions
        while time.monotonic() < deadline and not listening_pid(http[1], old):
            time.sleep(0.05)  # the worker binds once it has its config
        assert listening_pid(http[1], old)
        os.kill(old, signal.SIGKILL)
        while time.monotonic() < deadline and dp.pool.pids() == [old]:
            time.sleep(0.05)
        (new,) = dp.pool.pids()
        assert new != old and dp.pool.restarts == 1
        while time.monotonic() < deadline and not listening_pid(http[1], new):
            time.sleep(0.05)
        assert listening_pid(http[1], new)  # it got the last config without a new sync
        assert get(http[1], "/", host="a.test")[0] == 200
    finally:
        lt.run(dp.stop())


def listening_pid(port: int, pid: int) -> bool:
    out = subprocess.run(
        ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=False
    ).stdout
    return f"pid={pid}," in out
