"""`seaway apply | rules | trace | cleanup` in nftables mode (cmd_kernel.py dispatches here)."""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable, Container
from concurrent.futures import ThreadPoolExecutor

from discovery.snapshot import Snapshot
from proxy.app.options import Options

Loader = Callable[[Options], Snapshot | None]


def apply(options: Options, load: Loader, started: float) -> int:
    from proxy.nftables.applier import NftApplier
    from proxy.nftables.names import FAMILIES
    from proxy.nftables.state import parse_table
    from proxy.nftables.syncer import NftSyncer, Recorded

    applier = NftApplier()
    syncer = NftSyncer(options.nftables_build(), applier)

    def read_kernel() -> Recorded | dict[str, bytes | None]:
        """The sync record when it proves the tables unchanged since seaway wrote them,
        else the tables themselves (nft's JSON)."""
        return syncer.recorded() or {f: applier.read_json(f) for f in FAMILIES}

    # One sync, then exit: no cycles worth collecting in a big config's objects. What
    # the kernel holds does not depend on the config: nft lists it while the config is
    # parsed, on the other core (the thread only waits for nft; its JSON is read after
    # the parse, so the two do not take turns holding the GIL).
    enabled = gc.isenabled()
    gc.disable()
    try:
        with ThreadPoolExecutor(1) as pool:
            probe = pool.submit(read_kernel)
            t0 = time.perf_counter()
            snapshot = load(options)
            parse_s = time.perf_counter() - t0
            if snapshot is None:
                return 1
            try:
                t0 = time.perf_counter()
                listed = probe.result()
                wait_s = time.perf_counter() - t0
                kernel = (
                    listed
                    if isinstance(listed, Recorded)
                    else {f: None if j is None else parse_table(f, j) for f, j in listed.items()}
                )
                report = syncer.sync(snapshot, kernel=kernel)
            except Exception as exc:
                print(f"seaway: apply failed: {exc}", file=sys.stderr)
                return 1
    finally:
        if enabled:
            gc.enable()
    total = time.perf_counter() - started
    print(
        f"applied {report.service_ports} service ports, {report.endpoints} endpoints: "
        f"{report.chains} chains, {report.rules} rules, {report.elements} elements "
        f"(nftables, {report.kind}), {report.chains_written} chains written, "
        f"{report.chains_deleted} deleted, {report.elements_changed} elements changed; "
        f"parse {parse_s:.3f} s, build {report.build_seconds:.3f} s, "
        f"apply {report.apply_seconds + wait_s:.3f} s (kernel tables read during parse, "
        f"waited {wait_s:.3f} s), total {total:.3f} s"
    )
    return 0


def rules(options: Options, snapshot: Snapshot) -> int:
    from proxy.nftables.builder import build_tables
    from proxy.nftables.render import render_full

    tables = build_tables(snapshot, options.nftables_build())
    sys.stdout.write(render_full(tables.values()))
    return 0


def trace(
    options: Options,
    snapshot: Snapshot,
    src: str,
    dst: str,
    dport: int,
    proto: str,
    local: Container[str],
) -> str:
    """The outcomes of a new connection through the nft tables seaway would write."""
    from proxy.nftables.builder import build_tables
    from proxy.nftables.simulator import Simulator, format_trace

    tables = build_tables(snapshot, options.nftables_build())
    return format_trace(Simulator(tables, local).trace(src, dst, dport, proto))


def cleanup() -> int:
    """Remove seaway's nftables tables (both families)."""
    from proxy.nftables.applier import NftApplier
    from proxy.nftables.names import FAMILIES, TABLE

    applier = NftApplier()
    status = 0
    for family in FAMILIES:
        try:
            removed = applier.delete(family)
        except Exception as exc:
            print(f"seaway: cleanup (nftables {family}) failed: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"nftables: {'removed' if removed else 'no'} table {family} {TABLE}")
    return status
