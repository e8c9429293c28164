"""Long-lived NftSyncer for kernel tests: one config path per stdin line -> one sync.

Run inside the node namespace: `python3 -m tests.proxy.nftables.sync_driver CIDR`.
Prints one JSON line per sync: {"kind": ..., "nft": the transaction text, ...}.
Exercises the daemon's path (first sync full, later ones partial) without the daemon.
"""

from __future__ import annotations

import json
import sys

from discovery.manifest import load_path
from discovery.snapshot_builder import build_snapshot
from proxy.command import Result, run_command
from proxy.nftables.applier import NftApplier
from proxy.nftables.builder import BuildConfig
from proxy.nftables.syncer import NftSyncer


def main() -> None:
    written: list[str] = []

    def run(argv: list[str] | tuple[str, ...], stdin: bytes | None = None) -> Result:
        if list(argv[:2]) == ["nft", "-f"]:
            written.append((stdin or b"").decode())
        return run_command(argv, stdin)

    syncer = NftSyncer(
        BuildConfig(hostname="node-a", cluster_cidrs=tuple(sys.argv[1].split(","))),
        NftApplier(run),
    )
    for line in sys.stdin:
        written.clear()
        out: dict[str, object]
        try:
            report = syncer.sync(build_snapshot(load_path(line.strip()).objects()))
            out = {
                "kind": report.kind,
                "nft": "".join(written),
                "conntrack_deleted": report.conntrack_deleted,
            }
        except Exception as exc:
            out = {"error": str(exc)}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
