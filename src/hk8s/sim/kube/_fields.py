"""Managed fields and server-side apply, after sigs.k8s.io/structured-merge-diff.

An object's fields are a set of paths. ``managedFields`` records which manager owns which
paths, per (manager, operation, subresource), in the ``FieldsV1`` encoding (``f:<field>``,
``k:{<merge key>}`` with ``"."`` for the item itself, ``v:<value>`` for set members).

Apply (``PATCH`` with ``application/apply-patch+yaml``) takes the applied configuration's
paths; a path another manager owns *with a different value* is a conflict (409, one cause per
path, message as apiserver's ``fieldmanager`` ``NewConflictError``) unless ``force`` moves the
ownership. Fields this manager applied before and no longer applies are removed when nobody
else owns them. Every other write (create, update, merge patches) is an ``Update`` that takes
ownership of the paths it changed.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

from hk8s.sim.kube._patch import MERGE_KEYS, SET_LISTS
from hk8s.sim.kube._status import KubeError

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["apply", "track_update"]

Path = tuple[tuple[str, str], ...]
_MISSING = object()
_IGNORED_META = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
}


def _key_json(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    fields = {k: item.get(k, "TCP" if k == "protocol" else None) for k in keys}
    return json.dumps(dict(sorted(fields.items())), separators=(",", ":"))


def _is_keyed(field: str, value: list[Any]) -> bool:
    keys = MERGE_KEYS.get(field)
    return keys is not None and all(isinstance(i, dict) and keys[0] in i for i in value)


def _collect(node: Any, prefix: Path, field: str, out: dict[Path, Any]) -> None:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            _collect(value, (*prefix, ("f", key)), key, out)
    elif isinstance(node, list) and node and field in SET_LISTS:
        for value in node:
            out[(*prefix, ("v", json.dumps(value)))] = value
    elif isinstance(node, list) and node and _is_keyed(field, node):
        for item in node:
            item_path = (*prefix, ("k", _key_json(item, MERGE_KEYS[field])))
            out[item_path] = _key_json(item, MERGE_KEYS[field])
            _collect(item, item_path, "", out)
    else:
        out[prefix] = node


def field_paths(obj: dict[str, Any], *, status: bool | None) -> dict[Path, Any]:
    """Leaf paths -> values. ``status``: None = all, False = without status, True = only it."""
    trimmed = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _IGNORED_META}
    trimmed["metadata"] = meta
    if status is False:
        trimmed.pop("status", None)
    elif status is True:
        trimmed = {"status": obj.get("status") or {}}
    out: dict[Path, Any] = {}
    _collect(trimmed, (), "", out)
    # Empty maps own nothing (an applied ``metadata: {}`` or ``data: {}`` claims no field).
    return {p: v for p, v in out.items() if p and v != {}}


def _get(obj: Any, path: Path) -> Any:
    node = obj
    for kind, name in path:
        if kind == "f":
            if not isinstance(node, dict) or name not in node:
                return _MISSING
            node = node[name]
        elif kind == "k":
            if not isinstance(node, list):
                return _MISSING
            keys = tuple(json.loads(name))
            node = next(
                (i for i in node if isinstance(i, dict) and _key_json(i, keys) == name), _MISSING
            )
            if node is _MISSING:
                return node
        else:
            value = json.loads(name)
            return value if isinstance(node, list) and value in node else _MISSING
    if path and path[-1][0] == "k":
        return _key_json(node, tuple(json.loads(path[-1][1])))
    return node


def _remove(obj: dict[str, Any], path: Path) -> None:
    parents: list[Any] = [obj]
    node: Any = obj
    for kind, name in path[:-1]:
        if kind == "f":
            node = node.get(name) if isinstance(node, dict) else None
        else:
            keys = tuple(json.loads(name))
            node = next((i for i in node or [] if _key_json(i, keys) == name), None)
        if node is None:
            return
        parents.append(node)
    kind, name = path[-1]
    if kind == "f" and isinstance(node, dict):
        node.pop(name, None)
    elif kind == "k" and isinstance(node, list):
        keys = tuple(json.loads(name))
        node[:] = [i for i in node if _key_json(i, keys) != name]
    elif kind == "v" and isinstance(node, list):
        value = json.loads(name)
        node[:] = [i for i in node if i != value]
    # Drop maps the removal emptied (upstream prunes unowned empty parents), not the roots.
    for depth in range(len(path) - 1, 1, -1):
        parent, (pkind, pname) = parents[depth - 1], path[depth - 1]
        child = parents[depth]
        if pkind == "f" and isinstance(parent, dict) and child in ({}, []):
            parent.pop(pname, None)


def _merge(live: Any, applied: Any, field: str = "") -> Any:
    if isinstance(applied, dict) and isinstance(live, dict):
        result = dict(live)
        for key, value in applied.items():
            result[key] = _merge(live.get(key, _MISSING), value, key)
        return result
    if isinstance(applied, list) and isinstance(live, list):
        if field in SET_LISTS:
            return list(dict.fromkeys([*live, *applied]))
        if _is_keyed(field, applied) and _is_keyed(field, live):
            keys = MERGE_KEYS[field]
            result_list = [copy.deepcopy(i) for i in live]
            for item in applied:
                key = _key_json(item, keys)
                index = next(
                    (n for n, i in enumerate(result_list) if _key_json(i, keys) == key), None
                )
                if index is None:
                    result_list.append(copy.deepcopy(item))
                else:
                    result_list[index] = _merge(result_list[index], item)
            return result_list
    return copy.deepcopy(applied)


def path_string(path: Path) -> str:
    """fieldpath.Path.String(): ``.spec.containers[name="c"].image``."""
    out = []
    for kind, name in path:
        if kind == "f":
            out.append("." + name)
        elif kind == "k":
            fields = json.loads(name)
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in fields.items()) + "]")
        else:
            out.append(f"[={name}]")
    return "".join(out)


def _encode(paths: Iterable[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for kind, name in path:
            node = node.setdefault(f"{kind}:{name}", {})
        if path[-1][0] == "k":
            node["."] = {}
    return root


def _decode(fields: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, child in fields.items():
        if key == ".":
            out.add(prefix)
            continue
        kind, _, name = key.partition(":")
        path = (*prefix, (kind, name))
        if not child:
            out.add(path)
        else:
            out |= _decode(child, path)
    return out


class _Entry:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.paths = _decode(raw.get("fieldsV1") or {})

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.raw["manager"], self.raw["operation"], self.raw.get("subresource", ""))

    def label(self) -> str:
        # conflict.go printManager: Update managers print "using <apiVersion>".
        text = json.dumps(self.raw["manager"])
        if self.raw.get("subresource"):
            text += f' with subresource "{self.raw["subresource"]}"'
        if self.raw["operation"] == "Update":
            text += f" using {self.raw['apiVersion']}"
        return text

    def dump(self) -> dict[str, Any]:
        out = {k: v for k, v in self.raw.items() if k != "fieldsV1"}
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = _encode(self.paths)
        return out


def _entries(obj: dict[str, Any] | None) -> list[_Entry]:
    managed = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    return [_Entry(copy.deepcopy(e)) for e in managed]


def _store(obj: dict[str, Any], entries: list[_Entry]) -> None:
    kept = [e.dump() for e in entries if e.paths]
    obj.setdefault("metadata", {})["managedFields"] = kept


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    force: bool,
    api_version: str,
    now: str,
    has_status: bool,
) -> dict[str, Any]:
    """The object after ``manager`` applied ``applied`` to ``live`` (None: create)."""
    status_scope = False if has_status else None
    applied_paths = field_paths(applied, status=status_scope)
    live_obj = live or {}
    entries = _entries(live)
    ident = (manager, "Apply", "")
    conflicts: list[tuple[_Entry, Path]] = []
    for entry in entries:
        if entry.ident == ident:
            continue
        for path in sorted(entry.paths & applied_paths.keys()):
            if _get(live_obj, path) != applied_paths[path]:
                conflicts.append((entry, path))
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for entry, path in conflicts:
        entry.paths.discard(path)
    mine = next((e for e in entries if e.ident == ident), None)
    previous = set(mine.paths) if mine else set()
    others = set().union(*(e.paths for e in entries if e.ident != ident))
    result: dict[str, Any] = _merge(copy.deepcopy(live_obj), applied)
    for path in sorted(previous - applied_paths.keys() - others, key=len, reverse=True):
        _remove(result, path)
    if mine is None:
        mine = _Entry({"manager": manager, "operation": "Apply"})
        entries.append(mine)
    # A no-op apply keeps the entry's time, so the object (and resourceVersion) stay as they
    # were (apiserver skips no-op updates since 1.22).
    if mine.paths != set(applied_paths) or mine.raw.get("apiVersion") != api_version:
        mine.raw.update({"apiVersion": api_version, "time": now})
    mine.raw.setdefault("time", now)
    mine.paths = set(applied_paths)
    _store(result, entries)
    return result


def track_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    now: str,
    subresource: str = "",
    has_status: bool = False,
) -> None:
    """Record in ``new`` that ``manager`` changed what differs from ``old`` (in place)."""
    scope: bool | None = True if subresource == "status" else (False if has_status else None)
    before = field_paths(old, status=scope) if old else {}
    after = field_paths(new, status=scope)
    changed = {p for p, v in after.items() if before.get(p, _MISSING) != v}
    gone = before.keys() - after.keys()
    entries = _entries(old)
    ident = (manager, "Update", subresource)
    for entry in entries:
        entry.paths -= gone
        if entry.ident != ident:
            entry.paths -= changed
    mine = next((e for e in entries if e.ident == ident), None)
    if mine is None and changed:
        raw: dict[str, Any] = {"manager": manager, "operation": "Update"}
        if subresource:
            raw["subresource"] = subresource
        mine = _Entry(raw)
        entries.append(mine)
    if mine is not None and changed:
        mine.raw.update({"apiVersion": api_version, "time": now})
        mine.paths |= changed
    _store(new, entries)


def _conflict_error(conflicts: list[tuple[_Entry, Path]]) -> KubeError:
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {entry.label()}",
            "field": path_string(path),
        }
        for entry, path in conflicts
    ]
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = (
            f"Apply failed with 1 conflict: conflict with {entry.label()}: {path_string(path)}"
        )
    else:
        by_manager: dict[str, list[str]] = {}
        for entry, path in conflicts:
            by_manager.setdefault(entry.label(), []).append(path_string(path))
        lines = []
        for label in sorted(by_manager):
            lines.append(f"conflicts with {label}:")
            lines += [f"- {p}" for p in by_manager[label]]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return KubeError(409, "Conflict", message, {"causes": causes})
