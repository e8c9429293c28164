"""Worker processes without processes: what a worker is sent, and WorkerPool.revive (who
is restarted, when, and with which config)."""

from __future__ import annotations

import asyncio
from typing import Any

from ingress.route_conditions import no_header
from ingress.route_match import compile_table
from ingress.settings import HttpSettings
from ingress.translate_ingress import translate_ingresses
from ingress.workers import MAX_BACKOFF, WorkerConfig, WorkerPool, encode
from tests.ingress import routerkit as k
from tests.ingress.l7kit import port_info


class FakeProc:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


class FakeSock:
    def close(self) -> None:
        pass


class FakeWorker:
    pids = iter(range(100, 1000))

    def __init__(self, index: int, started: float) -> None:
        self.index = index
        self.started = started
        self.proc = FakeProc(next(self.pids))
        self.sock = FakeSock()
        self.sent: list[bytes] = []

    async def send(self, payload: bytes) -> None:
        self.sent.append(payload)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pool(count: int = 2) -> tuple[WorkerPool, Clock]:
    clock = Clock()
    p = WorkerPool(count, spawn=lambda i: FakeWorker(i, clock.now), clock=clock)  # type: ignore[arg-type,return-value]
    p.start()
    return p, clock


def run(coro: Any) -> None:
    asyncio.run(coro)


CONFIG = WorkerConfig(HttpSettings(), ("127.0.0.1", 1), None)


def test_a_dead_worker_is_replaced_and_gets_the_last_config() -> None:
    p, clock = pool()
    run(p.publish(CONFIG))
    first, second = p.workers
    clock.now += 60  # long after its start: no backoff
    first.proc.returncode = -9
    run(p.revive())
    assert p.workers[1] is second  # the live one is left alone
    fresh = p.workers[0]
    assert fresh is not first and fresh.index == 1
    assert fresh.sent == [encode(CONFIG)]  # type: ignore[attr-defined]
    assert p.restarts == 1


def test_no_config_yet_means_nothing_to_send() -> None:
    p, clock = pool(1)
    clock.now += 60
    p.workers[0].proc.returncode = 1
    run(p.revive())
    assert p.restarts == 1 and p.workers[0].sent == []  # type: ignore[attr-defined]


def test_a_crash_loop_backs_off_doubling() -> None:
    p, clock = pool(1)
    waits = []
    for _ in range(8):
        p.workers[0].proc.returncode = 1  # dies at once after each start
        before = p.restarts
        start = clock.now
        while p.restarts == before:
            run(p.revive())
            clock.now += 0.25
        waits.append(clock.now - 0.25 - start)
    assert waits[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert waits[5:] == [MAX_BACKOFF] * 3
    # Once a restarted worker lives past the crash window, the next death restarts at once.
    clock.now += 60
    p.workers[0].proc.returncode = 1
    before = p.restarts
    run(p.revive())
    assert p.restarts == before + 1


def test_workers_get_only_the_services_the_owned_ingresses_name() -> None:
    import pickle

    from discovery.snapshot import EndpointInfo

    ep = EndpointInfo("10.0.0.1", 80)
    ing = k.ingress("site", k.rule("a.test", k.path("/", "web")))
    ports = [port_info("web", [ep]), *(port_info(f"other{i}", [ep]) for i in range(50))]
    snap = k.snapshot([ing], ports)
    translation = translate_ingresses(snap)
    assert translation.services == {("default", "web")}
    payload = encode(WorkerConfig(HttpSettings(), ("127.0.0.1", 1), None, translation.table))
    assert b"web" in payload and b"other" not in payload  # a route table, not the Snapshot
    config = pickle.loads(payload[4:])
    # The worker's table, compiled from what it was sent, routes exactly as the daemon's.
    daemon, worker = compile_table(translation.table), compile_table(config.table)
    for host, path in ((b"a.test", b"/x"), (b"b.test", b"/")):
        mine = worker.match(host, path, b"GET", no_header)
        theirs = daemon.match(host, path, b"GET", no_header)
        assert (mine.status, mine.key, mine.endpoints, mine.source) == (
            theirs.status,
            theirs.key,
            theirs.endpoints,
            theirs.source,
        )
    assert worker.match(b"a.test", b"/x", b"GET", no_header).key == "default/web:80"
