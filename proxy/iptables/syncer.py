"""Sync state machine: build, pick full or partial, apply, clean up UDP conntrack.

Synchronous (the dataplane runs it in a worker thread; `seaway apply` calls it directly).
All I/O goes through the injected Applier; the clock is injected too.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from discovery.snapshot import ServicePortInfo, ServicePortName, Snapshot
from proxy.iptables.applier import Applier
from proxy.iptables.builder import BUILTIN_JUMPS, BuildConfig, RuleBuilder, Ruleset
from proxy.iptables.conntrack import stale_udp_entries
from proxy.iptables.render import KernelState, RestoreText, render_full, render_partial

log = logging.getLogger(__name__)

# When a sync has nothing to write, check at most this often that the jumps from the
# built-in chains are still there (someone may have flushed PREROUTING); if not, full sync.
JUMP_CHECK_INTERVAL = 30.0

# Above this many conntrack deletions, list UDP entries once and delete only matches.
CONNTRACK_LIST_THRESHOLD = 20
_ORIG = re.compile(r"dst=(\S+) sport=\d+ dport=(\d+)")


@dataclass(frozen=True, slots=True)
class SyncReport:
    full: bool
    build_seconds: float
    apply_seconds: float
    service_ports: int
    endpoints: int
    chains: int
    rules: int
    chains_written: int
    chains_deleted: int
    restore_bytes: int
    conntrack_deleted: int

    def summary(self) -> str:
        kind = "full" if self.full else "partial"
        return (
            f"{kind} sync: {self.service_ports} service ports, {self.endpoints} endpoints, "
            f"{self.chains} chains, {self.rules} rules; wrote {self.chains_written} chains "
            f"({self.restore_bytes} bytes), deleted {self.chains_deleted}; "
            f"build {self.build_seconds * 1000:.0f} ms, apply {self.apply_seconds * 1000:.0f} ms"
        )


class IptablesSyncer:
    """Keeps the kernel equal to the last Snapshot. Not thread-safe: one sync at a time."""

    def __init__(
        self,
        config: BuildConfig,
        applier: Applier,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.builder = RuleBuilder(config)
        self.applier = applier
        self.clock = clock
        self.needs_full = True
        self.applied: Ruleset | None = None
        self.applied_ports: Mapping[ServicePortName, ServicePortInfo] = {}
        self._jumps_checked = clock()

    def force_full(self) -> None:
        self.needs_full = True

    def read_kernel(self) -> KernelState:
        return self.applier.kernel_state()

    def sync(
        self,
        snapshot: Snapshot,
        changed: frozenset[ServicePortName] | None = None,
        kernel: KernelState | None = None,
    ) -> SyncReport:
        """One sync. `kernel`: what the kernel holds, when the caller read it already
        (`seaway apply` reads it while parsing); used by a full sync, else read here."""
        t0 = self.clock()
        ruleset = self.builder.build(snapshot, changed)
        t1 = self.clock()
        full = self.needs_full or self.applied is None
        text: RestoreText | None
        try:
            if full:
                state = kernel if kernel is not None else self.read_kernel()
                text = render_full(ruleset, state, self.applier.nft)
            else:
                assert self.applied is not None
                text = render_partial(ruleset, self.applied, self.applier.nft)
                if text is None and t0 - self._jumps_checked >= JUMP_CHECK_INTERVAL:
                    self._jumps_checked = t0
                    if not self._jumps_present():
                        log.warning("jumps to seaway chains disappeared; full sync")
                        full = True
                        text = render_full(ruleset, self.read_kernel(), self.applier.nft)
            if text is not None:
                self.applier.restore(text.text)
        except Exception:
            self.needs_full = True
            raise
        self.needs_full = False
        self.applied = ruleset
        deleted = self._clear_conntrack(
            stale_udp_entries(self.applied_ports, snapshot.service_ports)
        )
        self.applied_ports = snapshot.service_ports
        t2 = self.clock()
        return SyncReport(
            full=full,
            build_seconds=t1 - t0,
            apply_seconds=t2 - t1,
            service_ports=ruleset.service_ports,
            endpoints=ruleset.endpoints,
            chains=ruleset.chain_count(),
            rules=ruleset.rule_count(),
            chains_written=text.chains_written if text else 0,
            chains_deleted=text.chains_deleted if text else 0,
            restore_bytes=len(text.text) if text else 0,
            conntrack_deleted=deleted,
        )

    def _jumps_present(self) -> bool:
        have = self.applier.builtin_jumps()
        return all((t, c, spec.split("-j ")[-1].split()[0]) in have for t, c, spec in BUILTIN_JUMPS)

    def _clear_conntrack(self, entries: Sequence[tuple[str, ...]]) -> int:
        if not entries:
            return 0
        if len(entries) > CONNTRACK_LIST_THRESHOLD:
            r = self.applier.run(["conntrack", "-L", "-p", "udp"])
            text = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
            dsts: set[str] = set()
            ports: set[str] = set()
            for m in _ORIG.finditer(text):
                dsts.add(m.group(1))
                ports.add(m.group(2))
            entries = [e for e in entries if _may_match(e, dsts, ports)]
        done = 0
        for args in entries:
            if self.applier.conntrack_delete(args):
                done += 1
        return done


def _may_match(args: tuple[str, ...], dsts: set[str], ports: set[str]) -> bool:
    if "--orig-dst" in args:
        return args[args.index("--orig-dst") + 1] in dsts
    if "--orig-port-dst" in args:
        return args[args.index("--orig-port-dst") + 1] in ports
    return True
