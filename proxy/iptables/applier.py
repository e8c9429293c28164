"""Runs the iptables tools of one flavor (and conntrack). The only module that spawns them."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from proxy.iptables.builder import BUILTIN_JUMPS
from proxy.iptables.render import TABLES, KernelState, parse_nft_chains, parse_save

log = logging.getLogger(__name__)

FLAVORS = ("legacy", "nft")


@dataclass(frozen=True, slots=True)
class Result:
    rc: int
    stdout: bytes
    stderr: bytes


class Runner(Protocol):
    def __call__(self, argv: Sequence[str], stdin: bytes | None = None) -> Result: ...


def run_command(argv: Sequence[str], stdin: bytes | None = None) -> Result:
    """Run a command to completion; a missing binary is rc 127 (like a shell)."""
    try:
        p = subprocess.run(list(argv), input=stdin, capture_output=True, check=False)
    except FileNotFoundError as exc:
        return Result(127, b"", str(exc).encode())
    return Result(p.returncode, p.stdout, p.stderr)


class ApplyError(RuntimeError):
    pass


def _first_lines(data: bytes, n: int = 5) -> str:
    return " | ".join(data.decode(errors="replace").strip().splitlines()[:n])


class Applier:
    """iptables-restore / iptables-save / conntrack for one flavor ("legacy" or "nft")."""

    __slots__ = ("flavor", "run")

    def __init__(self, flavor: str, run: Runner = run_command) -> None:
        if flavor not in FLAVORS:
            raise ValueError(f"unknown iptables flavor {flavor!r}")
        self.flavor = flavor
        self.run = run

    @property
    def nft(self) -> bool:
        return self.flavor == "nft"

    def tool(self, name: str) -> str:
        """'restore' -> iptables-nft-restore etc."""
        return f"iptables-{self.flavor}-{name}" if name != "iptables" else f"iptables-{self.flavor}"

    def restore(self, text: str) -> None:
        """Apply restore input atomically, without flushing other agents' chains."""
        if not text:
            return
        r = self.run([self.tool("restore"), "--noflush", "-w", "5"], text.encode())
        if r.rc != 0:
            raise ApplyError(f"{self.tool('restore')} failed (rc {r.rc}): {_first_lines(r.stderr)}")

    def save(self, table: str) -> str:
        r = self.run([self.tool("save"), "-t", table])
        if r.rc != 0:
            # A table that was never used may not exist yet on nft: that is "empty".
            log.debug("%s -t %s: rc %d %s", self.tool("save"), table, r.rc, _first_lines(r.stderr))
            return ""
        return r.stdout.decode(errors="replace")

    def kernel_state(self) -> KernelState:
        """seaway chains present and jumps from built-in chains, read as cheaply as the
        flavor allows: legacy reads each table in one go (fast); on nft a full
        iptables-save of 70,000 rules takes seconds, so chain names come from
        `nft list chains ip` and the few built-in chains are listed one by one."""
        state = KernelState()
        if self.nft:
            r = self.run(["nft", "list", "chains", "ip"])
            if r.rc == 0:
                parse_nft_chains(r.stdout.decode(errors="replace"), state)
                self._builtin_jumps(state)
                return state
        for table in TABLES:
            parse_save(table, self.save(table), state)
        return state

    def builtin_jumps(self) -> set[tuple[str, str, str]]:
        """(table, built-in chain, seaway target) jumps present now."""
        state = KernelState()
        if self.nft:
            self._builtin_jumps(state)
        else:
            for table in TABLES:
                parse_save(table, self.save(table), state)
        return state.jumps

    def _builtin_jumps(self, state: KernelState) -> None:
        for table, chain in dict.fromkeys((t, c) for t, c, _ in BUILTIN_JUMPS):
            out = self.run([self.tool("iptables"), "-w", "5", "-t", table, "-S", chain])
            if out.rc == 0:
                parse_save(table, out.stdout.decode(errors="replace"), state)

    def conntrack_delete(self, args: Sequence[str]) -> bool:
        """`conntrack -D ...`; rc 1 with no matching entries is not an error."""
        r = self.run(["conntrack", *args])
        if r.rc not in (0, 1):
            log.warning(
                "conntrack %s failed (rc %d): %s", " ".join(args), r.rc, _first_lines(r.stderr)
            )
            return False
        return True
