"""Health-check node ports, the pure part: which ports to serve and what to answer.

kube-proxy's service health server (pkg/proxy/healthcheck/service_health.go): for every
LoadBalancer Service with externalTrafficPolicy Local, the node answers HTTP on the
Service's healthCheckNodePort, so the cloud load balancer sends traffic only to nodes that
have a local endpoint: 200 with the number of local ready endpoints, 503 without one (or
when the proxy itself is unhealthy). Any path and method get the same answer. The count
is of distinct local ready endpoint addresses over all the Service's ports (terminating
endpoints do not count: a node with only those must fail the check and drain).

Pure: no I/O (proxy/healthcheck_server.py serves it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from discovery.snapshot import Snapshot

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class ServiceHealth:
    """One health-check node port: the Service it answers for and its local endpoints."""

    namespace: str
    name: str
    local_endpoints: int


def desired_health_checks(snapshot: Snapshot, node_name: str) -> dict[int, ServiceHealth]:
    """health-check node port -> what it answers, for every Service that has one (the
    Snapshot fills ServicePortInfo.health_check_node_port only for LoadBalancer Services
    with externalTrafficPolicy Local). Two Services claiming one port: the first in name
    order keeps it (the API server never allows it; files might)."""
    local_ips: dict[tuple[str, str], set[str]] = {}
    ports: dict[tuple[str, str], int] = {}
    for name, spi in snapshot.service_ports.items():
        port = spi.health_check_node_port
        if port is None:
            continue
        key = (name.namespace, name.name)
        ports[key] = port
        ips = local_ips.setdefault(key, set())
        ips.update(e.ip for e in spi.all_endpoints if e.ready and e.node_name == node_name)
    out: dict[int, ServiceHealth] = {}
    for key in sorted(ports):
        port = ports[key]
        owner = out.get(port)
        if owner is not None:
            log.warning(
                "health-check node port %d: %s/%s keeps it, %s/%s has it too",
                port,
                owner.namespace,
                owner.name,
                *key,
            )
            continue
        out[port] = ServiceHealth(key[0], key[1], len(local_ips[key]))
    return out


def answer(health: ServiceHealth, proxy_healthy: bool) -> tuple[int, dict[str, str], bytes]:
    """(HTTP status, headers, body) as kube-proxy answers: 200 when the node has a local
    endpoint and the proxy is healthy, else 503; its headers (the endpoint count as a
    load-balancing weight too) and its JSON, with its tab indentation."""
    status = 200 if health.local_endpoints and proxy_healthy else 503
    headers = {
        "Content-Type": "application/json",
        "X-Content-Type-Options": "nosniff",
        "X-Load-Balancing-Endpoint-Weight": str(health.local_endpoints),
    }
    body = (
        "{\n"
        '\t"service": {\n'
        f'\t\t"namespace": "{_escape(health.namespace)}",\n'
        f'\t\t"name": "{_escape(health.name)}"\n'
        "\t},\n"
        f'\t"localEndpoints": {health.local_endpoints},\n'
        f'\t"serviceProxyHealthy": {"true" if proxy_healthy else "false"}\n'
        "}"
    )
    return status, headers, body.encode()


def _escape(text: str) -> str:
    # Namespaces and names are DNS labels; escape anyway, as Go's %q would.
    return text.replace("\\", "\\\\").replace('"', '\\"')
