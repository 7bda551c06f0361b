"""User patches on machine configs: Talos strategic merge and RFC 7386 JSON merge.

A patch is a mapping. By default it is a Talos *strategic merge patch* (siderolabs/talos
``pkg/machinery/config/configpatcher/strategic.go`` and ``config/merge/merge.go``): a partial
machine-config document where

* mappings merge key by key, scalars replace, lists append;
* ``cluster.network.podSubnets``, ``cluster.network.serviceSubnets`` and
  ``cluster.apiServer.auditPolicy`` replace instead (``merge:"replace"`` in v1alpha1_types.go);
* ``machine.network.interfaces`` merge by ``interface``/``deviceSelector`` and
  ``cluster.apiServer.admissionControl`` by ``name`` (their custom ``Merge`` methods);
* ``{$patch: delete}`` as a value removes that key; a list item carrying ``$patch: delete``
  removes the items that match its other fields; a document with ``$patch: delete`` at the top
  removes that document;
* a patch with ``apiVersion``/``kind`` (and ``name``) targets that document of a multi-document
  config, or is added as a new document; a patch without ``kind`` targets the v1alpha1 one.

``null`` removes a key (as in RFC 7386; Talos ignores nulls, so nothing is lost). A patch whose
top level holds ``$patch: json-merge`` is applied as an RFC 7386 JSON merge patch instead: lists
replace, ``null`` deletes, everything else merges.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["PatchError", "apply_patch", "json_merge_patch"]

JSON_MERGE = "json-merge"
_DIRECTIVE = "$patch"
_REPLACE_PATHS = frozenset(
    {
        "cluster.network.podSubnets",
        "cluster.network.serviceSubnets",
        "cluster.apiServer.auditPolicy",
    }
)
_KEYED_LISTS: dict[str, tuple[str, ...]] = {
    "machine.network.interfaces": ("interface", "deviceSelector"),
    "cluster.apiServer.admissionControl": ("name",),
}

Document = dict[str, Any]


class PatchError(Exception):
    """A patch that cannot be applied; ``path`` is where in the document it went wrong."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def apply_patch(documents: list[Document], patch: object) -> list[Document]:
    """``documents`` with ``patch`` applied; the inputs are not modified."""
    if not isinstance(patch, Mapping):
        raise PatchError("", f"a patch must be a mapping, not {_kind(patch)}")
    body = dict(patch)
    directive = body.pop(_DIRECTIVE, None)
    if directive not in (None, "delete", JSON_MERGE):
        raise PatchError(_DIRECTIVE, f"unknown directive {directive!r} (use delete or json-merge)")
    result = [copy.deepcopy(doc) for doc in documents]
    index = _find_document(result, body)
    if directive == "delete":
        if index is not None:
            del result[index]
        return result
    if index is None:
        if "kind" not in body:
            raise PatchError("", "the config has no v1alpha1 document to patch")
        result.append(_cleaned(body, ""))
        return result
    if directive == JSON_MERGE:
        merged = json_merge_patch(result[index], body)
        assert isinstance(merged, dict)
        result[index] = merged
    else:
        result[index] = _merge_map(result[index], body, "")
    return result


def json_merge_patch(target: object, patch: object) -> object:
    """RFC 7386 section 2 ``MergePatch``: ``null`` removes, mappings merge, anything else replaces.

    >>> json_merge_patch({"a": [1], "b": 1}, {"a": [2], "b": None})
    {'a': [2]}
    """
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def _find_document(documents: list[Document], patch: Mapping[str, Any]) -> int | None:
    kind = patch.get("kind")
    for i, doc in enumerate(documents):
        if kind is None:
            if "kind" not in doc:
                return i
        elif (
            doc.get("kind") == kind
            and doc.get("apiVersion") == patch.get("apiVersion", "v1alpha1")
            and doc.get("name") == patch.get("name")
        ):
            return i
    return None


def _merge_map(left: Mapping[str, Any], right: Mapping[str, Any], path: str) -> Document:
    result = dict(left)
    for key, value in right.items():
        here = f"{path}.{key}" if path else str(key)
        if key == _DIRECTIVE:
            raise PatchError(here, f"unexpected directive {value!r} here")
        if value is None or _is_delete(value):
            result.pop(key, None)
            continue
        current = result.get(key)
        if current is None:
            result[key] = _cleaned(value, here)
        elif isinstance(current, dict):
            if not isinstance(value, Mapping):
                raise PatchError(here, f"expected a mapping, the patch has {_kind(value)}")
            replace = here in _REPLACE_PATHS
            result[key] = _cleaned(value, here) if replace else _merge_map(current, value, here)
        elif isinstance(current, list):
            if not isinstance(value, list):
                raise PatchError(here, f"expected a list, the patch has {_kind(value)}")
            result[key] = _merge_list(current, value, here)
        elif isinstance(value, Mapping | list):
            raise PatchError(here, f"expected {_kind(current)}, the patch has {_kind(value)}")
        else:
            result[key] = value
    return result


def _merge_list(left: list[Any], right: list[Any], path: str) -> list[Any]:
    if path in _REPLACE_PATHS:
        return [_cleaned(item, path) for item in right]
    keys = _KEYED_LISTS.get(path, ())
    result = list(left)
    for item in right:
        if isinstance(item, Mapping) and item.get(_DIRECTIVE) == "delete":
            match = {k: v for k, v in item.items() if k != _DIRECTIVE}
            result = [old for old in result if not _matches(old, match)]
            continue
        existing = _keyed_index(result, item, keys)
        if existing is None:
            result.append(_cleaned(item, path))
        else:
            result[existing] = _merge_map(result[existing], item, f"{path}[{existing}]")
    return result


def _keyed_index(items: list[Any], item: object, keys: tuple[str, ...]) -> int | None:
    if not keys or not isinstance(item, Mapping):
        return None
    for key in keys:
        if item.get(key) is not None:
            for i, old in enumerate(items):
                if isinstance(old, Mapping) and old.get(key) == item[key]:
                    return i
            return None
    return None


def _matches(old: object, fields: Mapping[str, Any]) -> bool:
    return isinstance(old, Mapping) and all(old.get(k) == v for k, v in fields.items())


def _is_delete(value: object) -> bool:
    return isinstance(value, Mapping) and value.get(_DIRECTIVE) == "delete"


def _cleaned(value: object, path: str) -> Any:
    """A deep copy without ``null`` values; stray directives in new content are errors."""
    if isinstance(value, Mapping):
        out: Document = {}
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if key == _DIRECTIVE:
                raise PatchError(here, f"directive {item!r} has nothing to act on here")
            if item is not None:
                out[key] = _cleaned(item, here)
        return out
    if isinstance(value, list):
        # Deleting items from a list that does not exist yet is a no-op, as upstream.
        kept = [item for item in value if not _is_delete(item)]
        return [_cleaned(item, f"{path}[{i}]") for i, item in enumerate(kept)]
    return value


def _kind(value: object) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"
