"""Endpoint health as Prometheus metrics: what a process's HealthRegistry counted, in the
rows of a `proxy.counters.Delta` (so L7 worker processes ship it with their request
counts), and the families that read them. The L4 proxy's are named `seaway_l4_outlier_*`,
the L7 proxy's `seaway_http_outlier_*`. Pure.

    <prefix>_outlier_ejections_total   counter  namespace, service, port, endpoint, reason
    <prefix>_outlier_returns_total     counter  ... how ("probe" | "time")
    <prefix>_outlier_overflows_total   counter  ... reason: ejections refused (half out)
    <prefix>_outlier_ejected           gauge    ... reason: processes with it out now
"""

from __future__ import annotations

from proxy.counters import Delta, Family, Rows
from proxy.outlier import REASONS, HealthRegistry, endpoint_text

EJECTIONS = "outlier_ejections"
RETURNS = "outlier_returns"
OVERFLOWS = "outlier_overflows"
EJECTED = "outlier_ejected"
_TABLES = {"ejected": EJECTIONS, "returned": RETURNS, "overflow": OVERFLOWS}
_EP = (("namespace", 0), ("service", 1), ("port", 2), ("endpoint", 3))


def health_families(prefix: str) -> tuple[Family, ...]:
    return (
        Family(f"{prefix}_outlier_ejections_total",
               "Endpoints ejected by outlier detection, by reason (connect, timeout, reset, "
               "5xx)", "counter", EJECTIONS, (*_EP, ("reason", 4)), 0),
        Family(f"{prefix}_outlier_returns_total",
               "Ejected endpoints back in rotation: a probe passed, or their time was up",
               "counter", RETURNS, (*_EP, ("how", 4)), 0),
        Family(f"{prefix}_outlier_overflows_total",
               "Ejections refused because half of the service's endpoints were out",
               "counter", OVERFLOWS, (*_EP, ("reason", 4)), 0),
        Family(f"{prefix}_outlier_ejected",
               "Endpoints ejected now, by reason: the number of proxy processes that have "
               "the endpoint out", "gauge", EJECTED, (*_EP, ("reason", 4)), 0, gauge=True),
    )


L7_HEALTH_FAMILIES = health_families("seaway_http")
L4_HEALTH_FAMILIES = health_families("seaway_l4")


def add_health(delta: Delta, registry: HealthRegistry) -> Delta:
    """Put the registry's counts since the last call, and who is out now, into `delta`."""
    for (what, *key), n in registry.take_counts().items():
        rows = delta.tables.setdefault(_TABLES[what], {})
        k = tuple(key)
        have = rows.get(k)
        if have is None:
            rows[k] = [float(n)]
        else:
            have[0] += n
    out: Rows = {}
    for svc, rec in registry.ejected():
        out[(*svc.labels, endpoint_text(rec.address), REASONS[rec.kind])] = [1.0]
    delta.gauges[EJECTED] = out
    return delta
