"""Sync state machine: build, pick full / read-back / partial, apply, clean up UDP conntrack.

- full: the table of a family is written whole (`add table; delete table; table {...}`):
  the first sync on a node that has no seaway table, and the way back from any failure;
- read-back: the first sync (daemon start, `seaway apply`) when seaway's tables exist:
  they are read (`nft -j list table`) and only the differences are written, so an
  unchanged config writes nothing and ClientIP affinity state survives a restart;
- unchanged: the same, when the sync record proves the tables are exactly what seaway
  last wrote and that is what is wanted now: nothing is read back, nothing written
  (proxy/nftables/record.py; every full and read-back sync writes the record);
- partial: every later sync writes only what the builder says changed.

Each sync is one `nft -f` transaction for both families. Synchronous (the dataplane runs
it in a worker thread; `seaway apply` calls it directly). All I/O goes through the
injected applier; the clock is injected too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from discovery.snapshot import ServicePortInfo, ServicePortName, Snapshot
from proxy.conntrack import clear_entries, stale_udp_entries
from proxy.nftables import record
from proxy.nftables.applier import ApplyError, NftApplier
from proxy.nftables.builder import BuildConfig, TableBuilder
from proxy.nftables.names import FAMILIES
from proxy.nftables.render import render_delta, render_full, render_table
from proxy.nftables.table import Chain, Delta, TableState, diff

log = logging.getLogger(__name__)

KernelTables = Mapping[str, TableState | None]


@dataclass(frozen=True, slots=True)
class Recorded:
    """seaway's tables are exactly the state of this digest: the sync record proved that
    nothing was committed since seaway wrote them."""

    digest: str


@dataclass(frozen=True, slots=True)
class SyncReport:
    kind: str  # full | read-back | unchanged | partial
    build_seconds: float
    apply_seconds: float
    service_ports: int
    endpoints: int
    chains: int
    rules: int
    elements: int
    chains_written: int
    chains_deleted: int
    elements_changed: int
    nft_bytes: int
    conntrack_deleted: int

    @property
    def full(self) -> bool:
        return self.kind != "partial"

    def summary(self) -> str:
        return (
            f"{self.kind} sync: {self.service_ports} service ports, {self.endpoints} "
            f"endpoints, {self.chains} chains, {self.rules} rules, {self.elements} elements; "
            f"wrote {self.chains_written} chains, deleted {self.chains_deleted}, "
            f"{self.elements_changed} elements changed ({self.nft_bytes} bytes); "
            f"build {self.build_seconds * 1000:.0f} ms, apply {self.apply_seconds * 1000:.0f} ms"
        )


def needs_rebuild(kernel: TableState, wanted: TableState) -> bool:
    """A base chain's hook or a fixed set's declaration differs: such objects are not
    changed in place (rules refer to them), the table is written whole instead."""
    for name, chain in wanted.chains.items():
        if chain.base and kernel.chains.get(name, Chain(())).base != chain.base:
            return True
    for name, spec in wanted.sets.items():
        have = kernel.sets.get(name)
        if have is not None and have.signature() != spec.signature():
            return True
    return False


@dataclass(slots=True)
class _Plan:
    text: str
    kind: str
    written: int = 0
    deleted: int = 0
    elements: int = 0


class NftSyncer:
    """Keeps the kernel equal to the last Snapshot. Not thread-safe: one sync at a time."""

    def __init__(
        self,
        config: BuildConfig,
        applier: NftApplier,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.builder = TableBuilder(config)
        self.applier = applier
        self.clock = clock
        self.needs_full = True
        self.applied_ports: Mapping[ServicePortName, ServicePortInfo] = {}

    def force_full(self) -> None:
        self.needs_full = True

    def read_kernel(self) -> dict[str, TableState | None]:
        return {family: self.applier.read(family) for family in FAMILIES}

    def recorded(self) -> Recorded | None:
        """The sync record's digest when it proves the tables unchanged since seaway wrote
        them (the namespace's generation is the recorded one); else None."""
        generation = self.applier.generation()
        if generation is None:
            return None
        found = self.applier.read_record()
        if found is None or found[0] != generation:
            return None
        return Recorded(found[1])

    def sync(
        self,
        snapshot: Snapshot,
        changed: frozenset[ServicePortName] | None = None,
        kernel: KernelTables | Recorded | None = None,
    ) -> SyncReport:
        """One sync. `kernel`: seaway's tables as the kernel holds them (or the record
        proving what they hold), when the caller read them already (`seaway apply` reads
        them while parsing); used by a full sync, else read here. `changed` is accepted
        for the Dataplane signature: the builder finds the changed service ports itself
        (by identity, then equality)."""
        t0 = self.clock()
        try:
            if self.needs_full:
                self.builder.build(snapshot, deltas=False)
                t1 = self.clock()
                plan = self._full_sync(kernel)
            else:
                deltas = self.builder.build(snapshot)
                t1 = self.clock()
                plan = self._partial(deltas)
        except Exception:
            self.needs_full = True
            raise
        self.needs_full = False
        deleted = sum(
            clear_entries(
                stale_udp_entries(self.applied_ports, snapshot.service_ports, family),
                self.applier.run,
                family,
            )
            for family in (4, 6)
        )
        self.applied_ports = snapshot.service_ports
        t2 = self.clock()
        states = self.builder.states().values()
        return SyncReport(
            kind=plan.kind,
            build_seconds=t1 - t0,
            apply_seconds=t2 - t1,
            service_ports=self.builder.service_ports,
            endpoints=self.builder.endpoints,
            chains=sum(len(s.chains) for s in states),
            rules=sum(s.rule_count() for s in states),
            elements=sum(s.element_count() for s in states),
            chains_written=plan.written,
            chains_deleted=plan.deleted,
            elements_changed=plan.elements,
            nft_bytes=len(plan.text),
            conntrack_deleted=deleted,
        )

    def _partial(self, deltas: Mapping[str, Delta]) -> _Plan:
        plan = _Plan("", "partial")
        parts = []
        for family, delta in deltas.items():
            parts.append(render_delta(family, delta))
            self._count(plan, delta)
        plan.text = "".join(parts)
        self.applier.apply(plan.text)
        return plan

    @staticmethod
    def _count(plan: _Plan, delta: Delta) -> None:
        written, deleted, elements = delta.counts()
        plan.written += written
        plan.deleted += deleted
        plan.elements += elements

    def _full_sync(self, kernel: KernelTables | Recorded | None) -> _Plan:
        """Nothing when the record proves the kernel holds what is wanted; else write
        what differs from the tables read back."""
        # Each table rendered once: for the digest, and as the text if written whole.
        rendered = {f: render_table(s) for f, s in self.builder.states().items()}
        wanted_digest = record.digest_of(rendered.values())
        if kernel is None:
            kernel = self.recorded()
        if isinstance(kernel, Recorded):
            if kernel.digest == wanted_digest:
                return _Plan("", "unchanged")
            kernel = None
        kernel = kernel if kernel is not None else self.read_kernel()
        return self._full(kernel, wanted_digest, rendered)

    def _apply_recorded(self, text: str, tables_digest: str) -> str:
        """Apply `text` with the sync record at its end; returns what was applied."""
        generation = self.applier.generation()
        if generation is not None:
            text += record.record_text((generation + 1) & 0xFFFFFFFF, tables_digest)
        self.applier.apply(text)
        return text

    def _full(
        self, kernel: KernelTables, tables_digest: str, rendered: Mapping[str, str]
    ) -> _Plan:
        """Write what differs from the kernel's tables (whole tables where there is none,
        or where a hook or fixed set differs); if that fails, every table whole. The
        transaction ends with the sync record."""
        wanted = self.builder.states()
        whole: list[str] = []
        for family, state in wanted.items():
            have = kernel.get(family)
            if have is None or needs_rebuild(have, state):
                whole.append(family)
        plan = _Plan("", "full" if len(whole) == len(wanted) else "read-back")
        parts = [render_full((wanted[f] for f in whole), rendered)]
        for family in whole:
            _count_whole(plan, wanted[family])
        for family, state in wanted.items():
            have = kernel.get(family)
            if have is None or family in whole:
                continue
            delta = diff(have, state)
            parts.append(render_delta(family, delta))
            self._count(plan, delta)
        try:
            plan.text = self._apply_recorded("".join(parts), tables_digest)
        except ApplyError as exc:
            if plan.kind != "read-back":
                raise
            log.warning("writing the differences failed (%s); writing the tables whole", exc)
            plan = _Plan("", "full")
            for state in wanted.values():
                _count_whole(plan, state)
            text = render_full(wanted.values(), rendered)
            plan.text = self._apply_recorded(text, tables_digest)
        return plan


def _count_whole(plan: _Plan, state: TableState) -> None:
    plan.written += len(state.chains)
    plan.elements += state.element_count()
