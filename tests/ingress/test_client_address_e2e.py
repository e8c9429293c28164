"""The client address end to end: PROXY protocol v1/v2 from real senders (haproxy
`send-proxy`/`send-proxy-v2`, curl --haproxy-protocol, raw sockets) on the HTTP and HTTPS
listeners, what the backend (an echo of the headers it got), allow/deny ranges, rate
limits and the access log see; and ingress-nginx's client-address ConfigMap keys
(use-forwarded-headers, compute-full-forwarded-for, forwarded-for-header, enable-real-ip,
proxy-real-ip-cidr). Cases ported from ingress-nginx name their e2e test
(test/e2e/settings/proxy_protocol.go, forwarded_headers.go, enable_real_ip.go)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from discovery.nginx_configmap import NginxGlobalSettings
from ingress.route_match import compile_table
from ingress.server import WorkerServer
from ingress.settings import HttpSettings
from ingress.stats import ObservabilitySettings, make_stats
from ingress.translate_ingress import translate_ingresses
from tests.ingress import routerkit as k
from tests.ingress.filterkit import Answer, backends, https_port, parse, proxy
from tests.ingress.l7kit import HOST, Backend, LoopThread, Proxy, port_info
from tests.ingress.nginxkit import ann, ing, path, snapshot
from tests.support import free_port, wait_for_port, wait_until

APP = "app.test"
PP_E2E = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 1234\r\n"  # proxy_protocol.go's
PP_ON = HttpSettings(proxy_protocol=True)


@pytest.fixture(scope="module")
def web(lt: LoopThread) -> Iterator[list[Backend]]:
    with backends(lt, "web") as found:
        yield found


@contextmanager
def served(
    lt: LoopThread,
    web: list[Backend],
    nginx: NginxGlobalSettings | None = None,
    settings: HttpSettings | None = None,
    annotations: dict[str, str] | None = None,
    host: str = APP,
) -> Iterator[Proxy]:
    """A proxy (HTTP and HTTPS) serving one Ingress `host`/ -> the echo backend."""
    ports = [port_info("web", [web[0].endpoint])]
    ingress = ing("app", host, path("/"), annotations=annotations)
    snap = snapshot([ingress], (), nginx, ports)
    table = translate_ingresses(snap, k.CONTROLLER, False).table
    with proxy(lt, table, settings, https=True) as p:
        yield p


def talk(
    port: int,
    header: bytes,
    requests: Sequence[bytes],
    tls: bool = False,
    source: str = "",
    timeout: float = 10.0,
) -> bytes:
    """`header` (a PROXY header, or b"") then `requests` in one write after it (over
    TLS with `tls`); everything read until the proxy closes (a reset, which closing with
    the client's bytes unread makes, counts as a close)."""
    where = (source, 0) if source else None
    chunks: list[bytes] = []
    with socket.create_connection((HOST, port), timeout, source_address=where) as plain:
        s: socket.socket = plain
        try:
            if header:
                plain.sendall(header)
            if tls:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                s = ctx.wrap_socket(plain, server_hostname=APP)
            s.sendall(b"".join(requests))
        except (ConnectionResetError, BrokenPipeError):
            return b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def get(
    host: str = APP, headers: Sequence[tuple[str, str]] = (), close: bool = True, path: str = "/"
) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *[f"{n}: {v}" for n, v in headers]]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def one(
    port: int, header: bytes, headers: Sequence[tuple[str, str]] = (), tls: bool = False
) -> Answer:
    answers = parse(talk(port, header, [get(headers=headers)], tls))
    assert len(answers) == 1
    return answers[0]


def sent(answer: Answer) -> dict[str, str]:
    """The headers the backend got, by lower-case name."""
    assert answer.status == 200, answer
    return {n.lower(): v for n, v in answer.json()["headers"].items()}


