"""PATCH bodies: strategic merge (what `kubectl apply` sends), JSON merge, JSON patch.

The strategic merge patch covers what kubectl sends for the kinds the stand-in serves:
maps merged recursively, null deletes, lists of maps merged by their patchMergeKey where
the Kubernetes types declare one (else replaced), and the directives `$patch`
(replace/delete/merge), `$retainKeys`, `$setElementOrder/<field>` and
`$deleteFromPrimitiveList/<field>`.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.kubeapi.state import ApiError

# (kind, field path without list indices) -> patchMergeKey, from the Kubernetes API types.
_POD = ("spec", "template", "spec")
MERGE_KEYS: dict[tuple[str, tuple[str, ...]], str] = {
    ("Service", ("spec", "ports")): "port",
    ("DaemonSet", (*_POD, "containers")): "name",
    ("DaemonSet", (*_POD, "initContainers")): "name",
    ("DaemonSet", (*_POD, "volumes")): "name",
    ("DaemonSet", (*_POD, "containers", "ports")): "containerPort",
    ("DaemonSet", (*_POD, "containers", "env")): "name",
    ("DaemonSet", (*_POD, "containers", "volumeMounts")): "mountPath",
}
_ANY_KIND_KEYS: dict[tuple[str, ...], str] = {
    ("metadata", "ownerReferences"): "uid",
}


def _merge_key(kind: str, path: tuple[str, ...]) -> str | None:
    return MERGE_KEYS.get((kind, path)) or _ANY_KIND_KEYS.get(path)


def strategic_merge(original: Any, patch: Any, kind: str, path: tuple[str, ...] = ()) -> Any:
    if isinstance(patch, dict):
        directive = patch.get("$patch")
        if directive == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        if directive == "delete":
            return None
        result = copy.deepcopy(original) if isinstance(original, dict) else {}
        for key, value in patch.items():
            if key.startswith("$"):
                continue
            if value is None:
                result.pop(key, None)
            else:
                merged = strategic_merge(result.get(key), value, kind, (*path, key))
                if merged is None:
                    result.pop(key, None)
                else:
                    result[key] = merged
        for key, value in patch.items():
            if key.startswith("$deleteFromPrimitiveList/"):
                name = key.split("/", 1)[1]
                if isinstance(result.get(name), list):
                    result[name] = [v for v in result[name] if v not in value]
            elif key.startswith("$setElementOrder/"):
                name = key.split("/", 1)[1]
                if isinstance(result.get(name), list):
                    result[name] = _reorder(result[name], value, _merge_key(kind, (*path, name)))
        retain = patch.get("$retainKeys")
        if isinstance(retain, list):
            result = {k: v for k, v in result.items() if k in retain}
        return result
    if isinstance(patch, list):
        key = _merge_key(kind, path)
        if key is None or not isinstance(original, list):
            return [_strip(v) for v in patch if not _is_directive(v)]
        return _merge_list(original, patch, key, kind, path)
    return copy.deepcopy(patch)


def _is_directive(item: Any) -> bool:
    return isinstance(item, dict) and "$patch" in item and len(item) == 1


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _merge_list(
    original: list[Any], patch: list[Any], key: str, kind: str, path: tuple[str, ...]
) -> list[Any]:
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [_strip(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    result = copy.deepcopy(original)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise ApiError(422, "Invalid", f"{'.'.join(path)}: list item without merge key {key}")
        idx = next(
            (i for i, o in enumerate(result) if isinstance(o, dict) and o.get(key) == item[key]),
            None,
        )
        if item.get("$patch") == "delete":
            if idx is not None:
                del result[idx]
            continue
        if idx is None:
            result.append(_strip(item))
        else:
            result[idx] = strategic_merge(result[idx], item, kind, path)
    return result


def _reorder(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    def ident(v: Any) -> Any:
        return v.get(key) if key and isinstance(v, dict) else v

    wanted = [ident(o) for o in order]
    rank = {repr(w): i for i, w in enumerate(wanted)}
    return sorted(items, key=lambda v: rank.get(repr(ident(v)), len(rank)))


def merge_patch(original: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(original: Any, patch: Any) -> Any:
    """RFC 6902 JSON patch, with the maintained `jsonpatch` library."""
    import jsonpatch  # type: ignore[import-untyped]

    try:
        return jsonpatch.apply_patch(original, patch)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
        raise ApiError(422, "Invalid", f"json patch: {e}") from None


def apply_patch(content_type: str, original: Any, patch: Any, kind: str) -> Any:
    ctype = content_type.split(";", 1)[0].strip()
    if ctype == "application/strategic-merge-patch+json":
        return strategic_merge(original, patch, kind)
    if ctype == "application/merge-patch+json":
        return merge_patch(original, patch)
    if ctype == "application/json-patch+json":
        return json_patch(original, patch)
    raise ApiError(
        415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {ctype}"
    )
