"""The status page: `/` and `/status` (HTML), `/status.json` (what the page shows).

Read-only. The page (proxy/app/status_page/) is static: it fetches /status.json every two
seconds and draws it; no CDN, nothing but this package. /status.json is a documented
interface (README, "Status page"); its keys are stable and only ever added to:

  version         1
  time, started   wall clock (epoch seconds) now and at start; uptime_seconds
  ready, draining /readyz's view; draining after SIGTERM
  generation      the Snapshot generation serving now (null before the first sync)
  sources[]       kind ("files" | "kubernetes" | "static"), state ("ok" | "errors" |
                  "loading" | "degraded"), and per kind: files: path, files, objects,
                  errors[] {file, message}; kubernetes: watches[] {resource, state,
                  lists, events, failures, last_error, resource_version}
  syncs[]         dataplane, syncs, failures, last_success, duration_seconds,
                  last_error, last_error_at
  totals          requests, rate, error_rate, p99_seconds (HTTP), connections (L4)
  service_ports[] name, namespace, service, port_name, port, protocol, cluster_ips,
                  node_port, endpoints[] {address, ready, serving, terminating, node,
                  used, health ("passing" | "failing" | null: not actively checked),
                  ejected[] {proxy ("ingress" | "userspace"), reason ("connect" |
                  "timeout" | "reset" | "5xx"), processes (how many have it out)}},
                  http {requests, rate, error_rate, p99_seconds} | null,
                  l4 {connections, active, failures, bytes_in, bytes_out, rate} | null
  routes[]        host, path, backend, ingress, kind, source, status (0: forwarded)
  workers[]       index, pid, alive, restarts, started

Counts are since start (they survive worker restarts) and taken when the document is
built; rates, error rates and p99 are over the last WINDOW seconds (from the oldest of
the samples taken every SAMPLE_INTERVAL to now).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

from aiohttp import web

from discovery.snapshot import Snapshot
from proxy.active_checker import ActiveChecker
from proxy.app.admin import Health
from proxy.counters import DURATION_BUCKETS, NBUCKETS, Key, Totals, quantile
from proxy.dataplane import Counting, Dataplane


@dataclass(slots=True)
class SyncRecord:
    """The last syncs of one dataplane, for the status page."""

    syncs: int = 0
    failures: int = 0
    last_success: float = 0.0  # wall clock, 0 = never
    last_duration: float = 0.0  # seconds, of the last successful sync
    last_error: str = ""  # of the last failed sync, "" once one succeeds again
    last_error_at: float = 0.0


class Observed(Protocol):
    """What the board reads of the daemon (proxy/app/daemon.py Daemon), which makes it."""

    @property
    def snapshot(self) -> Snapshot | None: ...
    @property
    def started_at(self) -> float: ...
    @property
    def health(self) -> Health: ...
    @property
    def records(self) -> dict[str, SyncRecord]: ...
    @property
    def source(self) -> object: ...
    @property
    def checker(self) -> ActiveChecker | None: ...
    @property
    def dataplanes(self) -> list[Dataplane]: ...
    def counting(self) -> list[Counting]: ...


SAMPLE_INTERVAL = 1.0  # seconds
WINDOW = 10  # samples (seconds) that rates and p99 are computed over
ASSETS = "proxy.app.status_page"

# What a sample keeps per L7 service port: requests, 5xx, then duration buckets.
_HTTP_WIDTH = 2 + NBUCKETS
HttpSample = dict[Key, list[float]]  # (namespace, service, port label) -> counts
L4Sample = dict[Key, list[float]]  # (namespace, service, port name, protocol) -> counts


def _http_sample(totals: Totals) -> HttpSample:
    from ingress.stats import DURATION_B, HTTP, KEY_CODE, KEY_NAMESPACE, KEY_PORT, KEY_SERVICE

    out: HttpSample = {}
    for key, row in totals.rows(HTTP).items():
        group = (key[KEY_NAMESPACE], key[KEY_SERVICE], key[KEY_PORT])
        acc = out.get(group)
        if acc is None:
            acc = out[group] = [0.0] * _HTTP_WIDTH
        acc[0] += row[0]
        if key[KEY_CODE].startswith("5"):
            acc[1] += row[0]
        for i in range(NBUCKETS):
            acc[2 + i] += row[DURATION_B + i]
    return out


def _l4_sample(totals: Totals) -> L4Sample:
    from proxy.userspace.stats import ACTIVE, L4, WIDTH

    out: L4Sample = {}
    for key, row in totals.rows(L4).items():
        acc = out.setdefault(key[:4], [0.0] * (WIDTH + 1))
        for i, v in enumerate(row):
            acc[i] += v
    for key, row in totals.gauge_rows(ACTIVE).items():
        out.setdefault(key[:4], [0.0] * (WIDTH + 1))[WIDTH] += row[0]
    return out


def _add(rows: list[list[float]]) -> list[float]:
    return [sum(col) for col in zip(*rows, strict=True)]


def _window(first: list[float] | None, last: list[float], seconds: float) -> dict[str, Any]:
    """Requests since start, and rate, error rate and p99 between two samples."""
    before = first or [0.0] * len(last)
    requests = last[0] - before[0]
    errors = last[1] - before[1]
    buckets = [b - a for a, b in zip(before[2:], last[2:], strict=True)]
    return {
        "requests": int(last[0]),
        "rate": round(requests / seconds, 3) if seconds > 0 else 0.0,
        "error_rate": round(errors / requests, 4) if requests > 0 else None,
        "p99_seconds": quantile(0.99, DURATION_BUCKETS, buckets) if requests > 0 else None,
    }


class StatusBoard:
    """Samples the dataplanes' counters every second and builds /status.json."""

    def __init__(self, daemon: Observed, clock: Callable[[], float] = time.time) -> None:
        self.daemon = daemon
        self.clock = clock
        self.samples: deque[tuple[float, HttpSample, L4Sample]] = deque(maxlen=WINDOW + 1)

    async def sample_forever(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_INTERVAL)

    def sample(self) -> None:
        http, l4 = self._collect()
        self.samples.append((self.clock(), http, l4))

    def _collect(self) -> tuple[HttpSample, L4Sample]:
        http: HttpSample = {}
        l4: L4Sample = {}
        for dataplane in self.daemon.counting():
            totals = dataplane.collect()
            http.update(_http_sample(totals))
            l4.update(_l4_sample(totals))
        return http, l4

    # -- the document ----------------------------------------------------------------------
    def document(self) -> dict[str, Any]:
        d = self.daemon
        now = self.clock()
        snapshot = d.snapshot
        return {
            "version": 1,
            "time": now,
            "started": d.started_at,
            "uptime_seconds": round(now - d.started_at, 3),
            "ready": d.health.ready and not d.health.draining,
            "draining": d.health.draining,
            "generation": snapshot.generation if snapshot is not None else None,
            "sources": [self._source()],
            "syncs": [
                {
                    "dataplane": name,
                    "syncs": r.syncs,
                    "failures": r.failures,
                    "last_success": r.last_success or None,
                    "duration_seconds": r.last_duration if r.syncs else None,
                    "last_error": r.last_error,
                    "last_error_at": r.last_error_at or None,
                }
                for name, r in d.records.items()
            ],
            "totals": self._totals(),
            "service_ports": self._service_ports(),
            "routes": self._routes(),
            "workers": self._workers(),
        }

    def _source(self) -> dict[str, Any]:
        describe = getattr(self.daemon.source, "status", None)
        if callable(describe):
            found = describe()
            if isinstance(found, dict):
                return found
        return {"kind": type(self.daemon.source).__name__, "state": "ok"}

    def _ends(self) -> tuple[float, tuple[float, HttpSample, L4Sample] | None, HttpSample,
                             L4Sample]:
        """Seconds from the oldest sample to now, the oldest sample, and the counts now
        (taken fresh, so the page shows a request as soon as it is counted)."""
        now = self.clock()
        http, l4 = self._collect()
        first = self.samples[0] if self.samples else None
        seconds = now - first[0] if first is not None else 0.0
        return seconds, first, http, l4

    def _totals(self) -> dict[str, Any]:
        seconds, first, http, l4 = self._ends()
        last = _add(list(http.values())) if http else [0.0] * _HTTP_WIDTH
        before = _add(list(first[1].values())) if first is not None and first[1] else None
        out = _window(before, last, seconds)
        out["connections"] = int(sum(row[0] for row in l4.values()))
        return out

    def _service_ports(self) -> list[dict[str, Any]]:
        from proxy.userspace.stats import BYTES_IN, BYTES_OUT, CONNECTIONS, FAILURES, WIDTH

        snapshot = self.daemon.snapshot
        if snapshot is None:
            return []
        seconds, first, http, l4 = self._ends()
        ejections = self._ejections()
        checks = self.daemon.checker.checks if self.daemon.checker is not None else None
        first_http = first[1] if first is not None else {}
        first_l4 = first[2] if first is not None else {}
        out = []
        for name in sorted(snapshot.service_ports):
            info = snapshot.service_ports[name]
            usable = set(info.endpoints)
            entry: dict[str, Any] = {
                "name": str(name),
                "namespace": name.namespace,
                "service": name.name,
                "port_name": name.port,
                "port": info.port,
                "protocol": info.protocol,
                "cluster_ips": list(info.cluster_ips),
                "node_port": info.node_port,
                "endpoints": [
                    {
                        "address": e.address,
                        "ready": e.ready,
                        "serving": e.serving,
                        "terminating": e.terminating,
                        "node": e.node_name,
                        "used": e in usable,
                        "health": checks.state((e.ip, e.port)) if checks is not None else None,
                        "ejected": [
                            j
                            for label in {str(info.port), name.port}
                            for j in ejections.get((name.namespace, name.name, label,
                                                    e.address), ())
                        ],
                    }
                    for e in info.all_endpoints
                ],
                "http": None,
                "l4": None,
            }
            # Ingress backends name the port by number or by name: both count.
            keys = [(name.namespace, name.name, label) for label in {str(info.port), name.port}]
            now_rows = [http[k] for k in keys if k in http]
            if now_rows:
                then_rows = [first_http[k] for k in keys if k in first_http]
                entry["http"] = _window(
                    _add(then_rows) if then_rows else None, _add(now_rows), seconds
                )
            key4 = (name.namespace, name.name, name.port, name.protocol)
            row = l4.get(key4)
            if row is not None:
                before = first_l4.get(key4)
                opened = row[CONNECTIONS] - (before[CONNECTIONS] if before else 0.0)
                entry["l4"] = {
                    "connections": int(row[CONNECTIONS]),
                    "active": int(row[WIDTH]),
                    "failures": int(row[FAILURES]),
                    "bytes_in": int(row[BYTES_IN]),
                    "bytes_out": int(row[BYTES_OUT]),
                    "rate": round(opened / seconds, 3) if seconds > 0 else 0.0,
                }
            out.append(entry)
        return out

    def _ejections(self) -> dict[Key, list[dict[str, Any]]]:
        """(namespace, service, port label, endpoint) -> who has it ejected and why."""
        from proxy.health_metrics import EJECTED

        out: dict[Key, list[dict[str, Any]]] = {}
        for dataplane in self.daemon.counting():
            rows = dataplane.collect().gauge_rows(EJECTED)
            name = getattr(dataplane, "name", "")
            for (namespace, service, port, endpoint, reason), values in sorted(rows.items()):
                out.setdefault((namespace, service, port, endpoint), []).append(
                    {"proxy": name, "reason": reason, "processes": int(values[0])}
                )
        return out

    def _routes(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for dataplane in self.daemon.dataplanes:
            routes = getattr(dataplane, "routes", None)
            if callable(routes):
                out += routes()  # ingress/route_labels.py: route_rows
        out.sort(key=lambda r: (r["host"], r["path"]))
        return out

    def _workers(self) -> list[dict[str, Any]]:
        d = self.daemon
        out: list[dict[str, Any]] = [
            {"index": 0, "pid": os.getpid(), "alive": True, "restarts": 0,
             "started": d.started_at}
        ]
        for dataplane in d.dataplanes:
            workers = getattr(dataplane, "workers", None)
            if callable(workers):
                out += [
                    {k: w[k] for k in ("index", "pid", "alive", "restarts", "started")}
                    for w in workers()
                ]
        return out


def add_status_routes(app: web.Application, board: StatusBoard) -> None:
    page = resources.files(ASSETS)

    async def index(_: web.Request) -> web.Response:
        return web.Response(
            body=page.joinpath("index.html").read_bytes(), content_type="text/html"
        )

    async def status_json(_: web.Request) -> web.Response:
        body = json.dumps(board.document(), indent=1)
        return web.Response(
            text=body, content_type="application/json", headers={"Cache-Control": "no-store"}
        )

    def asset(name: str, content_type: str) -> Callable[[web.Request], Any]:
        async def serve(_: web.Request) -> web.Response:
            return web.Response(body=page.joinpath(name).read_bytes(), content_type=content_type)

        return serve

    app.router.add_get("/", index)
    app.router.add_get("/status", index)
    app.router.add_get("/status.json", status_json)
    app.router.add_get("/status.js", asset("status.js", "text/javascript"))
    app.router.add_get("/status.css", asset("status.css", "text/css"))
