"""The store: current objects by key, and what changed since the last sync.

Sources call `upsert`/`delete`/`replace_source`; the daemon reads the changes through the
SnapshotBuilder. The store records previous/current per object key like kube-proxy's
change trackers: an object changed twice between syncs keeps its oldest `previous`; an
object added then deleted between syncs (or changed and changed back) is no change; an
update equal to the current object records nothing.

Pure and single-threaded: call it from one thread (the event loop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from discovery.model import KINDS, KubeObject, ObjectKey


@dataclass(frozen=True, slots=True)
class Change:
    previous: KubeObject | None
    current: KubeObject | None


class Store:
    """Current objects per kind, the source owning each key, and pending changes.

    Ownership: each key belongs to at most one source (`replace_source(source_id, ...)`
    or `upsert(obj, source_id=...)`); the latest write wins and moves the key to the
    writer. A plain `upsert(obj)` keeps the key's current owner (a new key has none).
    `replace_source` deletes only keys the source still owns, so a key claimed since by
    another source survives the first source forgetting it.
    """

    __slots__ = ("_by_kind", "_changes", "_owner", "_source_keys", "on_change")

    def __init__(self) -> None:
        # Called (synchronously, cheaply) after each recorded change; the daemon sets it
        # to the sync runner's kick(). Called once per upsert/delete/replace_source that
        # recorded anything.
        self.on_change: Callable[[], None] | None = None
        self._by_kind: dict[str, dict[ObjectKey, KubeObject]] = {k: {} for k in KINDS}
        # key -> its object before the first change since the last take_changes().
        self._changes: dict[ObjectKey, KubeObject | None] = {}
        self._owner: dict[ObjectKey, str] = {}
        self._source_keys: dict[str, set[ObjectKey]] = {}

    # -- writes -------------------------------------------------------------------

    def upsert(self, obj: KubeObject, source_id: str | None = None) -> None:
        """Add or replace an object (no change recorded when equal to the current one)."""
        key = obj.key
        if source_id is not None:
            self._claim(key, source_id)
        if self._put(key, obj) and self.on_change is not None:
            self.on_change()

    def delete(self, key: ObjectKey) -> None:
        """Remove an object (and its ownership); a missing key is a no-op."""
        owner = self._owner.pop(key, None)
        if owner is not None:
            self._source_keys[owner].discard(key)
        if self._remove(key) and self.on_change is not None:
            self.on_change()

    def replace_source(self, source_id: str, objects: Iterable[KubeObject]) -> None:
        """Make `objects` the complete set owned by `source_id` (a file path, or a
        kube-API kind after a re-list): upsert each, delete the source's objects absent
        from it. This is how a deleted file or a 410 re-list removes what is gone.
        When `objects` repeats a key, the last one wins."""
        old_keys = self._source_keys.get(source_id, set())
        new_keys: set[ObjectKey] = set()
        owner = self._owner
        source_keys = self._source_keys
        put = self._put
        changed = False
        for obj in objects:
            key = obj.key
            new_keys.add(key)
            previous_owner = owner.get(key)
            if previous_owner != source_id:
                if previous_owner is not None:
                    source_keys[previous_owner].discard(key)
                owner[key] = source_id
            if put(key, obj):
                changed = True
        # Keys the source owned before and still owns, but no longer lists.
        for key in old_keys - new_keys:
            del owner[key]
            if self._remove(key):
                changed = True
        if new_keys:
            source_keys[source_id] = new_keys
        else:
            source_keys.pop(source_id, None)
        if changed and self.on_change is not None:
            self.on_change()

    # -- reads --------------------------------------------------------------------

    def get(self, key: ObjectKey) -> KubeObject | None:
        objects = self._by_kind.get(key.kind)
        return None if objects is None else objects.get(key)

    def objects(self, kind: str) -> Mapping[ObjectKey, KubeObject]:
        """A read-only live view of the current objects of `kind` (no copy)."""
        objects = self._by_kind.get(kind)
        if objects is None:
            objects = self._by_kind[kind] = {}
        return MappingProxyType(objects)

    def owner(self, key: ObjectKey) -> str | None:
        """The source that last wrote `key` through replace_source or upsert(source_id)."""
        return self._owner.get(key)

    def source_keys(self, source_id: str) -> frozenset[ObjectKey]:
        return frozenset(self._source_keys.get(source_id, ()))

    def pending(self) -> int:
        """Number of keys with a recorded (possibly net-zero) change."""
        return len(self._changes)

    def take_changes(self) -> dict[ObjectKey, Change]:
        """Return and reset the changes recorded since the previous call.

        Keys whose object ended up as it was before (added then deleted, changed then
        changed back) are left out."""
        pending, self._changes = self._changes, {}
        by_kind = self._by_kind
        result: dict[ObjectKey, Change] = {}
        for key, previous in pending.items():
            current = by_kind[key.kind].get(key)
            if previous is current or (previous is not None and previous == current):
                continue
            result[key] = Change(previous, current)
        return result

    # -- internals ----------------------------------------------------------------

    def _claim(self, key: ObjectKey, source_id: str) -> None:
        previous_owner = self._owner.get(key)
        if previous_owner == source_id:
            return
        if previous_owner is not None:
            self._source_keys[previous_owner].discard(key)
        self._owner[key] = source_id
        keys = self._source_keys.get(source_id)
        if keys is None:
            keys = self._source_keys[source_id] = set()
        keys.add(key)

    def _put(self, key: ObjectKey, obj: KubeObject) -> bool:
        """Store obj under key; record the change; False when equal to the current one."""
        objects = self._by_kind.get(key.kind)
        if objects is None:
            objects = self._by_kind[key.kind] = {}
        current = objects.get(key)
        if current is not None and (current is obj or current == obj):
            return False
        if key not in self._changes:
            self._changes[key] = current
        objects[key] = obj
        return True

    def _remove(self, key: ObjectKey) -> bool:
        objects = self._by_kind.get(key.kind)
        if objects is None:
            return False
        current = objects.pop(key, None)
        if current is None:
            return False
        if key not in self._changes:
            self._changes[key] = current
        return True
