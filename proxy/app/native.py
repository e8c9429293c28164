"""Which seaway modules run compiled, and which compiled ones are older than their source.

setup.py compiles the L7 hot path with mypyc; an editable install (`pip install -e .`)
leaves each extension (`ingress/http1.cpython-311-x86_64-linux-gnu.so`) next to its
source, and Python imports the extension first. So after editing a compiled module's .py,
the old code keeps running until the install is re-run: `stale` names those modules, for
`seaway --version`, the daemon's start-up log and the test suite (tests/conftest.py).
"""

from __future__ import annotations

import importlib.machinery
from dataclasses import dataclass
from pathlib import Path

from proxy import sources_first

PACKAGES = ("ingress", "proxy", "discovery")
_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class NativeStatus:
    compiled: tuple[str, ...]  # dotted module names with an extension beside their source
    stale: tuple[str, ...]  # of those, the ones whose source is newer than the extension

    def describe(self) -> str:
        if sources_first.wanted():
            return "hot path: pure Python (SEAWAY_PURE is set: the sources are imported)"
        if not self.compiled:
            return "hot path: pure Python (not compiled; see README, Performance)"
        text = f"hot path: {len(self.compiled)} modules compiled"
        text += " (mypyc; C for the head scans and the hash ring)"
        if self.stale:
            text += (
                f"; STALE (source edited after the build, the old code runs): "
                f"{', '.join(self.stale)}; re-run `pip install -e .`"
            )
        return text


def native_status(root: Path = _ROOT) -> NativeStatus:
    compiled: list[str] = []
    stale: list[str] = []
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    for package in PACKAGES:
        for source in sorted((root / package).rglob("*.py")):
            for suffix in suffixes:
                ext = source.with_name(source.stem + suffix)
                if ext.exists():
                    name = ".".join(source.relative_to(root).with_suffix("").parts)
                    compiled.append(name)
                    built = ext.stat().st_mtime
                    c_source = source.with_suffix(".c")  # ingress/headscan: written in C
                    if source.stat().st_mtime > built or (
                        c_source.exists() and c_source.stat().st_mtime > built
                    ):
                        stale.append(name)
                    break
    return NativeStatus(tuple(compiled), tuple(stale))