# -- PROXY protocol: seaway's --proxy-protocol ----------------------------------------------
def test_v1_and_v2_headers_on_http_and_https(lt: LoopThread, web: list[Backend]) -> None:
    v2 = bytes.fromhex("0d0a0d0a000d0a515549540a" "2111000c" "cb007109" "c0a8000b" "1f900050")
    with served(lt, web, settings=PP_ON) as p:
        for port, tls in ((p.port, False), (https_port(p), True)):
            h = sent(one(port, PP_E2E, tls=tls))
            assert h["x-forwarded-for"] == h["x-real-ip"] == "192.168.0.1"
            assert h["x-forwarded-proto"] == ("https" if tls else "http")
            h = sent(one(port, v2, tls=tls))
            assert h["x-forwarded-for"] == "203.0.113.9"
        # header and request in one write, several requests on the connection
        both = talk(p.port, PP_E2E, [get(close=False), get(close=False), get()])
        answers = parse(both)
        assert [sent(a)["x-real-ip"] for a in answers] == ["192.168.0.1"] * 3


def test_a_connection_without_the_header_is_closed_unanswered(
    lt: LoopThread, web: list[Backend]
) -> None:
    """nginx `listen ... proxy_protocol` closes a connection whose first bytes are not a
    PROXY header (ngx_http_wait_request_handler: "broken header"), without a response;
    so does seaway, on HTTP and before a TLS handshake on HTTPS."""
    with served(lt, web, settings=PP_ON) as p:
        before = len(web[0].stats.requests)
        assert talk(p.port, b"", [get()]) == b""
        assert talk(p.port, b"PROXY TCP4 192.168.0.1 nope 1 2\r\n", [get()]) == b""
        assert talk(p.port, b"PROXY TCP4 1.2.3.4 1.2.3.5 1 2\n", [get()]) == b""
        # the ClientHello is not a PROXY header: the handshake is never answered (a reset,
        # or an EOF in the handshake)
        with contextlib.suppress(ssl.SSLError):
            assert talk(https_port(p), b"", [get()], tls=True) == b""
        assert len(web[0].stats.requests) == before


def test_a_header_that_does_not_arrive_in_time_closes(lt: LoopThread, web: list[Backend]) -> None:
    """Within the header timeout (here 0.2 s): a client that sends nothing, or half a
    header, is closed (the client's own read timeout, 10 s, is never what ends it)."""
    with served(lt, web, settings=HttpSettings(proxy_protocol=True, header_timeout=0.2)) as p:
        assert talk(p.port, b"", []) == b""
        assert talk(p.port, b"PROXY TCP4 192.168.0", []) == b""
        assert talk(p.port, bytes.fromhex("0d0a0d0a000d0a515549540a21110040"), []) == b""


def test_without_the_flag_a_proxy_header_is_a_bad_request(
    lt: LoopThread, web: list[Backend]
) -> None:
    with served(lt, web) as p:
        assert parse(talk(p.port, PP_E2E, [get()]))[0].status == 400


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
@pytest.mark.parametrize("send_proxy", ["send-proxy", "send-proxy-v2"])
def test_haproxy_in_front(lt: LoopThread, web: list[Backend], send_proxy: str) -> None:
    """haproxy in TCP mode relays to seaway with `send-proxy` (v1) or `send-proxy-v2`:
    the client connects to haproxy from 127.0.0.5, seaway's peer is haproxy (127.0.0.1),
    and the backend sees 127.0.0.5; on HTTPS the header precedes the ClientHello."""
    with (
        served(lt, web, settings=PP_ON) as p,
        haproxy({p.port: send_proxy, https_port(p): send_proxy}) as fronts,
    ):
        for front, tls in zip(fronts, (False, True), strict=True):
            raw = talk(front, b"", [get(close=False), get()], tls, source="127.0.0.5")
            answers = parse(raw)
            assert len(answers) == 2
            for a in answers:
                h = sent(a)
                assert h["x-forwarded-for"] == h["x-real-ip"] == "127.0.0.5"
                assert h["x-forwarded-proto"] == ("https" if tls else "http")


