"""What the apiserver does for custom resources beyond storing them: server-side printing
(a meta.k8s.io/v1 Table with the CRD's additionalPrinterColumns, which `kubectl get`
asks for) and the CRDs' status defaults (a new Gateway says Accepted/Programmed Unknown,
reason Pending, until a controller writes its status)."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

from tests.kubeapi.resources import Resource

Obj = dict[str, Any]
_FILTER = re.compile(r'\[\?\(@\.(\w+)=="([^"]*)"\)\]')
_PENDING = {
    "status": "Unknown",
    "reason": "Pending",
    "message": "Waiting for controller",
    "lastTransitionTime": "1970-01-01T00:00:00Z",
}


def wants_table(accept: str) -> bool:
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def default_gateway_status(obj: Obj) -> None:
    """The CRDs' default status for GatewayClass and Gateway (applied when a new object
    has none)."""
    if obj.get("status"):
        return
    types = ["Accepted"] if obj.get("kind") == "GatewayClass" else ["Accepted", "Programmed"]
    obj["status"] = {"conditions": [{"type": t, **_PENDING} for t in types]}


def jsonpath(obj: Any, path: str) -> list[Any]:
    """The values a CRD printer column path selects: `.a.b`, `.a[*].b`, `.a[?(@.k=="v")].b`."""
    values = [obj]
    for step in re.findall(r"\.[^.\[]+|\[\*\]|\[\?\(@\.\w+==\"[^\"]*\"\)\]", path):
        out: list[Any] = []
        if step == "[*]":
            for v in values:
                if isinstance(v, list):
                    out.extend(v)
        elif step.startswith("[?"):
            m = _FILTER.match(step)
            assert m is not None
            key, want = m.groups()
            for v in values:
                if isinstance(v, list):
                    out.extend(x for x in v if isinstance(x, dict) and x.get(key) == want)
        else:
            key = step[1:]
            for v in values:
                if isinstance(v, dict) and key in v:
                    out.append(v[key])
        values = out
    return values


def age(timestamp: str, now: datetime.datetime | None = None) -> str:
    """kubectl's short duration ("5s", "3m", "2h", "4d") since an RFC 3339 time."""
    try:
        then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    seconds = int(((now or datetime.datetime.now(datetime.UTC)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _cell(column_type: str, values: list[Any]) -> Any:
    if not values:
        return None
    if column_type == "date":
        return age(str(values[0]))
    if column_type == "integer":
        return values[0]
    text = [v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in values]
    return " ".join(text)


def table(res: Resource, items: list[Obj], resource_version: str) -> Obj:
    columns = [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": "Name must be unique within a namespace.",
            "priority": 0,
        }
    ] + [
        {"name": c.name, "type": c.type, "format": "", "description": "", "priority": c.priority}
        for c in res.columns
    ]
    rows = []
    for obj in items:
        meta = obj.get("metadata", {})
        cells = [meta.get("name", "")] + [_cell(c.type, jsonpath(obj, c.path)) for c in res.columns]
        rows.append(
            {
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": meta,
                },
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    }
