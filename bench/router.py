"""Route table speed: `python3 -m bench.router [--paths 10000]`.

Builds N Ingress paths (10 per host, 20 hosts per Ingress, a tenth of the hosts wildcards,
mixed Exact/Prefix, one service per path); times the Ingress translation (daemon side),
the pickle the workers receive, and the compile (worker side) a few times; then routes a
mix of requests (exact host hit, wildcard hit, deep prefix walk, 404) through the
compiled table as ProxyContext.route does: raw Host and target bytes, query included.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import time

from discovery.model import (
    Ingress,
    IngressBackend,
    IngressPath,
    IngressRule,
    ObjectMeta,
    PathType,
)
from discovery.snapshot import EndpointInfo, ServicePortInfo, ServicePortName, Snapshot
from ingress.route_conditions import no_header
from ingress.route_match import compile_table
from ingress.translate_ingress import translate_ingresses
from tests.ingress.routerkit import ingress_class


def build_snapshot(n_paths: int) -> Snapshot:
    per_host, hosts_per_ingress = 10, 20
    ingresses: list[Ingress] = []
    ports: dict[tuple[str, str], tuple[ServicePortInfo, ...]] = {}
    n_hosts = max(1, n_paths // per_host)
    rules: list[IngressRule] = []
    for h in range(n_hosts):
        host = f"*.w{h}.example.com" if h % 10 == 9 else f"h{h}.example.com"
        paths = []
        for p in range(per_host):
            svc = f"svc-{h}-{p}"
            eps = (EndpointInfo(f"10.{h % 250}.{p}.1", 8080),)
            ports[("default", svc)] = (
                ServicePortInfo(
                    ServicePortName("default", svc, "http", "TCP"),
                    ("10.96.0.1",),
                    80,
                    "TCP",
                    all_endpoints=eps,
                    endpoints=eps,
                ),
            )
            kind: PathType = "Exact" if p % 3 == 0 else "Prefix"
            paths.append(
                IngressPath(f"/api/v{p}/items", kind, IngressBackend(svc, port_name="http"))
            )
        rules.append(IngressRule(host, tuple(paths)))
        if len(rules) == hosts_per_ingress or h == n_hosts - 1:
            meta = ObjectMeta(name=f"ing-{h}", namespace="default")
            ingresses.append(Ingress(meta, "seaway", rules=tuple(rules)))
            rules = []
    return Snapshot(
        generation=1,
        ingresses=tuple(ingresses),
        ingress_classes=(ingress_class(),),
        ports_by_service=ports,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    snap = build_snapshot(args.paths)
    translated, pickled, compiled = [], [], []
    table = compile_table(translate_ingresses(snap).table)
    size = 0
    for _ in range(args.rounds):
        start = time.perf_counter()
        translation = translate_ingresses(snap)
        translated.append(time.perf_counter() - start)
        start = time.perf_counter()
        payload = pickle.dumps(translation.table, protocol=pickle.HIGHEST_PROTOCOL)
        pickled.append(time.perf_counter() - start)
        size = len(payload)
        start = time.perf_counter()
        table = compile_table(pickle.loads(payload))
        compiled.append(time.perf_counter() - start)
    for label, times in (
        ("translate", translated),
        ("pickle", pickled),
        ("unpickle+compile", compiled),
    ):
        print(
            f"{label:16} {args.paths} paths ({len(snap.ingresses)} ingresses): "
            f"median {statistics.median(times) * 1000:.1f} ms, min {min(times) * 1000:.1f} ms"
        )
    print(f"table pickle: {size / 1024:.0f} KiB")
    requests = [
        (b"h0.example.com", b"/api/v0/items"),  # exact host, Exact path
        (b"H1.Example.com:8080", b"/api/v1/items/42?page=2"),  # normalised host, Prefix walk
        (b"x.w9.example.com", b"/api/v2/items/a/b/c/d/e/f"),  # wildcard, deep walk
        (b"h2.example.com", b"/nothing/here"),  # 404 through every step
    ]
    n = 200_000
    match = table.match
    for host, target in requests:
        route = match(host, target, b"GET", no_header)
        start = time.perf_counter()
        for _ in range(n):
            match(host, target, b"GET", no_header)
        elapsed = time.perf_counter() - start
        print(
            f"route {host.decode():24} {target.decode():28} -> {route.status or route.key:22} "
            f"{elapsed / n * 1e9:6.0f} ns"
        )


if __name__ == "__main__":
    main()
