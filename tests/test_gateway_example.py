"""The README's Gateway API example, run as written: `seaway echo` backends, `seaway run -c
configs/gateway/`, curl through the Gateway; then the file edited while it runs (the
Gateway's port moves, a route goes) and SIGTERM."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support import REPO, free_port, seaway, wait_for_port, wait_until

GATEWAY = ("127.0.30.10", 8090)
EXAMPLE = REPO / "configs" / "gateway" / "gateway.yaml"

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def curl(url: str, *headers: str) -> tuple[int, dict[str, object]]:
    argv = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10", url]
    for header in headers:
        argv += ["-H", header]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    body, _, code = out.rpartition("\n")
    doc = json.loads(body) if body.startswith("{") else {}
    return int(code), doc


def test_the_readme_example_through_curl(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(EXAMPLE.read_text())
    args = [
        "run", "-c", str(tmp_path), "--proxy-mode", "userspace",
        "--healthz-bind-address", f"127.0.0.1:{free_port()}",
        "--metrics-bind-address", f"127.0.0.1:{free_port()}",
        "--http-bind-address", f"127.0.0.1:{free_port()}", "--workers", "1",
    ]  # fmt: skip
    with ExitStack() as stack:
        for address, name in (("127.0.30.1", "shop-v1"), ("127.0.30.2", "shop-v2")):
            stack.enter_context(seaway(["echo", "--listen", f"{address}:9001", "--name", name]))
            wait_for_port(address, 9001)
        proc = stack.enter_context(seaway(args))
        wait_for_port(*GATEWAY)
        base = f"http://{GATEWAY[0]}:{GATEWAY[1]}"

        code, doc = curl(f"{base}/", "Host: shop.example.com", "x-canary: yes")
        assert (code, doc["name"], doc["host"]) == (200, "shop-v2", "shop.example.com")
        names = {curl(f"{base}/p", "Host: shop.example.com")[1]["name"] for _ in range(40)}
        assert "shop-v1" in names  # 90/10: v1 all but surely among 40
        code, doc = curl(f"{base}/shop/cart", "Host: www.example.com")
        assert code == 200 and doc["name"] == "shop-v1"
        assert doc["path"] == "/cart"  # URLRewrite ReplacePrefixMatch /shop -> /
        assert doc["headers"]["x-via"] == "seaway"  # RequestHeaderModifier add
        assert curl(f"{base}/", "Host: other.example.org")[0] == 404

        # The file changes under the running daemon: the Gateway moves to another port
        # (the old socket closes, the new one serves) and the www route goes away.
        port = free_port(GATEWAY[0])
        text = EXAMPLE.read_text().replace("port: 8090", f"port: {port}")
        config.write_text(text.split("# www.example.com/shop")[0])
        moved = f"http://{GATEWAY[0]}:{port}"
        wait_until(lambda: _serves(moved), what="the Gateway on its new port")
        assert curl(f"{moved}/", "Host: shop.example.com", "x-canary: yes")[1]["name"] == "shop-v2"
        assert curl(f"{moved}/shop/cart", "Host: www.example.com")[0] == 404
        assert not _serves(base)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def _serves(url: str) -> bool:
    try:
        code, _ = curl(f"{url}/", "Host: shop.example.com", "x-canary: yes")
    except subprocess.CalledProcessError:
        return False
    return code == 200
