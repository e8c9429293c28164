"""The per-service-port state listeners point at: which endpoints, how to pick one."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from discovery.snapshot import ServicePortInfo, ServicePortName
from proxy.balancer import NO_LIMITS, Balancer, EndpointLimits, Picker, new_balancer
from proxy.outlier import HealthRegistry


class ServiceTarget:
    """One service port as the proxy sees it. Updated in place on config changes, so
    listeners and open connections keep their reference while new connections see the
    new endpoints at once. The balancer follows the Service's seaway.dev/load-balancer;
    when that changes, open connections end their picks on the balancer they came from.
    With a `health` registry (proxy/outlier.py), the balancer skips the endpoints it
    ejects or the active checks fail.
    """

    __slots__ = ("clock", "health", "info", "limits", "name", "picker", "weights")

    def __init__(
        self,
        info: ServicePortInfo,
        clock: Callable[[], float],
        limits: EndpointLimits = NO_LIMITS,
        health: HealthRegistry | None = None,
        weights: Sequence[float] | None = None,
    ) -> None:
        self.name: ServicePortName = info.name
        self.info = info
        self.clock = clock
        self.limits = limits
        self.health = health
        # Per-endpoint weights (a Gateway TCPRoute/UDPRoute's backendRef weights spread
        # over their endpoints); None for a Service port: all equal.
        self.weights = weights
        self.picker = Picker(self._balancer(info), info.session_affinity_timeout, clock)
        self._watch(info, True)

    def _watch(self, info: ServicePortInfo, new_balancer: bool) -> None:
        """The balancer's health follows the Service's settings (a new balancer: attached)."""
        if self.health is None:
            return
        name = self.name
        svc = self.health.service(
            str(name), (name.namespace, name.name, name.port), info.load_balancing.health
        )
        if new_balancer:
            svc.attach(self.picker.balancer)

    def _balancer(self, info: ServicePortInfo) -> Balancer:
        policy = info.load_balancing.policy
        return new_balancer(
            policy, info.endpoints, self.weights, clock=self.clock, limits=self.limits
        )

    def update(self, info: ServicePortInfo, weights: Sequence[float] | None = None) -> None:
        self.weights = weights
        if info.load_balancing.policy != self.picker.balancer.policy:
            self.picker.set_balancer(self._balancer(info))
            self._watch(info, True)
        else:
            self.picker.update(info.endpoints, weights)
            self._watch(info, False)
        self.info = info
        self.picker.set_affinity(info.session_affinity_timeout, self.clock)

    def expire(self) -> None:
        if self.picker.affinity is not None:
            self.picker.affinity.expire()
