"""Run seaway's L7 proxy alone for benchmarks: one Ingress (/ -> a backend), no source.

    python3 bench/seaway_l7.py --listen 127.0.0.1:8080 --backend 127.0.0.1:9000 [--workers 1]
        [--upstream-pipelining N] [--no-request-metrics] [--access-log PATH]
        [--metrics-compat ingress-nginx] [--annotation KEY=VALUE ...] [--ingress-nginx]
        [--path /] [--gateway] [--load-balancer least-request|round-robin|ewma|maglev]

Builds a Snapshot by hand (IngressClass, Service, its endpoints, one Ingress) and runs
IngressDataplane on uvloop until SIGTERM/SIGINT. `--annotation` puts an ingress-nginx
annotation (short name, e.g. enable-cors=true) on the Ingress, `--path` sets its path
(a regex with use-regex), `--ingress-nginx` runs in ingress-nginx mode (its controller
name: the ConfigMap's documented defaults apply, as the listener's filters). With
--gateway the same route comes from the Gateway API instead: a GatewayClass, a Gateway
whose one HTTP listener is --listen, and an HTTPRoute (PathPrefix / -> the Service),
served on that Gateway's socket.
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
from discovery.model_gateway import (  # noqa: E402
    BackendObjectRef,
    Gateway,
    GatewayAddress,
    GatewayClass,
    HTTPBackendRef,
    HTTPRoute,
    HTTPRouteRule,
    ParentRef,
)
from discovery.model_gateway import Listener as GatewayListener  # noqa: E402
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


def gateway_snapshot(backends: list[tuple[str, int]], listen: tuple[str, int]) -> Snapshot:
    """The route of `bench_snapshot` from a Gateway and an HTTPRoute instead of an Ingress."""
    base = bench_snapshot(backends)
    gw_class = GatewayClass(ObjectMeta("seaway"), "seaway.dev/gateway-controller")
    gateway = Gateway(
        ObjectMeta("bench", "default"),
        "seaway",
        listeners=(GatewayListener("http", listen[1], "HTTP"),),
        addresses=(GatewayAddress("IPAddress", listen[0]),),
    )
    route = HTTPRoute(
        ObjectMeta("bench", "default"),
        parent_refs=(ParentRef("bench"),),
        rules=(HTTPRouteRule(backend_refs=(HTTPBackendRef(BackendObjectRef("bench", port=80)),)),),
    )
    return Snapshot(
        generation=base.generation,
        service_ports=base.service_ports,
        services=base.services,
        gateway_classes=(gw_class,),
        gateways=(gateway,),
        http_routes=(route,),
        ports_by_service=base.ports_by_service,
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
    contexts = [ctx, *(x.ctx for x in server.sockets.values())]  # Gateway sockets' own
    hits, misses = ctx.pools.memo_counts()
    req_hits = sum(c.memo_hits for c in contexts)
    req_misses = sum(c.memo_misses for c in contexts)
    print(f"memos {req_hits} {req_misses} {hits} {misses}", flush=True)


async def main(args: argparse.Namespace) -> None:
    listen = _addr(args.listen)
    options = Options(
        http_bind_address=listen,
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
    backends = [_addr(b) for b in args.backend]
    balancing = LoadBalancing(args.load_balancer)
    snap = (
        gateway_snapshot(backends, listen)
        if args.gateway
        else bench_snapshot(
            backends, 1, annotations, args.ingress_nginx, args.path, balancing
        )
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
    p.add_argument("--gateway", action="store_true", help="route with a Gateway and HTTPRoute")
    p.add_argument("--request-metrics", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--metrics-compat", default="")
    p.add_argument("--access-log", default="")
    p.add_argument("--load-balancer", choices=LOAD_BALANCER_POLICIES, default=DEFAULT_LOAD_BALANCER)
    uvloop.run(main(p.parse_args()))
