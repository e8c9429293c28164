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
    assert out.stdout == (
        f"{FIXTURES}: ok, 10 objects in 7 files "
        "(5 Service, 2 EndpointSlice, 1 Ingress, 1 IngressClass, 1 Secret)\n"
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
    for flag in ("--config", "--strict", "--kubeconfig", "--master"):
        assert flag in out.stdout


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
    ]
    other = check("-c", str(tmp_path), "--gateway-controller-name", "example.net/other")
    assert other.returncode == 0
    assert other.stdout.splitlines()[1] == (
        "Gateway API: no GatewayClass has controllerName example.net/other"
    )
