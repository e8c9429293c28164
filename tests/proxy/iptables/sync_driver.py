"""Long-lived IptablesSyncer for kernel tests: one config path per stdin line -> one sync.

Run inside the node namespace: `python3 -m tests.proxy.iptables.sync_driver FLAVOR CIDR
[FAMILY]` (CIDR: comma-separated; FAMILY 4, the default, or 6 for ip6tables).
Prints one JSON line per sync: {"full": ..., "chains_written": ..., "error": ...}.
Exercises the daemon's path (first sync full, later ones partial) without the daemon.
"""

from __future__ import annotations

import json
import sys

from discovery.manifest import load_path
from discovery.snapshot_builder import build_snapshot
from proxy.iptables.applier import Applier
from proxy.iptables.builder import BuildConfig
from proxy.iptables.syncer import IptablesSyncer


def main() -> None:
    flavor, cidrs = sys.argv[1], tuple(sys.argv[2].split(","))
    family = 6 if sys.argv[3:] == ["6"] else 4
    config = BuildConfig(hostname="node-a", cluster_cidrs=cidrs, family=family)
    syncer = IptablesSyncer(config, Applier(flavor, family=family))
    for line in sys.stdin:
        path = line.strip()
        out: dict[str, object]
        try:
            report = syncer.sync(build_snapshot(load_path(path).objects()))
            out = {
                "full": report.full,
                "chains_written": report.chains_written,
                "chains_deleted": report.chains_deleted,
                "conntrack_deleted": report.conntrack_deleted,
            }
        except Exception as exc:
            out = {"error": str(exc)}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
