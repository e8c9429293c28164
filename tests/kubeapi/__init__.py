"""A Kubernetes API stand-in for tests and benchmarks (aiohttp, in memory).

`python -m tests.kubeapi --listen 127.0.0.1:0 --kubeconfig-out /tmp/kc` runs it alone;
tests use `ApiServer` directly (same loop) and its Python hooks.
"""

from tests.kubeapi.server import ApiServer
from tests.kubeapi.state import ApiError, Database

__all__ = ["ApiError", "ApiServer", "Database"]
