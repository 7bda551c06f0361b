"""PodDisruptionBudget arithmetic, as pkg/controller/disruption computes it.

``expectedPods`` is the scale of the controllers owning the selected pods (a replacement that
is still starting does not shrink the budget), ``desiredHealthy`` follows ``minAvailable`` or
``maxUnavailable`` (percentages rounded up, ``GetScaledValueFromIntOrPercent(..., true)``), and
``disruptionsAllowed = currentHealthy - desiredHealthy`` floored at 0.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from hk8s.sim.kube._selectors import parse_label_selector

if TYPE_CHECKING:
    from hk8s.sim.kube._store import Store

__all__ = ["budget_status", "matching_budgets", "pod_ready"]

Obj = dict[str, Any]


def pod_ready(pod: Obj) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def selector_text(selector: Obj | None) -> str | None:
    """A LabelSelector object as selector text (``matchLabels`` and ``matchExpressions``)."""
    if selector is None:
        return None
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def matching_budgets(pdbs: list[Obj], pod: Obj) -> list[Obj]:
    labels = pod["metadata"].get("labels") or {}
    out = []
    for pdb in pdbs:
        selector = (pdb.get("spec") or {}).get("selector")
        # policy/v1: a null selector matches nothing, an empty one matches every pod.
        if selector is not None and parse_label_selector(selector_text(selector) or "")(labels):
            out.append(pdb)
    return out


def _scaled(value: Any, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def budget_status(store: Store, pdb: Obj, pods: list[Obj]) -> Obj:
    from hk8s.sim.kube._resources import by_kind

    selected = [
        p
        for p in pods
        if p["metadata"].get("namespace") == pdb["metadata"].get("namespace")
        and matching_budgets([pdb], p)
        and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]
    healthy = sum(1 for p in selected if pod_ready(p))
    expected = 0
    counted: set[str] = set()
    for pod in selected:
        owner = next(iter(pod["metadata"].get("ownerReferences") or []), None)
        if owner is None:
            expected += 1
            continue
        if owner["uid"] in counted:
            continue
        counted.add(owner["uid"])
        rt = (
            by_kind(owner["apiVersion"], owner["kind"])
            if owner["kind"] in ("ReplicaSet", "DaemonSet", "Job")
            else None
        )
        controller = store.get(rt, pod["metadata"]["namespace"], owner["name"]) if rt else None
        if controller is None:
            expected += 1
        elif owner["kind"] == "DaemonSet":
            expected += int((controller.get("status") or {}).get("desiredNumberScheduled", 0))
        else:
            expected += int((controller.get("spec") or {}).get("replicas", 1))
    spec = pdb.get("spec") or {}
    if "maxUnavailable" in spec:
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected))
    else:
        desired = _scaled(spec.get("minAvailable", 1), expected)
    allowed = max(0, healthy - desired)
    return {
        "observedGeneration": pdb["metadata"].get("generation", 1),
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "disruptionsAllowed": allowed,
        "conditions": [
            {
                "type": "DisruptionAllowed",
                "status": "True" if allowed > 0 else "False",
                "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
                "message": "",
                "observedGeneration": pdb["metadata"].get("generation", 1),
                "lastTransitionTime": store.timestamp(),
            }
        ],
    }
