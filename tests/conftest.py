"""Suite-wide guard: the compiled hot path (setup.py, mypyc) must match its sources."""

from __future__ import annotations

import pytest

from proxy.app.native import native_status


def pytest_sessionstart(session: pytest.Session) -> None:
    status = native_status()
    if status.stale:
        pytest.exit(
            "compiled modules are older than their sources, so the tests would run old "
            f"code: {', '.join(status.stale)}. Rebuild with `.venv/bin/pip install -e .` "
            "(bash tests/run.sh does), or remove the .so files to test pure Python.",
            returncode=2,
        )
