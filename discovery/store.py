"""The store: current objects by key, and what changed since the last sync.

INTERFACE STUB (to be implemented): sources call `upsert`/`delete`/`replace_source`;
the daemon reads changes through the SnapshotBuilder. The store records previous/current
per object key like kube-proxy's change trackers: an object changed twice between syncs
keeps its oldest `previous`; an object added then deleted between syncs is no change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from discovery.model import KubeObject, ObjectKey


@dataclass(frozen=True, slots=True)
class Change:
    previous: KubeObject | None
    current: KubeObject | None


class Store:
    def __init__(self) -> None:
        # Called (synchronously, cheaply) after each recorded change; the daemon sets it
        # to the sync runner's kick().
        self.on_change: Callable[[], None] | None = None
        raise NotImplementedError

    def upsert(self, obj: KubeObject) -> None:
        """Add or replace an object (no change recorded when equal to the current one)."""
        raise NotImplementedError

    def delete(self, key: ObjectKey) -> None:
        raise NotImplementedError

    def replace_source(self, source_id: str, objects: Iterable[KubeObject]) -> None:
        """Make `objects` the complete set owned by `source_id` (a file path, or a
        kube-API kind after a re-list): upsert each, delete the source's objects absent
        from it. This is how a deleted file or a 410 re-list removes what is gone."""
        raise NotImplementedError

    def get(self, key: ObjectKey) -> KubeObject | None:
        raise NotImplementedError

    def objects(self, kind: str) -> Mapping[ObjectKey, KubeObject]:
        raise NotImplementedError

    def take_changes(self) -> dict[ObjectKey, Change]:
        """Return and reset the changes recorded since the previous call."""
        raise NotImplementedError
