"""What the apiserver does beyond storing objects: server-side printing (a meta.k8s.io/v1
Table, which `kubectl get` asks for: a CRD's additionalPrinterColumns, or a built-in
kind's printer, here Ingress's) and the CRDs' status defaults (a new Gateway says
Accepted/Programmed Unknown, reason Pending, until a controller writes its status)."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from typing import Any

from tests.kubeapi.resources import Column, Resource

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


def _ingress_hosts(rules: list[Obj]) -> str:
    """The HOSTS cell: up to three hosts, "*" when none (the apiserver's formatHosts)."""
    hosts: list[str] = []
    more = False
    for rule in rules:
        more = more or len(hosts) == 3
        if not more and isinstance(rule, dict) and rule.get("host"):
            hosts.append(str(rule["host"]))
    text = ",".join(hosts) or "*"
    return f"{text} + {len(rules) - 3} more..." if more else text


def _ingress_address(obj: Obj) -> str:
    """The ADDRESS cell: each entry's IP, else its hostname, sorted and without repeats
    (ingressLoadBalancerStatusStringer; server-side printing is wide, never clipped)."""
    entries = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    found = {e.get("ip") or e.get("hostname") for e in entries if isinstance(e, dict)}
    return ",".join(sorted(a for a in found if a))


def print_ingress(obj: Obj) -> list[Any]:
    """kubernetes pkg/printers/internalversion printIngress: CLASS, HOSTS, ADDRESS, PORTS,
    AGE after NAME."""
    spec = obj.get("spec") or {}
    return [
        spec.get("ingressClassName") or "<none>",
        _ingress_hosts(spec.get("rules") or []),
        _ingress_address(obj),
        "80, 443" if spec.get("tls") else "80",
        age(str((obj.get("metadata") or {}).get("creationTimestamp", ""))),
    ]


# Built-in kinds the stand-in prints as the apiserver does: their columns and printer.
BUILTIN: dict[str, tuple[tuple[Column, ...], Callable[[Obj], list[Any]]]] = {
    "Ingress": (
        (
            Column("Class", "string", ""),
            Column("Hosts", "string", ""),
            Column("Address", "string", ""),
            Column("Ports", "string", ""),
            Column("Age", "string", ""),
        ),
        print_ingress,
    ),
}


def has_table(res: Resource) -> bool:
    return bool(res.columns) or res.kind in BUILTIN


def table(res: Resource, items: list[Obj], resource_version: str) -> Obj:
    columns_of = res.columns
    printer = None
    if res.kind in BUILTIN:
        columns_of, printer = BUILTIN[res.kind]
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
        for c in columns_of
    ]
    rows = []
    for obj in items:
        meta = obj.get("metadata", {})
        if printer is not None:
            cells = [meta.get("name", ""), *printer(obj)]
        else:
            cells = [meta.get("name", "")] + [
                _cell(c.type, jsonpath(obj, c.path)) for c in res.columns
            ]
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
