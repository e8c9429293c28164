"""`seaway trace --url` on Ingresses with ingress-nginx annotations: which annotations
acted on the request (HTTPS redirect, CORS preflight, rewritten target, canary chosen,
the ConfigMap's defaults), pure and through the CLI on configs/ingress-nginx/."""

from __future__ import annotations

import subprocess
import sys

from ingress.trace import trace_request
from tests.ingress.nginxkit import NGINX, ann, ing, path, snapshot
from tests.support import REPO

CONTROLLER = "seaway.dev/ingress"


def site() -> object:
    return snapshot(
        [
            ing("api", "shop.test", path("/api(/|$)(.*)", "api"), created="1",
                tls=[(["shop.test"], "cert")],
                annotations=ann(use_regex="true", rewrite_target="/$2",
                                x_forwarded_prefix="/api", enable_cors="true")),
            ing("next", "shop.test", path("/api(/|$)(.*)", "next"), created="2",
                annotations=ann(canary="true", canary_by_header="X-Canary")),
        ],
        services=("api", "next"),
        nginx=NGINX,
    )


def test_the_https_redirect_answers_a_plain_http_request() -> None:
    lines = trace_request(site(), "http://shop.test/api/orders?id=7", CONTROLLER)  # type: ignore[arg-type]
    assert "  plain HTTP redirected to HTTPS (308)" in lines
    assert "  -> 308 redirect to https://shop.test/api/orders?id=7" in lines
    assert not any(line.startswith("  backend") for line in lines)


def test_rewrite_canary_and_defaults_over_https() -> None:
    lines = trace_request(site(), "https://shop.test/api/orders?id=7", CONTROLLER,  # type: ignore[arg-type]
                          headers=[("X-Canary", "always")])
    assert lines[2].endswith("canary default/next by header X-Canary: always")
    assert "  rewrite: the backend is asked for /orders?id=7, X-Forwarded-Prefix: /api" in lines
    assert "  backend default/next:80 (service port default/next)" in lines
    defaults = next(line for line in lines if line.startswith("  defaults"))
    assert "body limit 1m (413 above)" in defaults and "Strict-Transport-Security" in defaults
    plain = trace_request(site(), "https://shop.test/api/x", CONTROLLER)  # type: ignore[arg-type]
    assert "  backend default/api:80 (service port default/api)" in plain


def test_a_cors_preflight_is_answered_by_seaway() -> None:
    lines = trace_request(site(), "https://shop.test/api/x", CONTROLLER,  # type: ignore[arg-type]
                          method="OPTIONS", headers=[("Origin", "https://a.test")])
    assert "  -> 204 CORS preflight answered by seaway" in lines
    assert not any(line.startswith("  backend") for line in lines)
    get = trace_request(site(), "https://shop.test/api/x", CONTROLLER,  # type: ignore[arg-type]
                        headers=[("Origin", "https://a.test")])
    assert "  CORS: origins *, preflight answered 204: Access-Control-Allow-Origin *" in get


def test_cli_on_the_ingress_nginx_example() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "proxy.app.cli", "trace", "-c", "configs/ingress-nginx",
         "--ingress-controller", "k8s.io/ingress-nginx",
         "--configmap", "ingress-nginx/ingress-nginx-controller",
         "--url", "https://shop.example.com/api/orders", "-H", "X-Canary: always"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert "canary shop/api-canary by header X-Canary: always" in out[2]
    assert "  rewrite: the backend is asked for /orders, X-Forwarded-Prefix: /api" in out
    assert "  backend shop/api-next:8080 (service port shop/api-next:http)" in out
    www = subprocess.run(
        [sys.executable, "-m", "proxy.app.cli", "trace", "-c", "configs/ingress-nginx",
         "--ingress-controller", "k8s.io/ingress-nginx", "--url", "http://www.shop.example.com/"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )
    assert "  -> 308 redirect to http://shop.example.com" in www.stdout.splitlines()
