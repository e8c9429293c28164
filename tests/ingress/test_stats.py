"""Request metrics of one L7 worker (ingress/stats.py), through a real proxy on loopback.

Each test drives a WorkerServer with raw sockets and reads what its RequestStats took:
rows by route labels, method and code; bytes both ways as the client saw them; upstream
times only for requests that went upstream; 499 for a client that left; connects,
connect failures, retries and pool hits per endpoint; open connections.
"""

from __future__ import annotations

import socket
import time
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path

import pytest

from discovery.snapshot import EndpointInfo
from ingress.settings import HttpSettings
from ingress.stats import (
    BYTES_IN,
    BYTES_OUT,
    CONNECT_FAILURES,
    CONNECTIONS,
    CONNECTS,
    DURATION_B,
    ENDPOINTS,
    FOLD,
    HTTP,
    OPEN,
    POOL_HITS,
    POOL_MISSES,
    REQUESTS,
    RETRIES,
    SIZE_BUCKETS,
    UPSTREAM_B,
    UPSTREAM_COUNT,
    LoggedStats,
    NullStats,
    ObservabilitySettings,
    RequestStats,
    bucket_of,
    make_stats,
)
from proxy.counters import DURATION_BUCKETS, NBUCKETS, Delta, Key, Totals
from tests.ingress.l7kit import (
    HOST,
    Backend,
    LoopThread,
    Proxy,
    get,
    one_backend,
    two_service_snapshot,
)
from tests.support import free_port, wait_until

WEB = ("default", "site", "web", "80", "web.test", "/")
API = ("default", "site", "api", "80", "web.test", "/api")
NONE = ("", "", "", "", "", "")


@pytest.fixture
def proxy(lt: LoopThread) -> Iterator[tuple[Proxy, Backend]]:
    with one_backend(lt, HttpSettings()) as pair:
        yield pair


def take(lt: LoopThread, p: Proxy) -> Delta:
    async def go() -> Delta:
        assert p.server is not None
        return p.server.take_stats()

    return lt.run(go())


def rows(delta: Delta) -> dict[Key, list[float]]:
    return delta.tables[HTTP]


def count(delta: Delta, labels: tuple[str, ...], method: str, code: str) -> float:
    row = rows(delta).get((*labels, method, code))
    return row[REQUESTS] if row else 0


def test_requests_are_counted_by_route_method_and_code(
    lt: LoopThread, proxy: tuple[Proxy, Backend]
) -> None:
    p, _ = proxy
    take(lt, p)  # start from zero
    for _ in range(3):
        assert get(p.port, "/")[0] == 200
    assert get(p.port, "/api/status/503")[0] == 503  # the backend's own 503
    assert get(p.port, "/", host="nobody.test")[0] == 404  # no rule: the proxy's 404
    assert get(p.port, "/other", host="x.test")[0] == 503  # no endpoints: the proxy's 503
    delta = take(lt, p)
    assert count(delta, WEB, "GET", "200") == 3
    assert count(delta, API, "GET", "503") == 1
    assert count(delta, NONE, "GET", "404") == 1
    empty = ("default", "site", "empty", "80", "", "/other")
    assert count(delta, empty, "GET", "503") == 1
    assert sum(r[REQUESTS] for r in rows(delta).values()) == 6
    # Taken: the next take starts afresh.
    assert rows(take(lt, p)) == {}


def test_bytes_both_ways_are_what_the_client_sent_and_received(
    lt: LoopThread, proxy: tuple[Proxy, Backend]
) -> None:
    p, _ = proxy
    take(lt, p)
    body = b"x" * 1000
    requests = [
        b"GET /a HTTP/1.1\r\nHost: web.test\r\n\r\n",
        b"POST /b HTTP/1.1\r\nHost: web.test\r\nContent-Length: 1000\r\n\r\n" + body,
    ]
    received = b""
    with socket.create_connection((HOST, p.port), timeout=5) as s:
        for request in requests:
            s.sendall(request)
            received += _read_response(s)
    delta = take(lt, p)
    web = [r for k, r in rows(delta).items() if k[:6] == WEB]
    assert sum(r[REQUESTS] for r in web) == 2
    assert sum(r[BYTES_IN] for r in web) == sum(len(r) for r in requests)
    assert sum(r[BYTES_OUT] for r in web) == len(received)
    assert count(delta, WEB, "POST", "200") == 1


def _read_response(s: socket.socket) -> bytes:
    """One Content-Length response from a keep-alive connection."""
    return _read_responses(s, 1)[0]


