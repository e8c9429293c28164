"""v1 Node manifest -> discovery.model.Node: its name and labels, nothing else.

seaway reads one Node, its own (--hostname-override), for the topology.kubernetes.io/zone
label topology-aware routing needs. Everything that changes on its own (status,
resourceVersion, annotations) is dropped, so heartbeats are not changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from discovery.model import Node, ObjectMeta
from discovery.parse_common import Problems, read_meta


def parse_node(p: Problems, doc: Mapping[str, Any]) -> Node | None:
    meta = read_meta(p, doc, namespaced=False)
    if p.errors or meta is None:
        return None
    return Node(ObjectMeta(meta.name, labels=meta.labels))
