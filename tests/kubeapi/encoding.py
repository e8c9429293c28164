"""JSON encoding for the stand-in, with each stored object encoded once.

Stored objects are never mutated (every write stores a new dict), so the bytes of an
object can be cached by identity: list pages and watch events are then joined from
cached pieces instead of re-encoding thousands of objects per request. orjson is used
when installed (it encodes ~3x faster), else the standard library.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_dumps: Callable[[Any], bytes]
try:
    import orjson

    _dumps = orjson.dumps
except ImportError:  # pragma: no cover - depends on the machine

    def _dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()


def dumps(value: Any) -> bytes:
    return _dumps(value)


class ObjectCache:
    """id(obj) -> (obj, encoded item without kind/apiVersion, encoded full object)."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, tuple[dict[str, Any], bytes | None, bytes | None]] = {}

    def _entry(self, obj: dict[str, Any]) -> tuple[dict[str, Any], bytes | None, bytes | None]:
        entry = self._entries.get(id(obj))
        if entry is None or entry[0] is not obj:
            entry = (obj, None, None)
        return entry

    def item(self, obj: dict[str, Any]) -> bytes:
        """As a list item: real list items carry no kind/apiVersion."""
        o, item, full = self._entry(obj)
        if item is None:
            item = _dumps({k: v for k, v in obj.items() if k != "kind" and k != "apiVersion"})
            self._entries[id(obj)] = (o, item, full)
        return item

    def full(self, obj: dict[str, Any]) -> bytes:
        o, item, full = self._entry(obj)
        if full is None:
            full = _dumps(obj)
            self._entries[id(obj)] = (o, item, full)
        return full

    def forget(self, obj: dict[str, Any]) -> None:
        entry = self._entries.get(id(obj))
        if entry is not None and entry[0] is obj:
            del self._entries[id(obj)]
