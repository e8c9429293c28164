"""Build: the L7 hot path compiled with mypyc (and one small C module), the rest pure Python.

The modules in HOT_MODULES are compiled to C extensions (mypyc, from mypy) when seaway is
installed; `pip install -e .` puts the .so files next to their .py files, and Python
imports the .so first. The sources stay ordinary, type-checked Python: with
SEAWAY_PURE=1 set at install time nothing is compiled and seaway runs the same code
interpreted (slower; see README "Performance"). If compiling fails (no C compiler), the
install goes on pure and says so.

An edited .py file next to an older .so is not what runs: `seaway --version` and the test
suite (tests/conftest.py) report such stale modules; re-run the install to rebuild.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# Per-request code of the L7 proxy (bench/http.py). Keep in step with
# proxy/app/native.py, which reports what is compiled.
HOT_MODULES = [
    "ingress/http1.py",
    "ingress/request.py",
    "ingress/exchange.py",
    "ingress/upstream.py",
    "ingress/outbox.py",
    "ingress/response.py",
    "ingress/framing.py",
    "ingress/pool.py",
    "ingress/client_protocol.py",
    "ingress/pipelining.py",
    "ingress/context.py",
    "ingress/stats.py",
    "ingress/route_match.py",
    "ingress/hashkey.py",
    # a route's filters at request time (bench/filters.py, bench/filter_hotpath.py)
    "ingress/filters/admission.py",
    "ingress/filters/plan.py",
    "ingress/filters/light.py",
    "ingress/filters/exchange.py",
    "ingress/filters/reply.py",
    "ingress/filters/headers.py",
    "ingress/filters/rewrite.py",
    "ingress/filters/cors.py",
    "ingress/filters/affinity.py",
    "ingress/filters/hashring.py",
    "ingress/filters/variables.py",
    "proxy/flow.py",
    "proxy/balancer.py",
    "proxy/balancers/base.py",
    "proxy/balancers/round_robin.py",
    "proxy/balancers/least_request.py",
    "proxy/balancers/maglev.py",
]

# The build environment has mypy and setuptools only: third-party imports are unknown
# there, so the type check that mypyc runs is the permissive one. The strict check of the
# whole tree is the test suite's (tests/test_lint.py).
MYPY_OPTIONS = ["--config-file=", "--ignore-missing-imports", "--python-version=3.11"]


# Written in C, with a Python twin of the same name that runs when the extension is not
# built (ingress/headscan.py, ingress/filters/fieldscan.py and ringhash.py say why).
C_MODULES = [
    Extension("ingress.headscan", ["ingress/headscan.c"], depends=["ingress/scan.h"]),
    Extension(
        "ingress.filters.fieldscan", ["ingress/filters/fieldscan.c"], depends=["ingress/scan.h"]
    ),
    Extension(
        "ingress.filters.ringhash", ["ingress/filters/ringhash.c"], depends=["ingress/scan.h"]
    ),
]


class OptionalBuildExt(build_ext):
    """Compile the extensions, or warn and install pure Python if the compiler fails."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any compiler failure
            warn(f"compiling the hot path failed ({exc}); installing pure Python")

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # this one stays pure; the others may still build
            warn(f"compiling {ext.name} failed ({exc}); it stays pure Python")


def warn(message: str) -> None:
    print(f"\nseaway setup: {message}\n", file=sys.stderr)


def ext_modules() -> list[Any]:
    if os.environ.get("SEAWAY_PURE"):
        return []
    return [*C_MODULES, *mypyc_modules()]


def mypyc_modules() -> list[Any]:
    try:
        from mypyc.build import mypycify
    except ImportError:
        warn("mypyc (from mypy) is not installed; installing pure Python")
        return []
    try:
        return list(
            mypycify([*MYPY_OPTIONS, *HOT_MODULES], opt_level="3", group_name="seaway_native")
        )
    except (Exception, SystemExit) as exc:  # a type error stops mypyc
        warn(f"mypyc could not compile the hot path ({exc}); installing pure Python")
        return []


setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
