"""ingress-nginx annotations through seaway's real L7 proxy, with real sockets and real
backends: the annotations the translation tests (tests/ingress/test_nginx_*.py) cover only
on the route table. Annotated Ingresses, each on a host of its own, are translated in
ingress-nginx mode (its ConfigMap defaults) and served by one proxy for the module, in
front of Python echo backends (tests/ingress/l7kit.py: they answer JSON naming themselves
and the request they got). Each case names the ingress-nginx e2e test it ports
(test/e2e/annotations/*.go) or, where it has none, the documentation
(docs/user-guide/nginx-configuration/annotations.md) it follows."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

import pytest

from discovery.model import Ingress
from discovery.nginx_configmap import NginxGlobalSettings
from discovery.snapshot import EndpointInfo, ServicePortInfo
from ingress.translate_ingress import translate_ingresses
from tests.ingress import routerkit as k
from tests.ingress.filterkit import (
    Answer,
    backends,
    https_port,
    on_one_connection,
    parse,
    proxy,
    request,
)
from tests.ingress.l7kit import HOST, Backend, LoopThread, Proxy, port_info
from tests.ingress.nginxkit import NGINX, ann, ing, path, snapshot

MAIN = "main"  # the backends' names, as their JSON answers give them
CANARY = "canary"
TLS_HOST = "secure.test"
PRESERVE_HOST = "forcesslredirect.bar.com"
WWW_HOST = "fromtowwwredirect.bar.com"


# ---------------------------------------------------------------- the Ingresses


def canaries() -> list[Ingress]:
    """canary.go's setup once per rule set: a main Ingress for <host> /info (Service
    main-<n>) and a canary Ingress for the same (Service canary-<n>). Each host has its
    own main Service, as the canary belongs to the main Service port."""
    cases: dict[str, dict[str, str]] = {
        "by-header": ann(canary_by_header="CanaryByHeader"),
        "by-value": ann(canary_by_header="CanaryByHeader", canary_by_header_value="DoCanary"),
        "by-pattern": ann(
            canary_by_header="CanaryByHeader", canary_by_header_pattern="^Do[A-Z][a-z]+y$"
        ),
        "bad-pattern": ann(
            canary_by_header="CanaryByHeader",
            canary_by_header_pattern="[][**da?$&*",
            canary_by_cookie="CanaryByCookie",
        ),
        "value-cookie": ann(
            canary_by_header="CanaryByHeader",
            canary_by_header_value="DoCanary",
            canary_by_cookie="CanaryByCookie",
        ),
        "by-cookie": ann(canary_by_cookie="Canary-By-Cookie"),
        "precedence": ann(canary_by_header="H", canary_by_cookie="C", canary_weight="100"),
        "weight-0": ann(canary_weight="0"),
        "weight-100": ann(canary_weight="100"),
        "weight-total": ann(canary_weight="1000", canary_weight_total="1000"),
        "weight-50": ann(canary_weight="50"),
        "weight-100-of-200": ann(canary_weight="100", canary_weight_total="200"),
        "weight-20": ann(canary_weight="20"),
    }
    made = []
    for n, rules in cases.items():
        host = f"{n}.canary.test"
        made.append(ing(f"{n}", host, path("/info", f"main-{n}"), created="1"))
        made.append(
            ing(
                f"{n}-canary",
                host,
                path("/info", f"canary-{n}"),
                created="2",
                annotations={**ann(canary="true"), **rules},
            )
        )
    # canary.go "should return 404 status for requests to the canary if no matching
    # ingress is found": a canary alone serves nothing.
    made.append(
        ing(
            "alone-canary",
            "alone.canary.test",
            path("/info", "canary-alone"),
            annotations=ann(canary="true", canary_by_header="CanaryByHeader"),
        )
    )
    return made


def redirects() -> list[Ingress]:
    return [
        ing(
            "temporal",
            "temporal.test",
            path("/"),
            annotations=ann(temporal_redirect="https://t.example.com/x"),
        ),
        ing(
            "temporal-code",
            "temporal-code.test",
            path("/"),
            annotations=ann(
                temporal_redirect="https://t.example.com/", temporal_redirect_code="307"
            ),
        ),
        ing(
            "both",
            "both.test",
            path("/"),
            annotations=ann(
                temporal_redirect="https://t.example.com/", permanent_redirect="https://p.test/"
            ),
        ),
        ing("www", WWW_HOST, path("/"), annotations=ann(from_to_www_redirect="true")),
        ing("tls", TLS_HOST, path("/"), tls=[([TLS_HOST], "cert")], created="1"),
        ing("tls-other", TLS_HOST, path("/api"), created="2"),
        ing("open", "open.test", path("/")),
        ing(
            "tls-off",
            "tls-off.test",
            path("/"),
            tls=[(["tls-off.test"], "cert")],
            annotations=ann(ssl_redirect="false"),
        ),
        ing(
            "preserve",
            PRESERVE_HOST,
            path("/"),
            tls=[([PRESERVE_HOST], "cert")],
            annotations=ann(ssl_redirect="true", preserve_trailing_slash="true"),
        ),
        ing(
            "drop",
            "drop-slash.test",
            path("/"),
            tls=[(["drop-slash.test"], "cert")],
            annotations=ann(ssl_redirect="true"),
        ),
    ]


def backend_annotations() -> list[Ingress]:
    return [
        ing(
            "vhost",
            "upstreamvhost.foo.com",
            path("/"),
            annotations=ann(upstream_vhost="upstreamvhost.bar.com"),
        ),
        ing(
            "default-backend",
            "default-backend",
            path("/", "invalid"),
            annotations=ann(default_backend="web"),
        ),
        ing("foo", "foo.test", path("/")),
        ing("alias", "alias.test", path("/"), annotations=ann(server_alias="bar.test")),
        ing("app-a", "two.test", path("/app-a"), created="1"),
        ing(
            "app-b",
            "two.test",
            path("/app-b"),
            annotations=ann(server_alias="two-alias.test"),
            created="2",
        ),
        ing(
            "xfp",
            "xfp.baz.com",
            path("/"),
            annotations=ann(x_forwarded_prefix="/test/value", rewrite_target="/foo"),
        ),
        ing(
            "noxfp",
            "noxfp.baz.com",
            path("/"),
            annotations=ann(x_forwarded_prefix="", rewrite_target="/foo"),
        ),
        ing(
            "deny-loopback",
            "deny-loopback.test",
            path("/"),
            annotations=ann(denylist_source_range="127.0.0.0/8"),
        ),
        ing(
            "deny-other",
            "deny-other.test",
            path("/"),
            annotations=ann(denylist_source_range="18.0.0.0/8, 56.0.0.1"),
        ),
        ing("read", "read-timeout.test", path("/"), annotations=ann(proxy_read_timeout="1")),
        ing(
            "send",
            "send-timeout.test",
            path("/", "sink"),
            annotations=ann(proxy_send_timeout="1", proxy_body_size="0"),
        ),
    ]


# ---------------------------------------------------------------- the rig


@contextmanager
def serve(
    lt: LoopThread,
    ingresses: Iterable[Ingress],
    ports: Sequence[ServicePortInfo],
    settings: NginxGlobalSettings = NGINX,
) -> Iterator[Proxy]:
    """A proxy (HTTP and HTTPS) serving the translation of `ingresses` in ingress-nginx
    mode with `settings`."""
    snap = snapshot(ingresses, (), settings, ports)
    translation = translate_ingresses(snap, k.CONTROLLER, False)
    with proxy(lt, translation.table, https=True) as p:
        yield p


class Sink:
    """A backend that accepts connections and never reads them, its receive buffer
    small: a request body sent to it stalls (proxy-send-timeout's case)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)
        for c in self.accepted:
            c.close()


@pytest.fixture(scope="module")
def echo(lt: LoopThread) -> Iterator[dict[str, Backend]]:
    with backends(lt, MAIN, CANARY, "web", "vip") as found:
        yield {b.name: b for b in found}


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    s = Sink()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def p(lt: LoopThread, echo: dict[str, Backend], sink: Sink) -> Iterator[Proxy]:
    """The module's proxy: every Ingress above, Services main-<n> and canary-<n> on the
    main and canary backends, web on web, sink on the Sink; "invalid" does not exist."""
    ingresses = [*canaries(), *redirects(), *backend_annotations()]
    ports = [port_info("web", [echo["web"].endpoint])]
    for i in ingresses:
        for rule in i.rules:
            for pa in rule.paths:
                service = pa.backend.service_name
                for prefix, backend in (("main-", MAIN), ("canary-", CANARY)):
                    if service.startswith(prefix):
                        ports.append(port_info(service, [echo[backend].endpoint]))
    ports.append(port_info("sink", [EndpointInfo(HOST, sink.port)]))
    with serve(lt, ingresses, ports) as served:
        yield served


def served_by(a: Answer) -> str:
    assert a.status == 200, (a.status, a.body)
    name: str = a.json()["name"]
    return name


def canary_get(p: Proxy, case: str, headers: Sequence[tuple[str, str]] = ()) -> str:
    """The backend that answered GET /info on the case's host."""
    return served_by(request(p.port, "/info", host=f"{case}.canary.test", headers=headers))


def cookie(name: str, value: str) -> tuple[str, str]:
    return ("Cookie", f"{name}={value}")


# ---------------------------------------------------------------- canary


def test_canary_by_header(p: Proxy) -> None:
    """canary.go "when canaried by header with no value": always -> canary, never and
    anything else (or no header) -> main; "when canaried by header with value": DoCanary
    -> canary, "always" is then just another value -> main, the value is case-sensitive."""
    h = "CanaryByHeader"
    assert canary_get(p, "by-header", [(h, "always")]) == CANARY
    assert canary_get(p, "by-header", [(h, "never")]) == MAIN
    assert canary_get(p, "by-header", [(h, "badheadervalue")]) == MAIN
    assert canary_get(p, "by-header") == MAIN
    assert canary_get(p, "by-value", [(h, "DoCanary")]) == CANARY
    assert canary_get(p, "by-value", [(h, "always")]) == MAIN
    assert canary_get(p, "by-value", [(h, "docanary")]) == MAIN
    assert canary_get(p, "by-value") == MAIN


def test_canary_by_header_pattern(p: Proxy) -> None:
    """canary.go "when canaried by header with value and pattern" ("DoCanary" matches
    ^Do[A-Z][a-z]+y$, "Docanary" does not) and "should routes to mainline upstream when
    the given Regex causes error" (with the header, main even with the cookie at always;
    without the header the cookie still counts)."""
    h = "CanaryByHeader"
    assert canary_get(p, "by-pattern", [(h, "DoCanary")]) == CANARY
    assert canary_get(p, "by-pattern", [(h, "Docanary")]) == MAIN
    always = cookie("CanaryByCookie", "always")
    assert canary_get(p, "bad-pattern", [(h, "DoCanary"), always]) == MAIN
    assert canary_get(p, "bad-pattern", [always]) == CANARY


def test_canary_by_cookie_and_precedence(p: Proxy) -> None:
    """canary.go "when canaried by cookie" "respects always and never values" (anything
    else -> main, no weight), "when canaried by header with value and cookie" (a header
    that does not match falls through to the cookie); precedence header, cookie, weight
    (annotations.md#canary, balancer.lua route_to_alternative_balancer): never in the
    header wins over the cookie's always, never in the cookie over weight 100."""
    c = "Canary-By-Cookie"
    for _ in range(5):
        assert canary_get(p, "by-cookie", [cookie(c, "always")]) == CANARY
        assert canary_get(p, "by-cookie", [cookie(c, "never")]) == MAIN
        assert canary_get(p, "by-cookie", [cookie(c, "badcookievalue")]) == MAIN
    both = [("CanaryByHeader", "otherheadervalue"), cookie("CanaryByCookie", "always")]
    assert canary_get(p, "value-cookie", both) == CANARY
    assert canary_get(p, "precedence", [("H", "never"), cookie("C", "always")]) == MAIN
    assert canary_get(p, "precedence", [("H", "always"), cookie("C", "never")]) == CANARY
    assert canary_get(p, "precedence", [("Cookie", "a=1; C=never")]) == MAIN
    assert canary_get(p, "precedence", [cookie("C", "maybe")]) == CANARY  # weight 100
    assert canary_get(p, "precedence") == CANARY


def test_canary_weight_0_100_and_total(p: Proxy) -> None:
    """canary.go "when canaried by weight": "should route requests only to mainline if
    canary weight is 0", "... only to canary if canary weight is 100", "... only to canary
    if canary weight is equal to canary weight total" (each over 20 requests); and
    "should return 404 status for requests to the canary if no matching ingress is
    found"."""
    assert {canary_get(p, "weight-0") for _ in range(20)} == {MAIN}
    assert {canary_get(p, "weight-100") for _ in range(20)} == {CANARY}
    assert {canary_get(p, "weight-total") for _ in range(20)} == {CANARY}
    alone = [("CanaryByHeader", "always")]
    assert request(p.port, "/info", host="alone.canary.test", headers=alone).status == 404


DRAWS = 800


def shares(p: Proxy, case: str) -> Counter[str]:
    """Which backend answered each of DRAWS requests on keep-alive connections (the
    canary is chosen per request, not per connection)."""
    raw = f"GET /info HTTP/1.1\r\nHost: {case}.canary.test\r\n\r\n".encode()
    got: Counter[str] = Counter()
    for _ in range(DRAWS // 100):
        answers = on_one_connection(p.port, [raw] * 100)
        assert len(answers) == 100
        got.update(served_by(a) for a in answers)
    return got


@pytest.mark.parametrize(
    ("case", "expected"),
    [("weight-50", 0.5), ("weight-100-of-200", 0.5), ("weight-20", 0.2)],
)
def test_canary_weight_split(p: Proxy, case: str, expected: float) -> None:
    """canary.go "should route requests split between mainline and canary if canary
    weight is 50" and "... if canary weight is 100 and weight total is 200" (and a 20%
    canary): over DRAWS requests the canary's share is within 4 binomial standard
    deviations of weight / total (a false failure once in ~16000 runs); both backends
    answer."""
    got = shares(p, case)
    assert set(got) == {MAIN, CANARY} and sum(got.values()) == DRAWS
    sigma = (expected * (1 - expected) / DRAWS) ** 0.5
    share = got[CANARY] / DRAWS
    assert abs(share - expected) <= 4 * sigma, (case, got)


# ---------------------------------------------------------------- redirects


def test_temporal_redirect_and_code(p: Proxy) -> None:
    """annotations.md "Temporal Redirect" (302 to the URL as given, the backend never
    asked) and "Temporal Redirect Code" (307); internal/ingress/annotations/redirect/
    redirect.go reads temporal-redirect first, so it wins over permanent-redirect
    (ingress-nginx has no e2e test for it)."""
    a = request(p.port, "/any/path?q=1", host="temporal.test")
    assert (a.status, a.header("Location")) == (302, "https://t.example.com/x")
    b = request(p.port, "/", host="temporal-code.test", method="POST", body=b"x")
    assert (b.status, b.header("Location")) == (307, "https://t.example.com/")
    c = request(p.port, "/", host="both.test")
    assert (c.status, c.header("Location")) == (302, "https://t.example.com/")


def test_from_to_www_redirect(p: Proxy) -> None:
    """fromtowwwredirect.go "should redirect from www HTTP to HTTP" (GET /foo with Host
    www.<host> -> 308) and "should redirect from www HTTPS to HTTPS", and "sending
    request to domain should not redirect to www" (the bare host is served). ingress-nginx
    writes the listening port (http://<host>:80/foo, https://<host>:443); seaway keeps the
    Host header's port (none here), a difference the README states."""
    www = "www." + WWW_HOST
    a = request(p.port, "/foo", host=www)
    assert (a.status, a.header("Location")) == (308, f"http://{WWW_HOST}/foo")
    b = request(https_port(p), "/", host=www, tls=True)
    assert (b.status, b.header("Location")) == (308, f"https://{WWW_HOST}")
    assert served_by(request(p.port, "/foo", host=WWW_HOST)) == "web"
    assert served_by(request(https_port(p), "/", host=WWW_HOST, tls=True)) == "web"


def test_ssl_redirect_is_on_by_default_for_an_ingress_with_tls(p: Proxy) -> None:
    """annotations.md "Server-side HTTPS enforcement through redirect": "By default the
    controller redirects (308) to HTTPS if TLS is enabled for that ingress" (for the host:
    another Ingress of it without tls redirects too), the query kept; HTTPS is served;
    a host without tls is not redirected (forcesslredirect.go's request, without the
    annotation), nor one whose Ingress says ssl-redirect: "false" (the same section)."""
    a = request(p.port, "/x?q=1", host=TLS_HOST)
    assert (a.status, a.header("Location")) == (308, f"https://{TLS_HOST}/x?q=1")
    b = request(p.port, "/api/v1", host=TLS_HOST)
    assert (b.status, b.header("Location")) == (308, f"https://{TLS_HOST}/api/v1")
    assert served_by(request(https_port(p), "/x", host=TLS_HOST, tls=True)) == "web"
    assert served_by(request(p.port, "/x", host="open.test")) == "web"
    assert served_by(request(p.port, "/x", host="tls-off.test")) == "web"


def test_preserve_trailing_slash(p: Proxy) -> None:
    """preservetrailingslash.go "should allow preservation of trailing slashes": ssl-redirect
    and preserve-trailing-slash on an Ingress with TLS, GET / -> 308 to
    https://forcesslredirect.bar.com/; without it the trailing slash is dropped
    (lua_ingress.lua, forcesslredirect.go "should redirect to https")."""
    a = request(p.port, "/", host=PRESERVE_HOST)
    assert (a.status, a.header("Location")) == (308, f"https://{PRESERVE_HOST}/")
    b = request(p.port, "/a/", host=PRESERVE_HOST)
    assert (b.status, b.header("Location")) == (308, f"https://{PRESERVE_HOST}/a/")
    c = request(p.port, "/a/", host="drop-slash.test")
    assert (c.status, c.header("Location")) == (308, "https://drop-slash.test/a")


# ---------------------------------------------------------------- backends


def test_upstream_vhost(p: Proxy) -> None:
    """upstreamvhost.go "set host to upstreamvhost.bar.com": the backend is asked with
    Host upstreamvhost.bar.com (proxy_set_header Host), the path unchanged."""
    a = request(p.port, "/x?y=1", host="upstreamvhost.foo.com")
    assert served_by(a) == "web"
    assert a.sent_header("Host") == "upstreamvhost.bar.com"
    assert a.json()["path"] == "/x?y=1"


def test_default_backend(p: Proxy) -> None:
    """default_backend.go "should use a custom default backend as upstream": the rule's
    Service "invalid" does not exist, the default-backend Service answers 200, asked with
    x-code=503, x-ingress-name, x-service-name=invalid and the client's x-request-id."""
    asked = [("x-request-id", "something-unique")]
    a = request(p.port, "/alma/armud", host="default-backend", headers=asked)
    assert served_by(a) == "web"
    assert a.sent_header("X-Code") == "503"
    assert a.sent_header("X-Ingress-Name") == "default-backend"
    assert a.sent_header("X-Service-Name") == "invalid"
    assert a.sent_header("X-Request-ID") == "something-unique"


def test_server_alias(p: Proxy) -> None:
    """alias.go "should return status code 200 for host 'foo' and 404 for 'bar'", "... 200
    for host 'foo' and 'bar'" (the backend sees the client's Host) and "... for hosts
    defined in two ingresses, different path with one alias" (the alias serves both
    Ingresses' paths)."""
    assert served_by(request(p.port, "/", host="foo.test")) == "web"
    assert request(p.port, "/", host="bar-none.test").status == 404
    for host in ("alias.test", "bar.test"):
        a = request(p.port, "/", host=host)
        assert served_by(a) == "web" and a.sent_header("Host") == host
    for host in ("two.test", "two-alias.test"):
        for target in ("/app-a", "/app-b"):
            a = request(p.port, target, host=host)
            assert served_by(a) == "web" and a.sent_header("Host") == host


def test_x_forwarded_prefix(p: Proxy) -> None:
    """xforwardedprefix.go "should set the X-Forwarded-Prefix to the annotation value"
    (with rewrite-target /foo) and "should not add X-Forwarded-Prefix if the annotation
    value is empty"."""
    a = request(p.port, "/", host="xfp.baz.com")
    assert served_by(a) == "web" and a.json()["path"] == "/foo"
    assert a.sent_header("X-Forwarded-Prefix") == "/test/value"
    b = request(p.port, "/", host="noxfp.baz.com")
    assert served_by(b) == "web" and b.json()["path"] == "/foo"
    assert b.sent_header("X-Forwarded-Prefix") is None


def test_denylist_source_range_trusts_no_forwarded_header_by_default(p: Proxy) -> None:
    """annotations.md "Denylist source range" and ipdenylist.go's first case's ranges,
    without use-forwarded-headers: the connection's address (127.0.0.1) decides, an
    X-Forwarded-For naming an allowed or a denied address changes nothing; 403 from the
    proxy, the backend never asked."""
    assert served_by(request(p.port, "/", host="deny-other.test")) == "web"
    for xff in ((), [("X-Forwarded-For", "56.0.0.2")]):
        assert request(p.port, "/", host="deny-loopback.test", headers=xff).status == 403
    denied_xff = [("X-Forwarded-For", "18.0.0.1")]
    assert served_by(request(p.port, "/", host="deny-other.test", headers=denied_xff)) == "web"


def test_denylist_source_range_with_forwarded_headers(
    lt: LoopThread, echo: dict[str, Backend]
) -> None:
    """ipdenylist.go "only deny explicitly denied IPs, allow all others" and "only allow
    explicitly allowed IPs, deny all others" (denylist with whitelist-source-range), with
    the ConfigMap's use-forwarded-headers true as the e2e test sets it: the
    X-Forwarded-For address decides."""
    only_deny = ing(
        "deny", "ipdenylist.foo.com", path("/"),
        annotations=ann(denylist_source_range="18.0.0.0/8, 56.0.0.1"),
    )
    deny_allow = ing(
        "deny-allow", "ipdenyallow.foo.com", path("/"),
        annotations=ann(
            denylist_source_range="18.1.0.0/16, 56.0.0.0/8",
            whitelist_source_range="18.0.0.0/8, 55.0.0.0/8",
        ),
    )
    settings = replace(NGINX, use_forwarded_headers=True)
    ports = [port_info("web", [echo["web"].endpoint])]
    with serve(lt, [only_deny, deny_allow], ports, settings) as q:
        def status(host: str, xff: str) -> int:
            return request(q.port, "/", host=host, headers=[("X-Forwarded-For", xff)]).status

        assert status("ipdenylist.foo.com", "18.0.0.1") == 403
        assert status("ipdenylist.foo.com", "56.0.0.1") == 403
        assert status("ipdenylist.foo.com", "56.0.0.2") == 200
        assert status("ipdenyallow.foo.com", "18.1.0.1") == 403
        assert status("ipdenyallow.foo.com", "10.10.10.10") == 403
        assert status("ipdenyallow.foo.com", "18.4.0.1") == 200
        assert status("ipdenyallow.foo.com", "55.55.55.55") == 200


def test_service_upstream(lt: LoopThread, echo: dict[str, Backend]) -> None:
    """serviceupstream.go "when using the default value (false) and enabling in the
    annotations", "when enabling in the configmap" and "when enabling in the configmap and
    disabling in the annotations": with service-upstream the request goes to the Service's
    cluster IP and port (here 127.0.0.1 and the "vip" backend's port), not to its
    endpoints (the "web" backend)."""
    vip = echo["vip"]
    cases = {"on": ann(service_upstream="true"), "plain": {}, "off": ann(service_upstream="false")}
    # One Service each: ingress-nginx decides service-upstream per upstream (Service port),
    # by the first Ingress naming it (controller.go createUpstreams).
    svcs = [
        replace(port_info(f"svc-{c}", [echo["web"].endpoint], port=vip.port), cluster_ips=(HOST,))
        for c in cases
    ]
    ingresses = [
        ing(c, f"{c}.test", path("/", f"svc-{c}", port=vip.port), annotations=a)
        for c, a in cases.items()
    ]
    with serve(lt, ingresses, svcs) as q:
        assert served_by(request(q.port, "/", host="on.test")) == "vip"
        assert served_by(request(q.port, "/", host="plain.test")) == "web"
    with serve(lt, ingresses, svcs, replace(NGINX, service_upstream=True)) as q:
        assert served_by(request(q.port, "/", host="plain.test")) == "vip"
        assert served_by(request(q.port, "/", host="off.test")) == "web"


# ---------------------------------------------------------------- timeouts


def test_proxy_read_timeout(p: Proxy) -> None:
    """proxy.go "should set valid proxy timeouts" (proxy_read_timeout from the annotation,
    over the ConfigMap's 60 s): a backend that never answers gets 504 once the annotation's
    1 s passes (the client waits up to 15 s; no timing is asserted), also when the request
    body was still coming as it went upstream, and other paths are served."""
    assert served_by(request(p.port, "/fast", host="read-timeout.test")) == "web"
    assert request(p.port, "/slow", host="read-timeout.test", timeout=15).status == 504
    # A body still coming when the request goes upstream: the ConfigMap's send timeout
    # (60 s) applies until it is all read, then the annotation's read timeout.
    with socket.create_connection((HOST, p.port), timeout=15) as s:
        head = "POST /slow HTTP/1.1\r\nHost: read-timeout.test\r\nContent-Length: 4\r\n\r\n"
        s.sendall(head.encode() + b"ab")
        assert served_by(request(p.port, "/fast", host="read-timeout.test")) == "web"
        s.sendall(b"cd")
        data = b""
        while not parse(data) and (chunk := s.recv(65536)):
            data += chunk
    assert [a.status for a in parse(data)] == [504]


def stalled_upload(port: int, host: str, size: int, timeout: float = 15.0) -> list[Answer]:
    """POST `size` body bytes (sent from a thread, which stops when the proxy closes) and
    read the answers until the proxy closes."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        head = f"POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: {size}\r\n\r\n"
        s.sendall(head.encode())

        def feed() -> None:
            block = b"u" * 65536
            try:
                for _ in range(size // len(block)):
                    s.sendall(block)
            except OSError:
                pass

        sender = threading.Thread(target=feed, daemon=True)
        sender.start()
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        sender.join(timeout)
    return parse(data)


def test_proxy_send_timeout(p: Proxy, sink: Sink) -> None:
    """proxy.go "should set valid proxy timeouts" (proxy_send_timeout from the annotation,
    over the ConfigMap's 60 s; annotations.md "Custom timeouts"): a backend that stops
    reading the request body (its buffers full) gets the request cut after the
    annotation's 1 s, 504 to the client (nginx's send timeout between two writes)."""
    answers = stalled_upload(p.port, "send-timeout.test", 64 * 1024 * 1024)
    assert [a.status for a in answers] == [504]
    assert sink.accepted


def test_configmap_proxy_send_timeout(lt: LoopThread, echo: dict[str, Backend], sink: Sink) -> None:
    """configmap.md "proxy-send-timeout" (settings/proxy_send_timeout.go sets it in the
    ConfigMap): the global send timeout acts on a route without the annotation, as the
    global proxy-read-timeout does; a backend that stops reading the body gets the request
    cut after 1 s with 504, while the read timeout (60 s) still lets a slow answer come."""
    ingresses = [
        ing("upload", "upload.test", path("/", "sink")),
        ing("web", "web.test", path("/", "web")),
    ]
    ports = [
        port_info("sink", [EndpointInfo(HOST, sink.port)]),
        port_info("web", [echo["web"].endpoint]),
    ]
    settings = replace(NGINX, proxy_send_timeout=1, proxy_body_size=0)
    with serve(lt, ingresses, ports, settings) as q:
        before = len(sink.accepted)
        answers = stalled_upload(q.port, "upload.test", 64 * 1024 * 1024)
        assert [a.status for a in answers] == [504]
        assert len(sink.accepted) > before
        assert served_by(request(q.port, "/", host="web.test")) == "web"
