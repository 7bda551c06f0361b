"""JSON merge patch, JSON patch and (basic) strategic merge patch.

Merge patch is RFC 7386. Strategic merge patch follows
k8s.io/apimachinery/pkg/util/strategicpatch: lists whose Go field carries
``patchStrategy:"merge"`` are merged item by item on their ``patchMergeKey`` (containers by
``name``, ports by ``containerPort``, ...), ``$patch: delete|replace`` directives are honoured,
and every other list is replaced whole. ``MERGE_KEYS`` is shared with server-side apply, whose
``listType=map`` keys are the same for these fields.
"""

from __future__ import annotations

import copy
from typing import Any

from hk8s.sim.kube._status import KubeError

__all__ = ["MERGE_KEYS", "SET_LISTS", "json_patch", "merge_patch", "strategic_merge_patch"]

# Field name -> merge key, for the lists of the types served here (core/v1 types.go tags).
MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "ports": ("containerPort", "protocol"),
    "imagePullSecrets": ("name",),
    "conditions": ("type",),
    "ownerReferences": ("uid",),
    "hostAliases": ("ip",),
    "addresses": ("type",),
}
# Lists of scalars merged as sets (``patchStrategy:"merge"`` on []string).
SET_LISTS = frozenset({"finalizers"})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _key_of(item: Any, keys: tuple[str, ...]) -> tuple[Any, ...] | None:
    if not isinstance(item, dict) or keys[0] not in item:
        return None
    # ports: protocol defaults to TCP when matching (strategicpatch uses containerPort only,
    # SSA uses containerPort+protocol; treating a missing protocol as TCP serves both).
    return tuple(item.get(k, "TCP" if k == "protocol" else None) for k in keys)


def _smp_list(field: str, target: list[Any], patch: list[Any]) -> list[Any]:
    if field in SET_LISTS:
        return list(dict.fromkeys([*target, *patch]))
    keys = MERGE_KEYS.get(field)
    if keys is None:
        return copy.deepcopy([p for p in patch if not _is_directive(p)])
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not _is_directive(p)]
    result = [copy.deepcopy(t) for t in target]
    for item in patch:
        key = _key_of(item, keys)
        index = next(
            (i for i, t in enumerate(result) if key is not None and _key_of(t, keys) == key), None
        )
        if isinstance(item, dict) and item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append(strategic_merge_patch({}, item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def _is_directive(item: Any) -> bool:
    return isinstance(item, dict) and "$patch" in item


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            # $retainKeys, $setElementOrder/...: ordering hints, irrelevant to the result here.
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _smp_list(key, result[key], value)
        elif isinstance(value, list):
            result[key] = _smp_list(key, [], value)
        else:
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise KubeError.bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, list):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            doc = doc[part]
        else:
            raise KeyError(part)
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 (add, remove, replace, move, copy, test)."""
    if not isinstance(operations, list):
        raise KubeError.bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        try:
            doc = _apply_op(doc, op)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise KubeError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our "
                f"request: {op.get('op') if isinstance(op, dict) else op}: {exc}",
            ) from exc
    return doc


def _apply_op(doc: Any, op: dict[str, Any]) -> Any:
    kind = op["op"]
    parts = _pointer(op["path"])
    if kind == "test":
        if _walk(doc, parts) != op.get("value"):
            raise ValueError(f"testing value {op['path']} failed")
        return doc
    if kind in ("move", "copy"):
        value = copy.deepcopy(_walk(doc, _pointer(op["from"])))
        if kind == "move":
            doc = _remove(doc, _pointer(op["from"]))
        return _add(doc, parts, value)
    if kind == "remove":
        return _remove(doc, parts)
    if kind == "replace":
        _walk(doc, parts)  # must exist
        doc = _remove(doc, parts)
        return _add(doc, parts, copy.deepcopy(op["value"]))
    if kind == "add":
        return _add(doc, parts, copy.deepcopy(op["value"]))
    raise ValueError(f"unknown operation {kind!r}")


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        parent.insert(len(parent) if last == "-" else int(last), value)
    else:
        parent[last] = value
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent = _walk(doc, parts[:-1])
    if isinstance(parent, list):
        parent.pop(int(parts[-1]))
    else:
        del parent[parts[-1]]
    return doc
