"""Service ports -> route model Backends, resolved once per translation. Pure.

Translators name a Service port (by number or by name) in a namespace; this gives the
Backend the route table holds: its stable key ("namespace/service:port"), the Service
port it is and its usable endpoints (the Snapshot's: ready first, else serving and
terminating) with the Service's choice of balancer, or, when it cannot take traffic,
status 503 and why. Only TCP ports count.
"""

from __future__ import annotations

from discovery.model import IngressBackend
from discovery.snapshot import Snapshot
from ingress.routes import Backend

UNAVAILABLE = 503


class ServiceBackends:
    """Backend lookups over one Snapshot, cached; ``services`` collects every
    (namespace, service) asked for (a change to one of them needs a new translation)."""

    __slots__ = ("_cache", "_snapshot", "services")

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._cache: dict[tuple[str, str, int | str], Backend] = {}
        self.services: set[tuple[str, str]] = set()

    def service(self, namespace: str, name: str, port: int | str) -> Backend:
        """The Backend of Service `namespace/name`'s port `port` (number or port name)."""
        self.services.add((namespace, name))
        cache_key = (namespace, name, port)
        found = self._cache.get(cache_key)
        if found is None:
            found = self._cache[cache_key] = self._resolve(namespace, name, port)
        return found

    def ingress_backend(self, namespace: str, backend: IngressBackend) -> Backend:
        """The Backend of an Ingress backend: a Service port, or 503 for a resource."""
        if not backend.service_name:
            key = f"{namespace}/resource:{backend.resource}"
            why = "is a resource backend, which seaway does not serve"
            return Backend(key, (), None, UNAVAILABLE, why)
        port = backend.port_number if backend.port_number is not None else backend.port_name
        return self.service(namespace, backend.service_name, port)

    def _resolve(self, namespace: str, name: str, port: int | str) -> Backend:
        infos = self._snapshot.ports_by_service.get((namespace, name), ())
        for info in infos:
            if info.protocol != "TCP":
                continue
            if info.port == port if isinstance(port, int) else info.name.port == port:
                key = f"{namespace}/{name}:{info.port}"
                if not info.endpoints:
                    return Backend(key, (), info.name, UNAVAILABLE, "has no usable endpoints")
                return Backend(key, info.endpoints, info.name, balancing=info.load_balancing)
        why = (
            "does not exist (no such Service, or no TCP port by that name or number)"
            if not infos
            else "has no TCP port by that name or number"
        )
        return Backend(f"{namespace}/{name}:{port}", (), None, UNAVAILABLE, why)
