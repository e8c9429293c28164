"""`seaway echo` as a real process, driven by curl and raw sockets."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys

import pytest

from tests.support import free_port, http_get, seaway, wait_for_port


def test_http_echo_reports_request() -> None:
    port = free_port()
    with seaway(["echo", "--listen", f"127.0.0.1:{port}", "--name", "alpha"]):
        wait_for_port("127.0.0.1", port)
        status, body = http_get("127.0.0.1", port, "/some/path?q=1", {"Host": "example.test",
                                                                      "X-Thing": "42"})
        assert status == 200
        answer = json.loads(body)
        assert answer["name"] == "alpha"
        assert answer["method"] == "GET"
        assert answer["path"] == "/some/path?q=1"
        assert answer["host"] == "example.test"
        assert answer["headers"]["X-Thing"] == "42"
        assert answer["body_length"] == 0


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_http_echo_counts_chunked_body_with_curl_keepalive() -> None:
    port = free_port()
    with seaway(["echo", "--listen", f"127.0.0.1:{port}", "--name", "beta"]):
        wait_for_port("127.0.0.1", port)
        url = f"http://127.0.0.1:{port}/up"
        out = subprocess.run(
            ["curl", "-s", "-H", "Transfer-Encoding: chunked", "--data-binary", "x" * 100000,
             url, url],
            capture_output=True, text=True, check=True, timeout=20,
        ).stdout
        # Two answers on one keep-alive connection, concatenated.
        first, second = out.replace("}{", "}\n{").splitlines()
        assert json.loads(first)["body_length"] == 100000
        assert json.loads(first)["method"] == "POST"
        assert json.loads(second)["body_length"] == 100000


def test_http_echo_rejects_garbage() -> None:
    port = free_port()
    with seaway(["echo", "--listen", f"127.0.0.1:{port}"]):
        wait_for_port("127.0.0.1", port)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 400")


def test_udp_echo() -> None:
    port = free_port(kind=socket.SOCK_DGRAM)
    with seaway(["echo", "--udp", "--listen", f"127.0.0.1:{port}", "--name", "u1"]) as proc:
        assert proc.stdout is not None
        assert "serving udp" in proc.stdout.readline()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(b"ping", ("127.0.0.1", port))
            assert s.recv(100) == b"u1:ping"


def test_echo_help_explains_flags() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "proxy.app.cli", "echo", "--help"],
        capture_output=True, text=True, check=True,
    ).stdout
    for flag in ("--listen", "--name", "--udp"):
        assert flag in out
