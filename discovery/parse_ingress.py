"""networking.k8s.io/v1 Ingress and IngressClass manifests -> discovery.model objects.

An Ingress without spec.ingressClassName but with the deprecated
`kubernetes.io/ingress.class` annotation gets the annotation's value as its class, as
ingress controllers still honour it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, cast

from discovery.model import (
    Ingress,
    IngressBackend,
    IngressClass,
    IngressPath,
    IngressRule,
    IngressTLS,
    PathType,
)
from discovery.parse_common import (
    IANA_MESSAGE,
    Problems,
    check_dns1035_label,
    check_dns1123_subdomain,
    check_enum,
    check_port,
    get_int,
    get_list,
    get_map,
    get_str,
    get_str_list,
    is_dns1123_subdomain,
    is_iana_svc_name,
    load_balancer_ingress,
    read_meta,
    show,
)

PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")
CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def parse_ingress(p: Problems, doc: Mapping[str, Any]) -> Ingress | None:
    meta = read_meta(p, doc, namespaced=True)
    spec = get_map(p, doc, "spec", "")
    class_name = get_str(p, spec, "ingressClassName", "spec.")
    if class_name:
        check_dns1123_subdomain(p, class_name, "spec.ingressClassName")
    elif meta is not None and meta.annotations.get(CLASS_ANNOTATION):
        class_name = meta.annotations[CLASS_ANNOTATION]
    default_backend = None
    if spec.get("defaultBackend") is not None:
        default_backend = _backend(p, spec["defaultBackend"], "spec.defaultBackend")
    rules = tuple(
        r
        for i, raw in enumerate(get_list(p, spec, "rules", "spec."))
        if (r := _rule(p, raw, f"spec.rules[{i}]")) is not None
    )
    if not rules and default_backend is None and "defaultBackend" not in spec:
        p.add("spec", "must have rules or a defaultBackend")
    tls = tuple(
        t
        for i, raw in enumerate(get_list(p, spec, "tls", "spec."))
        if (t := _tls(p, raw, f"spec.tls[{i}]")) is not None
    )
    if p.errors or meta is None:
        return None
    # The status is written by controllers (seaway among them), not by the Ingress's
    # author: a bad entry is left out without refusing the Ingress.
    lb = load_balancer_ingress(Problems(""), doc) if "status" in doc else ()
    return Ingress(meta, class_name or None, default_backend, rules, tls, lb)


def parse_ingress_class(p: Problems, doc: Mapping[str, Any]) -> IngressClass | None:
    meta = read_meta(p, doc, namespaced=False)
    spec = get_map(p, doc, "spec", "")
    controller = get_str(p, spec, "controller", "spec.")
    if not controller:
        if "controller" not in spec or controller == "":
            p.add("spec.controller", "required (e.g. seaway.dev/ingress)")
    elif len(controller) > 250:
        p.add("spec.controller", f"must be at most 250 characters, got {len(controller)}")
    if p.errors or meta is None or not controller:
        return None
    return IngressClass(meta, controller)


def _rule(p: Problems, raw: Any, path: str) -> IngressRule | None:
    if type(raw) is not dict:
        p.add(path, "must be a mapping, got " + show(raw))
        return None
    host = get_str(p, raw, "host", path + ".") or ""
    if host:
        check_host(p, host, path + ".host")
    http = raw.get("http")
    paths: list[IngressPath] = []
    if http is not None:
        if type(http) is not dict:
            p.add(path + ".http", "must be a mapping, got " + show(http))
        else:
            raw_paths = get_list(p, http, "paths", path + ".http.")
            if not raw_paths:
                p.add(path + ".http.paths", "required (at least one path)")
            for j, item in enumerate(raw_paths):
                ip = _path(p, item, f"{path}.http.paths[{j}]")
                if ip is not None:
                    paths.append(ip)
    return IngressRule(host, tuple(paths))


def _path(p: Problems, raw: Any, path: str) -> IngressPath | None:
    if type(raw) is not dict:
        p.add(path, "must be a mapping, got " + show(raw))
        return None
    url_path = get_str(p, raw, "path", path + ".") or ""
    path_type = get_str(p, raw, "pathType", path + ".")
    if path_type is None:
        if raw.get("pathType") is None:
            p.add(path + ".pathType", "required (Exact, Prefix or ImplementationSpecific)")
    elif check_enum(p, path_type, PATH_TYPES, path + ".pathType"):
        if path_type != "ImplementationSpecific" and not url_path.startswith("/"):
            p.add(
                path + ".path", f"must start with / for pathType {path_type}, got {show(url_path)}"
            )
        elif url_path and not url_path.startswith("/"):
            p.add(path + ".path", "must be an absolute path (start with /), got " + show(url_path))
    backend = None
    if raw.get("backend") is None:
        p.add(path + ".backend", "required")
    else:
        backend = _backend(p, raw["backend"], path + ".backend")
    if backend is None or path_type not in PATH_TYPES:
        return None
    return IngressPath(url_path, cast(PathType, path_type), backend)


def _backend(p: Problems, raw: Any, path: str) -> IngressBackend | None:
    if type(raw) is not dict:
        p.add(path, "must be a mapping, got " + show(raw))
        return None
    service = raw.get("service")
    resource = raw.get("resource")
    if service is not None and resource is not None:
        p.add(path, "must have service or resource, not both")
        return None
    if resource is not None:
        return _resource_backend(p, resource, path + ".resource")
    if type(service) is not dict:
        if service is None:
            p.add(path + ".service", "required (or resource)")
        else:
            p.add(path + ".service", "must be a mapping, got " + show(service))
        return None
    spath = path + ".service."
    name = get_str(p, service, "name", spath)
    ok = True
    if not name:
        if service.get("name") in (None, ""):
            p.add(spath + "name", "required")
        ok = False
    else:
        ok = check_dns1035_label(p, name, spath + "name")
    port = service.get("port")
    number: int | None = None
    port_name = ""
    if type(port) is not dict:
        p.add(
            spath + "port",
            "required (number or name)" if port is None else "must be a mapping, got " + show(port),
        )
        ok = False
    else:
        number = get_int(p, port, "number", spath + "port.")
        port_name = get_str(p, port, "name", spath + "port.") or ""
        if number is not None and port_name:
            p.add(spath + "port", "must have number or name, not both")
            ok = False
        elif number is not None:
            ok = check_port(p, number, spath + "port.number") is not None and ok
        elif port_name:
            if not is_iana_svc_name(port_name):
                p.add(spath + "port.name", IANA_MESSAGE + show(port_name))
                ok = False
        else:
            if port.get("number") is None and port.get("name") is None:
                p.add(spath + "port", "required (number or name)")
            ok = False
    if not ok or name is None:
        return None
    return IngressBackend(service_name=name, port_number=number, port_name=port_name)


def _resource_backend(p: Problems, raw: Any, path: str) -> IngressBackend | None:
    if type(raw) is not dict:
        p.add(path, "must be a mapping, got " + show(raw))
        return None
    group = get_str(p, raw, "apiGroup", path + ".") or ""
    kind = get_str(p, raw, "kind", path + ".")
    name = get_str(p, raw, "name", path + ".")
    if not kind:
        p.add(path + ".kind", "required")
    if not name:
        p.add(path + ".name", "required")
    if not kind or not name:
        return None
    return IngressBackend(resource=f"{group}/{kind}/{name}")


def _tls(p: Problems, raw: Any, path: str) -> IngressTLS | None:
    if type(raw) is not dict:
        p.add(path, "must be a mapping, got " + show(raw))
        return None
    hosts = get_str_list(p, raw, "hosts", path + ".")
    for i, host in enumerate(hosts):
        check_host(p, host, f"{path}.hosts[{i}]")
    secret = get_str(p, raw, "secretName", path + ".")
    if not secret:
        if raw.get("secretName") in (None, ""):
            p.add(path + ".secretName", "required")
        return None
    if not check_dns1123_subdomain(p, secret, path + ".secretName"):
        return None
    return IngressTLS(tuple(hosts), secret)


def check_host(p: Problems, host: str, path: str) -> bool:
    """A DNS name (lowercase), "*" allowed only as the whole first label; no IP address."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        p.add(path, "must be a DNS name, not an IP address, got " + show(host))
        return False
    name = host[2:] if host.startswith("*.") else host
    if "*" in name or not name:
        p.add(
            path,
            "a wildcard is only allowed as the whole first label (*.example.com), got "
            + show(host),
        )
        return False
    if len(host) <= 253 and is_dns1123_subdomain(name):
        return True
    return check_dns1123_subdomain(p, host, path)  # reports the host as written
