"""Runs the iptables tools of one flavor and family (and conntrack). The only module that
spawns them: iptables-* for IPv4, ip6tables-* for IPv6."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from proxy import conntrack
from proxy.command import (
    ApplyError,
    JoinedSink,
    ProcessSink,
    Result,
    Runner,
    StreamSink,
    first_lines,
    run_command,
)
from proxy.iptables import chains as C
from proxy.iptables.builder import BUILTIN_JUMPS
from proxy.iptables.family import Family, IPFamily, family_of
from proxy.iptables.render import TABLES, KernelState, parse_nft_chains, parse_save

log = logging.getLogger(__name__)

FLAVORS = ("legacy", "nft")

__all__ = ["FLAVORS", "Applier", "ApplyError", "ProcessSink", "Result", "Runner", "run_command"]


class Applier:
    """iptables-restore / iptables-save / conntrack for one flavor ("legacy" or "nft") and
    one family (4: iptables-*, 6: ip6tables-*)."""

    __slots__ = ("family", "flavor", "run")

    def __init__(self, flavor: str, run: Runner = run_command, family: IPFamily = 4) -> None:
        if flavor not in FLAVORS:
            raise ValueError(f"unknown iptables flavor {flavor!r}")
        self.flavor = flavor
        self.run = run
        self.family: Family = family_of(family)

    @property
    def nft(self) -> bool:
        return self.flavor == "nft"

    def tool(self, name: str) -> str:
        """'restore' -> iptables-nft-restore (ip6tables-nft-restore for IPv6) etc.;
        'iptables' -> iptables-nft."""
        prefix = self.family.tool_prefix
        return f"{prefix}-{self.flavor}-{name}" if name != "iptables" else f"{prefix}-{self.flavor}"

    def available(self) -> bool:
        """The tools are installed and the kernel serves this family's nat table (IPv6 may
        be disabled, or ip6tables missing): kube-proxy's `Present` check."""
        probe = [self.tool("iptables"), "-w", "5", "-t", "nat", "-S", "POSTROUTING"]
        return self.run(probe).rc == 0

    def restore(self, text: str) -> None:
        """Apply restore input atomically, without flushing other agents' chains."""
        if not text:
            return
        r = self.run(self._restore_argv(), text.encode())
        if r.rc != 0:
            raise ApplyError(f"{self.tool('restore')} failed (rc {r.rc}): {first_lines(r.stderr)}")

    def open_restore(self) -> StreamSink:
        """A restore fed while its input is produced (same atomicity as `restore`).
        With an injected Runner (tests), the pieces are joined and passed to it."""
        if self.run is run_command:
            return ProcessSink(self._restore_argv())
        return JoinedSink(self.restore)

    def _restore_argv(self) -> list[str]:
        return [self.tool("restore"), "--noflush", "-w", "5"]

    def save(self, table: str) -> str:
        r = self.run([self.tool("save"), "-t", table])
        if r.rc != 0:
            # A table that was never used may not exist yet on nft: that is "empty".
            log.debug("%s -t %s: rc %d %s", self.tool("save"), table, r.rc, first_lines(r.stderr))
            return ""
        return r.stdout.decode(errors="replace")

    def kernel_state(self) -> KernelState:
        """seaway chains present, jumps from built-in chains and the rules of seaway's
        nat chains (so a full sync can leave the unchanged ones alone), read as cheaply
        as the flavor allows: legacy saves each table in one go; on nft, chain names
        come from `nft list chains ip` (fast), the nat table is saved only when seaway
        chains are in it (0.4 s for 80,000 rules; `seaway apply` reads this while it
        parses), and the few built-in chains are listed one by one."""
        state = KernelState()
        if self.nft:
            r = self.run(["nft", "list", "chains", self.family.nft])
            if r.rc == 0:
                parse_nft_chains(r.stdout.decode(errors="replace"), state)
                if state.chains.get(C.NAT):
                    # The saved nat table has its jumps from the built-in chains too.
                    parse_save(C.NAT, self.save(C.NAT), state)
                    self._builtin_jumps(state, (C.FILTER,))
                else:
                    self._builtin_jumps(state, TABLES)
                return state
        for table in TABLES:
            parse_save(table, self.save(table), state)
        return state

    def builtin_jumps(self) -> set[tuple[str, str, str]]:
        """(table, built-in chain, seaway target) jumps present now."""
        state = KernelState()
        if self.nft:
            self._builtin_jumps(state, TABLES)
        else:
            for table in TABLES:
                parse_save(table, self.save(table), state)
        return state.jumps

    def _builtin_jumps(self, state: KernelState, tables: Sequence[str]) -> None:
        for table, chain in dict.fromkeys((t, c) for t, c, _ in BUILTIN_JUMPS if t in tables):
            out = self.run([self.tool("iptables"), "-w", "5", "-t", table, "-S", chain])
            if out.rc == 0:
                parse_save(table, out.stdout.decode(errors="replace"), state)

    def conntrack(self, args: Sequence[str]) -> Result:
        """`conntrack ARGS` for this family's entries."""
        return self.run(conntrack.command(args, self.family.version))

    def conntrack_delete(self, args: Sequence[str]) -> bool:
        """`conntrack -D ...`; rc 1 with no matching entries is not an error."""
        r = self.conntrack(args)
        if r.rc not in (0, 1):
            log.warning(
                "conntrack %s failed (rc %d): %s", " ".join(args), r.rc, first_lines(r.stderr)
            )
            return False
        return True
