"""Gateway API HTTPRoute manifests -> discovery.model_gateway.HTTPRoute.

Validated as the CRD validates (patterns, enums, CEL rules), with its defaults applied
when a manifest leaves them out, as a hand-written file will: no rules means one rule
matching PathPrefix "/"; a rule without matches matches PathPrefix "/"; a path match's
type is PathPrefix and its value "/"; header and query matches are Exact; a backendRef is
a core Service with weight 1; a parentRef is a Gateway; a redirect answers 302.

What only a controller can judge (a regular expression seaway cannot compile, a filter
seaway does not implement, a Service that does not exist) is left to the route's status.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from discovery.model_gateway import (
    HeaderMatch,
    HeaderModifier,
    HTTPBackendRef,
    HTTPRoute,
    HTTPRouteFilter,
    HTTPRouteMatch,
    HTTPRouteRetry,
    HTTPRouteRule,
    HTTPRouteTimeouts,
    LocalObjectRef,
    ParentRef,
    PathMatch,
    PathModifier,
    QueryParamMatch,
    RequestMirror,
    RequestRedirect,
    RouteParentStatus,
    URLRewrite,
)
from discovery.parse_common import (
    Problems,
    check_enum,
    check_port,
    get_int,
    get_list,
    get_map,
    get_str,
    read_meta,
    show,
)
from discovery.parse_gateway_common import (
    check_group,
    check_header_name,
    check_hostname,
    check_kind,
    check_object_name,
    check_section_name,
    items_at,
    opt_map,
    parse_backend_object_ref,
    parse_duration,
    parse_parent_ref,
    read_conditions,
    read_status_parent_ref,
    required_str,
    status_of,
    sub,
)

PATH_TYPES = ("Exact", "PathPrefix", "RegularExpression")
VALUE_MATCH_TYPES = ("Exact", "RegularExpression")
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
FILTER_TYPES = (
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestMirror",
    "RequestRedirect",
    "URLRewrite",
    "ExtensionRef",
    "CORS",
    "ExternalAuth",
)
# filter type -> the field holding its configuration
FILTER_FIELDS = {
    "RequestHeaderModifier": "requestHeaderModifier",
    "ResponseHeaderModifier": "responseHeaderModifier",
    "RequestMirror": "requestMirror",
    "RequestRedirect": "requestRedirect",
    "URLRewrite": "urlRewrite",
    "ExtensionRef": "extensionRef",
    "CORS": "cors",
    "ExternalAuth": "externalAuth",
}
REPEATABLE_FILTERS = ("RequestMirror", "ExtensionRef")
REDIRECT_CODES = (301, 302, 303, 307, 308)
PATH_MODIFIERS = ("ReplaceFullPath", "ReplacePrefixMatch")
SCHEMES = ("http", "https")
MAX_WEIGHT = 1_000_000
_PATH_CHARS = re.compile(r"(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+\Z")


def parse_httproute(p: Problems, doc: Mapping[str, Any]) -> HTTPRoute | None:
    meta = read_meta(p, doc, namespaced=True)
    spec = get_map(p, doc, "spec", "")
    parents = read_parent_refs(p, spec)
    hostnames = []
    raw_hosts = get_list(p, spec, "hostnames", "spec.")
    if len(raw_hosts) > 16:
        p.add("spec.hostnames", f"must have at most 16 items, got {len(raw_hosts)}")
    for i, host in enumerate(raw_hosts):
        if type(host) is not str:
            p.add(f"spec.hostnames[{i}]", "must be a string, got " + show(host))
        elif check_hostname(p, host, f"spec.hostnames[{i}]"):
            hostnames.append(host)
    rules: list[HTTPRouteRule] = []
    raw_rules = items_at(p, spec, "rules", "spec", 16, 1)
    for where, raw in raw_rules:
        rule = _rule(p, raw, where)
        if rule is not None:
            rules.append(rule)
    if spec.get("rules") is None:
        rules.append(HTTPRouteRule())  # the CRD's default: one rule, PathPrefix "/"
    _check_rule_names(p, rules)
    if sum(len(r.matches) for r in rules) > 128:
        p.add("spec.rules", "must have at most 128 matches across all rules")
    if p.errors or meta is None:
        return None
    return HTTPRoute(
        meta, tuple(parents), tuple(hostnames), tuple(rules), parents_status(status_of(doc))
    )


def read_parent_refs(p: Problems, spec: Mapping[str, Any]) -> list[ParentRef]:
    """spec.parentRefs of a route (any kind), checked as the CRDs check them."""
    parents = [
        ref
        for where, raw in items_at(p, spec, "parentRefs", "spec", 32)
        if (ref := parse_parent_ref(p, raw, where)) is not None
    ]
    check_distinct_parents(p, parents)
    return parents


def check_distinct_parents(p: Problems, parents: list[ParentRef]) -> None:
    """The CRD's rule: references to one parent must each set sectionName (or port), and
    differ in them."""
    seen: dict[tuple[str, str, str, str], list[ParentRef]] = {}
    for ref in parents:
        seen.setdefault((ref.group, ref.kind, ref.namespace, ref.name), []).append(ref)
    for (_, kind, _, name), refs in seen.items():
        if len(refs) < 2:
            continue
        shapes = {(bool(r.section_name), r.port is not None) for r in refs}
        if len(shapes) > 1 or shapes == {(False, False)}:
            p.add(
                "spec.parentRefs",
                f"{kind} {show(name)} is referenced more than once: each reference must set "
                "sectionName (or port), and all of them the same fields",
            )
        elif len({(r.section_name, r.port) for r in refs}) < len(refs):
            p.add(
                "spec.parentRefs",
                f"{kind} {show(name)} is referenced twice with the same sectionName and port",
            )


def _check_rule_names(p: Problems, rules: list[HTTPRouteRule]) -> None:
    names = [r.name for r in rules if r.name]
    for name in sorted({n for n in names if names.count(n) > 1}):
        p.add("spec.rules", f"rule name {show(name)} is used more than once")


# -- rules ------------------------------------------------------------------------------------


def _rule(p: Problems, raw: Mapping[str, Any], path: str) -> HTTPRouteRule | None:
    errors = len(p.errors)
    name = get_str(p, raw, "name", path + ".") or ""
    if name:
        check_section_name(p, name, sub(path, "name"))
    matches = [
        m
        for where, item in items_at(p, raw, "matches", path, 64)
        if (m := _match(p, item, where)) is not None
    ]
    if raw.get("matches") is None:
        matches.append(HTTPRouteMatch())
    filters = _filters(p, raw, path)
    backends = [
        b
        for where, item in items_at(p, raw, "backendRefs", path, 16)
        if (b := _backend_ref(p, item, where)) is not None
    ]
    if backends and any(f.type == "RequestRedirect" for f in filters):
        p.add(sub(path, "filters"), "a RequestRedirect filter must not be used with backendRefs")
    uses_prefix = any(
        modifier is not None and modifier.type == "ReplacePrefixMatch"
        for f in (*filters, *(bf for b in backends for bf in b.filters))
        for modifier in (
            f.url_rewrite.path if f.url_rewrite else None,
            f.request_redirect.path if f.request_redirect else None,
        )
    )
    if uses_prefix and (len(matches) != 1 or matches[0].path.type != "PathPrefix"):
        p.add(
            sub(path, "matches"),
            "a path modifier of type ReplacePrefixMatch needs exactly one match, of type "
            "PathPrefix",
        )
    timeouts = None
    raw_timeouts = opt_map(p, raw, "timeouts", path)
    if raw_timeouts is not None:
        timeouts = _timeouts(p, raw_timeouts, sub(path, "timeouts"))
    retry = None
    raw_retry = opt_map(p, raw, "retry", path)
    if raw_retry is not None:
        retry = _retry(p, raw_retry, sub(path, "retry"))
    if len(p.errors) > errors:
        return None
    return HTTPRouteRule(
        tuple(matches),
        tuple(filters),
        tuple(backends),
        timeouts,
        retry,
        name,
        raw.get("sessionPersistence") is not None,
    )


def _match(p: Problems, raw: Mapping[str, Any], path: str) -> HTTPRouteMatch | None:
    errors = len(p.errors)
    path_match = PathMatch()
    raw_path = opt_map(p, raw, "path", path)
    if raw_path is not None:
        path_match = _path_match(p, raw_path, sub(path, "path")) or path_match
    headers = []
    for where, item in _unique_by_name(p, raw, "headers", path):
        mtype, name, value = _value_match(p, item, where, 4096)
        if name is not None and value is not None:
            headers.append(HeaderMatch(name, value, mtype))
    params = []
    for where, item in _unique_by_name(p, raw, "queryParams", path):
        mtype, name, value = _value_match(p, item, where, 1024)
        if name is not None and value is not None:
            params.append(QueryParamMatch(name, value, mtype))
    method = get_str(p, raw, "method", path + ".") or ""
    if method:
        check_enum(p, method, METHODS, sub(path, "method"))
    if len(p.errors) > errors:
        return None
    return HTTPRouteMatch(path_match, tuple(headers), tuple(params), method)


def _path_match(p: Problems, raw: Mapping[str, Any], path: str) -> PathMatch | None:
    ptype = get_str(p, raw, "type", path + ".") or "PathPrefix"
    value = get_str(p, raw, "value", path + ".")
    if value is None:
        value = "/"
    if not check_enum(p, ptype, PATH_TYPES, sub(path, "type")):
        return None
    where = sub(path, "value")
    if len(value) > 1024:
        p.add(where, f"must be at most 1024 characters, got {len(value)}")
        return None
    if ptype == "RegularExpression":
        return PathMatch(ptype, value)
    problem = _path_problem(value)
    if problem:
        p.add(where, f"{problem} for type {ptype}, got {show(value)}")
        return None
    return PathMatch(ptype, value)


def _path_problem(value: str) -> str:
    """Why an Exact or PathPrefix value is invalid (the CRD's CEL rules), or ""."""
    if not value.startswith("/"):
        return "must be an absolute path (start with /)"
    for bad in ("//", "/./", "/../", "%2f", "%2F", "#"):
        if bad in value:
            return f"must not contain {show(bad)}"
    for end in ("/..", "/."):
        if value.endswith(end):
            return f"must not end with {show(end)}"
    if not _PATH_CHARS.match(value):
        return "must only contain URL path characters (or %XX escapes)"
    return ""


def _unique_by_name(
    p: Problems, raw: Mapping[str, Any], key: str, path: str
) -> list[tuple[str, Mapping[str, Any]]]:
    items = items_at(p, raw, key, path, 16)
    seen: set[Any] = set()
    for where, item in items:
        name = item.get("name")
        if type(name) is str and name in seen:
            p.add(sub(where, "name"), f"{show(name)} is listed twice")
        seen.add(name)
    return items


def _value_match(
    p: Problems, raw: Mapping[str, Any], path: str, max_len: int
) -> tuple[str, str | None, str | None]:
    mtype = get_str(p, raw, "type", path + ".") or "Exact"
    check_enum(p, mtype, VALUE_MATCH_TYPES, sub(path, "type"))
    name = required_str(p, raw, "name", path)
    if name is not None and not check_header_name(p, name, sub(path, "name")):
        name = None
    value = required_str(p, raw, "value", path)
    if value is not None and len(value) > max_len:
        p.add(sub(path, "value"), f"must be at most {max_len} characters, got {len(value)}")
        value = None
    return mtype, name, value


# -- filters ------------------------------------------------------------------------------------


def _filters(p: Problems, raw: Mapping[str, Any], path: str) -> list[HTTPRouteFilter]:
    filters = [
        f
        for where, item in items_at(p, raw, "filters", path, 16)
        if (f := _filter(p, item, where)) is not None
    ]
    types = [f.type for f in filters]
    for ftype in sorted(set(types)):
        if types.count(ftype) > 1 and ftype not in REPEATABLE_FILTERS:
            p.add(sub(path, "filters"), f"the {ftype} filter must not be repeated")
    if "RequestRedirect" in types and "URLRewrite" in types:
        p.add(sub(path, "filters"), "RequestRedirect and URLRewrite must not be used together")
    return filters


def _filter(p: Problems, raw: Mapping[str, Any], path: str) -> HTTPRouteFilter | None:
    errors = len(p.errors)
    ftype = required_str(p, raw, "type", path)
    if ftype is None or not check_enum(p, ftype, FILTER_TYPES, sub(path, "type")):
        return None
    field = FILTER_FIELDS[ftype]
    for other in FILTER_FIELDS.values():
        if other != field and raw.get(other) is not None:
            p.add(sub(path, other), f"must not be set for a filter of type {ftype}")
    config = opt_map(p, raw, field, path)
    if config is None:
        if raw.get(field) is None:
            p.add(sub(path, field), f"required for a filter of type {ftype}")
        return None
    where = sub(path, field)
    result = HTTPRouteFilter(ftype)
    if ftype == "RequestHeaderModifier":
        result = HTTPRouteFilter(ftype, request_header_modifier=_header_modifier(p, config, where))
    elif ftype == "ResponseHeaderModifier":
        result = HTTPRouteFilter(ftype, response_header_modifier=_header_modifier(p, config, where))
    elif ftype == "RequestRedirect":
        result = HTTPRouteFilter(ftype, request_redirect=_redirect(p, config, where))
    elif ftype == "URLRewrite":
        result = HTTPRouteFilter(ftype, url_rewrite=_rewrite(p, config, where))
    elif ftype == "RequestMirror":
        mirror = _mirror(p, config, where)
        result = HTTPRouteFilter(ftype, request_mirror=mirror)
    elif ftype == "ExtensionRef":
        result = HTTPRouteFilter(ftype, extension_ref=_extension_ref(p, config, where))
    if len(p.errors) > errors:
        return None
    return result


def _header_modifier(p: Problems, raw: Mapping[str, Any], path: str) -> HeaderModifier:
    lists: dict[str, tuple[tuple[str, str], ...]] = {}
    for key in ("set", "add"):
        pairs = []
        for where, item in _unique_by_name(p, raw, key, path):
            name = required_str(p, item, "name", where)
            value = required_str(p, item, "value", where)
            if name is not None and check_header_name(p, name, sub(where, "name")):
                if value is not None and len(value) <= 4096:
                    pairs.append((name, value))
                elif value is not None:
                    p.add(sub(where, "value"), f"must be at most 4096 characters, got {len(value)}")
        lists[key] = tuple(pairs)
    remove = []
    raw_remove = get_list(p, raw, "remove", path + ".")
    if len(raw_remove) > 16:
        p.add(sub(path, "remove"), f"must have at most 16 items, got {len(raw_remove)}")
    for i, name in enumerate(raw_remove):
        if type(name) is not str:
            p.add(f"{path}.remove[{i}]", "must be a string, got " + show(name))
        elif name in remove:
            p.add(f"{path}.remove[{i}]", f"{show(name)} is listed twice")
        elif check_header_name(p, name, f"{path}.remove[{i}]"):
            remove.append(name)
    return HeaderModifier(lists["set"], lists["add"], tuple(remove))


def _path_modifier(p: Problems, raw: Mapping[str, Any], path: str) -> PathModifier | None:
    mtype = required_str(p, raw, "type", path)
    if mtype is None or not check_enum(p, mtype, PATH_MODIFIERS, sub(path, "type")):
        return None
    field = "replaceFullPath" if mtype == "ReplaceFullPath" else "replacePrefixMatch"
    other = "replacePrefixMatch" if field == "replaceFullPath" else "replaceFullPath"
    if raw.get(other) is not None:
        p.add(sub(path, other), f"must not be set when type is {mtype}")
    value = get_str(p, raw, field, path + ".")
    if value is None:
        if raw.get(field) is None:
            p.add(sub(path, field), f"required when type is {mtype}")
        return None
    if len(value) > 1024:
        p.add(sub(path, field), f"must be at most 1024 characters, got {len(value)}")
        return None
    return PathModifier(mtype, value)


def _redirect(p: Problems, raw: Mapping[str, Any], path: str) -> RequestRedirect:
    scheme = get_str(p, raw, "scheme", path + ".") or ""
    if scheme:
        check_enum(p, scheme, SCHEMES, sub(path, "scheme"))
    hostname = get_str(p, raw, "hostname", path + ".") or ""
    if hostname:
        check_hostname(p, hostname, sub(path, "hostname"), wildcard=False)
    modifier = None
    raw_path = opt_map(p, raw, "path", path)
    if raw_path is not None:
        modifier = _path_modifier(p, raw_path, sub(path, "path"))
    port = None
    if raw.get("port") is not None:
        port = check_port(p, get_int(p, raw, "port", path + "."), sub(path, "port"))
    code = get_int(p, raw, "statusCode", path + ".")
    if code is None:
        code = 302
    elif code not in REDIRECT_CODES:
        p.add(sub(path, "statusCode"), f"must be one of 301, 302, 303, 307, 308, got {code}")
    return RequestRedirect(scheme, hostname, modifier, port, code)


def _rewrite(p: Problems, raw: Mapping[str, Any], path: str) -> URLRewrite:
    hostname = get_str(p, raw, "hostname", path + ".") or ""
    if hostname:
        check_hostname(p, hostname, sub(path, "hostname"), wildcard=False)
    modifier = None
    raw_path = opt_map(p, raw, "path", path)
    if raw_path is not None:
        modifier = _path_modifier(p, raw_path, sub(path, "path"))
    return URLRewrite(hostname, modifier)


def _mirror(p: Problems, raw: Mapping[str, Any], path: str) -> RequestMirror | None:
    raw_ref = opt_map(p, raw, "backendRef", path)
    if raw_ref is None:
        if raw.get("backendRef") is None:
            p.add(sub(path, "backendRef"), "required")
        return None
    ref = parse_backend_object_ref(p, raw_ref, sub(path, "backendRef"))
    percent = get_int(p, raw, "percent", path + ".")
    if percent is not None and not 0 <= percent <= 100:
        p.add(sub(path, "percent"), f"must be 0-100, got {percent}")
    fraction = None
    raw_fraction = opt_map(p, raw, "fraction", path)
    if raw_fraction is not None:
        where = sub(path, "fraction")
        num = get_int(p, raw_fraction, "numerator", where + ".")
        den = get_int(p, raw_fraction, "denominator", where + ".")
        den = 100 if den is None else den
        if num is None:
            if raw_fraction.get("numerator") is None:
                p.add(sub(where, "numerator"), "required")
        elif num < 0 or den < 1 or num > den:
            p.add(
                where,
                f"must have 0 <= numerator <= denominator and denominator >= 1, got {num}/{den}",
            )
        else:
            fraction = (num, den)
    if percent is not None and raw_fraction is not None:
        p.add(path, "must have percent or fraction, not both")
    if ref is None:
        return None
    return RequestMirror(ref, percent, fraction)


def _extension_ref(p: Problems, raw: Mapping[str, Any], path: str) -> LocalObjectRef | None:
    group = raw.get("group")
    if type(group) is not str:
        p.add(sub(path, "group"), 'required ("" for the core group)')
        return None
    kind = required_str(p, raw, "kind", path)
    name = required_str(p, raw, "name", path)
    ok = check_group(p, group, sub(path, "group"))
    if kind is not None:
        ok = check_kind(p, kind, sub(path, "kind")) and ok
    if name is not None:
        ok = check_object_name(p, name, sub(path, "name")) and ok
    if not ok or kind is None or name is None:
        return None
    return LocalObjectRef(group, kind, name)


# -- backends, timeouts, retry --------------------------------------------------------------


def _backend_ref(p: Problems, raw: Mapping[str, Any], path: str) -> HTTPBackendRef | None:
    errors = len(p.errors)
    ref = parse_backend_object_ref(p, raw, path)
    weight = get_int(p, raw, "weight", path + ".")
    if weight is None:
        weight = 1
    elif not 0 <= weight <= MAX_WEIGHT:
        p.add(sub(path, "weight"), f"must be 0-{MAX_WEIGHT}, got {weight}")
    filters = _filters(p, raw, path)
    if ref is None or len(p.errors) > errors:
        return None
    return HTTPBackendRef(ref, weight, tuple(filters))


def _timeouts(p: Problems, raw: Mapping[str, Any], path: str) -> HTTPRouteTimeouts:
    request = backend = None
    if raw.get("request") is not None:
        request = parse_duration(p, raw["request"], sub(path, "request"))
    if raw.get("backendRequest") is not None:
        backend = parse_duration(p, raw["backendRequest"], sub(path, "backendRequest"))
    if request and backend is not None and backend > request:
        p.add(sub(path, "backendRequest"), "must not be longer than the request timeout")
    return HTTPRouteTimeouts(request, backend)


def _retry(p: Problems, raw: Mapping[str, Any], path: str) -> HTTPRouteRetry:
    codes = []
    for i, code in enumerate(get_list(p, raw, "codes", path + ".")):
        if type(code) is not int or not 400 <= code <= 599:
            p.add(f"{path}.codes[{i}]", "must be an HTTP status code 400-599, got " + show(code))
        else:
            codes.append(code)
    attempts = get_int(p, raw, "attempts", path + ".")
    if attempts is not None and attempts < 0:
        p.add(sub(path, "attempts"), f"must not be negative, got {attempts}")
    backoff = None
    if raw.get("backoff") is not None:
        backoff = parse_duration(p, raw["backoff"], sub(path, "backoff"))
    return HTTPRouteRetry(tuple(codes), attempts, backoff)


def parents_status(status: Mapping[str, Any]) -> tuple[RouteParentStatus, ...]:
    """status.parents as the API shows it (lenient: malformed entries are dropped)."""
    out = []
    for raw in status.get("parents") or ():
        if type(raw) is not dict or type(raw.get("controllerName")) is not str:
            continue
        ref = read_status_parent_ref(raw.get("parentRef"))
        if ref is not None:
            conditions = read_conditions(raw.get("conditions"))
            out.append(RouteParentStatus(ref, raw["controllerName"], conditions))
    return tuple(out)
