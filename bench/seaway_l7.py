"""Run seaway's L7 proxy alone for benchmarks: one Ingress (/ -> a backend), no source.

    python3 bench/seaway_l7.py --listen 127.0.0.1:8080 --backend 127.0.0.1:9000 [--workers 1]
        [--upstream-pipelining N] [--no-request-metrics] [--access-log PATH]
        [--metrics-compat ingress-nginx] [--annotation KEY=VALUE ...] [--ingress-nginx]
        [--path /] [--load-balancer least-request|round-robin|ewma|maglev]

Builds a Snapshot by hand (IngressClass, Service, its endpoints, one Ingress) and runs
IngressDataplane on uvloop until SIGTERM/SIGINT. `--annotation` puts an ingress-nginx
annotation (short name, e.g. enable-cors=true) on the Ingress, `--path` sets its path
(a regex with use-regex), `--ingress-nginx` runs in ingress-nginx mode (its controller
name: the ConfigMap's documented defaults apply, as the listener's filters).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

# Run as a script, Python puts bench/ first on sys.path, where http.py and discovery.py
# would shadow the stdlib `http` and the `discovery` package: put the repo root there.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import uvloop  # noqa: E402

from discovery.model import (  # noqa: E402
    DEFAULT_LOAD_BALANCER,
    DEFAULT_LOAD_BALANCING,
    LOAD_BALANCER_POLICIES,
    Ingress,
    IngressBackend,
    IngressClass,
    IngressPath,
    IngressRule,
    LoadBalancing,
    ObjectMeta,
    Service,
    ServicePort,
)
from discovery.nginx_annotations import DEFAULT_PREFIX as PREFIX  # noqa: E402
from discovery.nginx_annotations import parse_ingress_annotations  # noqa: E402
from discovery.nginx_configmap import (  # noqa: E402
    INGRESS_NGINX_CONTROLLER,
    INGRESS_NGINX_DEFAULTS,
)
from discovery.snapshot import (  # noqa: E402
    EndpointInfo,
    ServicePortInfo,
    ServicePortName,
    Snapshot,
)
from ingress.dataplane import IngressDataplane  # noqa: E402
from proxy.app.options import Options  # noqa: E402


def bench_snapshot(
    backends: list[tuple[str, int]],
    generation: int = 1,
    annotations: dict[str, str] | None = None,
    nginx_mode: bool = False,
    path: str = "/",
    balancing: LoadBalancing = DEFAULT_LOAD_BALANCING,
) -> Snapshot:
    name = ServicePortName("default", "bench", "http", "TCP")
    eps = tuple(EndpointInfo(ip, port) for ip, port in backends)
    info = ServicePortInfo(
        name,
        ("10.96.0.10",),
        80,
        "TCP",
        load_balancing=balancing,
        endpoints=eps,
        all_endpoints=eps,
    )
    svc = Service(
        ObjectMeta("bench", "default"),
        cluster_ips=("10.96.0.10",),
        ports=(ServicePort("http", "TCP", 80, 80),),
    )
    named = {f"{PREFIX}/{k}": v for k, v in (annotations or {}).items()}
    meta = ObjectMeta("bench", "default", annotations=named)
    kind = "ImplementationSpecific" if path != "/" else "Prefix"
    ing = Ingress(
        meta,
        ingress_class_name="seaway",
        rules=(
            IngressRule("", (IngressPath(path, kind, IngressBackend("bench", port_number=80)),)),
        ),
    )
    controller = INGRESS_NGINX_CONTROLLER if nginx_mode else "seaway.dev/ingress"
    cls = IngressClass(ObjectMeta("seaway"), controller)
    parsed = {("default", "bench"): parse_ingress_annotations(ing)} if annotations else {}
    return Snapshot(
        ingress_annotations=parsed,
        nginx=INGRESS_NGINX_DEFAULTS if nginx_mode else None,
        generation=generation,
        service_ports={name: info},
        services={("default", "bench"): svc},
        ingresses=(ing,),
        ingress_classes=(cls,),
        ports_by_service={("default", "bench"): (info,)},
    )


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def report_memos(dp: IngressDataplane) -> None:
    """SIGUSR1: print the exact-bytes memo counters of this process's worker (with
    --workers N, the daemon's own one of N) as one line: bench/http.py reads it."""
    server = dp.state.server if dp.state is not None else None
    if server is None:
        return
    ctx = server.ctx
    hits, misses = ctx.pools.memo_counts()
    print(f"memos {ctx.memo_hits} {ctx.memo_misses} {hits} {misses}", flush=True)


async def main(args: argparse.Namespace) -> None:
    options = Options(
        http_bind_address=_addr(args.listen),
        workers=args.workers,
        upstream_pipelining=args.upstream_pipelining,
        ingress_controller=INGRESS_NGINX_CONTROLLER if args.ingress_nginx else "seaway.dev/ingress",
        request_metrics=args.request_metrics,
        metrics_compat=args.metrics_compat,
        access_log=args.access_log,
    )
    dp = IngressDataplane(options.ingress_config())
    await dp.start()
    annotations = dict(a.split("=", 1) for a in args.annotation)
    snap = bench_snapshot(
        [_addr(b) for b in args.backend],
        1,
        annotations,
        args.ingress_nginx,
        args.path,
        LoadBalancing(args.load_balancer),
    )
    await dp.sync(snap, frozenset(snap.service_ports))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, report_memos, dp)
    while not stop.is_set():  # take the counts as the daemon's status page would
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        dp.collect()
    await dp.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True)
    p.add_argument("--backend", action="append", required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--upstream-pipelining", type=int, default=1)
    p.add_argument("--annotation", action="append", default=[], help="KEY=VALUE (short name)")
    p.add_argument("--ingress-nginx", action="store_true", help="ingress-nginx mode")
    p.add_argument("--path", default="/", help="the Ingress path (a regex with use-regex)")
    p.add_argument("--request-metrics", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--metrics-compat", default="")
    p.add_argument("--access-log", default="")
    p.add_argument("--load-balancer", choices=LOAD_BALANCER_POLICIES, default=DEFAULT_LOAD_BALANCER)
    uvloop.run(main(p.parse_args()))
