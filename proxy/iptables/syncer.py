"""Sync state machine: build, pick full or partial, apply, clean up UDP conntrack.

Synchronous (the dataplane runs it in a worker thread; `seaway apply` calls it directly).
All I/O goes through the injected Applier; the clock is injected too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from discovery.snapshot import ServicePortInfo, ServicePortName, Snapshot
from proxy.conntrack import clear_entries
from proxy.iptables import chains as C
from proxy.iptables.applier import Applier
from proxy.iptables.builder import BUILTIN_JUMPS, BuildConfig, RuleBuilder, Ruleset, fixed_chains
from proxy.iptables.conntrack import stale_udp_entries
from proxy.iptables.render import (
    FullRender,
    KernelState,
    RestoreText,
    nft_all_chains_hint,
    render_full,
    render_partial,
)

log = logging.getLogger(__name__)

# When a sync has nothing to write, check at most this often that the jumps from the
# built-in chains are still there (someone may have flushed PREROUTING); if not, full sync.
JUMP_CHECK_INTERVAL = 30.0


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
        full = self.needs_full or self.applied is None
        text: RestoreText | None
        try:
            if full:
                state = kernel if kernel is not None else self.read_kernel()
                ruleset, text, build_s, restore_bytes = self._full(snapshot, state)
                t1 = t0 + build_s
            else:
                ruleset = self.builder.build(snapshot, changed)
                t1 = self.clock()
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
                restore_bytes = len(text.text) if text else 0
        except Exception:
            self.needs_full = True
            raise
        self.needs_full = False
        self.applied = ruleset
        deleted = self._clear_conntrack(
            stale_udp_entries(self.applied_ports, snapshot.service_ports, self.builder.family)
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
            restore_bytes=restore_bytes,
            conntrack_deleted=deleted,
        )

    def _full(
        self, snapshot: Snapshot, kernel: KernelState
    ) -> tuple[Ruleset, RestoreText, float, int]:
        """Build and apply everything. On nft, each service port's chains are streamed
        to iptables-restore as soon as they are built: the restore parses them on the
        other core meanwhile (0.12 s off a 10,000-service sync). One restore, so as
        atomic as rendering first. Returns the ruleset, what was written (counts only:
        the text is gone), the seconds spent building (not waiting for the restore) and
        the bytes written."""
        t0 = self.clock()
        if kernel.rules.get(C.NAT) or not self.applier.nft:
            # seaway's rules are there already (a restart, a re-apply): write only the
            # chains that differ, which needs the whole ruleset before the first line.
            # And iptables-legacy-restore is fast only with every chain declared first
            # (see render_full), which needs every chain name first.
            ruleset = self.builder.build(snapshot)
            build_s = self.clock() - t0
            text = render_full(ruleset, kernel, self.applier.nft)
            self.applier.restore(text.text)
            return ruleset, text, build_s, len(text.text)
        ports: Collection[ServicePortInfo] = snapshot.service_ports.values()
        if self.builder.family.version == 6:  # only the service ports with IPv6 rules
            ports = [p for p in ports if any(":" in ip for ip in p.cluster_ips)]
        endpoints = sum(len(p.endpoints) for p in ports)
        # Each endpoint makes a chain and about three rules, each port a chain and a rule.
        hint = nft_all_chains_hint(4 * endpoints + 2 * len(ports))
        render = FullRender(kernel, self.applier.nft)
        sink = self.applier.open_restore()
        try:
            sink.write(render.head(fixed_chains(self.builder.config)[C.NAT], hint))
            ruleset = self.builder.build(
                snapshot, each_port=lambda chains: sink.write(render.service_chains(chains))
            )
            build_s = self.clock() - t0 - sink.wait_seconds
            sink.write(render.tail(ruleset))
        except BaseException:
            sink.abort()
            raise
        sink.finish()
        text = RestoreText("", render.chains_written, render.chains_deleted, render.rules)
        return ruleset, text, build_s, sink.written

    def _jumps_present(self) -> bool:
        have = self.applier.builtin_jumps()
        return all((t, c, spec.split("-j ")[-1].split()[0]) in have for t, c, spec in BUILTIN_JUMPS)

    def _clear_conntrack(self, entries: Sequence[tuple[str, ...]]) -> int:
        return clear_entries(entries, self.applier.run, self.applier.family.version)
