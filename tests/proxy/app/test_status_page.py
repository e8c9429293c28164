"""The status page in a real headless Chromium, against `seaway demo`: the page draws
/status.json with JavaScript, lists the demo's service ports with their endpoints and the
Ingress routes, and its counts follow traffic."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import free_port, http_get, seaway, wait_for_port, wait_until

HOST = "127.0.0.1"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def chromium(url: str, profile: Path, *mode: str) -> str:
    """The page's DOM after its scripts ran (or what `mode` asks for), from a fresh
    profile with everything that would reach beyond this machine turned off."""
    assert CHROMIUM is not None
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
            *(mode or ("--dump-dom",)), url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return out.stdout


def row(dom: str, port: str) -> str:
    """The table row of one service port."""
    m = re.search(rf'<tr data-port="{re.escape(port)}">(.*?)</tr>', dom, re.S)
    assert m is not None, f"no row for {port}"
    return m.group(1)


def cells(row_html: str) -> list[list[str]]:
    return [html.unescape(re.sub(r"<[^>]+>", " ", c)).split()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row_html, re.S)]


def test_the_page_shows_the_demo_and_follows_traffic(tmp_path: Path) -> None:
    http, healthz, metrics = free_port(), free_port(), free_port()
    args = ["demo", "--http-bind-address", f"{HOST}:{http}",
            "--healthz-bind-address", f"{HOST}:{healthz}",
            "--metrics-bind-address", f"{HOST}:{metrics}"]
    with seaway(args):
        wait_for_port(HOST, metrics)
        wait_until(lambda: http_get(HOST, metrics, "/readyz")[0] == 200, what="ready")
        page = f"http://{HOST}:{metrics}/status"
        dom = chromium(page, tmp_path / "profile-1")
        assert 'class="badge ok">ready<' in dom  # drawn by status.js, not in index.html
        web = cells(row(dom, "demo/web:http"))
        assert web[0] == ["demo/web:http"]
        # Every endpoint of the slice, the terminating one included (struck through).
        assert web[2] == ["127.0.20.1:9001", "127.0.20.2:9001", "127.0.20.3:9001",
                          "127.0.20.4:9001"]
        assert 'class="ep terminating"' in row(dom, "demo/web:http")
        assert web[3] == ["-"]  # no HTTP request yet
        assert cells(row(dom, "demo/echo-udp:echo"))[1] == ["UDP", "127.0.10.3:5353"]
        assert "demo.localhost" in dom and "/api" in dom  # the Ingress routes

        for _ in range(5):
            assert http_get(HOST, http, "/", headers={"Host": "demo.localhost"})[0] == 200
        for _ in range(2):  # the default backend names web's port by number, the rule by name
            assert http_get(HOST, http, "/", headers={"Host": "other.example"})[0] == 200
        for _ in range(3):
            assert http_get(HOST, http, "/api/x", headers={"Host": "demo.localhost"})[0] == 200

        def counted() -> bool:
            doc = json.loads(http_get(HOST, metrics, "/status.json")[1])
            return doc["totals"]["requests"] == 10

        wait_until(counted, what="10 requests in /status.json")
        dom = chromium(page, tmp_path / "profile-2")
        assert cells(row(dom, "demo/web:http"))[3] == ["7"]
        assert cells(row(dom, "demo/api:http"))[3] == ["3"]
        assert re.search(r'data-card="requests"><div class="value">10<', dom)

        shot = tmp_path / "status.png"
        chromium(page, tmp_path / "profile-3", "--window-size=1280,900",
                 f"--screenshot={shot}")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
