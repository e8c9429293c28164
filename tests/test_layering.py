"""Imports point down only, as ../shared/ARCHITECTURE.md draws them.

  proxy/app/                                  the shell: nothing imports it
  proxy/iptables/ proxy/nftables/ proxy/userspace/ ingress/   dataplanes: never each other
  proxy/*.py                                  shared pieces: import only discovery/
  discovery/                                  imports nothing from proxy/ or ingress/

Pure modules (router, balancers, rule builders, change tracking, snapshot) import no
asyncio, subprocess or sockets. Every import counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import REPO

PACKAGES = ("discovery", "proxy", "ingress")
DATAPLANES = ("proxy.iptables", "proxy.nftables", "proxy.userspace", "ingress")
IO_MODULES = frozenset({"asyncio", "subprocess", "socket", "uvloop", "selectors"})
PURE_MODULES = (
    "discovery.store",
    "discovery.snapshot",
    "discovery.snapshot_builder",
    "discovery.topology",
    "discovery.ownership",
    "discovery.nginx_values",
    "discovery.nginx_settings",
    "discovery.nginx_reader",
    "discovery.nginx_routing",
    "discovery.nginx_traffic",
    "discovery.nginx_access",
    "discovery.nginx_annotations",
    "discovery.nginx_configmap",
    "discovery.nginx_catalog",
    "discovery.nginx_report",
    "discovery.htpasswd",
    "discovery.auth_secrets",
    "discovery.secret_refs",
    "ingress.routes",
    "ingress.route_filters",
    "ingress.route_conditions",
    "ingress.route_match",
    "ingress.route_actions",
    "ingress.backends",
    "ingress.route_labels",
    "ingress.translate_ingress",
    "ingress.htpasswd",
    "ingress.nginx_secrets",
    "discovery.gateway_attach",
    "discovery.gateway_hostnames",
    "discovery.gateway_status",
    "discovery.ingress_status",
    "discovery.tls_pem",
    "ingress.nginx_filters",
    "ingress.nginx_upstreams",
    "ingress.nginx_locations",
    "ingress.nginx_canary",
    "ingress.nginx_routes",
    "ingress.nginx_hosts",
    "ingress.filter_headers",
    "ingress.filter_text",
    "ingress.paths",
    "ingress.filters.affinity",
    "ingress.filters.auth_basic",
    "ingress.filters.auth_external",
    "ingress.filters.cors",
    "ingress.filters.hashring",
    "ingress.filters.ringhash",
    "ingress.filters.headers",
    "ingress.filters.ranges",
    "ingress.filters.ratelimit",
    "ingress.filters.reply",
    "ingress.filters.rewrite",
    "ingress.filters.variables",
    "ingress.trace",
    "ingress.client_hello",
    "ingress.sni_match",
    "ingress.nginx_passthrough",
    "ingress.relay_stats",
    "ingress.framing",
    "ingress.retry",
    "ingress.proxy_protocol",
    "ingress.client_address",
    "proxy.balancer",
    "proxy.balancers.base",
    "proxy.balancers.round_robin",
    "proxy.balancers.least_request",
    "proxy.balancers.maglev",
    "discovery.parse_balancing",
    "ingress.hashkey",
    "proxy.counters",
    "proxy.outlier",
    "proxy.timer_wheel",
    "proxy.active_checks",
    "proxy.health_metrics",
    "discovery.parse_health",
    "proxy.healthcheck",
    "proxy.iptables.builder",
    "proxy.iptables.chains",
    "proxy.iptables.family",
    "proxy.iptables.render",
    "proxy.iptables.simulator",
    "proxy.naming",
    "proxy.nftables.builder",
    "proxy.nftables.names",
    "proxy.nftables.table",
    "proxy.nftables.render",
    "proxy.nftables.state",
    "proxy.nftables.simulator",
)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, at any depth."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def layer(module: str) -> str:
    """The layer a first-party module belongs to: app, a dataplane, shared, discovery."""
    if module == "proxy.app" or module.startswith("proxy.app."):
        return "app"
    for dp in DATAPLANES:
        if module == dp or module.startswith(dp + "."):
            return dp
    if module == "proxy" or module.startswith("proxy."):
        return "shared"
    return "discovery"


def under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violation(importer: str, imported: str) -> str | None:
    """Why `importer` may not import `imported`, or None when the import is allowed."""
    if not any(under(imported, p) for p in PACKAGES):
        if importer in PURE_MODULES and imported.split(".")[0] in IO_MODULES:
            return "a pure module does no I/O"
        return None
    src, dst = layer(importer), layer(imported)
    if dst == "app" and src != "app":
        return "nothing imports proxy/app/"
    if src == "discovery" and dst != "discovery":
        return "discovery/ imports nothing from proxy/ or ingress/"
    if src == "shared" and dst not in ("shared", "discovery"):
        return "shared proxy pieces import only discovery/"
    if src in DATAPLANES and dst in DATAPLANES and src != dst:
        return "a dataplane never imports another dataplane"
    return None


def violations(root: Path) -> list[str]:
    out: list[str] = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            importer = module_name(root, path)
            for line, imported in imports_of(path):
                why = violation(importer, imported)
                if why:
                    rel = path.relative_to(root)
                    out.append(f"{rel}:{line}: {importer} imports {imported}: {why}")
    return out


def test_the_tree_follows_the_layering() -> None:
    assert violations(REPO) == []


def test_every_named_pure_module_exists() -> None:
    for module in PURE_MODULES:
        path = REPO / (module.replace(".", "/") + ".py")
        assert path.exists(), f"{module} is listed as pure but {path} does not exist"


@pytest.mark.parametrize(
    ("importer", "imported", "expect"),
    [
        ("discovery.kube_source", "proxy.app.options", "nothing imports proxy/app/"),
        ("discovery.kube_source", "ingress.ownership", "discovery/ imports nothing"),
        ("proxy.userspace.tcp", "ingress.flow", "a dataplane never imports another"),
        ("ingress.dataplane", "proxy.iptables.builder", "a dataplane never imports another"),
        ("proxy.balancer", "proxy.userspace.target", "shared proxy pieces import only"),
        ("ingress.route_match", "asyncio", "a pure module does no I/O"),
        ("proxy.iptables.builder", "subprocess", "a pure module does no I/O"),
        ("proxy.app.cli", "ingress.trace", None),
        ("ingress.context", "proxy.balancer", None),
        ("proxy.userspace.tcp", "proxy.flow", None),
        ("ingress.server", "asyncio", None),
    ],
)
def test_rules(importer: str, imported: str, expect: str | None) -> None:
    why = violation(importer, imported)
    if expect is None:
        assert why is None
    else:
        assert why is not None and why.startswith(expect)


def test_a_wrong_import_in_a_tree_is_reported(tmp_path: Path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "discovery" / "source.py").write_text(
        "def f():\n    from proxy.app.options import Options\n    return Options\n"
    )
    (tmp_path / "proxy" / "ok.py").write_text("from discovery.source import f\n")
    found = violations(tmp_path)
    assert len(found) == 1
    assert found[0].startswith("discovery/source.py:2: discovery.source imports proxy.app.options")
