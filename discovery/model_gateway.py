"""Gateway API objects (gateway.networking.k8s.io) and v1 Namespace, typed and immutable.

The parser (discovery/parse_gateway.py, parse_httproute.py) applies the API's defaults,
so every optional field here already holds what the API server would have filled in:
a ParentRef's group and kind, a backendRef's kind and weight, a rule's default match
(PathPrefix "/"), a listener's allowedRoutes (namespaces from Same), and so on.

A reference's namespace is kept as written ("" when omitted) because route status echoes
the parentRef as the user spelled it; `in_namespace(local)` resolves it.

Objects also carry the status the API last showed (`status`, `parents`): the status
writer merges into it (conditions of other controllers are kept, lastTransitionTime is
kept when a condition did not change).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from discovery.model_meta import ObjectKey, ObjectMeta

GATEWAY_GROUP = "gateway.networking.k8s.io"

KIND_GATEWAYCLASS = "GatewayClass"
KIND_GATEWAY = "Gateway"
KIND_HTTPROUTE = "HTTPRoute"
KIND_TLSROUTE = "TLSRoute"
KIND_TCPROUTE = "TCPRoute"
KIND_UDPROUTE = "UDPRoute"
KIND_REFERENCEGRANT = "ReferenceGrant"
KIND_NAMESPACE = "Namespace"
GATEWAY_KINDS = (
    KIND_GATEWAYCLASS,
    KIND_GATEWAY,
    KIND_HTTPROUTE,
    KIND_TLSROUTE,
    KIND_TCPROUTE,
    KIND_UDPROUTE,
    KIND_REFERENCEGRANT,
    KIND_NAMESPACE,
)

# The label the API server puts on every Namespace (Kubernetes >= 1.22); namespace
# selectors may rely on it, so it is implied for namespaces known only by name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


# -- status pieces (as the API shows them; also what seaway computes) --------------------


@dataclass(frozen=True, slots=True)
class Condition:
    """A metav1.Condition."""

    type: str
    status: str  # "True", "False" or "Unknown"
    reason: str
    message: str = ""
    observed_generation: int = 0
    last_transition_time: str = ""  # RFC 3339


@dataclass(frozen=True, slots=True)
class RouteGroupKind:
    kind: str
    group: str = GATEWAY_GROUP


@dataclass(frozen=True, slots=True)
class GatewayAddress:
    """spec.addresses[] (value may be "": assign one) and status.addresses[]."""

    type: str = "IPAddress"
    value: str = ""


@dataclass(frozen=True, slots=True)
class ListenerStatus:
    name: str
    supported_kinds: tuple[RouteGroupKind, ...] = ()
    attached_routes: int = 0
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    addresses: tuple[GatewayAddress, ...] = ()
    conditions: tuple[Condition, ...] = ()
    listeners: tuple[ListenerStatus, ...] = ()


# -- references ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParentRef:
    """A route's spec.parentRefs[] (group/kind defaulted; namespace as written)."""

    name: str
    group: str = GATEWAY_GROUP
    kind: str = "Gateway"
    namespace: str = ""  # "" = the route's namespace
    section_name: str = ""  # "" = every listener
    port: int | None = None

    def in_namespace(self, local: str) -> str:
        return self.namespace or local


@dataclass(frozen=True, slots=True)
class RouteParentStatus:
    parent_ref: ParentRef
    controller_name: str
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class BackendObjectRef:
    """A backendRef or a mirror's backendRef: a Service (core group) unless told otherwise."""

    name: str
    group: str = ""
    kind: str = "Service"
    namespace: str = ""  # "" = the route's namespace
    port: int | None = None

    def in_namespace(self, local: str) -> str:
        return self.namespace or local


@dataclass(frozen=True, slots=True)
class SecretObjectRef:
    """A listener's tls.certificateRefs[]: a core Secret unless told otherwise."""

    name: str
    group: str = ""
    kind: str = "Secret"
    namespace: str = ""  # "" = the Gateway's namespace

    def in_namespace(self, local: str) -> str:
        return self.namespace or local


@dataclass(frozen=True, slots=True)
class LocalObjectRef:
    group: str
    kind: str
    name: str


