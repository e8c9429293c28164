"""Identity and metadata shared by every object kind (discovery/model.py re-exports them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from discovery.fast_init import fast_init


class ObjectKey(NamedTuple):
    """Identity of an object in the store. IngressClass is cluster-scoped (namespace "")."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        if self.namespace:
            return f"{self.kind} {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"


@fast_init
@dataclass(frozen=True, slots=True)
class ObjectMeta:
    name: str
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    creation_timestamp: str = ""  # RFC 3339 as written; sorts correctly as text
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    generation: int = 0  # metadata.generation (0 when a manifest has none)


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """The new status of one object, for PATCH .../status (API JSON under "status"),
    computed from the object at `resource_version` (the write carries it, so a status
    computed from a stale object is refused)."""

    key: ObjectKey
    resource_version: str
    status: dict[str, Any]
