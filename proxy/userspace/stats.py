"""Connection metrics of the userspace L4 proxy: plain counters per service port and endpoint.

A connection (or UDP association) holds its row, a list of numbers, and adds to it as
bytes pass: no lock, no lookup per read. `take()` turns the rows into label-keyed rows of
a `proxy.counters.Delta` (zeroing them in place, so open connections keep counting into
the same lists), served by the app shell like the L7 counters.
"""

from __future__ import annotations

from discovery.snapshot import ServicePortName
from proxy.counters import Delta, Family, Key, Rows

# Table "l4": key (namespace, service, port, protocol, endpoint); endpoint "" stands for
# a connection or datagram refused because the service port had no usable endpoint.
L4 = "l4"
CONNECTIONS, FAILURES, BYTES_IN, BYTES_OUT, DATAGRAMS_IN, DATAGRAMS_OUT = range(6)
WIDTH = 6
ACTIVE = "l4_active"  # gauge rows, same key: connections (or UDP associations) open now

_LABELS = (("namespace", 0), ("service", 1), ("port", 2), ("protocol", 3), ("endpoint", 4))
FAMILIES: tuple[Family, ...] = (
    Family("seaway_l4_connections_total",
           "Connections accepted and forwarded to an endpoint (UDP: associations)",
           "counter", L4, _LABELS, CONNECTIONS),
    Family("seaway_l4_connect_failures_total",
           "Connects to an endpoint that failed; endpoint=\"\": refused for want of any "
           "usable endpoint", "counter", L4, _LABELS, FAILURES),
    Family("seaway_l4_received_bytes_total", "Bytes from clients, forwarded to endpoints",
           "counter", L4, _LABELS, BYTES_IN),
    Family("seaway_l4_sent_bytes_total", "Bytes from endpoints, forwarded to clients",
           "counter", L4, _LABELS, BYTES_OUT),
    Family("seaway_l4_received_datagrams_total", "UDP datagrams from clients", "counter", L4,
           _LABELS, DATAGRAMS_IN),
    Family("seaway_l4_sent_datagrams_total", "UDP datagrams to clients", "counter", L4,
           _LABELS, DATAGRAMS_OUT),
    Family("seaway_l4_active_connections",
           "Connections (UDP: associations) open now", "gauge", ACTIVE, _LABELS, 0, gauge=True),
)

Row = list[int]


class L4Stats:
    __slots__ = ("active", "rows")

    def __init__(self) -> None:
        self.rows: dict[tuple[ServicePortName, str], Row] = {}
        self.active: dict[tuple[ServicePortName, str], int] = {}

    def row(self, name: ServicePortName, endpoint: str) -> Row:
        """The counters of one service port and endpoint (created on first use)."""
        key = (name, endpoint)
        found = self.rows.get(key)
        if found is None:
            found = self.rows[key] = [0] * WIDTH
        return found

    def opened(self, name: ServicePortName, endpoint: str) -> Row:
        """A connection to `endpoint` is up: counted, and its row returned to count bytes."""
        row = self.row(name, endpoint)
        row[CONNECTIONS] += 1
        key = (name, endpoint)
        self.active[key] = self.active.get(key, 0) + 1
        return row

    def closed(self, name: ServicePortName, endpoint: str) -> None:
        key = (name, endpoint)
        left = self.active.get(key, 0) - 1
        if left > 0:
            self.active[key] = left
        else:
            self.active.pop(key, None)

    def failed(self, name: ServicePortName, endpoint: str) -> None:
        self.row(name, endpoint)[FAILURES] += 1

    def take(self) -> Delta:
        counters: Rows = {}
        for (name, endpoint), values in self.rows.items():
            if any(values):
                counters[_key(name, endpoint)] = list(values)
                values[:] = [0] * WIDTH
        active: Rows = {_key(name, ep): [n] for (name, ep), n in self.active.items()}
        return Delta({L4: counters}, {ACTIVE: active})


def _key(name: ServicePortName, endpoint: str) -> Key:
    return (name.namespace, name.name, name.port, name.protocol, endpoint)