# -- label selectors --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelRequirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """metav1.LabelSelector; an empty selector matches everything."""

    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[LabelRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == "In":
                ok = present and labels[req.key] in req.values
            elif req.operator == "NotIn":
                ok = not present or labels[req.key] not in req.values
            elif req.operator == "Exists":
                ok = present
            else:  # DoesNotExist
                ok = not present
            if not ok:
                return False
        return True


# -- GatewayClass, Gateway --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatewayClass:
    meta: ObjectMeta
    controller_name: str
    description: str = ""
    parameters_ref: LocalObjectRef | None = None  # namespace, if any, is not kept
    conditions: tuple[Condition, ...] = ()  # status.conditions as last seen

    kind = KIND_GATEWAYCLASS

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(KIND_GATEWAYCLASS, "", self.meta.name)


@dataclass(frozen=True, slots=True)
class ListenerTLS:
    mode: str = "Terminate"  # or Passthrough
    certificate_refs: tuple[SecretObjectRef, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AllowedRoutes:
    namespaces_from: str = "Same"  # All, Same, Selector (None for ListenerSets only)
    selector: LabelSelector | None = None
    kinds: tuple[RouteGroupKind, ...] = ()  # empty: what the protocol supports


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    port: int
    protocol: str  # HTTP, HTTPS, TLS, TCP, UDP, or domain/path of an implementation
    hostname: str = ""  # "" = every host; may be "*.example.com"
    tls: ListenerTLS | None = None
    allowed_routes: AllowedRoutes = AllowedRoutes()


@dataclass(frozen=True, slots=True)
class Gateway:
    meta: ObjectMeta
    gateway_class_name: str
    listeners: tuple[Listener, ...] = ()
    addresses: tuple[GatewayAddress, ...] = ()
    status: GatewayStatus = GatewayStatus()  # as last seen
    # spec.infrastructure.parametersRef: seaway takes no parameters, so one set makes the
    # Gateway not Accepted (InvalidParameters), as the spec asks of an unresolvable one
    parameters_ref: LocalObjectRef | None = None

    kind = KIND_GATEWAY

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(KIND_GATEWAY, self.meta.namespace, self.meta.name)


# -- HTTPRoute ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathMatch:
    type: str = "PathPrefix"  # Exact, PathPrefix, RegularExpression
    value: str = "/"


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    name: str
    value: str
    type: str = "Exact"  # or RegularExpression


@dataclass(frozen=True, slots=True)
class QueryParamMatch:
    name: str
    value: str
    type: str = "Exact"  # or RegularExpression


@dataclass(frozen=True, slots=True)
class HTTPRouteMatch:
    path: PathMatch = PathMatch()
    headers: tuple[HeaderMatch, ...] = ()
    query_params: tuple[QueryParamMatch, ...] = ()
    method: str = ""  # "" = any


@dataclass(frozen=True, slots=True)
class HeaderModifier:
    """RequestHeaderModifier / ResponseHeaderModifier: set, add, remove (names as written)."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PathModifier:
    type: str  # ReplaceFullPath or ReplacePrefixMatch
    value: str  # the replaceFullPath or replacePrefixMatch value ("" allowed for the latter)


@dataclass(frozen=True, slots=True)
class RequestRedirect:
    scheme: str = ""  # "" = the request's; http or https
    hostname: str = ""  # "" = the request's Host
    path: PathModifier | None = None
    port: int | None = None  # None: derived as the spec says (scheme's port or listener's)
    status_code: int = 302


@dataclass(frozen=True, slots=True)
class URLRewrite:
    hostname: str = ""
    path: PathModifier | None = None


@dataclass(frozen=True, slots=True)
class RequestMirror:
    backend: BackendObjectRef
    percent: int | None = None  # 0-100; None with fraction None: every request
    fraction: tuple[int, int] | None = None  # (numerator, denominator)


@dataclass(frozen=True, slots=True)
class HTTPRouteFilter:
    """One filter; exactly the field of its `type` is set (CORS and ExternalAuth are kept
    by type only: seaway does not implement them)."""

    type: str
    request_header_modifier: HeaderModifier | None = None
    response_header_modifier: HeaderModifier | None = None
    request_redirect: RequestRedirect | None = None
    url_rewrite: URLRewrite | None = None
    request_mirror: RequestMirror | None = None
    extension_ref: LocalObjectRef | None = None


@dataclass(frozen=True, slots=True)
class HTTPBackendRef:
    backend: BackendObjectRef
    weight: int = 1
    filters: tuple[HTTPRouteFilter, ...] = ()


@dataclass(frozen=True, slots=True)
class HTTPRouteTimeouts:
    """Seconds; 0 disables the timeout; None: not set (seaway's defaults apply)."""

    request: float | None = None
    backend_request: float | None = None


@dataclass(frozen=True, slots=True)
class HTTPRouteRetry:
    codes: tuple[int, ...] = ()
    attempts: int | None = None
    backoff: float | None = None  # seconds


@dataclass(frozen=True, slots=True)
class HTTPRouteRule:
    matches: tuple[HTTPRouteMatch, ...] = (HTTPRouteMatch(),)
    filters: tuple[HTTPRouteFilter, ...] = ()
    backend_refs: tuple[HTTPBackendRef, ...] = ()
    timeouts: HTTPRouteTimeouts | None = None
    retry: HTTPRouteRetry | None = None
    name: str = ""
    session_persistence: bool = False  # set in the manifest (seaway does not implement it)


@dataclass(frozen=True, slots=True)
class HTTPRoute:
    meta: ObjectMeta
    parent_refs: tuple[ParentRef, ...] = ()
    hostnames: tuple[str, ...] = ()
    rules: tuple[HTTPRouteRule, ...] = (HTTPRouteRule(),)
    parents: tuple[RouteParentStatus, ...] = ()  # status.parents as last seen

    kind = KIND_HTTPROUTE

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(KIND_HTTPROUTE, self.meta.namespace, self.meta.name)


# -- TLSRoute -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TLSRoute:
    """A TLSRoute (v1, v1alpha3 or v1alpha2): connections to a TLS listener in Passthrough
    mode whose SNI name is one of `hostnames` go, unterminated, to the backendRefs.

    A TLSRoute rule has only backendRefs (and a name): its rules are HTTPRouteRules with
    no match, filter or timeout, so attaching and resolving backends are shared with
    HTTPRoute (discovery/gateway_attach.py)."""

    meta: ObjectMeta
    parent_refs: tuple[ParentRef, ...] = ()
    hostnames: tuple[str, ...] = ()
    rules: tuple[HTTPRouteRule, ...] = ()
    parents: tuple[RouteParentStatus, ...] = ()  # status.parents as last seen

    kind = KIND_TLSROUTE

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(KIND_TLSROUTE, self.meta.namespace, self.meta.name)


@dataclass(frozen=True, slots=True)
class TCPRoute:
    """A TCPRoute (v1alpha2): connections to a TCP listener go to its first rule's
    backendRefs (by weight). Rules as for TLSRoute: backendRefs only. No hostnames."""

    meta: ObjectMeta
    parent_refs: tuple[ParentRef, ...] = ()
    rules: tuple[HTTPRouteRule, ...] = ()
    parents: tuple[RouteParentStatus, ...] = ()

    kind = KIND_TCPROUTE
    hostnames: tuple[str, ...] = ()  # (none: every connection of the listener)

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.kind, self.meta.namespace, self.meta.name)


@dataclass(frozen=True, slots=True)
class UDPRoute:
    """A UDPRoute (v1alpha2): datagrams to a UDP listener go to its first rule's
    backendRefs (UDP Service ports, by weight)."""

    meta: ObjectMeta
    parent_refs: tuple[ParentRef, ...] = ()
    rules: tuple[HTTPRouteRule, ...] = ()
    parents: tuple[RouteParentStatus, ...] = ()

    kind = KIND_UDPROUTE
    hostnames: tuple[str, ...] = ()

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.kind, self.meta.namespace, self.meta.name)


AnyRoute = HTTPRoute | TLSRoute | TCPRoute | UDPRoute
L4Route = TCPRoute | UDPRoute


# -- ReferenceGrant, Namespace ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReferenceGrantFrom:
    group: str
    kind: str
    namespace: str


@dataclass(frozen=True, slots=True)
class ReferenceGrantTo:
    group: str
    kind: str
    name: str = ""  # "" = every object of that group and kind in the grant's namespace


@dataclass(frozen=True, slots=True)
class ReferenceGrant:
    """v1beta1 or v1 (identical): lets objects `from_refs` describes refer to objects
    `to_refs` describes in the grant's own namespace."""

    meta: ObjectMeta
    from_refs: tuple[ReferenceGrantFrom, ...]
    to_refs: tuple[ReferenceGrantTo, ...]

    kind = KIND_REFERENCEGRANT

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(KIND_REFERENCEGRANT, self.meta.namespace, self.meta.name)


@dataclass(frozen=True, slots=True)
class Namespace:
    """v1 Namespace: only its labels matter (allowedRoutes namespace selectors)."""

    meta: ObjectMeta

    kind = KIND_NAMESPACE

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(KIND_NAMESPACE, "", self.meta.name)

    @property
    def labels(self) -> Mapping[str, str]:
        """The object's labels plus kubernetes.io/metadata.name, as the API server sets."""
        if self.meta.labels.get(NAMESPACE_NAME_LABEL) == self.meta.name:
            return self.meta.labels
        return {**self.meta.labels, NAMESPACE_NAME_LABEL: self.meta.name}


GatewayObject = (
    GatewayClass | Gateway | HTTPRoute | TLSRoute | TCPRoute | UDPRoute | ReferenceGrant | Namespace
)
