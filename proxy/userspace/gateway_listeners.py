"""Gateway API TCPRoutes and UDPRoutes -> listeners of the userspace L4 proxy. Pure.

discovery/gateway_attach.py decides which Gateways and listeners are seaway's and which
routes attach where (the same attachment the L7 dataplane and the status use). Here,
every accepted, programmed listener of protocol TCP or UDP becomes one listener of this
proxy per bind address of its Gateway (spec.addresses, or --gateway-bind-address), at the
listener's port, forwarding to the backendRefs of the first rule of the route attached
to it. Several routes on one listener: the oldest serves it (routes are attached oldest
first), the others are reported. Weighted backendRefs: each Service port's usable
endpoints share its weight (proxy.balancer.spread_weights), picked by weighted round
robin, so 70/30 across two Services holds whatever their endpoint counts; a backendRef
that does not resolve takes no traffic. A listener whose route has no usable endpoint
at all is still opened: its connections are refused (TCP reset, UDP dropped), as for a
Service without endpoints.

Each such listener gets a synthetic service port name for its target and metrics:
namespace and name of the route, the port its Gateway listener's name, protocol TCP or UDP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from discovery.gateway_attach import GatewayAttachment
from discovery.model import LoadBalancing
from discovery.model_gateway import TCPRoute, UDPRoute
from discovery.snapshot import EndpointInfo, ServicePortInfo, ServicePortName
from proxy.balancer import spread_weights
from proxy.userspace.listeners import ListenerKey, ListenProtocol

# Weighted round robin: the backendRefs' weights hold exactly over every few connections
# (a least-request choice would drift from them while connections are open).
WEIGHTED = LoadBalancing("round-robin")


@dataclass(frozen=True, slots=True)
class RouteTargetInfo:
    """What a Gateway L4 listener forwards to: its synthetic service port (endpoints of
    every backendRef) and the per-endpoint weights (None: all equal)."""

    info: ServicePortInfo
    weights: tuple[float, ...] | None


@dataclass(frozen=True, slots=True)
class GatewayL4:
    listeners: dict[ListenerKey, ServicePortName] = field(default_factory=dict)
    targets: dict[ServicePortName, RouteTargetInfo] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def gateway_l4_listeners(attachment: GatewayAttachment) -> GatewayL4:
    """The TCP/UDP listeners seaway's Gateways ask of the userspace proxy."""
    served: dict[tuple[str, str, str], tuple[ServicePortName, RouteTargetInfo]] = {}
    warnings: list[str] = []
    for state in attachment.routes:
        route = state.route
        if not isinstance(route, TCPRoute | UDPRoute) or not state.rules:
            continue
        protocol: ListenProtocol = "UDP" if isinstance(route, UDPRoute) else "TCP"
        rule = state.rules[0]
        pairs = [
            (float(b.weight), b.port.endpoints if b.ok and b.port is not None else ())
            for b in rule.backends
            if b.weight > 0
        ]
        endpoints, weights = spread_weights(pairs)
        for parent in state.parents:
            if not parent.accepted.status:
                continue
            gmeta = parent.gateway.gateway.meta
            for attached in parent.listeners:
                where = (gmeta.namespace, gmeta.name, attached.name)
                if where in served:
                    owner = served[where][0]
                    warnings.append(
                        f"{route.kind} {route.meta.namespace}/{route.meta.name}: Gateway "
                        f"{gmeta.namespace}/{gmeta.name} listener {attached.name} is served "
                        f"by the older {route.kind} {owner.namespace}/{owner.name}"
                    )
                    continue
                name = ServicePortName(route.meta.namespace, route.meta.name, attached.name,
                                       protocol)  # fmt: skip
                served[where] = (name, _target(name, endpoints, weights))
    out = GatewayL4(warnings=tuple(warnings))
    for gateway in attachment.gateways:
        if not gateway.accepted.status or not gateway.programmed.status:
            continue
        meta = gateway.gateway.meta
        for listener in gateway.listeners:
            lst = listener.listener
            found = served.get((meta.namespace, meta.name, lst.name))
            if found is None or lst.protocol not in ("TCP", "UDP"):
                continue
            if not listener.programmed.status or listener.conflicted.status:
                continue
            name, target = found
            out.targets[name] = target
            for address in gateway.bind_addresses:
                out.listeners[ListenerKey(name.protocol, address, lst.port)] = name  # type: ignore[arg-type]
    return out


def _target(
    name: ServicePortName, endpoints: tuple[EndpointInfo, ...], weights: tuple[float, ...]
) -> RouteTargetInfo:
    info = ServicePortInfo(
        name=name,
        cluster_ips=(),
        port=0,
        protocol=name.protocol,  # type: ignore[arg-type]
        load_balancing=WEIGHTED,
        all_endpoints=endpoints,
        endpoints=endpoints,
    )
    even = len(set(weights)) <= 1
    return RouteTargetInfo(info, None if even else weights)
