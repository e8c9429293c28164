"""Runs the iptables tools of one flavor (and conntrack). The only module that spawns them."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import Protocol

from proxy.command import Result, Runner, first_lines, run_command
from proxy.iptables import chains as C
from proxy.iptables.builder import BUILTIN_JUMPS
from proxy.iptables.render import TABLES, KernelState, parse_nft_chains, parse_save

log = logging.getLogger(__name__)

FLAVORS = ("legacy", "nft")

__all__ = ["FLAVORS", "Applier", "ApplyError", "Result", "Runner", "run_command"]


class ApplyError(RuntimeError):
    pass


class RestoreSink(Protocol):
    """iptables-restore input written in pieces; `finish` applies it (or raises
    ApplyError), `abort` makes sure nothing of it is applied."""

    def write(self, text: str) -> None: ...

    def finish(self) -> None: ...

    def abort(self) -> None: ...

    @property
    def written(self) -> int: ...

    @property
    def wait_seconds(self) -> float: ...


class JoinedSink:
    """Collects the pieces and restores them in one call (an injected Runner)."""

    __slots__ = ("_applier", "_parts", "written")

    def __init__(self, applier: Applier) -> None:
        self._applier = applier
        self._parts: list[str] = []
        self.written = 0

    @property
    def wait_seconds(self) -> float:
        return 0.0

    def write(self, text: str) -> None:
        self._parts.append(text)
        self.written += len(text)

    def finish(self) -> None:
        self._applier.restore("".join(self._parts))

    def abort(self) -> None:
        self._parts.clear()


class ProcessSink:
    """Feeds a running iptables-restore through its stdin as the text is produced.

    Pieces are buffered up to CHUNK bytes per write. stderr goes to a temporary file,
    so a chatty restore can never block on a full pipe while seaway blocks writing.
    A restore that dies early (a bad line) closes its stdin: the rest is dropped and
    `finish` reports its error. Nothing is applied without the final COMMIT, so `abort`
    (kill) leaves the kernel as it was.
    """

    CHUNK = 1 << 18

    __slots__ = ("_argv", "_broken", "_buf", "_err", "_pending", "_proc", "wait_seconds", "written")

    def __init__(self, argv: Sequence[str]) -> None:
        self._argv = list(argv)
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - closed by finish/abort
        try:
            self._proc = subprocess.Popen(
                self._argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err
            )
        except BaseException as exc:
            self._err.close()
            if isinstance(exc, FileNotFoundError):
                raise ApplyError(f"{self._argv[0]} failed: {exc}") from exc
            raise
        self._buf: list[str] = []
        self._pending = 0
        self._broken = False
        self.written = 0
        self.wait_seconds = 0.0  # blocked writing (the restore was busy) or waiting for it

    def write(self, text: str) -> None:
        self._buf.append(text)
        self._pending += len(text)
        self.written += len(text)
        if self._pending >= self.CHUNK:
            self._flush()

    def _flush(self) -> None:
        data = "".join(self._buf).encode()
        self._buf.clear()
        self._pending = 0
        if self._broken or not data:
            return
        stdin = self._proc.stdin
        assert stdin is not None
        t0 = time.perf_counter()
        try:
            stdin.write(data)
            stdin.flush()
        except BrokenPipeError:
            self._broken = True
        self.wait_seconds += time.perf_counter() - t0

    def finish(self) -> None:
        try:
            self._flush()
            stdin = self._proc.stdin
            assert stdin is not None
            with contextlib.suppress(BrokenPipeError):
                stdin.close()
            t0 = time.perf_counter()
            rc = self._proc.wait()
            self.wait_seconds += time.perf_counter() - t0
            if rc != 0:
                self._err.seek(0)
                name = self._argv[0]
                raise ApplyError(f"{name} failed (rc {rc}): {first_lines(self._err.read())}")
        finally:
            self._err.close()

    def abort(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
        self._err.close()


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
        r = self.run(self._restore_argv(), text.encode())
        if r.rc != 0:
            raise ApplyError(f"{self.tool('restore')} failed (rc {r.rc}): {first_lines(r.stderr)}")

    def open_restore(self) -> RestoreSink:
        """A restore fed while its input is produced (same atomicity as `restore`).
        With an injected Runner (tests), the pieces are joined and passed to it."""
        if self.run is run_command:
            return ProcessSink(self._restore_argv())
        return JoinedSink(self)

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
            r = self.run(["nft", "list", "chains", "ip"])
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
