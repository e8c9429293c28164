"""`seaway trace --url`: the route of a request, explained (pure, and through the CLI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ingress.trace import TraceError, split_url, trace_request
from tests.ingress import routerkit as k

REPO = Path(__file__).resolve().parents[2]


def site() -> object:
    old = k.ingress(
        "old",
        k.rule("shop.test", k.path("/", "web"), k.path("/cart", "cart")),
        created="2024-01-01T00:00:00Z",
    )
    young = k.ingress(
        "young", k.rule("shop.test", k.path("/cart", "other")), created="2025-01-01T00:00:00Z"
    )
    ports = [
        k.service_port("web", endpoints=("10.1.0.1", "10.1.0.2")),
        k.service_port("cart", endpoints=()),
    ]
    return k.snapshot([old, young], ports)


def test_a_matching_rule_names_its_backend_and_endpoints() -> None:
    lines = trace_request(site(), "http://shop.test:8080/a/b?q=1")  # type: ignore[arg-type]
    assert lines[0] == "request http://shop.test:8080/a/b (Host: shop.test:8080, path /a/b)"
    assert "Ingress default/old: spec.rules[0].http.paths[0] (shop.test Prefix /)" in lines[1]
    assert lines[2] == "  backend default/web:80 (service port default/web)"
    assert lines[3].endswith("2 endpoint(s): 10.1.0.1:8080, 10.1.0.2:8080")


def test_no_endpoints_is_503_and_a_lost_conflict_is_noted() -> None:
    lines = trace_request(site(), "http://shop.test/cart/9")  # type: ignore[arg-type]
    assert "paths[1] (shop.test Prefix /cart)" in lines[1]
    assert "default/cart:80 has no usable endpoints" in lines[2]
    assert lines[3] == "  -> 503 from seaway"
    assert any("young" in line and "conflicts with" in line for line in lines[4:])


def test_no_rule_is_404_and_a_missing_service_is_503() -> None:
    assert trace_request(site(), "http://elsewhere.test/")[-1] == "  -> 404 from seaway"  # type: ignore[arg-type]
    snap = k.snapshot([k.ingress("x", k.rule("", k.path("/", "gone")))])
    lines = trace_request(snap, "http://any.test/")
    assert "does not exist" in lines[2] and lines[3] == "  -> 503 from seaway"


def test_unowned_ingresses_are_not_routed() -> None:
    other = k.ingress("x", k.rule("", k.path("/", "web")), cls="other")
    snap = k.snapshot([other], k.services("web"))
    assert trace_request(snap, "http://a.test/")[-1] == "  -> 404 from seaway"


@pytest.mark.parametrize("url", ["ftp://a/b", "http://", "https:///x"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(TraceError):
        split_url(url)


def test_cli_traces_a_request_in_any_mode() -> None:
    demo = str(REPO / "configs" / "demo.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "proxy.app.cli", "trace", "-c", demo, "--proxy-mode", "userspace",
         "--url", "http://demo.localhost/api/users"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "spec.rules[0].http.paths[1] (demo.localhost Prefix /api)" in proc.stdout
    assert "-> forwarded, least-request over 2 endpoint(s)" in proc.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "proxy.app.cli", "trace", "-c", demo, "--url", "gopher://x/"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )
    assert bad.returncode == 2 and "only http:// and https://" in bad.stderr
    neither = subprocess.run(
        [sys.executable, "-m", "proxy.app.cli", "trace", "-c", demo],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )
    assert neither.returncode == 2 and "--url URL" in neither.stderr


def test_https_names_the_certificate_sni_picks() -> None:
    from discovery.model import ObjectMeta, TLSSecret

    ing = k.ingress(
        "tls",
        k.rule("a.test", k.path("/", "web")),
        k.rule("x.wild.test", k.path("/", "web")),
        tls=[(["a.test"], "cert-a"), (["*.wild.test"], "cert-wild"), (["b.test"], "gone")],
    )
    secrets = [
        TLSSecret(meta=ObjectMeta(name=n, namespace="default"), cert_pem=b"", key_pem=b"")
        for n in ("cert-a", "cert-wild")
    ]
    snap = k.snapshot([ing], k.services("web"), secrets=secrets)
    assert "Secret default/cert-a (spec.tls host a.test)" in trace_request(snap, "https://a.test/")[1]
    assert "cert-wild (spec.tls host *.wild.test)" in trace_request(snap, "https://x.wild.test/")[1]
    missing = trace_request(snap, "https://b.test/")[1]
    assert "default/gone (spec.tls host b.test) is missing" in missing
    assert "no spec.tls host matches" in trace_request(snap, "https://c.test/")[1]
    assert not any("TLS" in line for line in trace_request(snap, "http://a.test/"))


def test_method_and_headers_are_part_of_the_traced_request() -> None:
    lines = trace_request(site(), "http://shop.test/a", method="post", headers=[("X-A", " 1 ")])  # type: ignore[arg-type]
    assert lines[0] == "request http://shop.test/a (Host: shop.test, path /a, method POST, x-a: 1)"
    assert lines[1].startswith("  matched Ingress default/old: spec.rules[0].http.paths[0]")
    losers = lines[lines.index("  routes that lost, in the order tried:") + 1 :]
    assert losers[0].endswith("(shop.test Prefix /cart): path /a does not match Prefix /cart")


def test_cli_refuses_a_header_without_colon() -> None:
    demo = str(REPO / "configs" / "demo.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "proxy.app.cli", "trace", "-c", demo,
         "--url", "http://demo.localhost/", "-H", "no-colon"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "expected 'NAME: VALUE'" in proc.stderr


# -- Gateway listeners ---------------------------------------------------------------------------


def gateway_world() -> object:
    from tests.discovery.gatewaykit import service, tls_secret, world

    return world(
        f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: seaway}}
spec: {{controllerName: seaway.dev/gateway-controller}}
---
{service("v1", "shop")}---
{service("v2", "shop")}---
{tls_secret("cert", "shop")}---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: shop}}
spec:
  gatewayClassName: seaway
  addresses: [{{value: 127.0.40.1}}]
  listeners:
  - {{name: shop, port: 80, protocol: HTTP, hostname: shop.test}}
  - {{name: rest, port: 80, protocol: HTTP}}
  - {{name: tls, port: 443, protocol: HTTPS, hostname: '*.shop.test',
     tls: {{certificateRefs: [{{name: cert}}]}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: other, namespace: shop}}
spec:
  gatewayClassName: seaway
  addresses: [{{value: 127.0.40.2}}]
  listeners: [{{name: http, port: 80, protocol: HTTP}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: shop, namespace: shop}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{value: /cart}}, headers: [{{name: x-beta, value: '1'}}]}}]
    backendRefs: [{{name: v2, port: 8080}}]
  - matches: [{{path: {{value: /cart}}}}]
    backendRefs: [{{name: v1, port: 8080}}]
""",
        base=False,
    )


