"""Cheap structural checks of a patched machine config, run after every user patch.

The full JSON schema is checked in hk8s' tests; at run time these checks catch what patches
usually get wrong, per contract: unknown keys in the v1alpha1 document (a typo, or a field the
Talos release moved to its own document), a patch that changes the machine type, extra
documents without ``apiVersion``/``kind`` or of a kind the release does not register, and
values whose type a patch changed (``wipe: "no"`` where Talos wants a boolean: Talos would
refuse to decode it).
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from hk8s.machineconfig._patch import PatchError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from hk8s.machineconfig._contract import Contract

__all__ = ["check_documents", "check_types_kept"]


def check_documents(
    documents: Sequence[dict[str, Any]], contract: Contract, *, machine_type: str | None
) -> None:
    """Raise ``PatchError`` for the first structural problem found."""
    main = [doc for doc in documents if "kind" not in doc]
    if len(main) != 1:
        raise PatchError("", "the config must keep exactly one v1alpha1 document")
    doc = main[0]
    _known(doc, contract.top_level_keys, "", contract)
    if doc.get("version") != "v1alpha1":
        raise PatchError("version", "must stay 'v1alpha1'")
    for section, keys in (("machine", contract.machine_keys), ("cluster", contract.cluster_keys)):
        value = doc.get(section)
        if not isinstance(value, dict):
            raise PatchError(section, "must be a mapping")
        _known(value, keys, section, contract)
    if doc["machine"].get("type") != machine_type:
        raise PatchError("machine.type", f"must stay {machine_type!r}; hk8s sets it per pool")
    for index, other in enumerate(documents):
        if "kind" in other and not (
            isinstance(other.get("kind"), str) and isinstance(other.get("apiVersion"), str)
        ):
            raise PatchError(f"document {index}", "needs string apiVersion and kind")
        kind = other.get("kind")
        if kind is not None and kind not in contract.document_kinds:
            close = difflib.get_close_matches(kind, sorted(contract.document_kinds), n=1)
            suggestion = f"; did you mean {close[0]!r}?" if close else ""
            raise PatchError(
                f"document {index}",
                f"Talos {contract.minor} has no {kind} document{suggestion}",
            )


def _known(value: dict[str, Any], allowed: Iterable[str], path: str, contract: Contract) -> None:
    allowed = sorted(allowed)
    for key in value:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            close = difflib.get_close_matches(str(key), allowed, n=1)
            suggestion = f"; did you mean {close[0]!r}?" if close else ""
            raise PatchError(
                where, f"unknown field for the Talos {contract.minor} contract{suggestion}"
            )


def check_types_kept(before: Any, after: Any, path: str = "") -> None:
    """Raise ``PatchError`` where ``after`` holds a value of another JSON type than ``before``."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in before.keys() & after.keys():
            check_types_kept(before[key], after[key], f"{path}.{key}" if path else str(key))
        return
    if _json_type(before) != _json_type(after):
        raise PatchError(path, f"expected {_json_type(before)}, the patch has {_json_type(after)}")


def _json_type(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string"
