"""v1 Secret -> discovery.model.TLSSecret (type kubernetes.io/tls: PEM bytes) or
OpaqueSecret (type Opaque, the default: every data key decoded). Other types are not
read (READ_TYPES).

`data` values are base64 as the API stores them; `stringData` (write-only in the API, but
common in hand-written manifests) holds the text itself and wins over `data`, as
`kubectl apply` merges it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from discovery.model import OpaqueSecret, TLSSecret
from discovery.parse_common import Problems, get_map, read_meta, show

TLS_TYPE = "kubernetes.io/tls"
OPAQUE_TYPE = "Opaque"
READ_TYPES = frozenset({TLS_TYPE, OPAQUE_TYPE})
_KEYS = ("tls.crt", "tls.key")


def parse_secret(p: Problems, doc: Mapping[str, Any]) -> TLSSecret | OpaqueSecret | None:
    """A Secret of a type in READ_TYPES (kubernetes.io/tls ones are checked for their PEM
    keys)."""
    if doc.get("type") == TLS_TYPE:
        return parse_tls_secret(p, doc)
    meta = read_meta(p, doc, namespaced=True)
    data = get_map(p, doc, "data", "")
    string_data = get_map(p, doc, "stringData", "")
    decoded: dict[str, bytes] = {}
    for key in sorted({*data, *string_data}):
        value = _value(p, data, string_data, key, required=False)
        if value is not None:
            decoded[key] = value
    kind = doc.get("type")
    if p.errors or meta is None:
        return None
    return OpaqueSecret(meta, kind if type(kind) is str and kind else OPAQUE_TYPE, decoded)


def parse_tls_secret(p: Problems, doc: Mapping[str, Any]) -> TLSSecret | None:
    meta = read_meta(p, doc, namespaced=True)
    data = get_map(p, doc, "data", "")
    string_data = get_map(p, doc, "stringData", "")
    pem: list[bytes] = []
    for key in _KEYS:
        value = _value(p, data, string_data, key, required=True)
        if value is not None:
            pem.append(value)
    if p.errors or meta is None:
        return None
    return TLSSecret(meta, pem[0], pem[1])


def _value(
    p: Problems, data: Mapping[str, Any], string_data: Mapping[str, Any], key: str, required: bool
) -> bytes | None:
    text = string_data.get(key)
    if text is not None:
        if type(text) is str:
            return text.encode()
        p.add(f"stringData[{key}]", "must be a string, got " + show(text))
        return None
    raw = data.get(key)
    if raw is None or raw == "":
        if required:
            p.add(f"data[{key}]", "required for a kubernetes.io/tls Secret")
            return None
        return b"" if raw == "" else None
    if type(raw) is not str:
        p.add(f"data[{key}]", "must be base64 text, got " + show(raw))
        return None
    try:
        return base64.b64decode("".join(raw.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        p.add(f"data[{key}]", f"must be valid base64 ({e})")
        return None
