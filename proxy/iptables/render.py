"""Pure: Ruleset (+ what the kernel has) -> iptables-restore --noflush input.

Full: every seaway chain declared (which flushes it) and written, stale seaway chains
flushed and deleted, missing jumps from the built-in chains inserted.
Partial: only chains whose rules differ from the last applied Ruleset, plus deletion of
chains that disappeared. Chains are compared by identity first (the builder reuses the
tuples of unchanged service ports), so diffing 10,000 services costs milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from proxy.iptables import chains as C
from proxy.iptables.builder import BUILTIN_JUMPS, Ruleset

TABLES = (C.FILTER, C.NAT)

# iptables-nft (1.8.x) with --noflush records every chain named by every command in a
# sorted linked list (nft-cache.c cache_chain_list_insert) to fetch only those chains:
# O(commands x chains), 55 s for 10,000 services. One command that names no chain ("-Z")
# switches it to fetching all chains at once; it also zeroes the table's packet counters.
# Used only for big restores on the nft flavor.
NFT_ALL_CHAINS_THRESHOLD = 2000


@dataclass(slots=True)
class KernelState:
    """What `iptables-save` showed: seaway chains present and jumps in built-in chains."""

    chains: dict[str, set[str]] = field(default_factory=dict)  # table -> our chain names
    jumps: set[tuple[str, str, str]] = field(default_factory=set)  # (table, builtin, target)


def parse_save(table: str, text: str, state: KernelState) -> None:
    ours = state.chains.setdefault(table, set())
    builtins = {chain for t, chain, _ in BUILTIN_JUMPS if t == table}
    for line in text.splitlines():
        if line.startswith(":"):
            name = line[1:].split(" ", 1)[0]
            if C.is_ours(name):
                ours.add(name)
        elif line.startswith("-A "):
            parts = line.split()
            if len(parts) > 1 and parts[1] in builtins and "-j" in parts:
                target = parts[parts.index("-j") + 1]
                if C.is_ours(target):
                    state.jumps.add((table, parts[1], target))


def parse_nft_chains(text: str, state: KernelState) -> None:
    """`nft list chains ip` output: seaway chain names per table (no rules: fast)."""
    table = ""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "table":
            table = parts[2]
        elif len(parts) >= 2 and parts[0] == "chain" and table in TABLES and C.is_ours(parts[1]):
            state.chains.setdefault(table, set()).add(parts[1])
    for t in TABLES:
        state.chains.setdefault(t, set())


def _target(spec: str) -> str:
    parts = spec.split()
    return parts[parts.index("-j") + 1]


@dataclass(slots=True)
class RestoreText:
    text: str
    chains_written: int
    chains_deleted: int
    rules: int


def _table_text(
    table: str,
    declare: Iterable[str],
    rules: Iterable[tuple[str, ...]],
    delete: Iterable[str],
    jumps: list[str],
    all_chains_hint: bool,
) -> list[str]:
    out = [f"*{table}"]
    if all_chains_hint:
        out.append("-Z")
    out.extend(f":{c} - [0:0]" for c in declare)
    for chain_rules in rules:
        out.extend(chain_rules)
    out.extend(jumps)
    out.extend(f"-X {c}" for c in delete)
    out.append("COMMIT")
    return out


def render_full(ruleset: Ruleset, kernel: KernelState | None, nft: bool) -> RestoreText:
    """Everything, atomically; `kernel` None means nothing of seaway's is there."""
    lines: list[str] = []
    written = deleted = rules = 0
    for table in TABLES:
        chains = ruleset.tables.get(table, {})
        present = kernel.chains.get(table, set()) if kernel else set()
        stale = sorted(present - chains.keys())
        jumps: list[str] = []
        have = kernel.jumps if kernel else set()
        # Insert at position 1 in reverse so several jumps in one chain keep their order.
        for t, chain, spec in reversed(BUILTIN_JUMPS):
            if t == table and (t, chain, _target(spec)) not in have:
                jumps.append(f"-I {chain} 1 {spec}")
        n = sum(len(r) for r in chains.values())
        hint = nft and n + len(chains) > NFT_ALL_CHAINS_THRESHOLD
        declare = [*chains.keys(), *stale]
        lines += _table_text(table, declare, chains.values(), stale, jumps, hint)
        written += len(chains)
        deleted += len(stale)
        rules += n + len(jumps)
    return RestoreText("\n".join(lines) + "\n", written, deleted, rules)


def render_partial(new: Ruleset, old: Ruleset, nft: bool) -> RestoreText | None:
    """Only what changed since `old` was applied; None when nothing did."""
    lines: list[str] = []
    written = deleted = rules = 0
    for table in TABLES:
        now: Mapping[str, tuple[str, ...]] = new.tables.get(table, {})
        before: Mapping[str, tuple[str, ...]] = old.tables.get(table, {})
        changed: list[str] = []
        for chain, chain_rules in now.items():
            prev = before.get(chain)
            if prev is None or (prev is not chain_rules and prev != chain_rules):
                changed.append(chain)
        gone = [c for c in before if c not in now]
        if not changed and not gone:
            continue
        n = sum(len(now[c]) for c in changed)
        hint = nft and n + len(changed) > NFT_ALL_CHAINS_THRESHOLD
        lines += _table_text(table, [*changed, *gone], (now[c] for c in changed), gone, [], hint)
        written += len(changed)
        deleted += len(gone)
        rules += n
    if not lines:
        return None
    return RestoreText("\n".join(lines) + "\n", written, deleted, rules)


def render_cleanup(kernel: KernelState, builtin_rules: Mapping[str, list[str]]) -> str:
    """Remove every seaway chain and every jump to one from the built-in chains.

    `builtin_rules` maps table -> the exact "-A BUILTIN ..." lines (as iptables-save
    printed them) that jump to seaway chains; they are deleted with -D.
    """
    lines: list[str] = []
    for table in TABLES:
        ours = sorted(kernel.chains.get(table, set()))
        dels = builtin_rules.get(table, [])
        if not ours and not dels:
            continue
        lines.append(f"*{table}")
        lines.extend("-D " + r[3:] for r in dels)
        lines.extend(f":{c} - [0:0]" for c in ours)
        lines.extend(f"-X {c}" for c in ours)
        lines.append("COMMIT")
    return "\n".join(lines) + "\n" if lines else ""


def builtin_jump_lines(table: str, text: str) -> list[str]:
    """The iptables-save lines in built-in chains that jump to a seaway chain."""
    out = []
    for line in text.splitlines():
        if not line.startswith("-A "):
            continue
        parts = line.split()
        if len(parts) > 1 and not C.is_ours(parts[1]) and "-j" in parts:
            target = parts[parts.index("-j") + 1]
            if C.is_ours(target):
                out.append(line)
    return out
