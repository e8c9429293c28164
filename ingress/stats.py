"""Request metrics of one L7 worker: plain counters, no lock, no prometheus-client call.

The protocol calls `RequestStats.request_done(proto, req, exchange)` once per request
that leaves the connection (answered, failed, or cut by the client: HttpProtocol.finish
and connection_lost), which adds into one row keyed by (route, method, status): the
RouteResult object itself, hashed by identity, so the hot path builds no label strings.
`take()` (every second, in the worker) turns the rows into label-keyed rows of a
`proxy.counters.Delta` (ingress/route_labels.py names the routes) and starts afresh; the
main process adds the deltas of every worker (ingress/dataplane.py) and serves them
(proxy/app/metrics.py).

What is read at the end of a request: the route (`req.route`), the status sent
(`req.status`: the backend's or the proxy's own; when cut short, the backend's if its
response had begun, else 499 as nginx logs a client that went away), the request's size
(its head and body bytes), the response's (the exchange's `received`, or the size of the
proxy's own answer), the time since the head was complete (`req.start`) and since the
exchange began (`Exchange.began`: with the head, or when a pipelined request's turn came;
connects and retries included), and the exchange's retries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from mypy_extensions import mypyc_attr

from ingress.errors import error_response
from ingress.relay_stats import FAMILIES as RELAY_FAMILIES
from ingress.relay_stats import PASSTHROUGH, RelayStats
from ingress.route_labels import RouteHosts, labels_of
from ingress.routes import RouteTable
from proxy.counters import DURATION_BUCKETS, NBUCKETS, Delta, Family, Key, Rows, add_rows

if TYPE_CHECKING:
    from ingress.access_log import AccessLog
    from ingress.exchange import Exchange
    from ingress.http1 import HttpProtocol
    from ingress.pool import PoolSet
    from ingress.request import RequestState

clock: Final = time.perf_counter  # what RequestState.start and Exchange.began are read with

# ingress-nginx's request and response size buckets (prometheus.LinearBuckets(10, 10, 10)).
SIZE_BUCKETS: Final[tuple[float, ...]] = tuple(float(10 * i) for i in range(1, 11))
NSIZES: Final = len(SIZE_BUCKETS) + 1
# Prometheus' default buckets, ingress-nginx's request_duration_seconds buckets.
DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                                      10.0)

# Table "http": key (namespace, ingress, service, port, host, path, method, code).
HTTP: Final = "http"
REQUESTS: Final = 0
BYTES_IN: Final = 1
BYTES_OUT: Final = 2
DURATION_SUM: Final = 3
UPSTREAM_COUNT: Final = 4
UPSTREAM_SUM: Final = 5
RETRIES: Final = 6
DURATION_B: Final = 7
UPSTREAM_B: Final = DURATION_B + NBUCKETS
REQUEST_SIZE_B: Final = UPSTREAM_B + NBUCKETS  # counted only with --metrics-compat ingress-nginx
RESPONSE_SIZE_B: Final = REQUEST_SIZE_B + NSIZES
HTTP_WIDTH: Final = RESPONSE_SIZE_B + NSIZES
# Table "http_endpoints": key (endpoint,) as "ip:port".
ENDPOINTS: Final = "http_endpoints"
CONNECTS: Final = 0
CONNECT_FAILURES: Final = 1
CONNECT_SUM: Final = 2
POOL_HITS: Final = 3
POOL_MISSES: Final = 4
CONNECT_B: Final = 5
ENDPOINT_WIDTH: Final = CONNECT_B + NBUCKETS
# Table "http_connections" (counter) and gauge "http_open": key (side,), side is
# "downstream" (clients) or "upstream" (backends).
CONNECTIONS: Final = "http_connections"
OPEN: Final = "http_open"

KEY_NAMESPACE, KEY_INGRESS, KEY_SERVICE, KEY_PORT, KEY_HOST, KEY_PATH, KEY_METHOD, KEY_CODE = (
    range(8)
)
_ROUTE: Final = (("namespace", 0), ("ingress", 1), ("service", 2), ("port", 3))

FAMILIES: tuple[Family, ...] = (
    Family("seaway_http_requests_total", "HTTP requests answered, by route, method and code",
           "counter", HTTP, (*_ROUTE, ("method", 6), ("code", 7)), REQUESTS),
    Family("seaway_http_request_duration_seconds",
           "Time from a request's complete head to the end of its response", "histogram",
           HTTP, _ROUTE, DURATION_B, REQUESTS, DURATION_SUM, DURATION_BUCKETS),
    Family("seaway_http_upstream_response_seconds",
           "Time from the start of a request's exchange with a backend (connects and "
           "retries included) to the end of the backend's response", "histogram", HTTP,
           _ROUTE, UPSTREAM_B, UPSTREAM_COUNT, UPSTREAM_SUM, DURATION_BUCKETS),
    Family("seaway_http_request_bytes_total", "Bytes received from clients (heads and bodies)",
           "counter", HTTP, _ROUTE, BYTES_IN),
    Family("seaway_http_response_bytes_total", "Bytes of responses sent to clients",
           "counter", HTTP, _ROUTE, BYTES_OUT),
    Family("seaway_http_retries_total",
           "Requests sent again: to another endpoint after a failed connect, or once more "
           "after a pooled connection closed", "counter", HTTP, _ROUTE, RETRIES),
    Family("seaway_http_upstream_connect_seconds", "Time to connect to an endpoint",
           "histogram", ENDPOINTS, (("endpoint", 0),), CONNECT_B, CONNECTS, CONNECT_SUM,
           DURATION_BUCKETS),
    Family("seaway_http_upstream_connect_failures_total",
           "Connects to an endpoint that failed or timed out", "counter", ENDPOINTS,
           (("endpoint", 0),), CONNECT_FAILURES),
    Family("seaway_http_pool_hits_total",
           "Requests sent on an idle keep-alive connection from the pool", "counter",
           ENDPOINTS, (("endpoint", 0),), POOL_HITS),
    Family("seaway_http_pool_misses_total",
           "Requests that found no idle connection in the pool (a new connect)", "counter",
           ENDPOINTS, (("endpoint", 0),), POOL_MISSES),
    Family("seaway_http_connections_total", "Connections opened, by side", "counter",
           CONNECTIONS, (("side", 0),), 0),
    Family("seaway_http_open_connections", "Connections open now, by side", "gauge", OPEN,
           (("side", 0),), 0, gauge=True),
    *RELAY_FAMILIES,
)

# --metrics-compat ingress-nginx: its request metrics, names and labels (its socket
# collector: requestTags plus host, and its constant controller_* labels, which the
# app shell adds). canary is always "".
_NGINX: Final = (("host", 4), ("status", 7), ("method", 6), ("path", 5), ("namespace", 0),
          ("ingress", 1), ("service", 2))
COMPAT_FAMILIES: dict[str, tuple[Family, ...]] = {
    "ingress-nginx": (
        Family("nginx_ingress_controller_requests", "The total number of client requests",
               "counter", HTTP, _NGINX, REQUESTS),
        Family("nginx_ingress_controller_request_duration_seconds",
               "The request processing time in seconds", "histogram", HTTP, _NGINX,
               DURATION_B, REQUESTS, DURATION_SUM, DEFAULT_BUCKETS, DURATION_BUCKETS),
        Family("nginx_ingress_controller_response_size",
               "The response length (including request line, header, and request body)",
               "histogram", HTTP, _NGINX, RESPONSE_SIZE_B, REQUESTS, BYTES_OUT, SIZE_BUCKETS),
        Family("nginx_ingress_controller_request_size",
               "The request length (including request line, header, and request body)",
               "histogram", HTTP, _NGINX, REQUEST_SIZE_B, REQUESTS, BYTES_IN, SIZE_BUCKETS),
    ),
}
COMPAT_CHOICES: Final = tuple(COMPAT_FAMILIES)


# A plain Python class even when this module is compiled: it is pickled to the worker
# processes, and mypyc's frozen dataclasses do not unpickle.
@mypyc_attr(native_class=False)
@dataclass(frozen=True, slots=True)
class ObservabilitySettings:
    """What each worker counts and logs (pickled to worker processes with the config)."""

    request_metrics: bool = True
    metrics_compat: str = ""  # "" or one of COMPAT_CHOICES
    access_log: str = ""  # "" = off, "-" = stdout, else a file path
    access_log_format: str = "combined"  # or "json"


_LOCAL_SIZES: dict[int, int] = {}


def _local_size(status: int) -> int:
    """Bytes of a response the proxy makes itself (ingress/errors.py)."""
    size = _LOCAL_SIZES.get(status)
    if size is None:
        size = _LOCAL_SIZES[status] = len(error_response(status, False))
    return size


FOLD: Final = 64  # requests noted before they are added into the rows

# Where each histogram starts in HttpRow.counts (the table's layout from DURATION_B on).
_UPSTREAM: Final = UPSTREAM_B - DURATION_B
_REQUEST_SIZE: Final = REQUEST_SIZE_B - DURATION_B
_RESPONSE_SIZE: Final = RESPONSE_SIZE_B - DURATION_B


class HttpRow:
    """The counts of one (route, method, status) as the fold adds into them: fields, so
    compiled, the fold adds machine integers and floats instead of the objects of a list
    (measured: the fold went from about 5,000 to about 1,000 instructions per request).
    `values()` is the row in the `http` table's layout."""

    __slots__ = (
        "bytes_in",
        "bytes_out",
        "counts",
        "duration_sum",
        "requests",
        "retries",
        "upstream_count",
        "upstream_sum",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.duration_sum = 0.0
        self.upstream_count = 0
        self.upstream_sum = 0.0
        self.retries = 0
        self.counts = [0] * (HTTP_WIDTH - DURATION_B)  # every histogram's buckets

    def values(self) -> list[float]:
        row: list[float] = [0.0] * DURATION_B
        row[REQUESTS] = self.requests
        row[BYTES_IN] = self.bytes_in
        row[BYTES_OUT] = self.bytes_out
        row[DURATION_SUM] = self.duration_sum
        row[UPSTREAM_COUNT] = self.upstream_count
        row[UPSTREAM_SUM] = self.upstream_sum
        row[RETRIES] = self.retries
        row.extend(self.counts)
        return row


def bucket_of(bounds: tuple[float, ...], value: float) -> int:
    """bisect_left(bounds, value): the index of the first bound >= value. A loop, not a
    call of bisect's: compiled, it compares machine floats, and most values land in the
    first buckets."""
    i = 0
    n = len(bounds)
    while i < n and bounds[i] < value:
        i += 1
    return i


def answered(req: RequestState, ex: Exchange | None) -> tuple[int, int]:
    """(status, bytes sent) of a request that ended."""
    status = req.status
    if req.local:
        status = status or req.local
        return status, _local_size(status)
    if ex is not None:
        if not status:  # cut short: the backend's status once its response began
            status = ex.status if req.response_started and ex.status else 499
        return status, ex.received
    return status or 499, 0  # the client went away before a response began


def outcome(
    now: float, req: RequestState, ex: Exchange | None
) -> tuple[int, int, int, float, float]:
    """(status, bytes sent, bytes received, seconds taken, seconds upstream or -1) of a
    request that ended at `now`."""
    status, sent = answered(req, ex)
    received = len(req.head) + req.body_received
    took = now - req.start if req.start else 0.0  # (0: refused before its head was read)
    upstream = now - ex.began if ex is not None else -1.0
    return status, sent, received, took, upstream


class RequestStats:
    """One worker's counters (and its access log, when on).

    A request that ends is only noted (`pending`: its end time, request and exchange);
    every FOLD requests, and at each take, the notes are added into the rows in one tight
    loop. Measured on the in-process hot path (64 connections, varied requests): adding
    each request into its row as it ends cost about 2.3 us per request, noting it and
    folding 64 at a time about 0.8 us (the fold's code and rows stay warm in the caches).
    A note keeps its request and exchange alive until the fold: at most FOLD of them.
    """

    __slots__ = (
        "accepted",
        "access_log",
        "compat",
        "counting",
        "endpoints",
        "hosts",
        "pending",
        "relays",
        "rows",
    )

    def __init__(self, counting: bool = True, compat: bool = False,
                 access_log: AccessLog | None = None) -> None:
        self.counting = counting
        self.compat = compat
        self.access_log = access_log
        self.rows: dict[tuple[object, bytes, int], HttpRow] = {}
        self.pending: list[tuple[float, RequestState, Exchange | None]] = []
        self.endpoints: dict[tuple[str, int], list[float]] = {}
        self.accepted = 0  # downstream connections (ingress/server.py counts them)
        self.hosts = RouteHosts()  # the routes' hosts, for their labels (in take)
        self.relays = RelayStats()  # TLS passthrough connections (ingress/passthrough.py)

    # -- the hot path --------------------------------------------------------------------
    def request_done(self, proto: HttpProtocol, req: RequestState, ex: Exchange | None) -> None:
        """A request leaves its connection: note it (LoggedStats logs it too)."""
        pending = self.pending
        pending.append((clock(), req, ex))
        if len(pending) >= FOLD:
            self.fold()

    def fold(self) -> None:
        """Add the noted requests into their rows, by (route, method, status)."""
        pending, self.pending = self.pending, []
        rows = self.rows
        compat = self.compat
        buckets = DURATION_BUCKETS
        # Consecutive requests mostly share a row: the last one is tried before the dict.
        row: HttpRow | None = None
        last_route: object = None
        last_method = b""
        last_status = -1
        for now, req, ex in pending:
            # outcome(), with the common case (forwarded and answered) inline: measured
            # 0.25 us per request less than calling it
            status = req.status
            if status and ex is not None and not req.local:
                sent = ex.received
            else:
                status, sent = answered(req, ex)
            received = len(req.head) + req.body_received
            start = req.start
            took = now - start if start else 0.0
            route = req.route
            method = req.method
            if row is None or route is not last_route or status != last_status or (
                method != last_method
            ):
                key = (route, method, status)
                row = rows.get(key)
                if row is None:
                    row = rows[key] = HttpRow()
                last_route, last_method, last_status = route, method, status
            row.requests += 1
            row.bytes_in += received
            row.bytes_out += sent
            row.duration_sum += took
            counts = row.counts
            bucket = bucket_of(buckets, took)
            counts[bucket] = counts[bucket] + 1  # (not +=: compiled, that adds generically)
            if ex is not None:
                upstream = now - ex.began
                row.upstream_count += 1
                row.upstream_sum += upstream
                # upstream <= took, and usually just below it: most often the same bucket
                if bucket and upstream <= buckets[bucket - 1]:
                    bucket = bucket_of(buckets, upstream)
                i = _UPSTREAM + bucket
                counts[i] = counts[i] + 1
                if ex.retries:
                    row.retries += ex.retries
            if compat:
                i = _REQUEST_SIZE + bucket_of(SIZE_BUCKETS, received)
                counts[i] = counts[i] + 1
                i = _RESPONSE_SIZE + bucket_of(SIZE_BUCKETS, sent)
                counts[i] = counts[i] + 1

    # -- per upstream connection (not per request) ------------------------------------------
    def _endpoint(self, key: tuple[str, int]) -> list[float]:
        row = self.endpoints.get(key)
        if row is None:
            row = self.endpoints[key] = [0] * ENDPOINT_WIDTH
        return row

    def connected(self, key: tuple[str, int], seconds: float) -> None:
        if self.counting:
            row = self._endpoint(key)
            row[CONNECTS] += 1
            row[CONNECT_SUM] += seconds
            row[CONNECT_B + bucket_of(DURATION_BUCKETS, seconds)] += 1

    def connect_failed(self, key: tuple[str, int]) -> None:
        if self.counting:
            self._endpoint(key)[CONNECT_FAILURES] += 1

    # -- off the hot path ----------------------------------------------------------------------
    def take(self, connections: int, pools: PoolSet, table: RouteTable | None = None) -> Delta:
        """The counts since the last take, by labels, and the gauges now; starts afresh.
        `table`: the routes served now (their hosts are labels)."""
        delta = Delta()
        if not self.counting:
            return delta
        self.fold()
        rows, self.rows = self.rows, {}
        http: Rows = {}
        hosts = self.hosts
        hosts.follow(table)
        for (route, method, status), counted in rows.items():
            key: Key = (*labels_of(route, hosts), method.decode("latin-1"), str(status))
            values = counted.values()
            have = http.get(key)  # two routes of one rule (recompiled): one label set
            if have is None:
                http[key] = values
            else:
                add_rows(http, {key: values})
        endpoints, self.endpoints = self.endpoints, {}
        for pool in pools.endpoints():
            hits, misses = pool.take_counts()
            if hits or misses:
                row = endpoints.get(pool.key)
                if row is None:
                    row = endpoints[pool.key] = [0] * ENDPOINT_WIDTH
                row[POOL_HITS] += hits
                row[POOL_MISSES] += misses
        opened = sum(row[CONNECTS] for row in endpoints.values())
        accepted, self.accepted = self.accepted, 0
        delta.tables[HTTP] = http
        delta.tables[PASSTHROUGH] = self.relays.take(hosts)
        delta.tables[ENDPOINTS] = {(_address(k),): v for k, v in endpoints.items()}
        delta.tables[CONNECTIONS] = {("downstream",): [accepted], ("upstream",): [opened]}
        delta.gauges[OPEN] = {
            ("downstream",): [connections],
            ("upstream",): [pools.open_count()],
        }
        return delta


def _address(key: tuple[str, int]) -> str:
    ip, port = key
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


class NullStats(RequestStats):
    """Request metrics off and no access log: nothing to do per request."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(counting=False)

    def request_done(self, proto: HttpProtocol, req: RequestState, ex: Exchange | None) -> None:
        pass


class LoggedStats(RequestStats):
    """The access log on: every request is logged as it ends (and noted, when counting)."""

    __slots__ = ()

    def request_done(self, proto: HttpProtocol, req: RequestState, ex: Exchange | None) -> None:
        now = clock()
        if self.counting:
            pending = self.pending
            pending.append((now, req, ex))
            if len(pending) >= FOLD:
                self.fold()
        assert self.access_log is not None
        self.access_log.request(proto, req, ex, *outcome(now, req, ex))


def make_stats(settings: ObservabilitySettings) -> RequestStats:
    """What a worker does per request: nothing, count, or count and log (or only log)."""
    if not settings.access_log:
        if not settings.request_metrics:
            return NullStats()
        return RequestStats(True, bool(settings.metrics_compat))
    from ingress.access_log import AccessLog

    access_log = AccessLog(settings.access_log, settings.access_log_format)
    return LoggedStats(settings.request_metrics, bool(settings.metrics_compat), access_log)
