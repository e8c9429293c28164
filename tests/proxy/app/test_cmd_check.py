"""`seaway check -c PATH`, run as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "discovery" / "fixtures"


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy.app.cli", "check", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_valid_directory_summary() -> None:
    out = check("-c", str(FIXTURES / "service-edge.yaml"))
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{FIXTURES / 'service-edge.yaml'}: ok, 3 objects in 1 file (3 Service)\n"
    assert out.stderr == ""


def test_valid_directory_counts_per_kind_and_warns_on_duplicates() -> None:
    out = check("-c", str(FIXTURES))
    assert out.returncode == 0, out.stderr
    regex = (
        "every path is a case-insensitive regular expression (use-regex or rewrite-target on "
        "an Ingress of the host)"
    )
    assert out.stdout == (
        # the fixture Ingress carries an ingress-nginx annotation: rewrite-target "/" on a
        # host with an Exact path other than "/" makes both its hosts regex hosts
        "shop/shop: annotations recognised: rewrite-target\n"
        f"shop/shop: translated: host shop.example.com: {regex}\n"
        f"shop/shop: translated: host *.shop.example.com: {regex}\n"
        "shop/shop: translated: rewrite: path matching /api/v1/orders becomes / (query kept)\n"
        "shop/shop: translated: rewrite: path matching /static becomes / (query kept)\n"
        f"{FIXTURES}: ok, 12 objects in 7 files "
        "(5 Service, 2 EndpointSlice, 1 Ingress, 1 IngressClass, 2 Secret, 1 ConfigMap)\n"
    )
    # list.json repeats two objects of other fixtures: warned, not an error ...
    assert out.stderr.count("warning: ") == 2
    # ... unless --strict
    strict = check("--strict", "-c", str(FIXTURES))
    assert strict.returncode == 1
    assert strict.stderr.splitlines()[-1] == f"{FIXTURES}: 2 warnings (--strict)"


def test_every_error_listed_one_per_line(tmp_path: Path) -> None:
    (tmp_path / "web.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
        "spec:\n  clusterIP: 10.96.0.1\n  ports: [{port: 70000, protocol: tcp}]\n"
    )
    (tmp_path / "broken.yaml").write_text("a: [1\n")
    (tmp_path / "good.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: ok}\n"
        "spec:\n  clusterIP: 10.96.0.2\n  ports: [{port: 80}]\n"
    )
    out = check("-c", str(tmp_path))
    assert out.returncode == 1
    assert out.stdout == ""
    web, broken = tmp_path / "web.yaml", tmp_path / "broken.yaml"
    assert out.stderr.splitlines() == [
        f"{broken}: line 2, column 1: YAML syntax error: did not find expected ',' or ']'",
        f"{web}: Service default/web: spec.ports[0].protocol: must be one of TCP, UDP, SCTP, "
        'got "tcp"',
        f"{web}: Service default/web: spec.ports[0].port: must be 1-65535, got 70000",
        f"{tmp_path}: 3 errors in 2 files",
    ]


def test_missing_path_and_missing_flag(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    out = check("-c", str(missing))
    assert out.returncode == 1
    assert out.stderr.splitlines()[0] == f"{missing}: no such file or directory"
    out = check()
    assert out.returncode == 2
    assert "-c PATH" in out.stderr
    out = check("--kubeconfig", "/dev/null")
    assert out.returncode == 2


def test_help_explains_every_flag() -> None:
    out = check("--help")
    assert out.returncode == 0
    for flag in ("--config", "--strict", "--kubeconfig", "--master", "--annotations-prefix",
                 "--configmap"):
        assert flag in out.stdout


N = "nginx.ingress.kubernetes.io/"
INGRESS = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  namespace: default
  annotations:
{annotations}
spec:
  defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}
"""


NOTE = (
    "note: {count} not served with --ingress-controller seaway.dev/ingress, so their "
    "annotations are not translated (give the controller their IngressClass names, e.g. "
    "k8s.io/ingress-nginx)"
)


def ingress_yaml(name: str, annotations: dict[str, str]) -> str:
    lines = "\n".join(f"    {k}: {v!r}".replace("'", '"') for k, v in annotations.items())
    return INGRESS.format(name=name, annotations=lines)


