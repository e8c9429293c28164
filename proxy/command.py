"""Running a command to completion, injectable: the kernel dataplanes' only way to spawn
their tools (iptables-restore, nft, conntrack). Tests pass their own Runner."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
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
