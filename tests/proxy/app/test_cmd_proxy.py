"""`seaway proxy` as a real process: HTTP round robin, HTTPS, TCP, active health checks,
metrics (also ingress-nginx's), usage errors; and its objects and health logic alone."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from discovery.model import EndpointSlice, Ingress, Service, TLSSecret
from discovery.snapshot_builder import SnapshotBuilder
from discovery.store import Store
from ingress import selfsigned
from proxy.app.health_check import FALL, RISE, HealthState, ProxySource
from proxy.app.proxy_objects import ProxySpec, proxy_objects
from tests.support import free_port, http_get, seaway, wait_for_port, wait_until

HOST = "127.0.0.1"


@pytest.fixture
def echoes() -> Iterator[list[int]]:
    """Two `seaway echo` backends, named e1 and e2; yields their ports."""
    ports = [free_port(), free_port()]
    with ExitStack() as stack:
        for i, port in enumerate(ports, start=1):
            stack.enter_context(seaway(["echo", "--listen", f"{HOST}:{port}", "--name", f"e{i}"]))
        for port in ports:
            wait_for_port(HOST, port)
        yield ports


def start(args: list[str], port: int, metrics: int) -> list[str]:
    return ["proxy", "--listen", f"{HOST}:{port}", "--metrics-bind-address", f"{HOST}:{metrics}",
            *args]


def names(port: int, n: int) -> list[str]:
    out = []
    for _ in range(n):
        status, body = http_get(HOST, port, "/")
        assert status == 200
        out.append(json.loads(body)["name"])
    return out


def test_http_round_robin_with_metrics_and_status(echoes: list[int]) -> None:
    port, metrics = free_port(), free_port()
    to = ",".join(f"{HOST}:{p}" for p in echoes)
    args = start(["--to", to, "--workers", "1", "--metrics-compat", "ingress-nginx"], port,
                 metrics)
    with seaway(args):
        wait_for_port(HOST, port)
        got = names(port, 4)  # in turn (endpoints are ordered by address, then port)
        assert sorted(got[:2]) == ["e1", "e2"] and got[2:] == got[:2]
        status, body = http_get(HOST, port, "/", headers={"Host": "any.example"})
        assert status == 200 and json.loads(body)["host"] == "any.example"

        def counted() -> bool:
            text = http_get(HOST, metrics, "/metrics")[1].decode()
            return ('seaway_http_requests_total{namespace="seaway",ingress="proxy",'
                    'service="proxy",port="80",method="GET",code="200"} 5.0') in text

        wait_until(counted, what="5 requests in /metrics")
        text = http_get(HOST, metrics, "/metrics")[1].decode()
        assert 'nginx_ingress_controller_requests{canary=""' in text
        status_doc = json.loads(http_get(HOST, metrics, "/status.json")[1])
        (sp,) = status_doc["service_ports"]
        assert sp["name"] == "seaway/proxy:proxy"
        assert sorted(e["address"] for e in sp["endpoints"]) == sorted(
            f"{HOST}:{p}" for p in echoes)
        assert status_doc["sources"][0]["kind"] == "static"


def test_https_with_a_certificate(echoes: list[int], tmp_path: Path) -> None:
    if shutil.which("openssl") is None or shutil.which("curl") is None:
        pytest.skip("openssl and curl are needed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=proxy.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    port, metrics = free_port(), free_port()
    args = start(["--to", f"{HOST}:{echoes[0]}", "--tls-cert", str(cert), "--tls-key", str(key),
                  "--workers", "1"], port, metrics)
    with seaway(args):
        wait_for_port(HOST, port)
        out = subprocess.run(
            ["curl", "-sS", "--cacert", str(cert), "--resolve", f"proxy.test:{port}:{HOST}",
             f"https://proxy.test:{port}/secure"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout
        doc = json.loads(out)
        assert doc["name"] == "e1" and doc["path"] == "/secure"
        assert doc["headers"]["X-Forwarded-Proto"] == "https"
        plain = subprocess.run(["curl", "-sS", f"http://{HOST}:{port}/"], capture_output=True,
                               text=True, timeout=10)
        assert plain.returncode != 0 or "400" in plain.stdout  # it speaks TLS only


def l4_connections(metrics: int) -> float:
    text = http_get(HOST, metrics, "/metrics")[1].decode()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
        if line.startswith("seaway_l4_connections_total{")
    )


def test_l4_forwards_tcp(echoes: list[int]) -> None:
    port, metrics = free_port(), free_port()
    to = ",".join(f"{HOST}:{p}" for p in echoes)
    with seaway(start(["--to", to, "--l4"], port, metrics)):
        wait_for_port(HOST, port)  # (itself a connection, forwarded and counted)
        wait_until(lambda: l4_connections(metrics) >= 1, what="the probe counted")
        before = l4_connections(metrics)
        # HTTP passes through untouched: the echo sees no X-Forwarded-For from seaway.
        seen = []
        for _ in range(4):
            status, body = http_get(HOST, port, "/")
            doc = json.loads(body)
            assert status == 200 and "X-Forwarded-For" not in doc["headers"]
            seen.append(doc["name"])
        assert sorted(seen) == ["e1", "e1", "e2", "e2"]
        wait_until(lambda: l4_connections(metrics) == before + 4, what="4 more connections")


def test_a_backend_failing_its_health_check_gets_no_requests(echoes: list[int]) -> None:
    port, metrics = free_port(), free_port()
    dead = free_port()  # nothing listens: its checks fail
    to = f"{HOST}:{echoes[0]},{HOST}:{dead}"
    args = start(["--to", to, "--health-path", "/healthz", "--health-interval", "0.2s",
                  "--workers", "1"], port, metrics)
    with seaway(args):
        wait_for_port(HOST, port)
        assert names(port, 6) == ["e1"] * 6  # never the dead one, not even a failed try
        doc = json.loads(http_get(HOST, metrics, "/status.json")[1])
        assert doc["sources"][0]["down"] == [f"{HOST}:{dead}"]
        assert doc["sources"][0]["state"] == "degraded"
        (sp,) = doc["service_ports"]
        states = {e["address"]: e["ready"] for e in sp["endpoints"]}
        assert states == {f"{HOST}:{echoes[0]}": True, f"{HOST}:{dead}": False}
        # It comes up: after RISE good checks it gets traffic again.
        with seaway(["echo", "--listen", f"{HOST}:{dead}", "--name", "late"]):
            wait_until(lambda: "late" in names(port, 2), what="the backend back in rotation")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_proxy_protocol(echoes: list[int]) -> None:
    """`seaway proxy --proxy-protocol`: curl --haproxy-protocol gets through, a plain
    request is closed unanswered."""
    port, metrics = free_port(), free_port()
    args = start(["--to", f"{HOST}:{echoes[0]}", "--workers", "1", "--proxy-protocol"], port,
                 metrics)
    with seaway(args):
        wait_for_port(HOST, port)
        url = f"http://{HOST}:{port}/"
        out = subprocess.run(["curl", "-s", "--max-time", "10", "--haproxy-protocol", url],
                             capture_output=True, text=True, check=True).stdout
        assert json.loads(out)["headers"]["X-Real-IP"] == HOST
        plain = subprocess.run(["curl", "-s", "--max-time", "10", url], capture_output=True)
        assert plain.returncode != 0 and plain.stdout == b""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "127.0.0.1:1", "--tls-cert", "x.pem"], "--tls-cert and --tls-key go together"),
        (["--to", "127.0.0.1"], "expected HOST:PORT"),
        (["--to", "no-such-host.invalid:80"], "cannot resolve"),
        (["--to", "127.0.0.1:1", "--l4", "--tls-cert", "a", "--tls-key", "b"], "a: No such"),
        (["--to", "127.0.0.1:1", "--health-path", "healthz"], "must start with '/'"),
        (["--to", "127.0.0.1:1", "--l4", "--proxy-protocol"], "--proxy-protocol is for HTTP"),
    ],
)
def test_usage_errors_are_clear(args: list[str], message: str) -> None:
    with seaway(start(args, free_port(), free_port())) as proc:
        assert proc.wait(20) == 2
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert err.startswith("seaway proxy: ") and message in err, err


# -- the pure parts ------------------------------------------------------------------------
def test_objects_make_one_service_port_with_every_backend() -> None:
    spec = ProxySpec(("0.0.0.0", 8080), (("10.0.0.1", 9000), ("10.0.0.2", 9001), ("fd00::3", 80)))
    store = Store()
    for obj in proxy_objects(spec, down=frozenset({("10.0.0.2", 9001)})):
        store.upsert(obj)
    snapshot, _ = SnapshotBuilder(store).build()
    (info,) = snapshot.service_ports.values()
    assert {(e.ip, e.port, e.ready) for e in info.all_endpoints} == {
        ("10.0.0.1", 9000, True), ("10.0.0.2", 9001, False), ("fd00::3", 80, True)}
    assert {(e.ip, e.port) for e in info.endpoints} == {("10.0.0.1", 9000), ("fd00::3", 80)}
    assert len(snapshot.ingresses) == 1 and snapshot.ingresses[0].default_backend is not None


def test_objects_for_l4_and_tls() -> None:
    l4 = proxy_objects(ProxySpec(("127.0.0.1", 5432), (("10.0.0.1", 5432),), l4=True))
    (svc,) = [o for o in l4 if isinstance(o, Service)]
    assert svc.type == "NodePort" and svc.ports[0].node_port == 5432
    assert not [o for o in l4 if isinstance(o, Ingress)]
    pem = selfsigned.generate("Proxy.Test", ["proxy.test", "*.proxy.test"])
    tls = proxy_objects(ProxySpec(("127.0.0.1", 443), (("10.0.0.1", 80),), tls=pem))
    (secret,) = [o for o in tls if isinstance(o, TLSSecret)]
    (ing,) = [o for o in tls if isinstance(o, Ingress)]
    assert ing.tls[0].secret_name == secret.meta.name
    assert ing.tls[0].hosts == ("proxy.test", "*.proxy.test")  # chosen by SNI for its names
    assert len([o for o in tls if isinstance(o, EndpointSlice)]) == 1


def test_health_state_needs_fall_failures_to_go_down_and_rise_passes_to_come_back() -> None:
    b = ("10.0.0.1", 80)
    h = HealthState((b,))
    assert [h.record(b, False) for _ in range(FALL)] == [False] * (FALL - 1) + [True]
    assert b in h.down
    assert not h.record(b, True) and not h.record(b, False)  # a pass then a failure: still down
    assert [h.record(b, True) for _ in range(RISE)] == [False] * (RISE - 1) + [True]
    assert b not in h.down
    h.first(b, False)
    assert b in h.down  # at start, one failure is enough


def test_proxy_source_publishes_health_changes() -> None:
    a, b = ("10.0.0.1", 80), ("10.0.0.2", 80)
    results = {a: True, b: True}

    async def check(backend: tuple[str, int], path: str, timeout: float) -> bool:
        return results[backend]

    async def main() -> None:
        store = Store()
        source = ProxySource(ProxySpec(("0.0.0.0", 80), (a, b)), "/h", interval=0, check=check)
        ready = asyncio.Event()
        task = asyncio.create_task(source.run(store, ready.set))
        await ready.wait()
        results[b] = False
        while b not in source.health.down:
            await asyncio.sleep(0)
        snapshot, _ = SnapshotBuilder(store).build()
        (info,) = snapshot.service_ports.values()
        assert [(e.ip, e.port) for e in info.endpoints] == [a]
        task.cancel()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_l4_exits_with_an_error_when_its_port_is_taken() -> None:
    """`seaway proxy --l4` has one listener: a taken port ends it with status 1 and says
    why (as nginx's `bind() ... Address already in use`), not a daemon that retries
    the port at every sync and forwards nothing."""
    import socket

    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        with seaway(start(["--to", f"{HOST}:9", "--l4"], port, free_port())) as proc:
            assert proc.wait(30) == 1
            assert proc.stderr is not None
            err = proc.stderr.read()
            assert "Address already in use" in err
            assert "seaway proxy: cannot listen on the --listen address" in err