def _read_responses(s: socket.socket, n: int) -> list[bytes]:
    """`n` Content-Length responses from a keep-alive connection, in order (answers to
    pipelined requests may arrive in one read)."""
    data = b""
    answers: list[bytes] = []
    while len(answers) < n:
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(rest) < length:
            rest += s.recv(65536)
        answers.append(head + b"\r\n\r\n" + rest[:length])
        data = rest[length:]
    return answers


def test_durations_and_upstream_times_fill_their_histograms(
    lt: LoopThread, proxy: tuple[Proxy, Backend]
) -> None:
    p, _ = proxy
    take(lt, p)
    assert get(p.port, "/")[0] == 200
    assert get(p.port, "/", host="nobody.test")[0] == 404
    delta = take(lt, p)
    ok = rows(delta)[(*WEB, "GET", "200")]
    assert sum(ok[DURATION_B : DURATION_B + NBUCKETS]) == 1
    assert ok[UPSTREAM_COUNT] == 1 and sum(ok[UPSTREAM_B : UPSTREAM_B + NBUCKETS]) == 1
    local = rows(delta)[(*NONE, "GET", "404")]
    assert sum(local[DURATION_B : DURATION_B + NBUCKETS]) == 1
    assert local[UPSTREAM_COUNT] == 0  # never went upstream


def test_a_client_that_leaves_before_its_response_is_a_499(
    lt: LoopThread, proxy: tuple[Proxy, Backend]
) -> None:
    p, backend = proxy
    take(lt, p)
    seen = len(backend.stats.requests)
    with socket.create_connection((HOST, p.port), timeout=5) as s:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: web.test\r\n\r\n")
        wait_until(lambda: len(backend.stats.requests) > seen, what="the backend got it")
    found: list[float] = []

    def counted() -> bool:
        found.append(count(take(lt, p), WEB, "GET", "499"))
        return sum(found) >= 1

    wait_until(counted, what="the 499 counted")
    assert sum(found) == 1


def test_connects_failures_and_retries_per_endpoint(lt: LoopThread) -> None:
    live = lt.run(Backend("live").start())
    dead_port = free_port()  # nothing listens there: connects are refused
    p = Proxy(lt, HttpSettings())
    dead = EndpointInfo(HOST, dead_port)
    p.apply(two_service_snapshot([dead, live.endpoint], [live.endpoint]))
    try:
        take(lt, p)
        for path in ("/1", "/2", "/3"):
            assert get(p.port, path)[0] == 200
        delta = take(lt, p)
        endpoints = delta.tables[ENDPOINTS]
        dead_row = endpoints[(f"{HOST}:{dead_port}",)]
        live_row = endpoints[(f"{HOST}:{live.port}",)]
        assert dead_row[CONNECT_FAILURES] >= 1 and dead_row[CONNECTS] == 0
        assert live_row[CONNECTS] >= 1 and live_row[CONNECT_FAILURES] == 0
        # Every request was answered by the live backend; each failed connect sent its
        # request again (a retry, counted on the route).
        web = rows(delta)[(*WEB, "GET", "200")]
        assert web[REQUESTS] == 3
        assert web[RETRIES] == dead_row[CONNECT_FAILURES]
        assert delta.tables[CONNECTIONS][("downstream",)] == [3]
    finally:
        p.close()
        lt.run(live.close())


def test_pool_misses_then_hits(lt: LoopThread, proxy: tuple[Proxy, Backend]) -> None:
    p, backend = proxy
    take(lt, p)
    with socket.create_connection((HOST, p.port), timeout=5) as s:
        for path in ("/1", "/2", "/3"):
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: web.test\r\n\r\n".encode())
            assert b" 200 " in _read_response(s).split(b"\r\n")[0]
    endpoint = take(lt, p).tables[ENDPOINTS][(f"{HOST}:{backend.port}",)]
    assert (endpoint[POOL_MISSES], endpoint[POOL_HITS], endpoint[CONNECTS]) == (1, 2, 1)


