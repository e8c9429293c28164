"""Which iptables flavor the host uses, decided as kube-proxy's iptables wrapper does.

If only one flavor holds seaway's chains, that one (we were there before). Otherwise the
flavor with more rules wins (the one other agents on the host use); on a tie the flavor
the plain `iptables` binary points to.

Legacy tables are only probed when the kernel has some (/proc/net/ip_tables_names): on
an nft host, running iptables-legacy would create empty legacy tables and make every
iptables-nft command warn about them.
"""

from __future__ import annotations

from collections.abc import Callable

from proxy.iptables.applier import Runner, run_command

LEGACY_TABLES = "/proc/net/ip_tables_names"
LEGACY_TABLES6 = "/proc/net/ip6_tables_names"


def _read_legacy_tables() -> str:
    try:
        with open(LEGACY_TABLES) as f:
            return f.read()
    except OSError:
        return ""


def _rules(run: Runner, flavor: str) -> tuple[int, bool] | None:
    r = run([f"iptables-{flavor}-save"])
    if r.rc != 0:
        return None
    text = r.stdout.decode(errors="replace")
    count = sum(1 for line in text.splitlines() if line.startswith("-"))
    return count, ":SEAWAY-" in text


def _default(run: Runner) -> str:
    r = run(["iptables", "--version"])
    return "legacy" if b"legacy" in r.stdout else "nft"


def legacy_tables_loaded(family: int = 4) -> bool:
    """The kernel holds legacy (ip6)tables of this family."""
    if family == 4:
        return bool(_read_legacy_tables().split())
    try:
        with open(LEGACY_TABLES6) as f:
            return bool(f.read().split())
    except OSError:
        return False


def _has_ours(run: Runner, flavor: str) -> bool:
    # Listing one chain is cheap in both flavors (no full save of a big table).
    return run([f"iptables-{flavor}", "-w", "5", "-t", "nat", "-S", "SEAWAY-SERVICES"]).rc == 0


def detect_flavor(
    requested: str = "auto",
    run: Runner = run_command,
    legacy_tables: Callable[[], str] = _read_legacy_tables,
) -> str:
    if requested in ("legacy", "nft"):
        return requested
    if not legacy_tables().split():
        return "nft" if run(["iptables-nft", "--version"]).rc == 0 else _default(run)
    ours = [f for f in ("legacy", "nft") if _has_ours(run, f)]
    if len(ours) == 1:
        return ours[0]
    legacy = _rules(run, "legacy")
    nft = _rules(run, "nft")
    if legacy is None and nft is None:
        return _default(run)
    if legacy is None:
        return "nft"
    if nft is None:
        return "legacy"
    if legacy[1] != nft[1]:
        return "legacy" if legacy[1] else "nft"
    if legacy[0] != nft[0]:
        return "legacy" if legacy[0] > nft[0] else "nft"
    return _default(run)
