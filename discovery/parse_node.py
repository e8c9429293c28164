"""v1 Node manifest -> discovery.model.Node: its name and labels, nothing else.

seaway reads one Node, its own (--hostname-override), for the topology.kubernetes.io/zone
label topology-aware routing needs and for its addresses (status.addresses: what the
Ingress status says when nothing else is published). Everything else that changes on its
own (conditions, resourceVersion, annotations) is dropped, so heartbeats are not changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from discovery.model import Node, ObjectMeta
from discovery.parse_common import Problems, get_list, get_map, get_str, read_meta


def parse_node(p: Problems, doc: Mapping[str, Any]) -> Node | None:
    meta = read_meta(p, doc, namespaced=False)
    if p.errors or meta is None:
        return None
    return Node(ObjectMeta(meta.name, labels=meta.labels), _addresses(doc))


def _addresses(doc: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """status.addresses as (type, address); malformed entries are skipped (the kubelet
    writes them, not a user)."""
    quiet = Problems("")
    status = get_map(quiet, doc, "status", "")
    out: list[tuple[str, str]] = []
    for entry in get_list(quiet, status, "addresses", "status."):
        if type(entry) is dict:
            kind = get_str(quiet, entry, "type", "") or ""
            address = get_str(quiet, entry, "address", "") or ""
            if kind and address:
                out.append((kind, address))
    return tuple(out)
