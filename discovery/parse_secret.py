"""v1 Secret of type kubernetes.io/tls -> discovery.model.TLSSecret (PEM bytes).

`data` values are base64 as the API stores them; `stringData` (write-only in the API, but
common in hand-written manifests) holds the PEM text itself and wins over `data`, as
`kubectl apply` merges it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from discovery.model import TLSSecret
from discovery.parse_common import Problems, get_map, read_meta, show

TLS_TYPE = "kubernetes.io/tls"
_KEYS = ("tls.crt", "tls.key")


def parse_tls_secret(p: Problems, doc: Mapping[str, Any]) -> TLSSecret | None:
    meta = read_meta(p, doc, namespaced=True)
    data = get_map(p, doc, "data", "")
    string_data = get_map(p, doc, "stringData", "")
    pem: list[bytes] = []
    for key in _KEYS:
        value = _pem(p, data, string_data, key)
        if value is not None:
            pem.append(value)
    if p.errors or meta is None:
        return None
    return TLSSecret(meta, pem[0], pem[1])


def _pem(
    p: Problems, data: Mapping[str, Any], string_data: Mapping[str, Any], key: str
) -> bytes | None:
    text = string_data.get(key)
    if text is not None:
        if type(text) is str:
            return text.encode()
        p.add(f"stringData[{key}]", "must be a string, got " + show(text))
        return None
    raw = data.get(key)
    if raw is None or raw == "":
        p.add(f"data[{key}]", "required for a kubernetes.io/tls Secret")
        return None
    if type(raw) is not str:
        p.add(f"data[{key}]", "must be base64 text, got " + show(raw))
        return None
    try:
        return base64.b64decode("".join(raw.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        p.add(f"data[{key}]", f"must be valid base64 ({e})")
        return None
