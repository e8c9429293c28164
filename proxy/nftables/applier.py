"""Runs `nft` (and conntrack, through the same Runner), and reads the ruleset generation
(netlink, proxy/nftables/generation.py). The only module of this dataplane that spawns
anything."""

from __future__ import annotations

import logging
from collections.abc import Callable

from proxy.command import ApplyError, Runner, first_lines, run_command
from proxy.nftables.generation import ruleset_generation
from proxy.nftables.names import SYNC_STATE, TABLE
from proxy.nftables.record import FAMILY as RECORD_FAMILY
from proxy.nftables.record import parse_record
from proxy.nftables.state import parse_table
from proxy.nftables.table import TableState

log = logging.getLogger(__name__)

__all__ = ["ApplyError", "NftApplier"]


def _absent(stderr: bytes) -> bool:
    return b"No such file or directory" in stderr


class NftApplier:
    __slots__ = ("generation", "run")

    def __init__(
        self,
        run: Runner = run_command,
        generation: Callable[[], int | None] = ruleset_generation,
    ) -> None:
        self.run = run
        self.generation = generation  # the namespace's nftables generation, None: unknown

    def apply(self, text: str) -> None:
        """One `nft -f` transaction: all of it or nothing."""
        if not text:
            return
        r = self.run(["nft", "-f", "-"], text.encode())
        if r.rc != 0:
            raise ApplyError(f"nft -f failed (rc {r.rc}): {first_lines(r.stderr)}")

    def read(self, family: str) -> TableState | None:
        """seaway's table of one family as the kernel holds it; None when there is none."""
        data = self.read_json(family)
        return None if data is None else parse_table(family, data)

    def read_json(self, family: str) -> bytes | None:
        """`nft -j list table FAMILY seaway` output; None when there is no such table."""
        r = self.run(["nft", "-j", "list", "table", family, TABLE])
        if r.rc != 0:
            if _absent(r.stderr):
                return None
            raise ApplyError(f"nft list table {family} {TABLE} failed: {first_lines(r.stderr)}")
        return r.stdout

    def read_record(self) -> tuple[int, str] | None:
        """The sync record (generation, digest: proxy/nftables/record.py); None when there
        is none (no table yet, or an older seaway's)."""
        r = self.run(["nft", "-j", "list", "set", RECORD_FAMILY, TABLE, SYNC_STATE])
        return parse_record(r.stdout) if r.rc == 0 else None

    def delete(self, family: str) -> bool:
        """Remove seaway's table of one family; False when there was none."""
        r = self.run(["nft", "delete", "table", family, TABLE])
        if r.rc == 0:
            return True
        if _absent(r.stderr):
            return False
        raise ApplyError(f"nft delete table {family} {TABLE} failed: {first_lines(r.stderr)}")
