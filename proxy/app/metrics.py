"""Prometheus metrics of the daemon, named as kube-proxy names them where the meaning is
the same. One registry per process so tests can build daemons side by side.

Request metrics (L7 requests, L4 connections) are not prometheus-client objects: the
dataplanes count them in plain rows (proxy/counters.py) and they are rendered here, in
the same text format, at scrape time."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from proxy.acceptor import COUNTERS, LimitCounters
from proxy.active_checks import ActiveChecks
from proxy.counters import Family, Totals

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
        r.register(LimitCollector(COUNTERS))


class LimitCollector(Collector):
    """What the limits did in this process (the L4 proxy and the daemon's own L7 worker;
    worker processes count their own), read at scrape time: no lock on the hot path."""

    def __init__(self, counters: LimitCounters) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        c = self.counters
        yield CounterMetricFamily(
            "seaway_accept_exhausted",
            "Accepts that failed for want of file descriptors or memory (EMFILE, ENFILE, "
            "ENOBUFS, ENOMEM); accepting pauses meanwhile",
            value=c.accept_failures,
        )
        yield CounterMetricFamily(
            "seaway_accept_pauses",
            "Episodes of paused accepting (descriptors ran out)",
            value=c.accept_pauses,
        )
        yield CounterMetricFamily(
            "seaway_connections_over_limit",
            "Client connections refused over --max-connections (503 at L7, reset at L4)",
            value=c.refused,
        )
        yield CounterMetricFamily(
            "seaway_endpoint_overflows",
            "Connections or requests refused because every endpoint was at its cap "
            "(--max-endpoint-connections, --max-endpoint-pending)",
            value=c.endpoint_overflows,
        )


class CheckCollector(Collector):
    """The daemon's active health checks (proxy/active_checks.py), read at scrape time."""

    def __init__(self, checks: ActiveChecks) -> None:
        self.checks = checks

    def collect(self) -> Iterator[Metric]:
        c = self.checks
        results = CounterMetricFamily(
            "seaway_health_checks",
            "Active health checks done, by result (pass, fail)",
            labels=["result"],
        )
        results.add_metric(["pass"], c.checks - c.failed)
        results.add_metric(["fail"], c.failed)
        yield results
        yield GaugeMetricFamily(
            "seaway_health_check_endpoints",
            "Endpoints under active health checks",
            value=len(c.specs),
        )
        yield GaugeMetricFamily(
            "seaway_health_check_failing_endpoints",
            "Endpoints out of rotation because they fail their active health checks",
            value=len(c.down),
        )


# -- request metrics: counted by the dataplanes (proxy/counters.py), rendered here ----------
def _num(value: float) -> str:
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]


def _le(bound: float) -> str:
    """A bucket bound as Go's client writes it ("1", "0.005", "+Inf"), so `le` label
    values match those of ingress-nginx's metrics exactly."""
    if bound == math.inf:
        return "+Inf"
    text = repr(bound)
    return text[:-2] if text.endswith(".0") else text


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Sequence[tuple[str, str]]) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)


def render_family(
    family: Family, totals: Totals, const: Sequence[tuple[str, str]] = ()
) -> list[str]:
    """One family in Prometheus' text format (its name exactly as given: ingress-nginx's
    `nginx_ingress_controller_requests` is a counter without `_total`)."""
    rows = totals.gauge_rows(family.table) if family.gauge else totals.rows(family.table)
    kind = "gauge" if family.kind == "gauge" else family.kind
    out = [f"# HELP {family.name} {family.help}\n", f"# TYPE {family.name} {kind}\n"]
    names = family.label_names
    for key, values in sorted(family.project(rows).items()):
        pairs = [*const, *zip(names, key, strict=True)]
        if family.kind != "histogram":
            out.append(f"{family.name}{{{_labels(pairs)}}} {_num(values[0])}\n")
            continue
        count, total, *cumulative = values
        for bound, n in zip((*family.bounds, math.inf), cumulative, strict=True):
            le = _labels([*pairs, ("le", _le(bound))])
            out.append(f"{family.name}_bucket{{{le}}} {_num(n)}\n")
        base = _labels(pairs)
        out.append(f"{family.name}_sum{{{base}}} {_num(total)}\n")
        out.append(f"{family.name}_count{{{base}}} {_num(count)}\n")
    return out


def render_request_metrics(
    sources: Iterable[tuple[Totals, Sequence[Family]]],
    compat: Sequence[Family] = (),
    compat_labels: Sequence[tuple[str, str]] = (),
) -> bytes:
    """Every request family of every counting dataplane; `compat` families (read from the
    L7 totals) carry `compat_labels` as constant labels."""
    out: list[str] = []
    for totals, families in sources:
        for family in families:
            out += render_family(family, totals)
        for family in compat:
            if family.table in totals.tables:
                out += render_family(family, totals, compat_labels)
    return "".join(out).encode()


def ingress_nginx_labels(ingress_class: str) -> list[tuple[str, str]]:
    """ingress-nginx's constant labels: controller_class, controller_namespace and
    controller_pod (from the POD_NAMESPACE and POD_NAME variables it reads, else "" and
    the host name), and canary (always "": seaway has no canary annotation yet)."""
    return [
        ("canary", ""),
        ("controller_class", ingress_class),
        ("controller_namespace", os.environ.get("POD_NAMESPACE", "")),
        ("controller_pod", os.environ.get("POD_NAME", socket.gethostname())),
    ]
