"""The resource types the simulated API serves, and the discovery documents that list them.

Names, kinds, short names and verbs are those of a kube-apiserver 1.3x (``kubectl
api-resources -o wide``); clients such as ``kubernetes.dynamic`` find resources only through
these documents, so they must be complete and accurate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["GROUPS", "RESOURCES", "ResourceType", "by_kind", "lookup"]

_ALL_VERBS = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    # Types with a status subresource ignore status in writes to the main resource
    # (their registry strategies' PrepareForUpdate), as the real API does.
    has_status: bool = False
    subresources: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        return f"{self.group}/{self.plural}"

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def discovery(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = [
            {
                "name": self.plural,
                "singularName": self.singular,
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": list(_ALL_VERBS),
                **({"shortNames": list(self.short_names)} if self.short_names else {}),
                "storageVersionHash": "",
            }
        ]
        if self.has_status:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        for name, group, version, kind, verbs in self.subresources:
            entry: dict[str, Any] = {
                "name": f"{self.plural}/{name}",
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": kind,
                "verbs": list(verbs),
            }
            if group:
                entry["group"] = group
                entry["version"] = version
            entries.append(entry)
        return entries


def _rt(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool,
    *short: str,
    status: bool = False,
    sub: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (),
) -> ResourceType:
    return ResourceType(group, version, kind, plural, namespaced, short, status, sub)


_POD_SUBRESOURCES = (
    ("eviction", "policy", "v1", "Eviction", ("create",)),
    ("log", "", "", "Pod", ("get",)),
)

RESOURCES: tuple[ResourceType, ...] = (
    _rt("", "v1", "Namespace", "namespaces", False, "ns", status=True),
    _rt("", "v1", "Node", "nodes", False, "no", status=True),
    _rt("", "v1", "Pod", "pods", True, "po", status=True, sub=_POD_SUBRESOURCES),
    _rt("", "v1", "Service", "services", True, "svc", status=True),
    _rt("", "v1", "Secret", "secrets", True),
    _rt("", "v1", "ConfigMap", "configmaps", True, "cm"),
    _rt("", "v1", "ServiceAccount", "serviceaccounts", True, "sa"),
    _rt("", "v1", "Event", "events", True, "ev"),
    _rt("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, "pvc", status=True),
    _rt("", "v1", "PersistentVolume", "persistentvolumes", False, "pv", status=True),
    _rt("apps", "v1", "Deployment", "deployments", True, "deploy", status=True),
    _rt("apps", "v1", "DaemonSet", "daemonsets", True, "ds", status=True),
    _rt("apps", "v1", "ReplicaSet", "replicasets", True, "rs", status=True),
    _rt("batch", "v1", "Job", "jobs", True, status=True),
    _rt("batch", "v1", "CronJob", "cronjobs", True, "cj", status=True),
    _rt("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, "pdb", status=True),
    _rt("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    _rt("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _rt("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _rt("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _rt("coordination.k8s.io", "v1", "Lease", "leases", True),
    _rt("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, "sc"),
    # Talos' CRD (serviceaccounts.talos.dev), which control planes with
    # kubernetesTalosAPIAccess register; served here always (docs/simulator.md).
    _rt("talos.dev", "v1alpha1", "ServiceAccount", "serviceaccounts", True, "tsa", status=True),
)

# Groups in the order /apis lists them; each serves one version here.
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(r.group for r in RESOURCES if r.group))

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> ResourceType:
    return _BY_KIND[(api_version, kind)]
