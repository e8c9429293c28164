"""v1 ConfigMap manifests -> discovery.model.ConfigMap (its `data`; binaryData dropped).

Keys are checked as the API server checks them (IsConfigMapKey: letters, digits, '-',
'_' and '.', at most 253 characters, not "." or ".."); values must be strings, which
catches the classic unquoted `hsts: true` in a hand-written manifest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from discovery.model import ConfigMap
from discovery.parse_common import Problems, get_map, read_meta, show

_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def parse_configmap(p: Problems, doc: Mapping[str, Any]) -> ConfigMap | None:
    meta = read_meta(p, doc, namespaced=True)
    data: dict[str, str] = {}
    for key, value in get_map(p, doc, "data", "").items():
        if type(key) is not str or len(key) > 253 or key in (".", ".."):
            p.add("data", "keys must be letters, digits, '-', '_' and '.', got " + show(key))
        elif _KEY.fullmatch(key) is None:
            p.add(f"data[{key}]", "keys must be letters, digits, '-', '_' and '.'")
        elif type(value) is str:
            data[key] = value
        elif type(value) in (bool, int, float):
            p.add(f"data[{key}]", f"must be a string, got {show(value)} (quote it)")
        else:
            p.add(f"data[{key}]", "must be a string, got " + show(value))
    if p.errors or meta is None:
        return None
    return ConfigMap(meta, data)