def test_annotations_recognised_ignored_invalid_and_refused(tmp_path: Path) -> None:
    (tmp_path / "web.yaml").write_text(
        ingress_yaml("web", {N + "rewrite-target": "/$2", N + "use-regex": "true",
                             N + "proxy-body-size": "10x", N + "mirror-target": "http://m"})
        + "---\n"
        + ingress_yaml("snip", {N + "server-snippet": "return 200;"})
        + "---\n"
        + ingress_yaml("clean", {N + "enable-cors": "true"})
    )
    out = check("-c", str(tmp_path))
    assert out.returncode == 1
    assert out.stdout.splitlines() == [
        "default/clean: annotations recognised: enable-cors",
        "default/web: annotations recognised: rewrite-target, use-regex",
        f"default/web: metadata.annotations[{N}mirror-target]: ignored: not supported: "
        "request mirroring is not implemented",
        NOTE.format(count="3 Ingresses are"),
    ]
    err = out.stderr.splitlines()
    assert err[0].startswith(f"default/snip: metadata.annotations[{N}server-snippet]: a snippet")
    assert err[1] == "default/snip: refused: the Ingress is not served"
    assert err[2] == f'default/web: metadata.annotations[{N}proxy-body-size]: invalid size "10x"'
    assert err[3] == (
        '  bytes, or a number with k, m or g ("8m"); 0 = unlimited; ingress-nginx ignores the '
        "value and uses the default, so does seaway"
    )
    assert err[-1] == f"{tmp_path}: 2 objects with ingress-nginx errors"


def test_valid_annotations_and_configmap_pass(tmp_path: Path) -> None:
    (tmp_path / "web.yaml").write_text(
        ingress_yaml("web", {N + "ssl-redirect": "false", N + "canary-weight": "5"})
        + "---\napiVersion: v1\nkind: ConfigMap\n"
        "metadata: {name: ingress-nginx-controller, namespace: ingress-nginx}\n"
        'data: {proxy-body-size: "20m", use-gzip: "true"}\n'
    )
    out = check("-c", str(tmp_path), "--configmap", "ingress-nginx/ingress-nginx-controller")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "default/web: annotations recognised: ssl-redirect",
        f'default/web: metadata.annotations[{N}canary-weight]: ignored: canary is not "true": '
        "ingress-nginx ignores canary-* then",
        "ConfigMap ingress-nginx/ingress-nginx-controller: keys recognised: proxy-body-size",
        "ConfigMap ingress-nginx/ingress-nginx-controller: data[use-gzip]: ignored: not "
        "supported: response compression is not implemented",
        NOTE.format(count="1 Ingress is"),
        f"{tmp_path}: ok, 2 objects in 1 file (1 Ingress, 1 ConfigMap)",
    ]
    assert out.stderr == ""


def test_configmap_errors_and_a_missing_configmap(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ctl, namespace: ingress-nginx}\n"
        'data: {proxy-read-timeout: "60s"}\n'
    )
    out = check("-c", str(tmp_path), "--configmap", "ingress-nginx/ctl")
    assert out.returncode == 1
    assert out.stderr.splitlines()[:2] == [
        'ConfigMap ingress-nginx/ctl: data[proxy-read-timeout]: invalid timeout "60s"',
        "  whole seconds, e.g. 60 (no unit); ingress-nginx keeps its default, so does seaway",
    ]
    missing = check("-c", str(tmp_path), "--configmap", "ingress-nginx/other")
    assert missing.returncode == 0
    assert missing.stderr == (
        "warning: ConfigMap ingress-nginx/other (--configmap) is not in these files: "
        "ingress-nginx's defaults apply\n"
    )
    strict = check("--strict", "-c", str(tmp_path), "--configmap", "ingress-nginx/other")
    assert strict.returncode == 1
    bad_flag = check("-c", str(tmp_path), "--configmap", "no-slash")
    assert bad_flag.returncode == 2 and "expected NAMESPACE/NAME" in bad_flag.stderr


def test_annotations_prefix_flag(tmp_path: Path) -> None:
    (tmp_path / "web.yaml").write_text(
        ingress_yaml("web", {"custom.io/proxy-body-size": "10x", N + "use-regex": "true"})
    )
    out = check("-c", str(tmp_path), "--annotations-prefix", "custom.io")
    assert out.returncode == 1
    assert 'default/web: metadata.annotations[custom.io/proxy-body-size]: invalid size "10x"' in (
        out.stderr.splitlines()
    )
    assert out.stdout.splitlines()[0] == (
        f'default/web: metadata.annotations[{N}use-regex]: ignored: not read: '
        '--annotations-prefix is "custom.io"'
    )