@contextmanager
def haproxy(targets: dict[int, str]) -> Iterator[list[int]]:
    """haproxy (TCP mode) with one frontend per target port, each relaying with the
    given send-proxy option; yields the frontend ports. Stopped and removed after."""
    fronts = [free_port() for _ in targets]
    blocks = [
        f"frontend f{i}\n  bind {HOST}:{front}\n  default_backend b{i}\n"
        f"backend b{i}\n  server s {HOST}:{port} {option}\n"
        for i, (front, (port, option)) in enumerate(zip(fronts, targets.items(), strict=True))
    ]
    config = (
        "global\n  maxconn 64\ndefaults\n  mode tcp\n  timeout connect 5s\n"
        "  timeout client 10s\n  timeout server 10s\n" + "".join(blocks)
    )
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "haproxy.cfg")
        Path(cfg).write_text(config)
        proc = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=subprocess.DEVNULL)
        try:
            for front in fronts:
                wait_for_port(HOST, front)
            yield fronts
        finally:
            proc.terminate()
            proc.wait(10)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_haproxy_protocol(lt: LoopThread, web: list[Backend]) -> None:
    """curl --haproxy-protocol writes a v1 header (its own address) before HTTP or TLS."""
    with served(lt, web, settings=PP_ON) as p:
        for url in (f"http://{HOST}:{p.port}/", f"https://{HOST}:{https_port(p)}/"):
            args = ["curl", "-sk", "--max-time", "10", "-H", f"Host: {APP}", url]
            out = subprocess.run([*args[:1], "--haproxy-protocol", *args[1:]],
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
            assert '"X-Real-IP": "127.0.0.1"' in out
            refused = subprocess.run(args, capture_output=True, text=True)
            assert refused.returncode != 0 and refused.stdout == ""


def test_allow_and_deny_ranges_and_rate_limits_see_the_carried_address(
    lt: LoopThread, web: list[Backend]
) -> None:
    """whitelist-source-range / denylist-source-range (403) and limit-rpm keys read the
    PROXY address (ConfigMap use-proxy-protocol), not the balancer's."""
    nginx = NginxGlobalSettings(use_proxy_protocol=True)
    allow = ann(whitelist_source_range="192.168.0.0/24", limit_rpm="1", limit_burst_multiplier="1")
    with served(lt, web, nginx, annotations=allow) as p:
        assert one(p.port, PP_E2E).status == 200
        assert one(p.port, b"PROXY TCP4 10.1.1.1 192.168.0.11 5 80\r\n").status == 403
        # one a minute and a burst of one per address (nginx limit_req nodelay: the
        # second passes as the burst): spent for this address, not for another
        assert one(p.port, PP_E2E).status == 200
        assert one(p.port, PP_E2E).status == 503
        assert one(p.port, b"PROXY TCP4 192.168.0.2 192.168.0.11 5 80\r\n").status == 200
    with served(lt, web, nginx, annotations=ann(denylist_source_range="192.168.0.1")) as p:
        assert one(p.port, PP_E2E).status == 403
        assert one(p.port, b"PROXY TCP4 192.168.0.2 192.168.0.11 5 80\r\n").status == 200


def test_the_access_log_shows_the_carried_address(
    lt: LoopThread, web: list[Backend], tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    snap = snapshot([ing("app", APP, path("/"))], (), None, [port_info("web", [web[0].endpoint])])
    router = compile_table(translate_ingresses(snap, k.CONTROLLER, False).table)

    async def start() -> WorkerServer:
        stats = make_stats(ObservabilitySettings(access_log=str(log)))
        server = WorkerServer(lt.loop, PP_ON, router, stats)
        await server.apply(router, (HOST, 0), None, None)
        return server

    server = lt.run(start())
    try:
        assert server.http is not None
        assert parse(talk(server.http.address[1], PP_E2E, [get()]))[0].status == 200
        wait_until(lambda: log.exists() and log.read_text().strip(), what="an access log line")
        assert log.read_text().startswith("192.168.0.1 - - [")
    finally:
        lt.run(server.close())


# -- ingress-nginx's ConfigMap keys ---------------------------------------------------------
SPOOFED = [
    ("X-Forwarded-Port", "1234"),
    ("X-Forwarded-Proto", "myproto"),
    ("X-Forwarded-For", "1.2.3.4"),
    ("X-Forwarded-Host", "myhost"),
]


def test_proxy_protocol_e2e_port_and_proto(lt: LoopThread, web: list[Backend]) -> None:
    """proxy_protocol.go "should respect port passed by the PROXY Protocol", "should
    respect proto passed by the PROXY Protocol server port" and "should enable PROXY
    Protocol for HTTPS" (X-Scheme is not sent by seaway)."""
    with served(lt, web, NginxGlobalSettings(use_proxy_protocol=True)) as p:
        h = sent(one(p.port, PP_E2E))
        assert (h["x-forwarded-port"], h["x-forwarded-proto"]) == ("1234", "http")
        assert h["x-forwarded-for"] == "192.168.0.1" and h["host"] == APP
        h = sent(one(p.port, PP_E2E.replace(b"1234", b"443")))
        assert (h["x-forwarded-port"], h["x-forwarded-proto"]) == ("443", "https")
        h = sent(one(https_port(p), PP_E2E, tls=True))
        assert (h["x-forwarded-port"], h["x-forwarded-proto"]) == ("1234", "https")
        assert h["x-forwarded-for"] == "192.168.0.1"


def test_proxy_protocol_with_forwarded_headers(lt: LoopThread, web: list[Backend]) -> None:
    """proxy_protocol.go "when use-forwarded-headers setting is true": "should not trust
    X-Forwarded headers when the client IP address is not trusted" and "should trust
    X-Forwarded headers when the client IP address is trusted" (proxy-real-ip-cidr
    10.0.0.0/8,192.168.0.1/32; and 127.0.0.1, the peer here, which nginx's realip
    checks first). Upstream's untrusted case runs with the default 0.0.0.0/0, which
    trusts 192.168.0.1, and passes only because its assertion is a substring one
    ("x-forwarded-for=192.168.0.1" is in "...=192.168.0.111"); here the CIDRs leave
    192.168.0.1 out, so the case tests what its name says."""
    xff = [("X-Forwarded-For", "192.168.0.111")]
    keys = dict(use_proxy_protocol=True, use_forwarded_headers=True)
    untrusted = NginxGlobalSettings(proxy_real_ip_cidr=("10.0.0.0/8", "127.0.0.1/32"), **keys)
    with served(lt, web, untrusted) as p:
        h = sent(one(p.port, PP_E2E, xff))
        assert (h["x-forwarded-for"], h["x-forwarded-port"]) == ("192.168.0.1", "1234")
    cidrs = ("10.0.0.0/8", "192.168.0.1/32", "127.0.0.1/32")
    with served(lt, web, NginxGlobalSettings(proxy_real_ip_cidr=cidrs, **keys)) as p:
        h = sent(one(p.port, PP_E2E, xff))
        assert h["x-forwarded-for"] == h["x-real-ip"] == "192.168.0.111"
        assert (h["x-forwarded-port"], h["x-forwarded-proto"]) == ("1234", "http")
        # no X-Forwarded-For: the PROXY address (nginx would fall back to the peer)
        assert sent(one(p.port, PP_E2E))["x-forwarded-for"] == "192.168.0.1"


def test_use_forwarded_headers_true(lt: LoopThread, web: list[Backend]) -> None:
    """forwarded_headers.go "should trust X-Forwarded headers when setting is true",
    including "ensuring that first entry in X-Forwarded-Host is used as the best host"."""
    with served(lt, web, NginxGlobalSettings(use_forwarded_headers=True)) as p:
        h = sent(one(p.port, b"", SPOOFED))
        assert h["host"] == "myhost" and h["x-forwarded-host"] == "myhost"
        assert (h["x-forwarded-proto"], h["x-forwarded-port"]) == ("myproto", "1234")
        assert h["x-forwarded-for"] == h["x-real-ip"] == "1.2.3.4"
        many = [*SPOOFED[:3], ("X-Forwarded-Host", "myhost.com, another.host,example.net")]
        h = sent(one(p.port, b"", many))
        assert h["host"] == "myhost.com" and h["x-forwarded-host"] == "myhost.com"


def test_use_forwarded_headers_false(lt: LoopThread, web: list[Backend]) -> None:
    """forwarded_headers.go "should not trust X-Forwarded headers when setting is false"
    (ingress-nginx's defaults): seaway's own values, the incoming X-Forwarded-For kept
    as X-Original-Forwarded-For."""
    with served(lt, web, NginxGlobalSettings()) as p:
        h = sent(one(p.port, b"", SPOOFED))
        assert h["host"] == APP and h["x-forwarded-host"] == APP
        assert (h["x-forwarded-proto"], h["x-forwarded-port"]) == ("http", str(p.port))
        assert h["x-forwarded-for"] == h["x-real-ip"] == "127.0.0.1"
        assert h["x-original-forwarded-for"] == "1.2.3.4"


def test_enable_real_ip(lt: LoopThread, web: list[Backend]) -> None:
    """enable_real_ip.go "trusts X-Forwarded-For header only when setting is true" (the
    other X-Forwarded-* stay seaway's) and "should not trust X-Forwarded-For header when
    setting is false"; with forwarded-for-header naming another header."""
    with served(lt, web, NginxGlobalSettings(enable_real_ip=True)) as p:
        h = sent(one(p.port, b"", SPOOFED))
        assert h["x-forwarded-for"] == "1.2.3.4" and h["host"] == APP
        assert (h["x-forwarded-proto"], h["x-forwarded-port"]) == ("http", str(p.port))
    with served(lt, web, NginxGlobalSettings(enable_real_ip=False)) as p:
        assert sent(one(p.port, b"", SPOOFED))["x-forwarded-for"] == "127.0.0.1"
    custom = NginxGlobalSettings(enable_real_ip=True, forwarded_for_header="X-Client")
    with served(lt, web, custom) as p:
        h = sent(one(p.port, b"", [("X-Client", "203.0.113.7"), ("X-Forwarded-For", "1.2.3.4")]))
        assert h["x-forwarded-for"] == h["x-real-ip"] == "203.0.113.7"
        assert h["x-client"] == "203.0.113.7"  # (forwarded as it came)


def test_real_ip_recursive_over_trusted_proxies(lt: LoopThread, web: list[Backend]) -> None:
    """proxy-real-ip-cidr is nginx's set_real_ip_from with real_ip_recursive on: the
    rightmost address not trusted is the client; an untrusted peer's header is ignored.
    The address found is what allow lists see."""
    keys = NginxGlobalSettings(
        use_forwarded_headers=True, proxy_real_ip_cidr=("127.0.0.1/32", "10.0.0.0/8")
    )
    allow = ann(whitelist_source_range="203.0.113.0/24")
    with served(lt, web, keys, annotations=allow) as p:
        chain = [("X-Forwarded-For", "198.51.100.1, 203.0.113.9, 10.0.0.2")]
        assert sent(one(p.port, b"", chain))["x-real-ip"] == "203.0.113.9"
        assert one(p.port, b"", [("X-Forwarded-For", "198.51.100.1, 10.0.0.2")]).status == 403
    untrusting = NginxGlobalSettings(use_forwarded_headers=True, proxy_real_ip_cidr=("10.0.0.0/8",))
    with served(lt, web, untrusting) as p:
        assert sent(one(p.port, b"", [("X-Forwarded-For", "1.2.3.4")]))["x-real-ip"] == "127.0.0.1"


def test_compute_full_forwarded_for(lt: LoopThread, web: list[Backend]) -> None:
    """compute-full-forwarded-for (with use-forwarded-headers): the incoming
    X-Forwarded-For plus the peer ($realip_remote_addr) or the PROXY address; ignored
    without use-forwarded-headers (nginx.tmpl tests both)."""
    full = NginxGlobalSettings(use_forwarded_headers=True, compute_full_forwarded_for=True)
    with served(lt, web, full) as p:
        h = sent(one(p.port, b"", [("X-Forwarded-For", "1.2.3.4")]))
        assert h["x-forwarded-for"] == "1.2.3.4, 127.0.0.1" and h["x-real-ip"] == "1.2.3.4"
        assert sent(one(p.port, b""))["x-forwarded-for"] == "127.0.0.1"
    with served(lt, web, NginxGlobalSettings(compute_full_forwarded_for=True)) as p:
        assert sent(one(p.port, b"", [("X-Forwarded-For", "1.2.3.4")]))["x-forwarded-for"] == (
            "127.0.0.1"
        )


def test_seaway_default_appends_and_drops_a_client_forwarded_port(
    lt: LoopThread, web: list[Backend]
) -> None:
    """Outside ingress-nginx mode: X-Forwarded-For is the incoming value plus the peer,
    the rest seaway's; a client's X-Forwarded-Port is not passed on."""
    with served(lt, web) as p:
        h = sent(one(p.port, b"", SPOOFED))
        assert h["x-forwarded-for"] == "1.2.3.4, 127.0.0.1" and h["x-real-ip"] == "127.0.0.1"
        assert "x-forwarded-port" not in h and "x-original-forwarded-for" not in h
        assert (h["x-forwarded-proto"], h["x-forwarded-host"]) == ("http", APP)


def test_pipelined_requests_keep_their_own_client(lt: LoopThread, web: list[Backend]) -> None:
    """Per-request addresses (enable-real-ip): requests pipelined in one write, each
    with its own X-Forwarded-For, each reach the backend as their own client."""
    with served(lt, web, NginxGlobalSettings(enable_real_ip=True)) as p:
        reqs = [get(headers=[("X-Forwarded-For", f"10.0.0.{i}")], close=i == 3) for i in (1, 2, 3)]
        answers = parse(talk(p.port, b"", reqs))
        assert [sent(a)["x-real-ip"] for a in answers] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        # the same bytes again (the exact-bytes memo is off on such connections)
        again = parse(talk(p.port, b"", [reqs[0], reqs[0], reqs[2]]))
        assert [sent(a)["x-real-ip"] for a in again] == ["10.0.0.1", "10.0.0.1", "10.0.0.3"]


def test_forwarded_proto_decides_the_https_redirect(lt: LoopThread, web: list[Backend]) -> None:
    """lua_ingress.lua redirect_to_https reads $pass_access_scheme: behind a balancer
    that ends TLS (use-forwarded-headers), X-Forwarded-Proto: https is not redirected
    again; without use-forwarded-headers the header changes nothing (308)."""
    force = ann(force_ssl_redirect="true")
    https_said = [("X-Forwarded-Proto", "https")]
    with served(lt, web, NginxGlobalSettings(use_forwarded_headers=True), annotations=force) as p:
        assert one(p.port, b"").status == 308
        assert sent(one(p.port, b"", https_said))["x-forwarded-proto"] == "https"
    with served(lt, web, NginxGlobalSettings(), annotations=force) as p:
        assert one(p.port, b"", https_said).status == 308
    # a PROXY destination port 443 is https too (lua: proxy_protocol_server_port)
    with served(lt, web, NginxGlobalSettings(use_proxy_protocol=True), annotations=force) as p:
        assert one(p.port, PP_E2E).status == 308
        assert one(p.port, PP_E2E.replace(b"1234", b"443")).status == 200


def test_closing_the_listener_closes_connections_still_owing_their_header(
    lt: LoopThread, web: list[Backend]
) -> None:
    """A reload that closes the socket (or a drain) does not leave a connection that has
    not sent its PROXY header yet open until its header timeout (here an hour)."""
    settings = HttpSettings(proxy_protocol=True, header_timeout=3600)
    with served(lt, web, settings=settings) as p, socket.create_connection((HOST, p.port)) as s:
        server = p.server
        assert server is not None and server.http is not None
        listener = server.http
        wait_until(lambda: len(listener.tasks) == 1, what="the connection accepted")
        lt.run(server.close())
        s.settimeout(30)
        with contextlib.suppress(ConnectionResetError):
            assert s.recv(1) == b""


def test_hash_by_remote_addr_hashes_the_carried_address(lt: LoopThread) -> None:
    """upstream-hash-by $remote_addr keys on the PROXY address: every request of one
    carried address reaches one backend, and twenty addresses spread over three backends
    (hashing the peer, 127.0.0.1 for all, would send them all to one)."""
    nginx = NginxGlobalSettings(use_proxy_protocol=True)
    with backends(lt, "h1", "h2", "h3") as three:
        ports = [port_info("web", [b.endpoint for b in three])]
        ingress = ing("app", APP, path("/"), annotations=ann(upstream_hash_by="$remote_addr"))
        table = translate_ingresses(snapshot([ingress], (), nginx, ports), k.CONTROLLER).table
        with proxy(lt, table) as p:
            def name(address: str) -> str:
                header = f"PROXY TCP4 {address} 192.168.0.11 5 80\r\n".encode()
                answer = one(p.port, header)
                assert answer.status == 200
                found: str = answer.json()["name"]
                return found

            first = name("198.51.100.1")
            assert {name("198.51.100.1") for _ in range(5)} == {first}
            assert len({name(f"198.51.100.{i}") for i in range(2, 22)}) > 1
