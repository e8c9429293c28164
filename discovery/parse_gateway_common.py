"""Pieces shared by the Gateway API parsers: the API's value formats (Group, Kind,
SectionName, Hostname, HeaderName, Duration, ...), references with their defaults, label
selectors, and the status a manifest carries (read leniently: status is written by
controllers, and a malformed one never rejects the object).

The checks are those the CRDs make (OpenAPI patterns, enums, CEL rules), so a file is
held to what the API server would accept; what only a controller can judge (an
unsupported protocol, a missing Secret) is a status matter (discovery/gateway_status.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from discovery.model_gateway import (
    GATEWAY_GROUP,
    BackendObjectRef,
    Condition,
    LabelRequirement,
    LabelSelector,
    ParentRef,
    RouteGroupKind,
    SecretObjectRef,
)
from discovery.parse_common import (
    Problems,
    check_dns1123_label,
    check_port,
    get_int,
    get_list,
    get_map,
    get_str,
    get_str_map,
    show,
)
from discovery.parse_ingress import check_host

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = rf"{_LABEL}(\.{_LABEL})*"
GROUP_RE = re.compile(rf"(|{_SUBDOMAIN})\Z")
KIND_RE = re.compile(r"[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?\Z")
SECTION_NAME_RE = re.compile(rf"{_SUBDOMAIN}\Z")
CONTROLLER_RE = re.compile(rf"{_SUBDOMAIN}/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+\Z")
HEADER_NAME_RE = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+\Z")
DURATION_RE = re.compile(r"([0-9]{1,5}(h|m|s|ms)){1,4}\Z")
_DURATION_PART = re.compile(r"([0-9]{1,5})(h|ms|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
LABEL_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def sub(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check_group(p: Problems, value: str, path: str) -> bool:
    if len(value) <= 253 and GROUP_RE.match(value):
        return True
    p.add(path, "must be empty (the core group) or a DNS subdomain, got " + show(value))
    return False


def check_kind(p: Problems, value: str, path: str) -> bool:
    if 1 <= len(value) <= 63 and KIND_RE.match(value):
        return True
    p.add(path, "must be a Kind (a letter, then letters, digits and '-'), got " + show(value))
    return False


def check_section_name(p: Problems, value: str, path: str) -> bool:
    if 1 <= len(value) <= 253 and SECTION_NAME_RE.match(value):
        return True
    p.add(path, "must be a DNS subdomain (lowercase letters, digits, '-', '.'), got " + show(value))
    return False


def check_object_name(p: Problems, value: str, path: str) -> bool:
    if 1 <= len(value) <= 253:
        return True
    p.add(path, "must be 1-253 characters, got " + show(value))
    return False


def check_header_name(p: Problems, value: str, path: str) -> bool:
    if 1 <= len(value) <= 256 and HEADER_NAME_RE.match(value):
        return True
    p.add(path, "must be an HTTP header name (RFC 7230 token), got " + show(value))
    return False


def check_hostname(p: Problems, value: str, path: str, wildcard: bool = True) -> bool:
    """Hostname (a "*." first label allowed) or, with wildcard=False, PreciseHostname."""
    if not wildcard and value.startswith("*"):
        p.add(path, "must be a hostname without a wildcard, got " + show(value))
        return False
    return check_host(p, value, path)


def parse_duration(p: Problems, value: Any, path: str) -> float | None:
    """A Gateway API Duration (GEP-2257: "1h", "500ms", "1m30s") in seconds."""
    if type(value) is not str or not DURATION_RE.match(value):
        p.add(path, 'must be a duration like "10s", "500ms" or "1m30s", got ' + show(value))
        return None
    return sum(int(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(value))


def required_str(p: Problems, d: Mapping[str, Any], key: str, path: str) -> str | None:
    """A string that must be present and non-empty."""
    value = get_str(p, d, key, sub(path, ""))
    if value:
        return value
    if d.get(key) in (None, ""):
        p.add(sub(path, key), "required")
    return None


def mapping_at(p: Problems, raw: Any, path: str) -> Mapping[str, Any] | None:
    if type(raw) is dict:
        return raw
    p.add(path, "must be a mapping, got " + show(raw))
    return None


def items_at(
    p: Problems, d: Mapping[str, Any], key: str, path: str, max_items: int, min_items: int = 0
) -> list[tuple[str, Mapping[str, Any]]]:
    """The mappings of a list field with their paths; wrong items and counts reported."""
    where = sub(path, key)
    raw = get_list(p, d, key, sub(path, ""))
    if len(raw) > max_items:
        p.add(where, f"must have at most {max_items} items, got {len(raw)}")
    elif len(raw) < min_items and (key in d):
        p.add(where, f"must have at least {min_items} item" + ("s" if min_items > 1 else ""))
    out: list[tuple[str, Mapping[str, Any]]] = []
    for i, item in enumerate(raw):
        m = mapping_at(p, item, f"{where}[{i}]")
        if m is not None:
            out.append((f"{where}[{i}]", m))
    return out


def _opt_str(p: Problems, d: Mapping[str, Any], key: str, path: str, default: str) -> str:
    if key not in d or d[key] is None:
        return default
    value = d[key]
    if type(value) is str:
        return value
    p.add(sub(path, key), "must be a string, got " + show(value))
    return default


def _opt_namespace(p: Problems, d: Mapping[str, Any], path: str) -> str:
    ns = _opt_str(p, d, "namespace", path, "")
    if ns and not check_dns1123_label(p, ns, sub(path, "namespace")):
        return ""
    return ns


def _opt_port(p: Problems, d: Mapping[str, Any], path: str) -> int | None:
    if d.get("port") is None:
        return None
    return check_port(p, get_int(p, d, "port", sub(path, "")), sub(path, "port"))


def parse_parent_ref(p: Problems, d: Mapping[str, Any], path: str) -> ParentRef | None:
    errors = len(p.errors)
    name = required_str(p, d, "name", path)
    if name is not None:
        check_object_name(p, name, sub(path, "name"))
    group = _opt_str(p, d, "group", path, GATEWAY_GROUP)
    check_group(p, group, sub(path, "group"))
    kind = _opt_str(p, d, "kind", path, "Gateway")
    check_kind(p, kind, sub(path, "kind"))
    namespace = _opt_namespace(p, d, path)
    section = _opt_str(p, d, "sectionName", path, "")
    if section:
        check_section_name(p, section, sub(path, "sectionName"))
    port = _opt_port(p, d, path)
    if name is None or len(p.errors) > errors:
        return None
    return ParentRef(name, group, kind, namespace, section, port)


def parse_backend_object_ref(
    p: Problems, d: Mapping[str, Any], path: str
) -> BackendObjectRef | None:
    errors = len(p.errors)
    name = required_str(p, d, "name", path)
    if name is not None:
        check_object_name(p, name, sub(path, "name"))
    group = _opt_str(p, d, "group", path, "")
    check_group(p, group, sub(path, "group"))
    kind = _opt_str(p, d, "kind", path, "Service")
    check_kind(p, kind, sub(path, "kind"))
    namespace = _opt_namespace(p, d, path)
    port = _opt_port(p, d, path)
    if group == "" and kind == "Service" and port is None and d.get("port") is None:
        p.add(sub(path, "port"), "required for a Service reference (the Service's port)")
    if name is None or len(p.errors) > errors:
        return None
    return BackendObjectRef(name, group, kind, namespace, port)


def parse_secret_ref(p: Problems, d: Mapping[str, Any], path: str) -> SecretObjectRef | None:
    errors = len(p.errors)
    name = required_str(p, d, "name", path)
    if name is not None:
        check_object_name(p, name, sub(path, "name"))
    group = _opt_str(p, d, "group", path, "")
    check_group(p, group, sub(path, "group"))
    kind = _opt_str(p, d, "kind", path, "Secret")
    check_kind(p, kind, sub(path, "kind"))
    namespace = _opt_namespace(p, d, path)
    if name is None or len(p.errors) > errors:
        return None
    return SecretObjectRef(name, group, kind, namespace)


def parse_route_group_kind(p: Problems, d: Mapping[str, Any], path: str) -> RouteGroupKind | None:
    errors = len(p.errors)
    kind = required_str(p, d, "kind", path)
    if kind is not None:
        check_kind(p, kind, sub(path, "kind"))
    group = _opt_str(p, d, "group", path, GATEWAY_GROUP)
    check_group(p, group, sub(path, "group"))
    if kind is None or len(p.errors) > errors:
        return None
    return RouteGroupKind(kind, group)


def parse_label_selector(p: Problems, d: Mapping[str, Any], path: str) -> LabelSelector:
    labels = get_str_map(p, d, "matchLabels", sub(path, ""))
    requirements: list[LabelRequirement] = []
    for where, expr in items_at(p, d, "matchExpressions", path, 1 << 16):
        key = required_str(p, expr, "key", where)
        op = required_str(p, expr, "operator", where)
        values = tuple(v for v in get_list(p, expr, "values", sub(where, "")) if type(v) is str)
        if op is not None and op not in LABEL_OPERATORS:
            p.add(
                sub(where, "operator"),
                "must be one of In, NotIn, Exists, DoesNotExist, got " + show(op),
            )
            continue
        if op in ("In", "NotIn") and not values:
            p.add(sub(where, "values"), f"required (at least one value) for operator {op}")
        elif op in ("Exists", "DoesNotExist") and values:
            p.add(sub(where, "values"), f"must be empty for operator {op}")
        if key is not None and op is not None:
            requirements.append(LabelRequirement(key, op, values))
    return LabelSelector(dict(labels), tuple(requirements))


# -- status as the API shows it (lenient) -------------------------------------------------


def read_conditions(raw: Any) -> tuple[Condition, ...]:
    """status...conditions: malformed entries are skipped, never reported."""
    if type(raw) is not list:
        return ()
    out: list[Condition] = []
    for c in raw:
        if type(c) is not dict:
            continue
        ctype, status = c.get("type"), c.get("status")
        if type(ctype) is not str or type(status) is not str:
            continue
        gen = c.get("observedGeneration")
        ltt = c.get("lastTransitionTime")
        out.append(
            Condition(
                ctype,
                status,
                c["reason"] if type(c.get("reason")) is str else "",
                c["message"] if type(c.get("message")) is str else "",
                gen if type(gen) is int else 0,
                ltt if type(ltt) is str else "",
            )
        )
    return tuple(out)


def read_status_parent_ref(raw: Any) -> ParentRef | None:
    """A status parentRef, leniently (no errors; None when unusable)."""
    if type(raw) is not dict:
        return None
    p = Problems("")
    ref = parse_parent_ref(p, raw, "parentRef")
    return ref if not p.errors else None


def status_of(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    status = doc.get("status")
    return status if type(status) is dict else {}


def opt_map(p: Problems, d: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    """A mapping field, or None when absent (errors reported)."""
    if d.get(key) is None:
        return None
    value = get_map(p, d, key, sub(path, ""))
    return value if type(d.get(key)) is dict else None
