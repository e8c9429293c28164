"""Pure: where one message ends in a stream of them, read just far enough to cut it.

`ResponseFramer` cuts pipelined upstream responses; `ChunkedBody` finds where a chunked
request body ends, so a request pipelined behind it in the same read starts at the right
byte. Both only cut: llhttp validates every byte, and the caller checks that llhttp ended
the message exactly where the cut is (else the stream is refused, never guessed).

The response side:

Used only on pipelined upstream connections (several requests written before the first
response; see ingress/upstream.py). A read can then hold the end of one response and the
start of the next, and each part must reach its own client. llhttp (httptools) still
parses and validates every byte, but it cannot say at which offset a message ended, so
this framer reads just enough of the framing to cut the stream there: the head's status
and Content-Length / Transfer-Encoding, then a byte count or the chunked framing.

It never decides validity. On anything it does not understand it claims the whole read
for the current response, and llhttp rejects what is malformed (the exchange fails with
502 and the requests queued behind it are retried elsewhere). Were it ever to claim too
much of valid input, llhttp would see a second response inside one exchange's bytes and
fail it the same way: bytes of one response never reach another client.
"""

from __future__ import annotations

import re
from typing import Final

from ingress.response import CHUNKED, CONTENT_LENGTH, scan_head

HEAD: Final = 0  # reading a response head
LENGTH: Final = 1  # counting a Content-Length body
SIZE: Final = 2  # reading a chunk-size line (up to its CRLF)
DATA: Final = 3  # counting chunk data and its CRLF
TRAILER: Final = 4  # reading trailer lines after the last chunk, up to an empty line
UNTIL_CLOSE: Final = 5  # the body ends when the connection does

MAX_LINE: Final = 64 * 1024  # a head or chunk line longer than this is left to llhttp to reject

_STATUS: Final = re.compile(rb"HTTP/\d\.\d (\d{3})")
_LENGTH: Final = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*([0-9]+)[ \t]*\r", re.IGNORECASE)
_HEX: Final = re.compile(rb"[0-9a-fA-F]+")


class ResponseFramer:
    """Feed every byte of one connection's responses in order; `feed` says how many bytes of
    each read belong to the current message. After a call, `ended` is True when the
    current exchange's final response ended within those bytes; `interim` when only a 1xx
    head did (its final response follows, for the same exchange)."""

    __slots__ = ("_buf", "_left", "_state", "ended", "interim")

    def __init__(self) -> None:
        self._state = HEAD
        self._left = 0
        self._buf = b""  # a head or chunk line split across reads
        self.ended = False
        self.interim = False

    def start(self, state: int = HEAD) -> None:
        """A new message begins (after `ended` or `interim`); SIZE: a chunked body."""
        self._state = state
        self._left = 0
        self._buf = b""
        self.ended = False
        self.interim = False

    def at_start(self) -> bool:
        """Nothing of the current message read yet."""
        return self._state == HEAD and not self._buf

    def feed(self, data: bytes) -> int:
        """How many leading bytes of `data` belong to the current message (all of them
        unless it ends inside `data`)."""
        pos = 0
        end = len(data)
        while pos < end:
            state = self._state
            if state in (LENGTH, DATA):
                take = min(self._left, end - pos)
                self._left -= take
                pos += take
                if not self._left:
                    if state == LENGTH:
                        self.ended = True
                        return pos
                    self._state = SIZE
            elif state == HEAD:
                stop = self._find(data, pos, b"\r\n\r\n")
                if stop is None:
                    return end
                head = self._buf + data[pos : stop + 4]
                self._buf = b""
                pos = self._head_done(head, stop + 4)
                if self.ended or self.interim:
                    return pos
            elif state in (SIZE, TRAILER):
                stop = self._find(data, pos, b"\r\n")
                if stop is None:
                    return end
                line = self._take_line(data, pos, stop)
                pos = stop + 2
                if state == TRAILER:
                    if not line:  # the empty line after the trailers
                        self.ended = True
                        return pos
                    continue
                m = _HEX.match(line)
                if m is None:
                    self._state = UNTIL_CLOSE  # malformed: llhttp rejects it
                    continue
                size = int(m.group(), 16)
                if size:
                    self._state = DATA
                    self._left = size + 2  # the data and its CRLF
                else:
                    self._state = TRAILER
            else:  # UNTIL_CLOSE
                return end
        return end

    def _find(self, data: bytes, pos: int, sep: bytes) -> int | None:
        """Offset in `data` where `sep` starts (below `pos`, even negative, when it began
        in an earlier read); None when it is not here, and what was read is kept (up to
        MAX_LINE)."""
        if self._buf:
            tail = self._buf[-(len(sep) - 1) :]
            i = (tail + data[pos : pos + len(sep) - 1]).find(sep)
            if i >= 0:
                return pos + i - len(tail)
        i = data.find(sep, pos)
        if i >= 0:
            return i
        self._buf += data[pos:]
        if len(self._buf) > MAX_LINE:
            self._state = UNTIL_CLOSE
            self._buf = b""
        return None

    def _take_line(self, data: bytes, pos: int, stop: int) -> bytes:
        """The line before the CRLF found at `stop`, joined with its earlier part."""
        buf = self._buf
        self._buf = b""
        if stop >= pos:
            return buf + data[pos:stop] if buf else data[pos:stop]
        return buf[: len(buf) + stop - pos]

    def _head_done(self, head: bytes, after: int) -> int:
        state, left = self._framing(head)
        if state == HEAD:  # no body
            if left:
                self.interim = True
            else:
                self.ended = True
        elif state == LENGTH and not left:
            self.ended = True
        else:
            self._state = state
            self._left = left
        return after

    @staticmethod
    def _framing(head: bytes) -> tuple[int, int]:
        """(state after the head, byte count): (HEAD, 1) for a 1xx head, (HEAD, 0) for a
        response without body."""
        m = _STATUS.match(head)
        status = int(m.group(1)) if m else 0
        if 100 <= status < 200 and status != 101:
            return HEAD, 1
        if status in (101, 204, 304):
            return HEAD, 0  # a 101 is never pipelined behind: see upstream.py
        flags = scan_head(head)
        if flags & CHUNKED:
            return SIZE, 0
        if flags & CONTENT_LENGTH:
            n = _LENGTH.search(head)
            return (LENGTH, int(n.group(1))) if n else (UNTIL_CLOSE, 0)
        return UNTIL_CLOSE, 0


class ChunkedBody:
    """Where a chunked body ends: `feed` returns how many bytes of `data` from `pos` belong
    to it (all unless it ends there); `ended` once the last chunk and trailers are read.
    Malformed framing claims everything (llhttp rejects it)."""

    __slots__ = ("_framer",)

    def __init__(self) -> None:
        self._framer = ResponseFramer()
        self._framer.start(SIZE)

    @property
    def ended(self) -> bool:
        return self._framer.ended

    def feed(self, data: bytes, pos: int) -> int:
        """The offset in `data` where the body ends (len(data) when it goes on)."""
        return pos + self._framer.feed(data[pos:] if pos else data)
