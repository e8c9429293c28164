"""Gateway API route table speed: `python3 -m bench.gateway_routes [--routes 1000]`.

One Gateway (an HTTP listener for `*.example.com`), N HTTPRoutes each with its own
hostname and 10 rules (mixed Exact/PathPrefix, every third with a header match, one
Service each), plus one route for the whole wildcard. Times attachment
(discovery/gateway_attach.py, also what the status writer runs), the HTTPRoute
translation (ingress/translate_gateway.py) and the compile a few times, then routes a mix
of requests (a route's own host, a host only the wildcard route serves, a miss) through
the compiled listener.
"""

from __future__ import annotations

import argparse
import statistics
import time

from discovery.gateway_attach import GatewayConfig, attach_gateways
from discovery.model import ObjectMeta, Service, ServicePort
from discovery.model_gateway import (
    BackendObjectRef,
    Gateway,
    GatewayAddress,
    GatewayClass,
    HeaderMatch,
    HTTPBackendRef,
    HTTPRoute,
    HTTPRouteMatch,
    HTTPRouteRule,
    Listener,
    ParentRef,
    PathMatch,
)
from discovery.snapshot import EndpointInfo, ServicePortInfo, ServicePortName, Snapshot
from ingress.route_match import compile_table
from ingress.routes import RouteTable
from ingress.translate_gateway import translate_gateways

NS = "default"
RULES = 10


def build_snapshot(n_routes: int) -> Snapshot:
    services: dict[tuple[str, str], Service] = {}
    ports: dict[tuple[str, str], tuple[ServicePortInfo, ...]] = {}
    routes: list[HTTPRoute] = []
    for r in range(n_routes + 1):
        rules = []
        for p in range(RULES):
            svc = f"svc-{r}-{p}"
            services[(NS, svc)] = Service(
                ObjectMeta(svc, NS),
                cluster_ips=("10.96.0.1",),
                ports=(ServicePort("http", "TCP", 80, 80),),
            )
            eps = (EndpointInfo(f"10.{r % 250}.{p}.1", 8080),)
            name = ServicePortName(NS, svc, "http", "TCP")
            ports[(NS, svc)] = (
                ServicePortInfo(name, ("10.96.0.1",), 80, "TCP", all_endpoints=eps, endpoints=eps),
            )
            kind = "Exact" if p % 2 == 0 else "PathPrefix"
            headers = (HeaderMatch("x-tier", "gold"),) if p % 3 == 0 else ()
            match = HTTPRouteMatch(PathMatch(kind, f"/api/v{p}/items"), headers)
            ref = HTTPBackendRef(BackendObjectRef(svc, port=80))
            rules.append(HTTPRouteRule((match,), backend_refs=(ref,)))
        hostnames = (f"h{r}.example.com",) if r < n_routes else ()
        meta = ObjectMeta(f"route-{r}", NS, creation_timestamp=f"2026-01-01T00:00:{r % 60:02d}Z")
        routes.append(HTTPRoute(meta, (ParentRef("gw"),), hostnames, tuple(rules)))
    gateway = Gateway(
        ObjectMeta("gw", NS),
        "seaway",
        listeners=(Listener("http", 80, "HTTP", "*.example.com"),),
        addresses=(GatewayAddress("IPAddress", "127.0.0.1"),),
    )
    return Snapshot(
        services=services,
        ports_by_service=ports,
        gateway_classes=(GatewayClass(ObjectMeta("seaway"), "seaway.dev/gateway-controller"),),
        gateways=(gateway,),
        http_routes=tuple(routes),
    )


def timed(fn: object, rounds: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    snap = build_snapshot(args.routes)
    config = GatewayConfig()
    t_attach, attachment = timed(lambda: attach_gateways(snap, config), args.rounds)
    t_translate, translation = timed(
        lambda: translate_gateways(snap, attachment),  # type: ignore[arg-type]
        args.rounds,
    )
    listeners = translation.listeners  # type: ignore[attr-defined]
    t_compile, table = timed(lambda: compile_table(RouteTable(listeners)), args.rounds)
    matcher = table.listener(listeners[0].name)  # type: ignore[attr-defined]
    headers = {b"x-tier": b"gold"}.get
    requests = [
        (f"h{i % args.routes}.example.com".encode(), f"/api/v{i % RULES}/items/9?q={i}".encode())
        for i in range(2000)
    ]
    requests += [(b"other.example.com", b"/api/v3/items")] * 500
    requests += [(b"h1.example.com", b"/nothing")] * 500
    t0 = time.perf_counter()
    for _ in range(5):
        for host, target in requests:
            matcher.match(host, target, b"GET", headers)
    per_request = (time.perf_counter() - t0) / (5 * len(requests))
    vhosts = len(listeners[0].virtual_hosts)
    print(
        f"{args.routes} HTTPRoutes x {RULES} rules ({vhosts} virtual hosts): "
        f"attach {t_attach * 1000:.0f} ms, translate {t_translate * 1000:.0f} ms, "
        f"compile {t_compile * 1000:.0f} ms, route {per_request * 1e6:.2f} us/request"
    )


if __name__ == "__main__":
    main()