def gateway_trace(url: str, listener: str = "", **kw: object) -> list[str]:
    from tests.discovery.gatewaykit import config

    w = gateway_world()
    return trace_request(w.snapshot, url, gateway=config(), listener=listener, **kw)  # type: ignore[attr-defined, arg-type]


def test_a_gateway_listener_names_the_httproute_rule_and_why_others_lost() -> None:
    lines = gateway_trace("http://shop.test/cart/9", "127.0.40.1:80")
    assert lines[1] == "  on 127.0.40.1:80: Gateway shop/gw listener shop (hostname shop.test)"
    assert lines[2] == "  matched HTTPRoute shop/shop: spec.rules[1].matches[0] (PathPrefix /cart)"
    assert "shop/v1:8080" in lines[3]
    lost = "(PathPrefix /cart, header x-beta=1): header x-beta is missing"
    assert any(line.endswith(lost) for line in lines[4:])
    beta = gateway_trace("http://shop.test/cart", "127.0.40.1:80", headers=[("X-Beta", "1")])
    assert "spec.rules[0].matches[0]" in beta[2]


def test_the_listener_comes_from_the_url_or_is_asked_for() -> None:
    # Two Gateways on port 80: the URL's address picks one; a name needs --listener.
    on_ip = gateway_trace("http://127.0.40.2/cart")
    assert on_ip[1] == "  on 127.0.40.2:80: Gateway shop/other listener http (hostname (any))"
    assert "no rule of an HTTPRoute attached there matches" in on_ip[2]
    with pytest.raises(TraceError, match=r"several Gateways .*--listener"):
        gateway_trace("http://shop.test/cart")
    with pytest.raises(TraceError, match=r"no such listener"):
        gateway_trace("http://shop.test/", "127.0.40.9:80")
    # Another port and no Ingress: the Ingress listener's answer.
    assert gateway_trace("http://shop.test:8080/cart")[-1] == "  -> 404 from seaway"
    assert gateway_trace("http://shop.test/cart", "ingress")[-1] == "  -> 404 from seaway"


def test_a_host_no_listener_rule_serves_and_the_tls_certificate() -> None:
    lines = gateway_trace("https://a.b.shop.test/cart")
    assert lines[1] == "  on 127.0.40.1:443: Gateway shop/gw listener tls (hostname *.shop.test)"
    assert lines[2] == "  TLS: certificate from Secret shop/cert (Gateway shop/gw: listener tls)"
    miss = gateway_trace("https://a.b.shop.test/elsewhere")
    assert miss[3:5] == [
        "  listener tls takes host *.shop.test, and no rule of its routes matches",
        "  -> 404 from seaway",
    ]


def test_cli_traces_the_gateway_example() -> None:
    config = str(REPO / "configs" / "gateway")
    proc = subprocess.run(
        [sys.executable, "-m", "proxy.app.cli", "trace", "-c", config,
         "--url", "http://shop.example.com:8090/", "-H", "x-canary: yes"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "on 127.0.30.10:8090: Gateway shop/edge listener http" in proc.stdout
    assert "matched HTTPRoute shop/shop: spec.rules[0].matches[0]" in proc.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "proxy.app.cli", "trace", "-c", config,
         "--url", "http://shop.example.com:8090/", "--listener", "10.0.0.1:1"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "no such listener" in bad.stderr
