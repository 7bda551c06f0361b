"""What the Kubernetes port returns: hk8s' own small types, never kubernetes-client objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hk8s.errors import PermanentError

__all__ = ["NOT_READY_TAINTS", "JobFailedError", "KubeNode", "NodeTaint", "ObjectRef"]


@dataclass(frozen=True)
class NodeTaint:
    key: str
    effect: str
    value: str = ""


# Taints kube-controller-manager's node lifecycle controller keeps on a node that is not Ready
# (pkg/controller/nodelifecycle, node_lifecycle_controller.go: NotReadyTaintTemplate,
# UnreachableTaintTemplate and their NoSchedule twins); the NoExecute ones are lifted on its
# next node-monitor pass after the kubelet posts Ready (5 s by default), so a node can be Ready
# and still keep pods off for a few seconds.
NOT_READY_TAINTS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})


@dataclass(frozen=True)
class KubeNode:
    """A Node as the health gate and scaling see it."""

    name: str
    ready: bool
    schedulable: bool
    roles: tuple[str, ...] = ()
    internal_ip: str | None = None
    provider_id: str | None = None
    taints: tuple[NodeTaint, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    kubelet_version: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    # The kubelet's nodeInfo.bootID: a new one with every boot of the machine, posted by the
    # kubelet of that boot (the conditions beside it may still be its predecessor's).
    boot_id: str | None = None

    @property
    def control_plane(self) -> bool:
        return "control-plane" in self.roles

    @property
    def in_service(self) -> bool:
        """Ready, and kube-controller-manager has lifted its not-ready taints."""
        return self.ready and not any(t.key in NOT_READY_TAINTS for t in self.taints)

    @classmethod
    def from_api(cls, obj: dict[str, Any]) -> KubeNode:
        meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status", {})
        labels = dict(meta.get("labels") or {})
        prefix = "node-role.kubernetes.io/"
        roles = tuple(sorted(k[len(prefix) :] for k in labels if k.startswith(prefix)))
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        internal = [
            a.get("address") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"
        ]
        taints = tuple(
            NodeTaint(key=t.get("key", ""), effect=t.get("effect", ""), value=t.get("value", ""))
            for t in spec.get("taints") or []
        )
        return cls(
            name=meta.get("name", ""),
            ready=ready,
            schedulable=not spec.get("unschedulable", False),
            roles=roles,
            internal_ip=internal[0] if internal else None,
            provider_id=spec.get("providerID"),
            taints=taints,
            labels=labels,
            kubelet_version=(status.get("nodeInfo") or {}).get("kubeletVersion"),
            annotations=dict(meta.get("annotations") or {}),
            boot_id=(status.get("nodeInfo") or {}).get("bootID") or None,
        )


@dataclass(frozen=True)
class ObjectRef:
    """Which object: enough to find it again, nothing of its content (Secrets stay out)."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectRef:
        meta = obj.get("metadata") or {}
        return cls(
            api_version=str(obj.get("apiVersion", "")),
            kind=str(obj.get("kind", "")),
            name=str(meta.get("name", "")),
            namespace=meta.get("namespace"),
        )


class JobFailedError(PermanentError):
    """An addon Job failed; ``logs`` holds the tail of its pods' logs (helm's error)."""

    def __init__(self, namespace: str, name: str, reason: str, logs: str) -> None:
        message = f"Job {namespace}/{name} failed: {reason}"
        if logs.strip():
            message += f"\n--- pod logs (tail) ---\n{logs.rstrip()}"
        super().__init__(
            message,
            hint="the next hk8s create runs the Job again; if the log shows a problem of the "
            "addon's version or values (not a network hiccup), fix them in cluster.yaml first",
        )
        self.namespace = namespace
        self.name = name
        self.reason = reason
        self.logs = logs