GATEWAY_FILES = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: seaway}
spec: {controllerName: seaway.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: seaway
  listeners:
  - {name: http, port: 80, protocol: HTTP, hostname: "*.example.com"}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 10.96.0.9, ports: [{port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop}
spec:
  parentRefs: [{name: gw}]
  hostnames: [shop.example.com]
  rules: [{backendRefs: [{name: web, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: elsewhere}
spec:
  parentRefs: [{name: gw}]
  hostnames: [shop.example.org]
  rules: [{backendRefs: [{name: missing, port: 80}]}]
"""


def test_gateway_api_status_is_printed(tmp_path: Path) -> None:
    """In file mode, `seaway check` shows the status API mode would write back."""
    (tmp_path / "gw.yaml").write_text(GATEWAY_FILES)
    out = check("-c", str(tmp_path), "--gateway-bind-address", "127.0.0.5")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == (
        f"{tmp_path}: ok, 5 objects in 1 file (1 Service, 1 GatewayClass, 1 Gateway, 2 HTTPRoute)"
    )
    assert lines[1:] == [
        "Gateway API status (controller seaway.dev/gateway-controller):",
        "  GatewayClass seaway: Accepted=True (Accepted)",
        "  Gateway default/gw: Accepted=True (Accepted), Programmed=True (Programmed); "
        "addresses 127.0.0.5",
        "    listener http (HTTP :80 *.example.com): Accepted=True (Accepted), Programmed=True "
        "(Programmed), ResolvedRefs=True (ResolvedRefs), Conflicted=False (NoConflicts); "
        "attachedRoutes 1",
        "  HTTPRoute default/elsewhere:",
        "    parent Gateway default/gw: Accepted=False (NoMatchingListenerHostname) no route "
        "hostname (shop.example.org) intersects the listeners' (*.example.com), "
        "ResolvedRefs=False (BackendNotFound) Service default/missing not found",
        "  HTTPRoute default/shop:",
        "    parent Gateway default/gw: Accepted=True (Accepted), ResolvedRefs=True "
        "(ResolvedRefs)",
        "Gateway API sockets (what `seaway run` serves):",
        "  127.0.0.5:80 (HTTP): Gateway default/gw listener http (*.example.com); "
        "1 HTTPRoute rule(s)",
    ]
    assert "warning: HTTPRoute default/elsewhere: spec.rules[0]: BackendNotFound" in out.stderr
    other = check("-c", str(tmp_path), "--gateway-controller-name", "example.net/other")
    assert other.returncode == 0
    assert other.stdout.splitlines()[1] == (
        "Gateway API: no GatewayClass has controllerName example.net/other"
    )


def test_translation_report_per_ingress(tmp_path: Path) -> None:
    """What the translator made of the annotations, and its warnings (a canary Ingress
    without a main one), for the Ingresses --ingress-controller owns."""

    def owned(name: str, host: str, service: str, annotations: str) -> str:
        return (
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\n"
            f"metadata: {{name: {name}, namespace: default, annotations: {{{annotations}}}}}\n"
            f"spec:\n  ingressClassName: nginx\n  rules: [{{host: {host}, http: {{paths: "
            f"[{{path: /x, pathType: Prefix, backend: {{service: {{name: {service}, "
            "port: {number: 80}}}}]}}]\n---\n"
        )

    (tmp_path / "a.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: nginx}\n"
        "spec: {controller: k8s.io/ingress-nginx}\n---\n"
        + owned("web", "a.test", "web", f'{N}proxy-body-size: "8m"')
        + owned("lonely", "b.test", "next", f'{N}canary: "true"')
    )
    out = check("-c", str(tmp_path), "--ingress-controller", "k8s.io/ingress-nginx")
    assert out.returncode == 0, out.stderr
    assert "default/web: translated: body limit 8m (413 above)" in out.stdout.splitlines()
    assert out.stderr.splitlines() == [
        "warning: Ingress default/lonely: spec.rules[0].http.paths[0] (b.test Prefix /x): no "
        "main Ingress serves host b.test: the canary is not used (as in ingress-nginx)"
    ]
    strict = check("--strict", "-c", str(tmp_path), "--ingress-controller", "k8s.io/ingress-nginx")
    assert strict.returncode == 1


def test_the_ingress_nginx_example_is_accepted() -> None:
    """configs/ingress-nginx/: a typical ingress-nginx app, checked as it is."""
    example = str(ROOT / "configs" / "ingress-nginx")
    plain = check("-c", example)
    assert plain.returncode == 0, plain.stderr
    out = check("-c", example, "--ingress-controller", "k8s.io/ingress-nginx",
                "--configmap", "ingress-nginx/ingress-nginx-controller", "--strict")
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    lines = out.stdout.splitlines()
    canary = "shop/api-canary: translated: canary of shop/api: shop/api:8080 -> shop/api-next:8080"
    assert canary in lines
    assert "shop/storefront: translated: plain HTTP redirected to HTTPS (308)" in lines
    assert lines[-1].endswith("(3 Service, 3 EndpointSlice, 3 Ingress, 1 IngressClass, "
                              "1 Secret, 1 ConfigMap)")


def test_auth_secret_problems_per_ingress(tmp_path: Path) -> None:
    """A missing auth-secret (503, as ingress-nginx's e2e auth.go "invalid secret"), and
    htpasswd lines seaway cannot use (those users get 401), each named by file, Secret and
    field, with the Ingress that names the Secret; exit 1."""

    def owned(name: str, host: str, secret: str) -> str:
        return (
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\n"
            f"metadata: {{name: {name}, namespace: default, annotations: "
            f"{{{N}auth-type: basic, {N}auth-secret: {secret}}}}}\n"
            f"spec:\n  ingressClassName: nginx\n  rules: [{{host: {host}, http: {{paths: "
            "[{path: /, pathType: Prefix, backend: {service: {name: web, "
            "port: {number: 80}}}}]}}]\n---\n"
        )

    (tmp_path / "app.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: nginx}\n"
        "spec: {controller: k8s.io/ingress-nginx}\n---\n"
        + owned("web", "a.test", "basic-auth")
        + owned("lost", "b.test", "nowhere")
    )
    secret = tmp_path / "secret.yaml"
    secret.write_text(
        "apiVersion: v1\nkind: Secret\ntype: Opaque\n"
        "metadata: {name: basic-auth, namespace: default}\nstringData:\n  auth: |\n"
        "    foo:$apr1$OFG3Xybp$ckL0FHDAkoXYIlH9.cysT0\n    old:FNEUPSYbKW3RQ\n"
    )
    out = check("-c", str(tmp_path), "--ingress-controller", "k8s.io/ingress-nginx")
    assert out.returncode == 1
    assert "default/web: translated: basic auth, realm '', 1 user from Secret " \
        "default/basic-auth (auth-file) (401)" in out.stdout.splitlines()  # fmt: skip
    assert out.stderr.splitlines() == [
        f"default/lost: metadata.annotations[{N}auth-secret]: Secret default/nowhere: not found",
        "  every path of the Ingress answers 503 until it is fixed (as ingress-nginx)",
        f"{secret}: Secret default/basic-auth: data[auth] line 2: user 'old': crypt(3) DES hash "
        "(htpasswd -d) is not supported: this user cannot log in (401); use one of apr1 "
        "($apr1$, htpasswd -m), bcrypt ($2y$/$2a$/$2b$, htpasswd -B), SHA-1 ({SHA}, htpasswd "
        "-s), SHA-256/SHA-512 crypt ($5$/$6$, htpasswd -2/-5), MD5-crypt ($1$), {SSHA}, {PLAIN}",
        "  the auth-secret of Ingress default/web",
        f"{tmp_path}: 2 objects with ingress-nginx errors",
    ]
    secret.write_text(secret.read_text().replace("    old:FNEUPSYbKW3RQ\n", ""))
    (tmp_path / "app.yaml").write_text(
        (tmp_path / "app.yaml").read_text().replace("nowhere", "basic-auth")
    )
    assert check("-c", str(tmp_path), "--ingress-controller", "k8s.io/ingress-nginx",
                 "--strict").returncode == 0  # fmt: skip


def test_ssl_passthrough_needs_the_flag(tmp_path: Path) -> None:
    """Without --enable-ssl-passthrough the annotation is listed as ignored (why: the
    flag) and the Ingress's other annotations act; with it, the relay is reported."""
    text = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: pass
  namespace: default
  annotations: {nginx.ingress.kubernetes.io/ssl-passthrough: "true"}
spec:
  rules:
  - host: pass.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: tls, port: {number: 443}}}}
"""
    (tmp_path / "pass.yaml").write_text(text)
    off = check("-c", str(tmp_path), "--watch-ingress-without-class")
    assert off.returncode == 0, off.stderr
    assert f"default/pass: metadata.annotations[{N}ssl-passthrough]: ignored: needs " \
        "--enable-ssl-passthrough" in off.stdout
    on = check("-c", str(tmp_path), "--watch-ingress-without-class", "--enable-ssl-passthrough")
    assert on.returncode == 0, on.stderr
    assert "default/pass: annotations recognised: ssl-passthrough" in on.stdout
    assert "default/pass: translated: ssl-passthrough: TLS for pass.test relayed unterminated " \
        "to default/tls:443" in on.stdout
