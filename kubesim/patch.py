"""The three PATCH flavours: JSON merge patch, JSON patch and strategic merge patch.

Strategic merge knows the merge keys of the common built-in lists (containers by ``name``,
volumeMounts by ``mountPath``, ports by ``containerPort``…) and the ``$patch``,
``$setElementOrder``, ``$deleteFromPrimitiveList`` and ``$retainKeys`` directives; other lists
are replaced, as for types without patch metadata.
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError, bad_request
from .objects import clone

MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
PRIMITIVE_MERGE_LISTS = {"finalizers"}
REJECTED = "the server rejected our request due to an error in our request"


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, list):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            doc = doc[part]
        else:
            raise KeyError(part)
    return doc


def _add(doc: Any, parts: list[str], value: Any, *, replace: bool) -> Any:
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if replace:
            parent[index] = value
        else:
            if index > len(parent):
                raise IndexError(last)
            parent.insert(index, value)
    elif isinstance(parent, dict):
        if replace and last not in parent:
            raise KeyError(last)
        parent[last] = value
    else:
        raise KeyError(last)
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent = _resolve(doc, parts[:-1])
    if isinstance(parent, list):
        parent.pop(int(parts[-1]))
    else:
        del parent[parts[-1]]
    return doc


def _json_patch_op(doc: Any, op: dict[str, Any]) -> Any:
    kind, parts = op.get("op"), _pointer(str(op.get("path", "")))
    if kind == "add":
        return _add(doc, parts, clone(op.get("value")), replace=False)
    if kind == "replace":
        return _add(doc, parts, clone(op.get("value")), replace=True)
    if kind == "remove":
        return _remove(doc, parts)
    if kind in ("move", "copy"):
        source = _pointer(str(op.get("from", "")))
        value = clone(_resolve(doc, source))
        if kind == "move":
            doc = _remove(doc, source)
        return _add(doc, parts, value, replace=False)
    if kind == "test":
        if _resolve(doc, parts) != op.get("value"):
            raise ApiError(
                422,
                "Invalid",
                f"{REJECTED}: testing value {op.get('path')} failed",
            )
        return doc
    raise bad_request(f"Unexpected kind: {kind}")


def json_patch(target: Any, ops: Any) -> Any:
    """Apply an RFC 6902 JSON patch; failed operations are 422s, as in the API server."""
    if not isinstance(ops, list):
        raise bad_request("json patch must be a list of operations")
    doc = clone(target)
    for op in ops:
        try:
            doc = _json_patch_op(doc, op)
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise ApiError(
                422,
                "Invalid",
                f"{REJECTED}: {op.get('op')} operation does not apply: "
                f"doc is missing path: {op.get('path')}: {e}",
            ) from e
    return doc


def _merge_keyed_list(target: list[Any], patch: list[Any], key: str) -> list[Any]:
    result = [clone(item) for item in target]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            result.append(clone(item))
            continue
        index = next(
            (i for i, t in enumerate(result) if isinstance(t, dict) and t.get(key) == item[key]),
            None,
        )
        directive = item.get("$patch")
        if directive == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append(strategic_merge({}, item))
        elif directive == "replace":
            result[index] = {k: clone(v) for k, v in item.items() if k != "$patch"}
        else:
            result[index] = strategic_merge(result[index], item)
    return result


def _order(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    def ident(item: Any) -> Any:
        return item.get(key) if key and isinstance(item, dict) else item

    wanted = [o.get(key) if key and isinstance(o, dict) else o for o in order]
    ranked = {v: i for i, v in enumerate(wanted)}
    return sorted(items, key=lambda item: ranked.get(ident(item), len(ranked)))


def _merge_list(field: str, target: Any, value: list[Any]) -> list[Any]:
    if value and isinstance(value[0], dict) and value[0].get("$patch") == "replace":
        return [clone(v) for v in value[1:]]
    current = target if isinstance(target, list) else []
    if field in MERGE_KEYS:
        return _merge_keyed_list(current, value, MERGE_KEYS[field])
    if field in PRIMITIVE_MERGE_LISTS:
        return current + [v for v in value if v not in current]
    return clone(value)


def strategic_merge(target: Any, patch: Any) -> Any:
    """Apply a strategic merge patch for the common built-in types."""
    if not isinstance(patch, dict):
        return clone(patch)
    if patch.get("$patch") == "replace":
        return {k: clone(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
        elif key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _order(result[field], order, MERGE_KEYS.get(field))
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


PATCH_TYPES = {
    "application/merge-patch+json": merge_patch,
    "application/strategic-merge-patch+json": strategic_merge,
    "application/json-patch+json": json_patch,
}
