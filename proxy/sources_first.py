"""SEAWAY_PURE=1 at run time: import seaway's modules from their .py sources even where a
compiled extension (setup.py, mypyc) sits beside them.

For profiling (cProfile and py-spy see into interpreted code only), for telling a bug of
the compiled build from one of the code, and for the tests of the pure build
(tests/test_native.py). Installed by proxy/__init__.py, which runs before any module of
proxy/ or ingress/ (ingress/__init__.py imports proxy) is imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

PACKAGES = ("ingress.", "proxy.", "discovery.")


class SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds seaway's plain modules as sources; packages and everything else fall through
    to the usual finders."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if path is None or not fullname.startswith(PACKAGES):
            return None
        leaf = fullname.rpartition(".")[2]
        for directory in path:
            source = os.path.join(directory, leaf + ".py")
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def wanted() -> bool:
    return os.environ.get("SEAWAY_PURE", "") not in ("", "0")


def install() -> None:
    if not any(isinstance(f, SourcesFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, SourcesFirst())
