"""The access log (ingress/access_log.py) of a real proxy on loopback: its formats, the
reopen that logrotate needs, and that a slow disk drops lines rather than holding the loop.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingress import access_log as access_log_module
from ingress.access_log import AccessLog
from ingress.route_match import compile_table
from ingress.server import WorkerServer
from ingress.settings import HttpSettings
from ingress.stats import ObservabilitySettings, make_stats
from ingress.translate_ingress import translate_ingresses
from tests.ingress.l7kit import HOST, Backend, LoopThread, get, two_service_snapshot
from tests.support import wait_until

COMBINED = re.compile(
    r'^(?P<ip>\S+) - - \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d+) (?P<bytes>\d+) '
    r'"(?P<referer>[^"]*)" "(?P<agent>[^"]*)" (?P<length>\d+) (?P<rt>[\d.]+) (?P<up>\S+) '
    r'(?P<ups>\S+) (?P<upt>\S+) "(?P<route>[^"]*)" "(?P<service>[^"]*)"$'
)


class LoggingProxy:
    """A WorkerServer whose stats write an access log, in the loop thread."""

    def __init__(self, lt: LoopThread, path: str, fmt: str) -> None:
        self.lt = lt
        self.backend = lt.run(Backend("web").start())
        snap = two_service_snapshot([self.backend.endpoint], [self.backend.endpoint])
        router = compile_table(translate_ingresses(snap).table)
        settings = ObservabilitySettings(access_log=path, access_log_format=fmt)

        async def start() -> tuple[WorkerServer, int]:
            server = WorkerServer(lt.loop, HttpSettings(), router, make_stats(settings))
            await server.apply(router, (HOST, 0), None, None)
            assert server.http is not None
            return server, server.http.address[1]

        self.server, self.port = lt.run(start())

    @property
    def log(self) -> AccessLog:
        log = self.server.ctx.stats.access_log
        assert log is not None
        return log

    def close(self) -> None:
        self.lt.run(self.server.close())
        self.lt.run(self.backend.close())


@pytest.fixture
def make(lt: LoopThread, tmp_path: Path) -> Iterator[type[LoggingProxy]]:
    made: list[LoggingProxy] = []

    def factory(path: str, fmt: str = "combined") -> LoggingProxy:
        proxy = LoggingProxy(lt, path, fmt)
        made.append(proxy)
        return proxy

    yield factory  # type: ignore[misc]
    for proxy in made:
        proxy.close()


def lines(path: Path, want: int) -> list[str]:
    """The file's lines once it has `want` of them (the writer flushes every 0.5 s)."""
    found: list[str] = []

    def enough() -> bool:
        found[:] = path.read_text().splitlines() if path.exists() else []
        return len(found) >= want

    wait_until(enough, what=f"{want} access log lines in {path}")
    return found


def test_combined_lines_carry_nginx_fields_and_the_upstream(
    make: type[LoggingProxy], tmp_path: Path
) -> None:
    path = tmp_path / "access.log"
    proxy = make(str(path))
    extra = 'Referer: http://from.test/page\r\nUser-Agent: tester "quoted"/1.0\r\n'
    assert get(proxy.port, "/api/users?id=7", extra=extra)[0] == 200
    assert get(proxy.port, "/", host="nobody.test")[0] == 404
    first, second = lines(path, 2)
    m = COMBINED.match(first)
    assert m is not None, first
    assert m["ip"] == "127.0.0.1" and m["request"] == "GET /api/users?id=7 HTTP/1.1"
    assert m["status"] == "200" and int(m["bytes"]) > 0 and int(m["length"]) > 0
    assert m["referer"] == "http://from.test/page"
    assert m["agent"] == "tester \\x22quoted\\x22/1.0"  # nginx's escaping of "
    assert m["up"] == f"{HOST}:{proxy.backend.port}" and m["ups"] == "200"
    assert float(m["upt"]) <= float(m["rt"])
    assert m["route"] == "default/site" and m["service"] == "default/api:80"
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}", m["time"])
    m = COMBINED.match(second)
    assert m is not None, second
    assert (m["status"], m["up"], m["ups"], m["upt"], m["route"]) == ("404", "-", "-", "-", "-")


def test_json_lines(make: type[LoggingProxy], tmp_path: Path) -> None:
    path = tmp_path / "access.json"
    proxy = make(str(path), "json")
    assert get(proxy.port, "/x", extra="User-Agent: json-test\r\n")[0] == 200
    assert get(proxy.port, "/other", host="any.test")[0] == 503
    ok, unavailable = (json.loads(line) for line in lines(path, 2))
    assert ok["request_method"] == "GET" and ok["request_uri"] == "/x"
    assert ok["status"] == 200 and ok["upstream_status"] == 200
    assert ok["upstream_addr"] == f"{HOST}:{proxy.backend.port}"
    assert ok["http_user_agent"] == "json-test" and ok["http_referer"] is None
    assert ok["route"] == "default/site" and ok["service"] == "default/web:80"
    assert ok["host"] == "web.test" and ok["request_time"] >= ok["upstream_response_time"]
    assert unavailable["status"] == 503 and unavailable["upstream_addr"] is None


def test_reopen_after_logrotate_moved_the_file(
    lt: LoopThread, make: type[LoggingProxy], tmp_path: Path
) -> None:
    path = tmp_path / "access.log"
    proxy = make(str(path))
    assert get(proxy.port, "/before")[0] == 200
    lines(path, 1)
    rotated = tmp_path / "access.log.1"
    os.rename(path, rotated)  # what logrotate does; the proxy still writes the old file
    assert get(proxy.port, "/between")[0] == 200
    lines(rotated, 2)

    async def reopen() -> None:
        proxy.log.reopen()

    lt.run(reopen())
    assert get(proxy.port, "/after")[0] == 200
    (after,) = lines(path, 1)
    assert "/after" in after
    assert ["/before" in ln or "/between" in ln for ln in rotated.read_text().splitlines()] == [
        True,
        True,
    ]


def test_a_stuck_disk_drops_lines_instead_of_holding_the_loop(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    release = threading.Event()
    written: list[bytes] = []

    def stuck_write(self: AccessLog, fd: int, data: bytes) -> None:
        release.wait(10)  # the disk does not answer
        written.append(data)

    monkeypatch.setattr(access_log_module, "MAX_BACKLOG", 10_000)
    monkeypatch.setattr(AccessLog, "_write_all", stuck_write)

    class Loop:
        def call_later(self, delay: float, callback: object) -> None:
            return None

    log = AccessLog(str(tmp_path / "stuck.log"))
    log.start(Loop())  # type: ignore[arg-type]
    line = b"x" * 99 + b"\n"
    for _ in range(2000):  # 200 KB, far past the 10 KB backlog allowed; a flush that
        log._buffer.append(line)  # waited for the writer would hang here
        log._size += len(line)
        log.flush()
    assert log.dropped > 1000
    release.set()
    log._closed = True
    log._queue.put(access_log_module._STOP)
    assert log._thread is not None
    log._thread.join(10)
    assert 0 < sum(len(w) for w in written) <= 10_100
