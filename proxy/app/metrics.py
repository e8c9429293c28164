"""Prometheus metrics of the daemon, named as kube-proxy names them where the meaning is
the same. One registry per process so tests can build daemons side by side."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# kube-proxy's buckets for sync durations: 1 ms doubling up to ~16 s.
_SYNC_BUCKETS = tuple(0.001 * 2**i for i in range(15))
# kube-proxy's network programming buckets: 0.25 s .. 300 s-ish, plus finer low end.
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20,
                    25, 30, 45, 60, 120, 180, 240, 300)


class DaemonMetrics:
    __slots__ = (
        "endpoints",
        "network_programming",
        "registry",
        "service_ports",
        "sync_duration",
        "sync_errors",
        "sync_last_timestamp",
    )

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.sync_duration = Histogram(
            "kubeproxy_sync_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds, per dataplane",
            ["dataplane"],
            buckets=_SYNC_BUCKETS,
            registry=r,
        )
        self.sync_last_timestamp = Gauge(
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
            "The last time a sync of proxy rules succeeded",
            registry=r,
        )
        self.network_programming = Histogram(
            "kubeproxy_network_programming_duration_seconds",
            "In-cluster network programming latency in seconds: from the EndpointSlice "
            "last-change-trigger-time to the sync that applied it",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.sync_errors = Counter(
            "seaway_sync_errors_total", "Failed dataplane syncs", ["dataplane"], registry=r
        )
        self.service_ports = Gauge(
            "seaway_service_ports", "Service ports in the current Snapshot", registry=r
        )
        self.endpoints = Gauge(
            "seaway_usable_endpoints", "Usable endpoints over all service ports", registry=r
        )
