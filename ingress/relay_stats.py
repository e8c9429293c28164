"""Counters of the TLS connections a worker relays unterminated (ingress/passthrough.py).

One row per RouteResult (a PassthroughHost's backend), held by each relay it counts
for: connections relayed, connections closed for want of an endpoint, bytes each way.
`take` labels the rows (namespace, ingress, service, port, host: the route's, as
ingress/route_labels.py names them) and zeroes them in place, so open relays keep
counting into the same lists. Connect times and failures per endpoint go to the L7
endpoint table (seaway_http_upstream_connect_*), as a request's do.
"""

from __future__ import annotations

from ingress.route_labels import RouteHosts, labels_of
from proxy.counters import Family, Rows

PASSTHROUGH = "tls_passthrough"
CONNECTIONS, FAILURES, BYTES_IN, BYTES_OUT = range(4)
WIDTH = 4

_LABELS = (("namespace", 0), ("ingress", 1), ("service", 2), ("port", 3), ("host", 4))
FAMILIES: tuple[Family, ...] = (
    Family("seaway_tls_passthrough_connections_total",
           "TLS connections relayed unterminated to an endpoint (ssl-passthrough, TLSRoute)",
           "counter", PASSTHROUGH, _LABELS, CONNECTIONS),
    Family("seaway_tls_passthrough_failures_total",
           "TLS passthrough connections closed because no endpoint could be connected",
           "counter", PASSTHROUGH, _LABELS, FAILURES),
    Family("seaway_tls_passthrough_received_bytes_total",
           "Bytes from clients relayed to endpoints", "counter", PASSTHROUGH, _LABELS, BYTES_IN),
    Family("seaway_tls_passthrough_sent_bytes_total",
           "Bytes from endpoints relayed to clients", "counter", PASSTHROUGH, _LABELS,
           BYTES_OUT),
)


class RelayStats:
    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: dict[object, list[int]] = {}  # RouteResult (by identity) -> row

    def row(self, result: object) -> list[int]:
        found = self.rows.get(result)
        if found is None:
            found = self.rows[result] = [0] * WIDTH
        return found

    def take(self, hosts: RouteHosts) -> Rows:
        """The counts since the last take, by labels; rows of routes no longer served
        are dropped once they have nothing left to report."""
        out: Rows = {}
        for result, values in list(self.rows.items()):
            if not any(values):
                continue
            key = labels_of(result, hosts)[:5]
            have = out.get(key)
            if have is None:
                out[key] = [float(v) for v in values]
            else:
                for i, v in enumerate(values):
                    have[i] += v
            values[:] = [0] * WIDTH
        if len(self.rows) > 1024:  # old routes' rows (a relay still open refills its own)
            self.rows = {r: v for r, v in self.rows.items() if any(v)}
        return out
