"""Write batching (ingress/outbox.py): order per transport, flush on close, large writes direct."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingress.context import ProxyContext
from ingress.http1 import HttpProtocol
from ingress.outbox import DIRECT, MAX_ITEMS, Outbox
from tests.ingress.test_http_timeouts import SETTINGS, FakeLoop, Router404


class Recorder:
    """A transport that records each write call (one call = one syscall for uvloop)."""

    def __init__(self, log: list[tuple[str, Any]], name: str) -> None:
        self.log = log
        self.name = name
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.log.append((self.name, data))

    def writelines(self, parts: list[bytes]) -> None:
        assert not self.closed
        self.log.append((self.name, list(parts)))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class Soon:
    def __init__(self) -> None:
        self.callbacks: list[Callable[[], object]] = []

    def __call__(self, cb: Callable[[], object]) -> None:
        self.callbacks.append(cb)

    def run(self) -> None:
        callbacks, self.callbacks = self.callbacks, []
        for cb in callbacks:
            cb()


def test_writes_wait_for_the_end_of_the_iteration_and_keep_order() -> None:
    log: list[tuple[str, Any]] = []
    soon = Soon()
    box = Outbox(soon)
    a, b = Recorder(log, "a"), Recorder(log, "b")
    box.write(a, b"1")  # type: ignore[arg-type]
    box.write(b, b"x")  # type: ignore[arg-type]
    box.write(b, b"y")  # type: ignore[arg-type]
    box.writelines(a, [b"2", b"3"])  # type: ignore[arg-type]
    assert not log and len(soon.callbacks) == 1  # one flush scheduled for all of them
    soon.run()
    assert log == [("a", b"1"), ("b", [b"x", b"y"]), ("a", [b"2", b"3"])]
    assert len(box) == 0


def test_large_write_goes_out_at_once_after_what_was_queued() -> None:
    log: list[tuple[str, Any]] = []
    soon = Soon()
    box = Outbox(soon)
    a = Recorder(log, "a")
    big = b"z" * DIRECT
    box.write(a, b"head")  # type: ignore[arg-type]
    box.write(a, big)  # type: ignore[arg-type]
    assert log == [("a", b"head"), ("a", big)]
    soon.run()
    assert log == [("a", b"head"), ("a", big)]


def test_large_write_leaves_other_transports_writes_queued() -> None:
    """A 64 KiB response to one client does not write the request heads queued for
    upstream connections before the iteration ends, nor schedule a second flush."""
    log: list[tuple[str, Any]] = []
    soon = Soon()
    box = Outbox(soon)
    a, b = Recorder(log, "a"), Recorder(log, "b")
    big = b"z" * DIRECT
    box.write(a, b"head")  # type: ignore[arg-type]
    generation = box.generation
    box.write(b, big)  # type: ignore[arg-type]
    assert log == [("b", big)]  # at once, alone
    assert box.generation == generation  # "head" is still queued (batch may extend it)
    box.write(b, b"next")  # type: ignore[arg-type]
    assert len(soon.callbacks) == 1  # still the one flush scheduled first
    soon.run()
    assert log == [("b", big), ("a", b"head"), ("b", b"next")]


def test_flush_skips_transports_closed_meanwhile() -> None:
    log: list[tuple[str, Any]] = []
    soon = Soon()
    box = Outbox(soon)
    a, b = Recorder(log, "a"), Recorder(log, "b")
    box.write(a, b"lost")  # type: ignore[arg-type]
    box.write(b, b"kept")  # type: ignore[arg-type]
    a.closed = True  # the peer went away before the end of the iteration
    soon.run()
    assert log == [("b", b"kept")]


def test_without_a_loop_writes_at_once() -> None:
    log: list[tuple[str, Any]] = []
    box = Outbox(None)
    a = Recorder(log, "a")
    box.write(a, b"1")  # type: ignore[arg-type]
    box.writelines(a, [b"2", b"3"])  # type: ignore[arg-type]
    assert log == [("a", b"1"), ("a", [b"2", b"3"])]


def test_proxy_answer_is_batched_and_flushed_before_a_close() -> None:
    """A keep-alive answer waits for the flush; an answer that closes goes out first."""
    log: list[tuple[str, Any]] = []
    soon = Soon()
    ctx = ProxyContext(FakeLoop(), SETTINGS, Router404(), outbox=Outbox(soon))  # type: ignore[arg-type]
    t = Recorder(log, "client")
    t.get_extra_info = lambda name: ("192.0.2.1", 40000)  # type: ignore[attr-defined]
    t.pause_reading = t.resume_reading = lambda: None  # type: ignore[attr-defined]
    t.set_write_buffer_limits = lambda high, low: None  # type: ignore[attr-defined]
    proto = HttpProtocol(ctx)
    proto.connection_made(t)  # type: ignore[arg-type]
    proto.data_received(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert not log
    soon.run()
    assert len(log) == 1 and log[0][1].startswith(b"HTTP/1.1 404 ")
    proto.data_received(
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
    )
    assert t.closed  # the duplicate Host closed the connection ...
    assert log[1][1][0].startswith(b"HTTP/1.1 404 ")  # ... after both answers, in one write
    assert log[1][1][1].startswith(b"HTTP/1.1 400 ")


def test_a_long_iteration_writes_every_max_items_and_keeps_its_flush() -> None:
    log: list[tuple[str, Any]] = []
    soon = Soon()
    box = Outbox(soon)
    peers = [Recorder(log, str(i)) for i in range(MAX_ITEMS + 2)]
    for peer in peers[:MAX_ITEMS]:
        box.write(peer, b"m")  # type: ignore[arg-type]
    assert [name for name, _ in log] == [str(i) for i in range(MAX_ITEMS)]  # sent at once
    generation = box.generation
    box.write(peers[MAX_ITEMS], b"m")  # type: ignore[arg-type]
    box.write(peers[MAX_ITEMS + 1], b"m")  # type: ignore[arg-type]
    assert len(log) == MAX_ITEMS and len(soon.callbacks) == 1  # the rest waits, one flush
    soon.run()
    assert len(log) == MAX_ITEMS + 2 and box.generation == generation + 1
