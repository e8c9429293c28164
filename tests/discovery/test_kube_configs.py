"""configs/kubernetes/: valid manifests, RBAC that matches what KubeSource requests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

import pytest
import yaml

from discovery.kube_gateway import GATEWAY_RESOURCES, gateway_spec
from discovery.kube_ingress_status import ingress_status_path
from discovery.kube_source import KIND_SPECS, configmap_spec, node_spec, secret_spec
from discovery.model import ObjectKey
from proxy.app.options import Options
from tests.kubeapi.fixtures import api_server, run, run_process
from tests.kubeapi.resources import BY_KIND
from tests.support import REPO

CONFIGS = REPO / "configs" / "kubernetes"
KUBECTL = shutil.which("kubectl")


def docs() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(CONFIGS.glob("*.yaml")):
        out.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return out


def by_kind(kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs() if d["kind"] == kind]
    return doc


def test_every_piece_is_there() -> None:
    kinds = sorted(d["kind"] for d in docs())
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
        "IngressClass",
        "ServiceAccount",
    ]


def test_manifests_match_the_kubernetes_schemas() -> None:
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    for doc in docs():
        kv.validate(doc, "1.32.0", strict=True)  # raises ValidationError naming the field


def test_clusterrole_grants_exactly_what_kubesource_requests() -> None:
    """Derived from the code: list and watch of every path KubeSource lists and watches,
    patch of the status subresources the Gateway API and Ingress status writers write;
    nothing else."""
    wanted: set[tuple[str, str, str]] = set()
    gateway_api = [gateway_spec(kind, "v1") for kind in GATEWAY_RESOURCES]
    for spec in (
        *KIND_SPECS,
        *gateway_api,
        secret_spec("default", "x"),
        configmap_spec("default", "x"),
        node_spec("node-a"),
    ):
        res = BY_KIND[spec.kind]
        wanted |= {(res.group, res.plural, "list"), (res.group, res.plural, "watch")}
    for kind, (plural, _, writes_status) in GATEWAY_RESOURCES.items():
        if writes_status:
            wanted.add((BY_KIND[kind].group, f"{plural}/status", "patch"))
    ingress_status = ingress_status_path(ObjectKey("Ingress", "default", "web"))
    group, plural = ingress_status.split("/")[2], ingress_status.split("/")[6]
    wanted.add((group, f"{plural}/status", "patch"))
    granted: set[tuple[str, str, str]] = set()
    for rule in by_kind("ClusterRole")["rules"]:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        granted |= {
            (g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
        }
    assert granted == wanted
    binding = by_kind("ClusterRoleBinding")
    account = by_kind("ServiceAccount")
    assert binding["roleRef"]["name"] == by_kind("ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }
    ]


def test_daemonset_flags_probes_and_privileges() -> None:
    ds = by_kind("DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["serviceAccountName"] == by_kind("ServiceAccount")["metadata"]["name"]
    (c,) = pod["containers"]
    # The flags parse with seaway's own parser.
    from proxy.app.cli import build_parser

    args = build_parser("run").parse_args(
        [a.replace("$(NODE_NAME)", "node-1").replace("$(CLUSTER_CIDR)", "10.244.0.0/16")
         for a in c["command"][1:]]
    )  # fmt: skip
    assert args.kubeconfig is None and args.master is None  # in-cluster
    healthz_port = args.healthz_bind_address[1]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": healthz_port}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": healthz_port}
    caps = c["securityContext"]["capabilities"]
    assert caps["drop"] == ["ALL"]
    assert ("NET_ADMIN" in caps["add"]) == (args.proxy_mode != "userspace")
    assert "privileged" not in c["securityContext"]


def test_ingressclass_passes_seaway_check_and_names_the_default_controller() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "proxy.app.cli", "check", "-c", str(CONFIGS / "ingressclass.yaml")],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert by_kind("IngressClass")["spec"]["controller"] == Options().ingress_controller


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed (Debian: kubernetes-client)")
def test_kubectl_dry_run_then_apply_against_the_stand_in() -> None:
    async def main() -> None:
        assert KUBECTL is not None
        async with api_server() as server:
            with tempfile.TemporaryDirectory() as tmp:
                kc = server.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
                base = [
                    KUBECTL,
                    "--kubeconfig",
                    kc,
                    "apply",
                    "--validate=false",
                    "-f",
                    str(CONFIGS),
                ]
                code, out, err = await run_process(*base, "--dry-run=client")
                assert code == 0, err
                assert out.count("(dry run)") == len(docs())
                assert server.stats["create:DaemonSet"] == 0
                code, out, err = await run_process(*base)
                assert code == 0, err
                ds = server.db.get(BY_KIND["DaemonSet"], "kube-system", "seaway")
                assert ds["spec"]["template"]["spec"]["hostNetwork"] is True
                role = server.db.get(BY_KIND["ClusterRole"], "", "seaway")
                assert role["rules"] == by_kind("ClusterRole")["rules"]
                # Applying again is a no-op PATCH: nothing changes.
                rv = server.db.rv
                code, out, err = await run_process(*base)
                assert code == 0, err
                assert out.count("unchanged") == len(docs())
                assert server.db.rv == rv

    run(main())
