"""Label and field selectors with the API server's grammar and errors.

Label selectors follow k8s.io/apimachinery/pkg/labels (``a=b``, ``a==b``, ``a!=b``,
``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``). Field selectors only support the fields each
resource registers (pods: ``spec.nodeName``, ``status.phase``, ...); any other field is a
``400 field label not supported``, as upstream, so hk8s cannot rely on a selector that a real
cluster would refuse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from hk8s.sim.kube._status import KubeError

__all__ = ["parse_field_selector", "parse_label_selector"]

Matcher = Callable[[Mapping[str, str]], bool]

_REQ = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9._/-]+)\s*"
    r"(?:(?P<op>==|!=|=|\s+in\s+|\s+notin\s+)\s*(?P<value>.*?))?\s*$"
)

# Fields each kind's registry accepts (pkg/registry/*/strategy.go: *ToSelectableFields).
_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Node": ("spec.unschedulable",),
    "Secret": ("type",),
    "Namespace": ("status.phase",),
    "Job": ("status.successful",),
    "ReplicaSet": ("status.replicas",),
    "Event": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "reason",
        "type",
    ),
}


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses (``a in (x,y),b`` is two requirements)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _requirement(key: str, op: str, values: frozenset[str]) -> Matcher:
    def check(labels: Mapping[str, str]) -> bool:
        if op == "exists":
            return key in labels
        if op == "!exists":
            return key not in labels
        if op in ("in", "="):
            return labels.get(key) in values
        return labels.get(key) not in values  # notin, !=

    return check


def parse_label_selector(text: str | None) -> Matcher:
    if not text or not text.strip():
        return lambda _labels: True
    checks: list[Matcher] = []
    for part in _split_top(text):
        match = _REQ.match(part)
        if match is None:
            raise KubeError.bad_request(f"unable to parse requirement: {part.strip()!r}")
        key, op, value = match["key"], (match["op"] or "").strip(), match["value"]
        if match["neg"]:
            if op:
                raise KubeError.bad_request(f"unable to parse requirement: {part.strip()!r}")
            checks.append(_requirement(key, "!exists", frozenset()))
        elif not op:
            checks.append(_requirement(key, "exists", frozenset()))
        elif op in ("in", "notin"):
            value = value.strip()
            if not (value.startswith("(") and value.endswith(")")):
                raise KubeError.bad_request(
                    f"unable to parse requirement: found '{value}', expected: '('"
                )
            values = frozenset(v.strip() for v in value[1:-1].split(","))
            checks.append(_requirement(key, op, values))
        else:
            checks.append(_requirement(key, "!=" if op == "!=" else "=", frozenset({value})))
    return lambda labels: all(check(labels) for check in checks)


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if node is None:
        # Unset booleans and strings select as their zero value, e.g. spec.unschedulable=false.
        return "false" if path == "spec.unschedulable" or path == "spec.hostNetwork" else ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def parse_field_selector(text: str | None, kind: str) -> Callable[[Mapping[str, Any]], bool]:
    if not text or not text.strip():
        return lambda _obj: True
    allowed = {"metadata.name", "metadata.namespace", *_FIELDS.get(kind, ())}
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    for part in text.split(","):
        for op in ("!=", "==", "="):
            if op in part:
                field, value = (s.strip() for s in part.split(op, 1))
                break
        else:
            raise KubeError.bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        if field not in allowed:
            raise KubeError.bad_request(f"field label not supported: {field}")
        checks.append(_field_check(field, value, negate=op == "!="))
    return lambda obj: all(check(obj) for check in checks)


def _field_check(field: str, value: str, *, negate: bool) -> Callable[[Mapping[str, Any]], bool]:
    def check(obj: Mapping[str, Any]) -> bool:
        return (_field_value(obj, field) == value) != negate

    return check
