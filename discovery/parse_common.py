"""Shared pieces of manifest validation: the error type, the per-object error collector,
name and value checks, and ObjectMeta.

Converters are written for the happy path: a field is read with one dict lookup and one
`type(...) is` test; field paths and messages are only formatted when something is wrong.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from discovery.model import LoadBalancerIngress, ObjectMeta

MAX_PORT = 65535

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?\Z")
_DNS1123_SUBDOMAIN = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z"
)
_IANA_SVC_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_IANA_HAS_LETTER = re.compile(r"[a-z]")
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_PATTERN = _IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}\Z")
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)\Z")


@dataclass(frozen=True, slots=True)
class ManifestError:
    """One problem in a manifest; `str()` is the line users see."""

    file: str
    obj: str  # "Service default/web", or "document 3" when the object has no identity
    field: str  # "spec.ports[0].port"; "" for problems of the whole object or file
    message: str

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.obj, self.field) if p]
        parts.append(self.message)
        return ": ".join(parts)


class Problems:
    """Collects the errors of one object (all of them, not just the first).

    The object's label ("Service default/web") is only formatted when the first error is
    added (from `label_of`: kind, namespaced, doc, where): the happy path never does."""

    __slots__ = ("_label_of", "_obj", "errors", "file")

    def __init__(
        self,
        file: str,
        obj: str = "",
        label_of: tuple[str, bool, Mapping[str, Any], str] | None = None,
    ) -> None:
        self.file = file
        self._obj = obj
        self._label_of = label_of
        self.errors: list[ManifestError] = []

    @property
    def obj(self) -> str:
        if self._label_of is not None:
            self._obj = object_label(*self._label_of)
            self._label_of = None
        return self._obj

    def add(self, field: str, message: str) -> None:
        self.errors.append(ManifestError(self.file, self.obj, field, message))


def object_label(kind: str, namespaced: bool, doc: Mapping[str, Any], where: str) -> str:
    """ "Service default/web", "IngressClass seaway", or "document 3 (Service)"."""
    meta = doc.get("metadata")
    name = meta.get("name") if type(meta) is dict else None
    if type(name) is not str or not name:
        return f"{where} ({kind})"
    if not namespaced:
        return f"{kind} {name}"
    ns = meta.get("namespace") if type(meta) is dict else None
    return f"{kind} {ns if type(ns) is str and ns else 'default'}/{name}"


def show(value: Any) -> str:
    """A value as it appears in messages: strings quoted, others as YAML would print."""
    if isinstance(value, str):
        return '"' + value + '"'
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


# -- typed reads ------------------------------------------------------------------------
# Each returns the value, or None after recording an error (absent -> None, no error).


def get_str(p: Problems, d: Mapping[str, Any], key: str, path: str) -> str | None:
    v = d.get(key)
    if v is None or type(v) is str:
        return v
    p.add(path + key, "must be a string, got " + show(v))
    return None


def get_int(p: Problems, d: Mapping[str, Any], key: str, path: str) -> int | None:
    v = d.get(key)
    if v is None or type(v) is int:
        return v
    p.add(path + key, "must be an integer, got " + show(v))
    return None


def get_bool(p: Problems, d: Mapping[str, Any], key: str, path: str) -> bool | None:
    v = d.get(key)
    if v is None or type(v) is bool:
        return v
    p.add(path + key, "must be true or false, got " + show(v))
    return None


def get_map(p: Problems, d: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    v = d.get(key)
    if type(v) is dict:
        return v
    if v is not None:
        p.add(path + key, "must be a mapping, got " + show(v))
    return {}


def get_list(p: Problems, d: Mapping[str, Any], key: str, path: str) -> list[Any]:
    v = d.get(key)
    if type(v) is list:
        return v
    if v is not None:
        p.add(path + key, "must be a list, got " + show(v))
    return []


def get_str_list(p: Problems, d: Mapping[str, Any], key: str, path: str) -> list[str]:
    out: list[str] = []
    for i, v in enumerate(get_list(p, d, key, path)):
        if type(v) is str:
            out.append(v)
        else:
            p.add(f"{path}{key}[{i}]", "must be a string, got " + show(v))
    return out


def get_str_map(p: Problems, d: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    m = get_map(p, d, key, path)
    for k, v in m.items():
        if type(v) is not str or type(k) is not str:
            break
    else:
        return m  # type: ignore[return-value]  # checked above: all keys/values are str
    out: dict[str, str] = {}
    for k, v in m.items():
        if type(v) is not str:
            p.add(f"{path}{key}[{k}]", "must be a string, got " + show(v))
        elif type(k) is not str:
            p.add(f"{path}{key}", "keys must be strings, got " + show(k))
        else:
            out[k] = v
    return out


# -- value checks -----------------------------------------------------------------------


def check_port(p: Problems, value: int | None, path: str, required: bool = True) -> int | None:
    if value is None:
        if required:
            p.add(path, "required")
        return None
    if 1 <= value <= MAX_PORT:
        return value
    p.add(path, f"must be 1-65535, got {value}")
    return None


def check_enum(p: Problems, value: str | None, allowed: tuple[str, ...], path: str) -> bool:
    if value is None or value in allowed:
        return True
    p.add(path, "must be one of " + ", ".join(allowed) + ", got " + show(value))
    return False


def check_dns1123_label(p: Problems, value: str, path: str) -> bool:
    if len(value) <= 63 and _DNS1123_LABEL.match(value):
        return True
    p.add(
        path,
        "must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending "
        "with a letter or digit, at most 63 characters), got " + show(value),
    )
    return False


def check_dns1035_label(p: Problems, value: str, path: str) -> bool:
    if len(value) <= 63 and _DNS1035_LABEL.match(value):
        return True
    p.add(
        path,
        "must be a DNS-1035 label (lowercase letters, digits and '-', starting with a "
        "letter, ending with a letter or digit, at most 63 characters), got " + show(value),
    )
    return False


def check_dns1123_subdomain(p: Problems, value: str, path: str) -> bool:
    if len(value) <= 253 and _DNS1123_SUBDOMAIN.match(value):
        return True
    p.add(
        path,
        "must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', each part "
        "starting and ending with a letter or digit, at most 253 characters), got " + show(value),
    )
    return False


def is_dns1123_subdomain(value: str) -> bool:
    return len(value) <= 253 and _DNS1123_SUBDOMAIN.match(value) is not None


def is_iana_svc_name(value: str) -> bool:
    return (
        len(value) <= 15
        and _IANA_SVC_NAME.match(value) is not None
        and "--" not in value
        and _IANA_HAS_LETTER.search(value) is not None
    )


IANA_MESSAGE = (
    "must be a port number 1-65535 or a port name (IANA_SVC_NAME: at most 15 lowercase "
    "letters, digits and '-', with at least one letter), got "
)


def is_ipv4(value: str) -> bool:
    return _IPV4.match(value) is not None


def is_ipv6(value: str) -> bool:
    if ":" not in value:
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def check_ip(p: Problems, value: str, path: str) -> bool:
    if _IPV4.match(value) is not None or is_ipv6(value):
        return True
    p.add(path, "must be a valid IP address, got " + show(value))
    return False


def load_balancer_ingress(p: Problems, doc: Mapping[str, Any]) -> tuple[LoadBalancerIngress, ...]:
    """status.loadBalancer.ingress (of a Service or an Ingress): entries with a valid IP
    and/or a hostname; a bad entry is reported and left out."""
    status = get_map(p, doc, "status", "")
    lb = get_map(p, status, "loadBalancer", "status.")
    out: list[LoadBalancerIngress] = []
    for i, entry in enumerate(get_list(p, lb, "ingress", "status.loadBalancer.")):
        path = f"status.loadBalancer.ingress[{i}]"
        if type(entry) is not dict:
            p.add(path, "must be a mapping, got " + show(entry))
            continue
        ip = get_str(p, entry, "ip", path + ".") or ""
        if ip and not check_ip(p, ip, path + ".ip"):
            ip = ""
        hostname = get_str(p, entry, "hostname", path + ".") or ""
        if ip or hostname:
            out.append(LoadBalancerIngress(hostname, ip))
    return tuple(out)


def canonical_timestamp(value: str) -> str:
    """RFC 3339 text; other ISO 8601 spellings ("2024-01-02 03:04:05") are rewritten."""
    if _RFC3339.match(value):
        return value
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return value
    return timestamp_text(dt)


def timestamp_text(dt: datetime) -> str:
    text = dt.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# -- metadata ---------------------------------------------------------------------------


class KnownGood:
    """A bounded set of values that already passed a check (names, namespaces, port
    names repeat across thousands of objects: one set lookup instead of a regex)."""

    __slots__ = ("_check", "_values")

    def __init__(self, check: Callable[[str], bool]) -> None:
        self._check = check
        self._values: set[str] = set()

    def __call__(self, value: str) -> bool:
        if value in self._values:
            return True
        if not self._check(value):
            return False
        if len(self._values) >= 4096:
            self._values.clear()
        self._values.add(value)
        return True


def _is_label(value: str) -> bool:
    return len(value) <= 63 and _DNS1123_LABEL.match(value) is not None


good_dns1123_label = KnownGood(_is_label)
good_iana_svc_name = KnownGood(lambda v: is_iana_svc_name(v))
_good_namespace = good_dns1123_label
# name rule -> (max length, fast matcher, checker that reports)
_NAME_RULES = {
    "dns1035": (63, _DNS1035_LABEL.match, check_dns1035_label),
    "subdomain": (253, _DNS1123_SUBDOMAIN.match, check_dns1123_subdomain),
}


def name_matcher(rule: str) -> Callable[[str], bool]:
    """The check of a name rule ("dns1035" or "subdomain") as a predicate, reporting
    nothing."""
    max_len, match, _ = _NAME_RULES[rule]
    return lambda value: len(value) <= max_len and match(value) is not None


def read_meta(
    p: Problems,
    doc: Mapping[str, Any],
    namespaced: bool,
    name_check: str = "subdomain",
) -> ObjectMeta | None:
    """metadata -> ObjectMeta (namespace "default" when absent for namespaced kinds)."""
    m = doc.get("metadata")
    if type(m) is not dict:
        m = get_map(p, doc, "metadata", "")
    name = m.get("name")
    ok = False
    max_len, match, check = _NAME_RULES[name_check]
    if type(name) is str and name and len(name) <= max_len and match(name) is not None:
        ok = True
    elif name is None or name == "":
        p.add("metadata.name", "required")
    elif type(name) is not str:
        p.add("metadata.name", "must be a string, got " + show(name))
    else:
        check(p, name, "metadata.name")
    namespace = ""
    if namespaced:
        ns = m.get("namespace")
        if not ns:
            namespace = "default"
        elif type(ns) is str and _good_namespace(ns):
            namespace = ns
        else:
            ok = False
            if type(ns) is str:
                check_dns1123_label(p, ns, "metadata.namespace")
            else:
                get_str(p, m, "namespace", "metadata.")
    uid = m.get("uid", "")
    if type(uid) is not str:
        uid = get_str(p, m, "uid", "metadata.") or ""
    rv = m.get("resourceVersion", "")
    if type(rv) is not str:
        rv = get_str(p, m, "resourceVersion", "metadata.") or ""
    ts = m.get("creationTimestamp")
    if ts is None:
        created = ""
    elif type(ts) is str:
        created = canonical_timestamp(ts)
    elif isinstance(ts, datetime):
        created = timestamp_text(ts)
    else:
        p.add("metadata.creationTimestamp", "must be an RFC 3339 timestamp, got " + show(ts))
        created = ""
    labels = m.get("labels")
    if labels is None:
        labels = {}
    elif type(labels) is not dict or not all_str(labels):
        labels = get_str_map(p, m, "labels", "metadata.")
    annotations = m.get("annotations")
    if annotations is None:
        annotations = {}
    elif type(annotations) is not dict or not all_str(annotations):
        annotations = get_str_map(p, m, "annotations", "metadata.")
    generation = m.get("generation", 0)
    if type(generation) is not int:
        generation = get_int(p, m, "generation", "metadata.") or 0
    if not ok:
        return None
    return ObjectMeta(
        cast(str, name), namespace, uid, rv, created, labels, annotations, generation
    )


def all_str(m: Mapping[Any, Any]) -> bool:
    for k, v in m.items():  # noqa: SIM110  (a plain loop: all() over a generator is slower)
        if type(v) is not str or type(k) is not str:
            return False
    return True
