"""ProcessSink: iptables-restore input streamed to a real process (sh stands in for the
restore, so no root is needed): everything arrives, an early failure is reported with
the process's own error, abort leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.iptables.applier import ApplyError, ProcessSink


def _pieces() -> list[str]:
    # More than a few write chunks' worth, in small pieces like one per service port.
    return [
        f"-A SEAWAY-SEP-{i:016X} -j DNAT --to-destination 10.1.{i // 250}.{i % 250}:80\n"
        for i in range(40_000)
    ]


def test_every_piece_arrives_in_order(tmp_path: Path) -> None:
    out = tmp_path / "input"
    sink = ProcessSink(["sh", "-c", f"cat > {out}"])
    pieces = _pieces()
    for p in pieces:
        sink.write(p)
    sink.finish()
    text = "".join(pieces)
    assert len(text) > 4 * ProcessSink.CHUNK
    assert out.read_text() == text and sink.written == len(text)


def test_a_restore_that_fails_early_reports_its_own_error() -> None:
    sink = ProcessSink(["sh", "-c", "head -c 10 >/dev/null; echo 'line 2 failed' >&2; exit 2"])
    for p in _pieces():
        sink.write(p)  # no BrokenPipeError escapes once it has exited
    with pytest.raises(ApplyError, match=r"sh failed \(rc 2\): line 2 failed"):
        sink.finish()


def test_abort_kills_the_restore_before_it_sees_the_end(tmp_path: Path) -> None:
    done = tmp_path / "committed"
    sink = ProcessSink(["sh", "-c", f"cat >/dev/null && touch {done}"])
    sink.write("*nat\n" * ProcessSink.CHUNK)  # flushed: the process is reading
    sink.abort()
    assert sink._proc.returncode is not None  # reaped
    assert not done.exists()


def test_a_missing_restore_binary_is_an_apply_error() -> None:
    with pytest.raises(ApplyError, match="no-such-restore"):
        ProcessSink(["/nonexistent/no-such-restore", "--noflush"])
