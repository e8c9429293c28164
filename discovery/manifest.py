"""Kubernetes manifests -> validated seaway objects.

Entry points:
- `parse_object(doc, file)`: one decoded object (a dict as `kubectl get -o yaml/json`
  prints it or as the API returns it) -> (object, []) or (None, errors).
- `parse_manifest_text(text, file)`: YAML (multi-document, `kind: List`) or JSON.
- `load_path(path)`: a file, or a directory searched recursively for *.yaml, *.yml and
  *.json (dotfiles and editor temp files skipped).

Every error of a file is reported, each naming file, object and field path, e.g.
`web.yaml: Service default/web: spec.ports[0].port: must be 1-65535, got 70000`.
An object with errors is not returned. Kinds seaway does not use (Deployment,
StatefulSet, ...) are skipped silently. Secrets of every type are read (kubernetes.io/tls
ones for certificates, the others for ingress-nginx's auth-secret and proxy-ssl-secret);
the sources keep only those seaway's objects name (discovery/secret_refs.py).
ConfigMaps are read (one of them may hold ingress-nginx settings: --configmap).
Nodes are read for their labels only (the zone of the node seaway runs on).
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from discovery.model import KubeObject, ObjectKey
from discovery.parse_common import ManifestError, Problems, show
from discovery.parse_configmap import parse_configmap
from discovery.parse_endpointslice import parse_endpointslice
from discovery.parse_fast import fast_endpointslice, fast_service
from discovery.parse_gateway import (
    parse_gateway,
    parse_gateway_class,
    parse_namespace,
    parse_reference_grant,
)
from discovery.parse_httproute import parse_httproute
from discovery.parse_ingress import parse_ingress, parse_ingress_class
from discovery.parse_node import parse_node
from discovery.parse_secret import parse_secret
from discovery.parse_service import parse_service
from discovery.parse_tlsroute import parse_tcproute, parse_tlsroute, parse_udproute
from discovery.yaml_decode import (
    DecodeError,
    decode_exact,
    decode_fast,
    decode_json,
    looks_like_json,
)

__all__ = [
    "LoadResult",
    "ManifestError",
    "discover_files",
    "load_file",
    "load_path",
    "parse_manifest_text",
    "parse_object",
]

log = logging.getLogger(__name__)

Parser = Callable[[Problems, Mapping[str, Any]], KubeObject | None]
FastParser = Callable[[Mapping[str, Any]], KubeObject | None]

GATEWAY_V1 = "gateway.networking.k8s.io/v1"
GATEWAY_V1BETA1 = "gateway.networking.k8s.io/v1beta1"
GATEWAY_V1ALPHA3 = "gateway.networking.k8s.io/v1alpha3"
GATEWAY_V1ALPHA2 = "gateway.networking.k8s.io/v1alpha2"
# kind -> (apiVersions accepted, the first preferred; namespaced; parser). The Gateway API
# kinds are the same in v1beta1 (older manifests) as in v1.
_KINDS: dict[str, tuple[tuple[str, ...], bool, Parser]] = {
    "Service": (("v1",), True, parse_service),
    "EndpointSlice": (("discovery.k8s.io/v1",), True, parse_endpointslice),
    "Ingress": (("networking.k8s.io/v1",), True, parse_ingress),
    "IngressClass": (("networking.k8s.io/v1",), False, parse_ingress_class),
    "Secret": (("v1",), True, parse_secret),
    "Node": (("v1",), False, parse_node),
    "ConfigMap": (("v1",), True, parse_configmap),
    "Namespace": (("v1",), False, parse_namespace),
    "GatewayClass": ((GATEWAY_V1, GATEWAY_V1BETA1), False, parse_gateway_class),
    "Gateway": ((GATEWAY_V1, GATEWAY_V1BETA1), True, parse_gateway),
    "HTTPRoute": ((GATEWAY_V1, GATEWAY_V1BETA1), True, parse_httproute),
    "TLSRoute": ((GATEWAY_V1, GATEWAY_V1ALPHA3, GATEWAY_V1ALPHA2), True, parse_tlsroute),
    "TCPRoute": ((GATEWAY_V1ALPHA2,), True, parse_tcproute),
    "UDPRoute": ((GATEWAY_V1ALPHA2,), True, parse_udproute),
    "ReferenceGrant": ((GATEWAY_V1BETA1, GATEWAY_V1), True, parse_reference_grant),
}
# Fast paths (discovery/parse_fast.py) for the kinds a big config has by the thousand: the
# object, or None ("not sure": the strict parser then decides and reports).
_FAST: dict[str, FastParser] = {"Service": fast_service, "EndpointSlice": fast_endpointslice}
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def parse_object(
    doc: Mapping[str, Any], file: str, where: str = "object"
) -> tuple[KubeObject | None, list[ManifestError]]:
    """One decoded manifest -> (object, []) or (None, errors); (None, []) for kinds
    seaway ignores. `where` names the object in messages when it has no usable name."""
    if type(doc) is not dict and isinstance(doc, Mapping):
        doc = dict(doc)
    if type(doc) is not dict:
        return None, [
            ManifestError(
                file, where, "", "must be a mapping (a Kubernetes object), got " + show(doc)
            )
        ]
    kind: Any = doc.get("kind")
    entry = _KINDS.get(kind) if type(kind) is str else None
    if entry is None:
        if not kind:
            return None, [ManifestError(file, where, "kind", "required")]
        log.debug("%s: %s: kind %s ignored", file, where, show(kind))
        return None, []
    api_versions, namespaced, parser = entry
    if doc.get("apiVersion") not in api_versions:
        p = Problems(file, label_of=(kind, namespaced, doc, where))
        wanted = " or ".join(api_versions)
        p.add("apiVersion", f"must be {wanted}, got {show(doc.get('apiVersion'))}")
        return None, p.errors
    fast = _FAST.get(kind)
    if fast is not None:
        obj = fast(doc)
        if obj is not None:
            return obj, []
    p = Problems(file, label_of=(kind, namespaced, doc, where))
    obj = parser(p, doc)
    return (obj, []) if not p.errors else (None, p.errors)


def parse_manifest_text(
    text: str | bytes, file: str
) -> tuple[list[KubeObject], list[ManifestError]]:
    """YAML (multi-document, `kind: List`) or JSON -> (objects, errors)."""
    # Decoding and converting allocate millions of small objects and free none of them:
    # the cyclic collector would rescan them over and over for nothing.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _parse_text(text, file)
    finally:
        if paused:
            gc.enable()


def _parse_text(text: str | bytes, file: str) -> tuple[list[KubeObject], list[ManifestError]]:
    try:
        if file.endswith(".json"):
            return _convert(decode_json(text), file)
        if looks_like_json(text):  # JSON in a .yaml file: valid JSON is valid YAML
            try:
                return _convert(decode_json(text), file)
            except DecodeError:
                pass  # YAML flow style, or broken: the YAML parser has the final word
        docs = decode_fast(text)
        if docs is not None:
            objects, errors = _convert(docs, file)
            if not errors:
                return objects, errors
            # The fast decoder reads a few YAML 1.1 spellings differently; the reference
            # decoder has the final word on anything that does not validate.
        return _convert(decode_exact(text), file)
    except DecodeError as e:
        return [], [ManifestError(file, "", e.where, e.message)]


def _convert(docs: list[Any], file: str) -> tuple[list[KubeObject], list[ManifestError]]:
    objects: list[KubeObject] = []
    errors: list[ManifestError] = []
    for n, doc in enumerate(docs, 1):
        if doc is None:
            continue  # empty document ("---" twice, trailing "---")
        items = _list_items(doc)
        if items is None:
            obj, errs = parse_object(doc, file, f"document {n}")
            _collect(obj, errs, objects, errors)
            continue
        for i, item in enumerate(items):
            obj, errs = parse_object(item, file, f"document {n} items[{i}]")
            _collect(obj, errs, objects, errors)
    return _dedupe(objects, file), errors


def _list_items(doc: Any) -> list[Any] | None:
    """The items of a `kind: List` (or ServiceList, ...), else None."""
    if type(doc) is not dict:
        return None
    kind = doc.get("kind")
    items = doc.get("items")
    if type(kind) is str and kind.endswith("List") and type(items) is list:
        return items
    return None


def _collect(
    obj: KubeObject | None,
    errs: list[ManifestError],
    objects: list[KubeObject],
    errors: list[ManifestError],
) -> None:
    if errs:
        errors.extend(errs)
    elif obj is not None:
        objects.append(obj)


def _dedupe(objects: list[KubeObject], file: str) -> list[KubeObject]:
    """The same object twice in one file: the later one wins (warned)."""
    # (kind, namespace, name) equals ObjectKey (a NamedTuple), and is cheaper to build
    if len({(o.kind, o.meta.namespace, o.meta.name) for o in objects}) == len(objects):
        return objects
    by_key: dict[ObjectKey, KubeObject] = {}
    for obj in objects:
        by_key[obj.key] = obj
    seen: set[ObjectKey] = set()
    for obj in objects:
        if obj.key in seen:
            log.warning("%s: %s defined more than once; the last one wins", file, obj.key)
        seen.add(obj.key)
    return list(by_key.values())


# -- files ------------------------------------------------------------------------------


def is_manifest_name(name: str) -> bool:
    """*.yaml, *.yml, *.json; not dotfiles or editor temp files (#x#, x~, .x.swp)."""
    return (
        name.endswith(MANIFEST_SUFFIXES)
        and not name.startswith((".", "#", "~"))
        and not name.endswith("~")
    )


def discover_files(path: str) -> list[str]:
    """Manifest files of `path` (itself when a file), sorted: the load order."""
    if not os.path.isdir(path):
        return [path] if os.path.exists(path) else []
    found: list[str] = []
    for root, dirs, names in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(os.path.join(root, n) for n in names if is_manifest_name(n))
    found.sort()
    return found


def load_file(file: str) -> tuple[list[KubeObject], list[ManifestError]]:
    try:
        with open(file, "rb") as f:
            data = f.read()
    except OSError as e:
        return [], [ManifestError(file, "", "", f"cannot read: {e.strerror or e}")]
    return parse_manifest_text(data, file)


@dataclass(slots=True)
class LoadResult:
    objects_by_file: dict[str, list[KubeObject]] = field(default_factory=dict)
    errors: list[ManifestError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def objects(self) -> list[KubeObject]:
        """All good objects; an object defined in several files comes from the last."""
        if len(self.objects_by_file) == 1:  # one file is deduplicated already
            return list(next(iter(self.objects_by_file.values())))
        by_key: dict[ObjectKey, KubeObject] = {}
        for objs in self.objects_by_file.values():
            for obj in objs:
                by_key[obj.key] = obj
        return list(by_key.values())


def load_path(path: str) -> LoadResult:
    """Load a manifest file or directory; problems become errors, never exceptions."""
    result = LoadResult()
    if not os.path.exists(path):
        result.errors.append(ManifestError(path, "", "", "no such file or directory"))
        return result
    owner: dict[ObjectKey, str] = {}
    files = discover_files(path)
    for file in files:
        objects, errors = load_file(file)
        result.errors.extend(errors)
        result.objects_by_file[file] = objects
        if len(files) == 1:
            continue  # no other file to share an object with: skip 20,000 key lookups
        for obj in objects:
            previous = owner.get(obj.key)
            if previous is not None and previous != file:
                result.warnings.append(
                    f"{obj.key} is defined in {previous} and {file}; using {file} (loaded later)"
                )
            owner[obj.key] = file
    return result
