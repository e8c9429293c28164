"""The resource types the API stand-in serves, with what discovery says about them.

Built-in kinds are served at one version; Ingress has its status subresource (a write
to the object keeps the status; status.loadBalancer is written through /status) and the
apiserver's printer columns. The Gateway API kinds are served as their CRDs
serve them: gateway.networking.k8s.io v1 (and v1beta1, the same objects under an older
version; ReferenceGrant prefers v1beta1), with a status subresource and the CRDs'
additionalPrinterColumns (what `kubectl get gateway` prints).
"""

from __future__ import annotations

from dataclasses import dataclass

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
GATEWAY_GROUP = "gateway.networking.k8s.io"


@dataclass(frozen=True, slots=True)
class Column:
    """A CRD additionalPrinterColumn: a name, a type, and a simple JSONPath."""

    name: str
    type: str  # string, integer, date
    path: str  # ".spec.gatewayClassName", ".status.conditions[?(@.type=="X")].status", ...
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Resource:
    group: str  # "" for the core group
    version: str  # the storage (and preferred) version
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    other_versions: tuple[str, ...] = ()  # served too, same objects (CRD versions)
    status_subresource: bool = False  # writes to the object keep status; /status writes it
    columns: tuple[Column, ...] = ()  # printer columns besides Name (served as a Table)
    categories: tuple[str, ...] = ()

    @property
    def custom(self) -> bool:
        """Served as a CRD (no strategic merge patch), not built in."""
        return self.group == GATEWAY_GROUP

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def versions(self) -> tuple[str, ...]:
        return (self.version, *self.other_versions)

    def api_version_for(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version


_AGE = Column("Age", "date", ".metadata.creationTimestamp")


def _status_of(ctype: str) -> str:
    return f'.status.conditions[?(@.type=="{ctype}")].status'


GATEWAY_API: tuple[Resource, ...] = (
    Resource(
        GATEWAY_GROUP, "v1", "GatewayClass", "gatewayclasses", False, ("gc",), ("v1beta1",),
        True,
        (Column("Controller", "string", ".spec.controllerName"),
         Column("Accepted", "string", _status_of("Accepted")), _AGE,
         Column("Description", "string", ".spec.description", 1)),
        ("gateway-api",),
    ),
    Resource(
        GATEWAY_GROUP, "v1", "Gateway", "gateways", True, ("gtw",), ("v1beta1",), True,
        (Column("Class", "string", ".spec.gatewayClassName"),
         Column("Address", "string", ".status.addresses[*].value"),
         Column("Programmed", "string", _status_of("Programmed")), _AGE),
        ("gateway-api",),
    ),
    Resource(
        GATEWAY_GROUP, "v1", "HTTPRoute", "httproutes", True, (), ("v1beta1",), True,
        (Column("Hostnames", "string", ".spec.hostnames"), _AGE),
        ("gateway-api",),
    ),
    Resource(
        GATEWAY_GROUP, "v1", "TLSRoute", "tlsroutes", True, (), ("v1alpha3", "v1alpha2"), True,
        (Column("Hostnames", "string", ".spec.hostnames"), _AGE),
        ("gateway-api",),
    ),
    Resource(
        GATEWAY_GROUP, "v1alpha2", "TCPRoute", "tcproutes", True, (), (), True, (_AGE,),
        ("gateway-api",),
    ),
    Resource(
        GATEWAY_GROUP, "v1alpha2", "UDPRoute", "udproutes", True, (), (), True, (_AGE,),
        ("gateway-api",),
    ),
    Resource(
        GATEWAY_GROUP, "v1beta1", "ReferenceGrant", "referencegrants", True, ("refgrant",),
        ("v1",), False, (_AGE,), ("gateway-api",),
    ),
)  # fmt: skip

RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "Service", "services", True, ("svc",)),
    Resource("", "v1", "Secret", "secrets", True),
    Resource("", "v1", "Namespace", "namespaces", False, ("ns",)),
    Resource("", "v1", "Node", "nodes", False, ("no",)),
    Resource("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    Resource("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    # Built-in printer columns (NAME CLASS HOSTS ADDRESS PORTS AGE): tables.print_ingress.
    Resource("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",),
             status_subresource=True),
    Resource("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    Resource("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",)),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    *GATEWAY_API,
)

BY_PATH: dict[tuple[str, str, str], Resource] = {
    (r.group, v, r.plural): r for r in RESOURCES for v in r.versions
}
BY_KIND: dict[str, Resource] = {r.kind: r for r in RESOURCES}


def groups(exclude: frozenset[str] = frozenset()) -> dict[str, list[Resource]]:
    """group name -> its resources, in a stable order ("" = core); groups in `exclude`
    (CRDs not installed) left out."""
    out: dict[str, list[Resource]] = {}
    for r in RESOURCES:
        if r.group not in exclude:
            out.setdefault(r.group, []).append(r)
    return out


def group_versions(resources: list[Resource]) -> list[str]:
    """A group's versions, the preferred first (the storage version most resources use),
    then the others as Kubernetes orders versions (GA, beta, alpha; higher first)."""
    counts: dict[str, int] = {}
    for r in resources:
        counts[r.version] = counts.get(r.version, 0) + 1
        for v in r.other_versions:
            counts.setdefault(v, 0)
    preferred = max(counts, key=lambda v: counts[v])
    return [preferred, *sorted((v for v in counts if v != preferred), key=_version_priority)]


def _version_priority(version: str) -> tuple[int, int, int]:
    """Sort key: v2 before v1, v1 before v1beta2 before v1beta1 before v1alpha1."""
    major, _, rest = version[1:].partition("beta" if "beta" in version else "alpha")
    stage = 0 if version[1:].isdigit() else 1 if "beta" in version else 2
    if stage == 0:
        return (0, -int(version[1:]), 0)
    return (stage, -int(major), -int(rest or 0))


def served_at(resources: list[Resource], version: str) -> list[Resource]:
    return [r for r in resources if version in r.versions]
