"""ingress-nginx annotations and ConfigMap end to end: annotated Ingresses translated
(ingress/translate_ingress.py) and served by the proxy in front of real backends, as a
migrating user runs them. Each case names the ingress-nginx e2e test
(test/e2e/annotations/*.go, test/e2e/settings/*.go) it follows."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import replace

import pytest

from discovery.model import GenericSecret
from discovery.nginx_configmap import NginxGlobalSettings
from ingress.translate_ingress import translate_ingresses
from tests.ingress import routerkit as k
from tests.ingress.filterkit import backends, https_port, parse, proxy, request, runtime, send
from tests.ingress.l7kit import Backend, LoopThread, port_info
from tests.ingress.nginxkit import NGINX, ann, ing, path, secret, snapshot

HOST = "app.test"


@pytest.fixture(scope="module")
def web(lt: LoopThread) -> Iterator[list[Backend]]:
    with backends(lt, "web-1", "web-2", "web-3") as found:
        yield found


def served(
    lt: LoopThread,
    ingresses: Iterable[object],
    web: list[Backend],
    nginx: NginxGlobalSettings | None = None,
    secrets: Iterable[GenericSecret] = (),
    https: bool = False,
    endpoints: int = 1,
) -> proxy:  # type: ignore[valid-type]
    """A proxy serving the translation of `ingresses` (Service "web": the first
    `endpoints` backends)."""
    ports = [port_info("web", [b.endpoint for b in web[:endpoints]])]
    snap = snapshot(ingresses, (), nginx, ports, secrets=secrets)  # type: ignore[arg-type]
    translation = translate_ingresses(snap, k.CONTROLLER, False)
    return proxy(lt, translation.table, https=https)


def basic(user: str, password: str) -> tuple[str, str]:
    return ("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


def test_rewrite_target_and_x_forwarded_prefix(lt: LoopThread, web: list[Backend]) -> None:
    """rewrite.go ("should write rewrite-target with $2 captures"-style: /something(/|$)(.*)
    to /$2, the query kept) and xforwardedprefix.go ("should set the X-Forwarded-Prefix to
    the annotation value")."""
    annotations = ann(rewrite_target="/$2", use_regex="true", x_forwarded_prefix="/something")
    ingress = ing("rw", HOST, path("/something(/|$)(.*)"), annotations=annotations)
    with served(lt, [ingress], web) as p:
        a = request(p.port, "/something/new?x=1")
        assert a.status == 200 and a.json()["path"] == "/new?x=1"
        assert a.sent_header("X-Forwarded-Prefix") == "/something"
        assert request(p.port, "/something").json()["path"] == "/"


def test_enable_cors(lt: LoopThread, web: list[Backend]) -> None:
    """cors.go "should enable cors" and "should allow origin for cors"."""
    origin = "https://origin.cors.com:8080"
    annotations = ann(enable_cors="true", cors_allow_origin=origin)
    with served(lt, [ing("cors", HOST, path("/"), annotations=annotations)], web) as p:
        pre = request(p.port, "/", method="OPTIONS", headers=[("Origin", origin)])
        assert pre.status == 204 and pre.header("Access-Control-Allow-Origin") == origin
        get = request(p.port, "/", headers=[("Origin", origin)])
        assert get.status == 200 and get.header("Access-Control-Allow-Origin") == origin
        assert (
            request(p.port, "/", headers=[("Origin", "http://evil.test")]).header(
                "Access-Control-Allow-Origin"
            )
            is None
        )


@pytest.mark.skipif(shutil.which("htpasswd") is None, reason="htpasswd is not installed")
def test_basic_auth_from_an_opaque_secret(lt: LoopThread, web: list[Backend]) -> None:
    """auth.go: "should return status code 401 when authentication is configured but
    Authorization header is not configured", "... 200 when authentication is configured
    and Authorization header is sent" (an auth-file Secret made with htpasswd), "... with
    a map" (auth-secret-type auth-map), "should return status code 503 when authentication
    is configured with an invalid secret"."""
    line = subprocess.run(
        ["htpasswd", "-nb", "foo", "bar"], capture_output=True, text=True, check=True
    ).stdout.strip()
    user, hashed = line.split(":", 1)
    secrets = [
        secret("basic-auth", auth=line + "\n"),
        secret("basic-map", **{user: hashed}),
    ]
    ingresses = [
        ing(
            "file",
            "file.test",
            path("/"),
            annotations=ann(auth_type="basic", auth_secret="basic-auth", auth_realm="test auth"),
        ),
        ing(
            "map",
            "map.test",
            path("/"),
            annotations=ann(
                auth_type="basic", auth_secret="basic-map", auth_secret_type="auth-map"
            ),
        ),
        ing(
            "none",
            "none.test",
            path("/"),
            annotations=ann(auth_type="basic", auth_secret="something"),
        ),
    ]
    with served(lt, ingresses, web, secrets=secrets) as p:
        a = request(p.port, "/", host="file.test")
        assert a.status == 401 and a.header("WWW-Authenticate") == 'Basic realm="test auth"'
        assert request(p.port, "/", host="file.test", headers=[basic("foo", "baz")]).status == 401
        ok = request(p.port, "/", host="file.test", headers=[basic("foo", "bar")])
        assert ok.status == 200 and ok.sent_header("Authorization") is None
        assert request(p.port, "/", host="map.test", headers=[basic("foo", "bar")]).status == 200
        assert request(p.port, "/", host="none.test", headers=[basic("foo", "bar")]).status == 503


def test_limit_rpm(lt: LoopThread, web: list[Backend]) -> None:
    """ingress-nginx limit-rpm with limit-burst-multiplier, and the ConfigMap's
    limit-req-status-code (test/e2e/settings/... limit_req_status): over the burst,
    that status (the counts run on an injected clock)."""
    annotations = ann(limit_rpm="2", limit_burst_multiplier="1")
    settings = replace(NGINX, limit_req_status_code=429)
    with served(lt, [ing("rl", HOST, path("/"), annotations=annotations)], web, settings) as p:
        runtime(p).clock = lambda: 50.0
        assert [request(p.port, "/").status for _ in range(4)] == [200, 200, 200, 429]


def test_session_affinity_cookie(lt: LoopThread, web: list[Backend]) -> None:
    """affinity.go "should set sticky cookie SERVERID" and "should set the path to
    /something on the generated cookie": the cookie pins the endpoint."""
    annotations = ann(affinity="cookie", session_cookie_name="SERVERID")
    ingress = ing("sticky", HOST, path("/something"), annotations=annotations)
    with served(lt, [ingress], web, endpoints=3) as p:
        first = request(p.port, "/something")
        cookie = first.header("Set-Cookie")
        assert cookie is not None and cookie.startswith("SERVERID=")
        assert "Path=/something" in cookie
        pinned = {
            request(p.port, "/something", headers=[("Cookie", cookie.split(";")[0])]).json()["name"]
            for _ in range(6)
        }
        assert pinned == {first.json()["name"]}


def test_upstream_hash_by(lt: LoopThread, web: list[Backend]) -> None:
    """upstreamhashby.go "should connect to the same pod" and "should connect to the same
    subset of pods" (subset size 2 of 3: at most two endpoints for one URI)."""
    same = ing("hash", "hash.test", path("/"), annotations=ann(upstream_hash_by="$request_uri"))
    subset = ing(
        "subset",
        "subset.test",
        path("/"),
        annotations=ann(
            upstream_hash_by="$request_uri",
            upstream_hash_by_subset="true",
            upstream_hash_by_subset_size="2",
        ),
    )
    with served(lt, [same, subset], web, endpoints=3) as p:
        assert len({request(p.port, "/x", host="hash.test").json()["name"] for _ in range(10)}) == 1
        names = {request(p.port, "/x", host="subset.test").json()["name"] for _ in range(30)}
        assert 1 <= len(names) <= 2


def test_force_ssl_redirect_and_hsts(lt: LoopThread, web: list[Backend]) -> None:
    """forcesslredirect.go "should redirect to https" (308, the trailing slash dropped) and
    the ConfigMap's hsts (test/e2e/settings/hsts... Strict-Transport-Security on HTTPS
    answers only)."""
    ingress = ing("ssl", HOST, path("/"), annotations=ann(force_ssl_redirect="true"))
    with served(lt, [ingress], web, NGINX, https=True) as p:
        a = request(p.port, "/a/")
        assert a.status == 308 and a.header("Location") == "https://app.test/a"
        b = request(https_port(p), "/a/", tls=True)
        assert b.status == 200
        assert b.header("Strict-Transport-Security") == "max-age=31536000; includeSubDomains"


def test_configmap_body_size_is_folded_and_annotations_raise_it(
    lt: LoopThread, web: list[Backend]
) -> None:
    """proxy.go "should set client_max_body_size" and the ConfigMap default of 1m: the
    worker's limit is the largest (8m), a 2m body is refused on the route left at 1m and
    passes on the route whose proxy-body-size is 8m; without such a route, the 1m limit is
    the worker's own and routes without annotations need no plan."""
    big = b"x" * (2 * 1024 * 1024)
    # The 413 is decided on Content-Length and answered before the body is read, so the
    # refused requests send their head only (the proxy closes after answering: a client
    # still sending 2 MiB could get a reset before it reads the answer).
    plain = ing("plain", HOST, path("/"))
    upload = ing("upload", HOST, path("/upload"), annotations=ann(proxy_body_size="8m"))
    with served(lt, [plain, upload], web, NGINX) as p:
        assert p.server is not None and p.server.ctx.settings.max_body_size == 8 * 1024 * 1024
        # The head alone (as a client sending Expect: 100-continue would wait): the answer
        # comes from the declared length, before any body byte is read.
        raw = f"POST /echo-body HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(big)}\r\n\r\n"
        assert [a.status for a in parse(send(p.port, raw.encode()))] == [413]
        ok = request(p.port, "/upload", method="POST", body=big)
        assert ok.status == 200 and ok.json()["body_length"] == len(big)
    with served(lt, [plain], web, NGINX) as p:
        assert p.server is not None and p.server.ctx.settings.max_body_size == 1024 * 1024
        compiled = p.server.ctx.router
        assert all(r.plan is None or not r.plan.body_limit for r in compiled)  # type: ignore[attr-defined]
        assert [a.status for a in parse(send(p.port, raw.encode()))] == [413]


def test_custom_http_errors_from_the_configmap(lt: LoopThread, web: list[Backend]) -> None:
    """customhttperrors.go (ConfigMap custom-http-errors, no default backend Service in
    seaway: its own page for the status replaces the backend's answer)."""
    settings = replace(NGINX, custom_http_errors=(503,))
    with served(lt, [ing("err", HOST, path("/"))], web, settings) as p:
        a = request(p.port, "/status/503")
        assert a.status == 503 and a.header("X-Name") is None
        assert a.body == b"503 Service Unavailable\n"
        assert request(p.port, "/status/500").header("X-Name") == "web-1"


def test_allowlist_source_range(lt: LoopThread, web: list[Backend]) -> None:
    """ipallowlist.go "should set valid ip allowlist range": outside it, 403."""
    inside = ing("in", "in.test", path("/"), annotations=ann(allowlist_source_range="127.0.0.1/32"))
    outside = ing(
        "out",
        "out.test",
        path("/"),
        annotations=ann(whitelist_source_range="18.0.0.0/8, 56.0.0.0/8"),
    )
    with served(lt, [inside, outside], web) as p:
        assert request(p.port, "/", host="in.test").status == 200
        assert request(p.port, "/", host="out.test").status == 403


def test_redirects(lt: LoopThread, web: list[Backend]) -> None:
    """redirect.go "should respond with a standard redirect code" and "... custom redirect
    code", approot.go "should redirect to /foo"."""
    perm = ing(
        "perm",
        "perm.test",
        path("/"),
        annotations=ann(permanent_redirect="https://www.google.com", permanent_redirect_code="308"),
    )
    root = ing("root", "root.test", path("/"), annotations=ann(app_root="/foo"))
    with served(lt, [perm, root], web) as p:
        a = request(p.port, "/x", host="perm.test")
        assert a.status == 308 and a.header("Location") == "https://www.google.com"
        b = request(p.port, "/", host="root.test")
        assert b.status == 302 and b.header("Location") == "http://root.test/foo"
        assert request(p.port, "/bar", host="root.test").status == 200