def test_open_connections_are_a_gauge(lt: LoopThread, proxy: tuple[Proxy, Backend]) -> None:
    p, _ = proxy
    with socket.create_connection((HOST, p.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")
        _read_response(s)
        delta = take(lt, p)
        assert delta.gauges[OPEN][("downstream",)] == [1]
        assert delta.gauges[OPEN][("upstream",)] == [1]
    wait_until(lambda: take(lt, p).gauges[OPEN][("downstream",)] == [0], what="closed")


def test_totals_add_deltas_and_drop_a_gone_workers_gauges() -> None:
    totals = Totals()
    key = (*WEB, "GET", "200")
    row = [0.0] * 10
    row[REQUESTS] = 2
    totals.absorb(1, Delta({HTTP: {key: list(row)}}, {OPEN: {("downstream",): [3]}}))
    totals.absorb(2, Delta({HTTP: {key: list(row)}}, {OPEN: {("downstream",): [4]}}))
    assert totals.rows(HTTP)[key][REQUESTS] == 4
    assert totals.gauge_rows(OPEN)[("downstream",)] == [7]
    totals.forget(1)  # worker 1 died: its connections are gone, its counts are not
    assert totals.gauge_rows(OPEN)[("downstream",)] == [4]
    assert totals.rows(HTTP)[key][REQUESTS] == 4


def test_settings_choose_what_is_done_per_request(tmp_path: Path) -> None:
    assert type(make_stats(ObservabilitySettings(request_metrics=False))) is NullStats
    counting = make_stats(ObservabilitySettings())
    assert type(counting) is RequestStats and counting.counting and not counting.compat
    assert make_stats(ObservabilitySettings(metrics_compat="ingress-nginx")).compat
    logging_only = make_stats(
        ObservabilitySettings(request_metrics=False, access_log=str(tmp_path / "a.log"))
    )
    assert type(logging_only) is LoggedStats
    assert not logging_only.counting and logging_only.access_log is not None


def test_a_refused_request_is_a_400_without_route_and_takes_no_time(
    lt: LoopThread, proxy: tuple[Proxy, Backend]
) -> None:
    p, _ = proxy
    take(lt, p)
    with socket.create_connection((HOST, p.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: web.test\r\nBad Header: x\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 400 ")
    delta = take(lt, p)
    row = rows(delta)[(*NONE, "", "400")]
    assert row[REQUESTS] == 1 and row[UPSTREAM_COUNT] == 0
    # Its head was never read: it took no time (not the clock's whole value, +Inf).
    assert row[DURATION_B] == 1


def test_requests_are_noted_then_folded_every_fold_and_at_each_take(
    lt: LoopThread, proxy: tuple[Proxy, Backend]
) -> None:
    p, _ = proxy
    take(lt, p)
    assert p.server is not None
    stats = p.server.ctx.stats
    with socket.create_connection((HOST, p.port), timeout=5) as s:
        for i in range(FOLD + 3):
            s.sendall(f"GET /{i} HTTP/1.1\r\nHost: web.test\r\n\r\n".encode())
            _read_response(s)

    async def state() -> tuple[int, float]:
        return len(stats.pending), sum(row.requests for row in stats.rows.values())

    wait_until(lambda: lt.run(state()) == (3, FOLD), what="one fold, three notes")
    assert count(take(lt, p), WEB, "GET", "200") == FOLD + 3


def test_a_pipelined_request_waits_its_turn_outside_its_upstream_time(
    lt: LoopThread, proxy: tuple[Proxy, Backend]
) -> None:
    p, backend = proxy
    take(lt, p)
    with socket.create_connection((HOST, p.port), timeout=5) as s:
        s.sendall(
            b"GET /slow HTTP/1.1\r\nHost: web.test\r\n\r\n"
            b"GET /next HTTP/1.1\r\nHost: web.test\r\n\r\n"
        )
        wait_until(lambda: len(backend.stats.requests) == 1, what="the slow one upstream")
        time.sleep(0.3)  # /next waits behind it, at the proxy
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        upstream_side = backend.stats.transports[-1]
        lt.loop.call_soon_threadsafe(upstream_side.write, answer)  # type: ignore[attr-defined]
        _read_responses(s, 2)  # both may come in one read: the proxy batches its writes
    row = rows(take(lt, p))[(*WEB, "GET", "200")]
    assert row[REQUESTS] == 2 and row[UPSTREAM_COUNT] == 2
    slow_bucket = bisect_left(DURATION_BUCKETS, 0.3)
    durations = row[DURATION_B : DURATION_B + NBUCKETS]
    upstream = row[UPSTREAM_B : UPSTREAM_B + NBUCKETS]
    assert sum(durations[slow_bucket:]) == 2  # both took 0.3 s or more, for the client
    assert sum(upstream[slow_bucket:]) == 1  # but only the first one upstream


def test_bucket_of_is_bisect_left() -> None:
    """The fold's own bucket search (a loop the compiled build runs natively) finds what
    bisect_left finds, on and around every bound, for both bucket sets."""
    for bounds in (DURATION_BUCKETS, SIZE_BUCKETS, (), (1.0,)):
        values = [-1.0, 0.0, 1e9, float("inf")]
        values += [b + d for b in bounds for d in (-1e-9, 0.0, 1e-9)]
        for v in values:
            assert bucket_of(bounds, v) == bisect_left(bounds, v), (bounds, v)
