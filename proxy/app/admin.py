"""Admin HTTP endpoints: /healthz and /readyz (kube-proxy's healthz port) and /metrics.

/healthz answers 200 while syncs keep succeeding (503 when the last successful sync is
older than twice the max sync period and a change is pending), like kube-proxy;
/readyz answers 200 once every source finished its initial list and a first sync
succeeded, and 503 again as soon as a shutdown begins (so a load balancer stops sending
new clients while the requests in flight drain).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from proxy.app.metrics import DaemonMetrics


@dataclass(slots=True)
class Health:
    """What /healthz and /readyz report; the daemon updates it."""

    ready: bool = False
    draining: bool = False  # shutting down: not ready, whatever else holds
    last_sync: float = 0.0  # wall clock of the last successful sync, 0 = never
    pending_since: float = 0.0  # wall clock of the oldest change not yet synced, 0 = none
    max_sync_period: float = 30.0
    clock: Callable[[], float] = time.time

    def healthy(self) -> bool:
        if not self.pending_since:
            return True
        return self.clock() - self.pending_since < 2 * self.max_sync_period

    def body(self) -> bytes:
        now = self.clock()
        return json.dumps(
            {
                "lastUpdated": _rfc3339(self.last_sync) if self.last_sync else None,
                "currentTime": _rfc3339(now),
                "ready": self.ready and not self.draining,
                "draining": self.draining,
            }
        ).encode()


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def add_health_routes(app: web.Application, health: Health) -> None:
    async def healthz(_: web.Request) -> web.Response:
        status = 200 if health.healthy() else 503
        return web.Response(body=health.body(), status=status, content_type="application/json")

    async def readyz(_: web.Request) -> web.Response:
        status = 200 if health.ready and not health.draining and health.healthy() else 503
        return web.Response(body=health.body(), status=status, content_type="application/json")

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", healthz)
    app.router.add_get("/readyz", readyz)


def add_metrics_route(
    app: web.Application,
    metrics: DaemonMetrics,
    more: Callable[[], bytes] | None = None,
) -> None:
    """/metrics: the daemon's registry, then what `more` renders (the request metrics)."""

    async def serve_metrics(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        if more is not None:
            body += more()
        resp = web.Response(body=body)
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    app.router.add_get("/metrics", serve_metrics)


async def start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner
