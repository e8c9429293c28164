"""Running the kernel dataplanes' tools (iptables-restore, nft, conntrack): to completion
through an injectable Runner (tests pass their own), or fed while its input is produced."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


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


def first_lines(data: bytes, n: int = 5) -> str:
    """The first `n` lines of a tool's output on one line, for error messages."""
    return " | ".join(data.decode(errors="replace").strip().splitlines()[:n])


class ApplyError(RuntimeError):
    """A kernel tool refused its input (or could not be run)."""


class StreamSink(Protocol):
    """A tool's input (iptables-restore, nft -f) written in pieces; `finish` applies it
    (or raises ApplyError), `abort` makes sure nothing of it is applied."""

    def write(self, text: str) -> None: ...

    def finish(self) -> None: ...

    def abort(self) -> None: ...

    @property
    def written(self) -> int: ...

    @property
    def wait_seconds(self) -> float: ...


class JoinedSink:
    """Collects the pieces and applies them in one call (with an injected Runner)."""

    __slots__ = ("_apply", "_parts", "written")

    def __init__(self, apply: Callable[[str], None]) -> None:
        self._apply = apply
        self._parts: list[str] = []
        self.written = 0

    @property
    def wait_seconds(self) -> float:
        return 0.0

    def write(self, text: str) -> None:
        self._parts.append(text)
        self.written += len(text)

    def finish(self) -> None:
        self._apply("".join(self._parts))

    def abort(self) -> None:
        self._parts.clear()


class ProcessSink:
    """Feeds a running tool (iptables-restore, nft -f -) through its stdin as the text
    is produced, so it parses on the other core meanwhile.

    Pieces are buffered up to CHUNK bytes per write. stderr goes to a temporary file,
    so a chatty tool can never block on a full pipe while seaway blocks writing. A tool
    that dies early (a bad line) closes its stdin: the rest is dropped and `finish`
    reports its error. Both tools apply nothing before the end of their input (the
    final COMMIT; nft's one transaction), so `abort` (kill) leaves the kernel as it was.
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
        self.wait_seconds = 0.0  # blocked writing (the tool was busy) or waiting for it

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
