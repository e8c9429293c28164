"""v1 Secret -> discovery.model.TLSSecret (type kubernetes.io/tls: PEM bytes, and `ca.crt`
when present) or GenericSecret (any other type: every key's bytes).

`data` values are base64 as the API stores them; `stringData` (write-only in the API, but
common in hand-written manifests) holds the text itself and wins over `data`, as
`kubectl apply` merges it. What the bytes must hold (htpasswd lines, a CA bundle) depends
on the Ingress that names the Secret, so it is checked there (discovery/auth_secrets.py),
not here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from discovery.model import GenericSecret, KubeObject, TLSSecret
from discovery.parse_common import Problems, get_map, read_meta, show

TLS_TYPE = "kubernetes.io/tls"
_KEYS = ("tls.crt", "tls.key")
CA_KEY = "ca.crt"


def parse_secret(p: Problems, doc: Mapping[str, Any]) -> KubeObject | None:
    """Any v1 Secret: TLS ones as TLSSecret, the others as GenericSecret."""
    kind = doc.get("type")
    if kind == TLS_TYPE:
        return parse_tls_secret(p, doc)
    if kind is not None and type(kind) is not str:
        p.add("type", "must be a string, got " + show(kind))
    meta = read_meta(p, doc, namespaced=True)
    data = get_map(p, doc, "data", "")
    string_data = get_map(p, doc, "stringData", "")
    decoded: dict[str, bytes] = {}
    for key in sorted(set(data) | set(string_data)):
        value = _value(p, data, string_data, key)
        if value is not None:
            decoded[key] = value
    if p.errors or meta is None:
        return None
    return GenericSecret(meta, kind if type(kind) is str and kind else "Opaque", decoded)


def parse_tls_secret(p: Problems, doc: Mapping[str, Any]) -> TLSSecret | None:
    meta = read_meta(p, doc, namespaced=True)
    data = get_map(p, doc, "data", "")
    string_data = get_map(p, doc, "stringData", "")
    pem: list[bytes] = []
    for key in _KEYS:
        if key not in string_data and data.get(key) in (None, ""):
            p.add(f"data[{key}]", "required for a kubernetes.io/tls Secret")
            continue
        value = _value(p, data, string_data, key)
        if value is not None:
            pem.append(value)
    ca = _value(p, data, string_data, CA_KEY) if CA_KEY in data or CA_KEY in string_data else None
    if p.errors or meta is None:
        return None
    return TLSSecret(meta, pem[0], pem[1], ca or b"")


def _value(
    p: Problems, data: Mapping[str, Any], string_data: Mapping[str, Any], key: str
) -> bytes | None:
    """The bytes of `key` (stringData first), None when absent or invalid (reported)."""
    text = string_data.get(key)
    if text is not None:
        if type(text) is str:
            return text.encode()
        p.add(f"stringData[{key}]", "must be a string, got " + show(text))
        return None
    raw = data.get(key)
    if raw is None or raw == "":
        return None if raw is None else b""
    if type(raw) is not str:
        p.add(f"data[{key}]", "must be base64 text, got " + show(raw))
        return None
    try:
        return base64.b64decode("".join(raw.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        p.add(f"data[{key}]", f"must be valid base64 ({e})")
        return None
