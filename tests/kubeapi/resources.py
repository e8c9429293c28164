"""The resource types the API stand-in serves, with what discovery says about them."""

from __future__ import annotations

from dataclasses import dataclass

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True, slots=True)
class Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group_version(self) -> str:
        return self.api_version


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "Service", "services", True, ("svc",)),
    Resource("", "v1", "Secret", "secrets", True),
    Resource("", "v1", "Namespace", "namespaces", False, ("ns",)),
    Resource("", "v1", "Node", "nodes", False, ("no",)),
    Resource("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    Resource("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    Resource("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",)),
    Resource("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    Resource("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",)),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
)

BY_PATH: dict[tuple[str, str, str], Resource] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}
BY_KIND: dict[str, Resource] = {r.kind: r for r in RESOURCES}


def groups() -> dict[str, list[Resource]]:
    """group name -> its resources, in a stable order ("" = core)."""
    out: dict[str, list[Resource]] = {}
    for r in RESOURCES:
        out.setdefault(r.group, []).append(r)
    return out
