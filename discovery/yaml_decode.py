"""Manifest text -> decoded documents, fast.

Two decoders:

- `decode_fast`: rapidyaml (C++, `ryml`) parses the YAML into its tree and emits JSON,
  which orjson (or the standard json module) loads. About 10x faster than PyYAML's C
  loader on a 10,000-Service file. rapidyaml reads YAML 1.2 core scalars, so a few YAML
  1.1 spellings that PyYAML (and kubectl) read as booleans, nulls or numbers (`yes`,
  `on`, `~`, `0x1F`, `1_000`, `12:30`, ...) come out as strings, and `1e3` as a number.
  The caller therefore treats this result as provisional: a file whose objects do not
  all validate is decoded again by `decode_exact`, and text containing the spellings
  that could change an otherwise valid object (aliases, tags, `~`, hex/octal/binary
  numbers) is not decoded fast at all. What remains: in a field that takes any string
  (an annotation, a zone), a plain `yes` or `.inf` stays a string where kubectl would
  reject a boolean or number; seaway is that much more lenient.
- `decode_exact`: PyYAML's SafeLoader (libyaml when present), the reference. Timestamps
  stay as written (text), the way they arrive in JSON from the API server.

`decode_json` loads JSON (orjson when installed).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

try:  # optional accelerators: everything works (slower) without them
    import ryml  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - depends on the environment
    ryml = None
try:
    import orjson

    _json_loads: Callable[[str | bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _json_loads = json.loads

_exact_loader: type[Any] | None = None


def exact_loader() -> type[Any]:
    """PyYAML's SafeLoader (libyaml's when present) keeping timestamps as their text.
    Made on first use: a file the fast path reads whole never imports PyYAML."""
    global _exact_loader
    if _exact_loader is None:
        import yaml

        base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        class ExactLoader(base):  # type: ignore[misc,valid-type]
            """SafeLoader that keeps timestamps as their text."""

        ExactLoader.add_constructor(
            "tag:yaml.org,2002:timestamp",
            lambda loader, node: loader.construct_scalar(node),
        )
        _exact_loader = ExactLoader
    return _exact_loader

# Spellings that rapidyaml would read differently from PyYAML *and* that could still make
# a valid object (so validation would not catch them): nulls (~), tags (!), anchors and
# aliases (& *), merge keys (<<), and integers in other bases (a hex targetPort looks like
# a port name). Found by a fast scan for the characters, then a look at their context.
_RISKY = (b"!", b"&", b"*", b"~", b"<")  # single bytes: bytes.find is memchr-fast
_RADIX = re.compile(rb"0[xXoObB]")
_RADIX_TOKEN = re.compile(rb"0[xXoObB][0-9a-fA-F_]*[ \t\r]*(?:[,\]}#\n]|\Z)")
_BEFORE_NODE = b" \t\r\n[{,"  # what may precede a node (b"" at the start matches too)
_AFTER_NULL = b" \t\r\n,:]}"


def _misreadable(raw: bytes) -> bool:
    """Whether raw has a node rapidyaml might read differently (see above): about 20 ms
    for a 5 MB file without any."""
    for token in _RISKY:
        i = raw.find(token)
        while i != -1:
            if raw[i - 1 : i] in _BEFORE_NODE:  # not inside a word: "a&b", "x*y", "hi!"
                nxt = raw[i + 1 : i + 2]
                if token == b"<":
                    if nxt == b"<":
                        return True  # merge key
                elif nxt in _AFTER_NULL if token == b"~" else nxt.strip():
                    return True  # ~ null; !tag, &anchor, *alias
            i = raw.find(token, i + 1)
    for m in _RADIX.finditer(raw):
        i = m.start()
        k = i - 1 if raw[i - 1 : i] in (b"-", b"+") else i  # a sign
        if raw[k - 1 : k] in _BEFORE_NODE and _RADIX_TOKEN.match(raw, i):
            return True
    return False


class DecodeError(Exception):
    """Syntax error; `where` is e.g. "line 3, column 5" (empty when unknown)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


def fast_available() -> bool:
    """Whether rapidyaml is installed (else every YAML file goes through PyYAML)."""
    return ryml is not None


def looks_like_json(text: str | bytes) -> bool:
    head = text[:64].lstrip()
    return bool(head) and head[:1] in ("{", "[", b"{", b"[")


def decode_fast(data: str | bytes) -> list[Any] | None:
    """Documents via rapidyaml + JSON, or None when this path cannot be trusted for the
    text (see the module doc) or is unavailable or fails; then use decode_exact."""
    if ryml is None:
        return None
    raw = data.encode() if isinstance(data, str) else data
    if _misreadable(raw):
        return None
    try:
        with _quiet_stderr():
            tree = ryml.parse_in_arena(raw)
        if tree.size() == 0:
            return []
        root = tree.root_id()
        out = ryml.emit_json_malloc(tree, root)
        if out is None:
            return []
        value = _json_loads(out)
    except Exception:  # ryml's own exception types, JSON errors: fall back to PyYAML
        return None
    return list(value) if tree.is_stream(root) else [value]


def decode_exact(data: str | bytes) -> list[Any]:
    """Documents via PyYAML; raises DecodeError naming line and column."""
    import yaml

    loader = exact_loader()
    try:
        return list(yaml.load_all(data, Loader=loader))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = e.problem or e.context or "invalid YAML"
        raise DecodeError(where, "YAML syntax error: " + problem) from None
    except yaml.YAMLError as e:
        raise DecodeError("", f"YAML error: {e}") from None


def decode_json(data: str | bytes) -> list[Any]:
    """One JSON value as a one-document list; raises DecodeError naming line and column."""
    try:
        return [_json_loads(data)]
    except ValueError:
        pass
    try:  # the standard module's message and position are the clearer ones
        json.loads(data)
    except json.JSONDecodeError as e:
        raise DecodeError(
            f"line {e.lineno}, column {e.colno}", "JSON syntax error: " + e.msg
        ) from None
    except ValueError as e:
        raise DecodeError("", f"JSON error: {e}") from None
    raise DecodeError("", "JSON syntax error")  # orjson refused what json accepts (NaN...)


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """rapidyaml prints parse errors on fd 2 before raising; PyYAML reports them better,
    so silence the C++ side for the duration of the (GIL-holding) call. Only on the main
    thread: elsewhere the main thread could be writing to stderr meanwhile."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
