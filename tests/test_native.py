"""The compiled hot path (setup.py, mypyc) and its pure-Python twin (SEAWAY_PURE=1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.app.native import native_status

ROOT = Path(__file__).resolve().parents[1]
SUFFIX = ".cpython-311-x86_64-linux-gnu.so"


def test_stale_and_compiled_modules_are_told_apart(tmp_path: Path) -> None:
    pkg = tmp_path / "ingress"
    pkg.mkdir()
    for name in ("fresh", "edited", "plain", "in_c", "c_edited"):
        (pkg / f"{name}.py").write_text("x = 1\n")
    for name in ("fresh", "edited", "in_c", "c_edited"):
        (pkg / f"{name}{SUFFIX}").write_bytes(b"")
    for name in ("in_c", "c_edited"):  # a module written in C beside its Python twin
        (pkg / f"{name}.c").write_text("/* */\n")
        os.utime(pkg / f"{name}.c", (1_000, 1_000))
    os.utime(pkg / f"edited{SUFFIX}", (1_000, 1_000))  # built before the source changed
    os.utime(pkg / "c_edited.py", (500, 500))
    os.utime(pkg / f"c_edited{SUFFIX}", (700, 700))  # built before its C source changed
    status = native_status(tmp_path)
    compiled = ("ingress.c_edited", "ingress.edited", "ingress.fresh", "ingress.in_c")
    assert status.compiled == compiled
    assert status.stale == ("ingress.c_edited", "ingress.edited")
    assert "STALE" in status.describe() and "ingress.edited" in status.describe()


def test_the_suite_runs_the_compiled_build() -> None:
    """CI installs with mypyc: a build that fell back to pure Python would leave the code
    that ships untested."""
    if os.environ.get("SEAWAY_PURE"):
        pytest.skip("SEAWAY_PURE is set: the pure build is under test")
    compiled = native_status().compiled
    assert "ingress.http1" in compiled and "ingress.upstream" in compiled, compiled
    import ingress.headscan
    import ingress.http1

    assert not ingress.http1.__file__.endswith(".py")
    assert ingress.headscan.NATIVE, ingress.headscan.__file__  # the C scans, not the twin


def run_pure(code: str) -> str:
    env = {**os.environ, "SEAWAY_PURE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_seaway_pure_imports_the_sources() -> None:
    out = run_pure(
        "import ingress.http1, ingress.exchange, ingress.headscan, proxy.flow\n"
        "print(ingress.http1.__file__, ingress.exchange.__file__, proxy.flow.__file__,"
        " ingress.headscan.__file__, ingress.headscan.NATIVE)"
    )
    *paths, native = out.split()
    assert all(path.endswith(".py") for path in paths) and native == "0", out


def test_pure_build_passes_the_strictness_and_integration_tests() -> None:
    """The pure build is what an install without a C compiler runs: the L7 strictness and
    integration tests hold for it too."""
    env = {**os.environ, "SEAWAY_PURE": "1"}
    tests = [
        "tests/ingress/test_http_strict.py",
        "tests/ingress/test_l7_integration.py",
        "tests/ingress/test_upstream_pipelining.py",
        "tests/ingress/test_proxy_protocol.py",
        "tests/ingress/test_memo.py",
        "tests/ingress/test_head_differential.py",
        "tests/ingress/test_headscan.py",
        "tests/ingress/filters/test_exchange_filters.py",
    ]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *tests],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout
