"""Store and SnapshotBuilder at scale: N services x 2 endpoints (one slice each).

    cd /work/main && python3 -m bench.snapshot [--services 10000] [--repeat 5]

Prints the best and median wall time, and the best CPU time (less disturbed by other
processes on a shared machine), of --repeat runs (each on fresh state, after gc.collect())
for: the first replace_source of 2N objects, a re-load of equal (re-parsed) objects,
the first full build (also without its GC pause, for comparison), and an incremental
build after one EndpointSlice change; and the ratio incremental / full.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import statistics
import time
from collections.abc import Callable

from discovery import snapshot_builder
from discovery.model import EndpointSlice, KubeObject
from discovery.snapshot_builder import SnapshotBuilder
from discovery.store import Store
from tests.discovery.factories import ep, make_service, make_slice


def make_objects(n: int) -> list[KubeObject]:
    out: list[KubeObject] = []
    for i in range(n):
        a, b = divmod(i, 250)
        svc = make_service(f"svc-{i}", cluster_ip=f"10.96.{a}.{b + 1}", ports=[("http", 80, 8080)])
        out.append(svc)
        out.append(make_slice(svc, [f"10.1.{a}.{b + 1}", f"10.2.{a}.{b + 1}"]))
    return out


def measure(label: str, setup: Callable[[], Callable[[], object]], repeat: int) -> float:
    """setup() prepares fresh state and returns the operation to time."""
    times, cpu_times = [], []
    for _ in range(repeat):
        operation = setup()
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        operation()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    best, median, cpu = min(times), statistics.median(times), min(cpu_times)
    print(
        f"{label:<50} best {best * 1000:8.2f} ms   median {median * 1000:8.2f} ms"
        f"   cpu best {cpu * 1000:8.2f} ms"
    )
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n, repeat = args.services, args.repeat
    objs = make_objects(n)
    reparsed = make_objects(n)  # equal, not identical: what re-reading a file yields
    print(f"{n} services, {2 * n} objects, {2 * n} endpoints")

    def loaded_store() -> Store:
        store = Store()
        store.replace_source("big.yaml", objs)
        return store

    def first_load() -> Callable[[], object]:
        store = Store()
        return lambda: store.replace_source("big.yaml", objs)

    def reload_equal() -> Callable[[], object]:
        store = loaded_store()
        store.take_changes()
        return lambda: store.replace_source("big.yaml", reparsed)

    def full_build() -> Callable[[], object]:
        snapshot_builder._ip_sort_key.cache_clear()  # measure a cold start
        return SnapshotBuilder(loaded_store()).build

    generation = [0]

    def one_slice_changed() -> Callable[[], object]:
        store = loaded_store()
        builder = SnapshotBuilder(store)
        builder.build()
        generation[0] += 1
        eps = objs[1]
        assert isinstance(eps, EndpointSlice)
        new_ep = ep(f"10.3.0.{generation[0] % 250 + 1}")
        store.upsert(dataclasses.replace(eps, endpoints=(new_ep, *eps.endpoints[:1])))

        def incremental() -> None:
            _, changed = builder.build()
            assert len(changed) == 1, changed

        return incremental

    measure("store.replace_source, first load", first_load, repeat)
    measure("store.replace_source, equal objects (no change)", reload_equal, repeat)
    full = measure("SnapshotBuilder.build, first (full)", full_build, repeat)
    paused = snapshot_builder._gc_paused
    snapshot_builder._gc_paused = contextlib.nullcontext  # type: ignore[assignment]
    try:
        measure("  same, without pausing the cyclic GC", full_build, repeat)
    finally:
        snapshot_builder._gc_paused = paused
    inc = measure("SnapshotBuilder.build, incremental (1 slice)", one_slice_changed, repeat)
    print(f"incremental / full = {inc / full:.4f} ({full / inc:.0f}x faster)")


if __name__ == "__main__":
    main()
