"""A kubelet's Node: registration, status and its Lease, as kubelet writes them.

Registration (``pkg/kubelet/kubelet_node_status.go``): labels (``kubernetes.io/*``, the
machine config's node labels), ``registerWithTaints`` (the machine config's taints, and
``node.cloudprovider.kubernetes.io/uninitialized`` since Talos runs an external cloud
provider), addresses, capacity, node info and the kubelet endpoint. Status: the pressure
conditions and ``Ready``, False with the container runtime's "cni plugin not initialized"
until a CNI agent runs on the node, False with "node is shutting down" when the machine goes
down gracefully (kubelet's node shutdown manager). Liveness: the node's Lease in
``kube-node-lease`` renewed every ``renew`` seconds, as ``nodeLeaseDurationSeconds``/4.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hk8s.sim.k8s import ApiError
from hk8s.sim.machines._ccm import UNINITIALIZED
from hk8s.sim.machines._kubeletapi import KUBELET_PORT
from hk8s.sim.machines._pods import timestamp

if TYPE_CHECKING:
    from hk8s.sim.k8s import KubeClient
    from hk8s.sim.machines._kubeletapi import KubeletServer

__all__ = ["CNI_MESSAGE", "KubeletNode", "NodeState", "node_object", "renew_lease"]

Obj = dict[str, Any]
CNI_MESSAGE = (
    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
    "message:Network plugin returns error: cni plugin not initialized"
)
SHUTDOWN_MESSAGE = "node is shutting down"
LEASE_SECONDS = 40
_CAPACITY = {"cpu": "2", "memory": "3911196Ki", "pods": "110", "ephemeral-storage": "39Gi"}


@dataclass(frozen=True)
class KubeletNode:
    """What a node's kubelet registers (from its machine config and the machine)."""

    name: str
    internal_ip: str
    external_ip: str
    control_plane: bool
    labels: dict[str, str]
    taints: list[dict[str, str]]
    kubelet_version: str
    os_image: str
    arch: str = "amd64"


@dataclass
class NodeState:
    node: KubeletNode
    up: bool = True
    posted: tuple[str, str, str] | None = None  # (status, reason, message) of Ready
    since: str = ""
    server: KubeletServer | None = None
    pod_ips: int = 0
    boot_id: str = field(default_factory=lambda: new_boot_id())


def new_boot_id() -> str:
    """A fresh ``/proc/sys/kernel/random/boot_id``."""
    return str(uuid.uuid4())


def node_object(node: KubeletNode) -> Obj:
    arch = "arm64" if node.arch == "arm64" else "amd64"
    labels = {
        "beta.kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
        **node.labels,
    }
    taints = [*node.taints, {"key": UNINITIALIZED, "value": "true", "effect": "NoSchedule"}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": labels,
            # kubelet --enable-controller-attach-detach (the default): the attach/detach
            # controller attaches this node's volumes (VolumeAttachments for the CSI driver).
            "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": {"taints": taints},
        "status": status(node),
    }


def status(node: KubeletNode) -> Obj:
    return {
        "addresses": [
            {"type": "InternalIP", "address": node.internal_ip},
            {"type": "ExternalIP", "address": node.external_ip},
            {"type": "Hostname", "address": node.name},
        ],
        "capacity": dict(_CAPACITY),
        "allocatable": dict(_CAPACITY),
        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
        "nodeInfo": {
            "architecture": "arm64" if node.arch == "arm64" else "amd64",
            "bootID": "",
            "containerRuntimeVersion": "containerd://2.1.4",
            "kernelVersion": "6.12.48-talos",
            "kubeProxyVersion": "",
            "kubeletVersion": f"v{node.kubelet_version.lstrip('v')}",
            "machineID": node.name,
            "operatingSystem": "linux",
            "osImage": node.os_image,
            "systemUUID": node.name,
        },
    }


def conditions(ready: tuple[str, str, str], since: str) -> list[Obj]:
    now = timestamp()

    def one(kind: str, state: str, reason: str, message: str, changed: str) -> Obj:
        return {
            "type": kind,
            "status": state,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": changed,
        }

    return [
        one("MemoryPressure", "False", "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available", since),
        one("DiskPressure", "False", "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure", since),
        one("PIDPressure", "False", "KubeletHasSufficientPID",
            "kubelet has sufficient PID available", since),
        one("Ready", *ready, now),
    ]  # fmt: skip


async def register(api: KubeClient, state: NodeState) -> None:
    """Create the Node, or (a kubelet starting again) update its labels and status."""
    node = state.node
    obj = node_object(node)
    obj["status"]["nodeInfo"]["bootID"] = state.boot_id
    try:
        await api.create("/api/v1/nodes", obj)
    except ApiError as exc:
        if exc.code != 409:
            raise
        # Re-registration keeps what others set (cordon, providerID, taints).
        await api.patch(
            f"/api/v1/nodes/{node.name}",
            {"metadata": {k: obj["metadata"][k] for k in ("labels", "annotations")}},
        )
        await api.patch(f"/api/v1/nodes/{node.name}/status", {"status": obj["status"]})


async def post_ready(api: KubeClient, state: NodeState, ready: tuple[str, str, str]) -> None:
    if state.posted is None or state.posted[0] != ready[0]:
        state.since = timestamp()
    try:
        await api.patch(
            f"/api/v1/nodes/{state.node.name}/status",
            {"status": {"conditions": conditions(ready, state.since)}},
            kind="strategic",
        )
    except ApiError as exc:
        if exc.code != 404:
            raise
        return
    state.posted = ready


def _micro_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def renew_lease(api: KubeClient, name: str, node_uid: str | None) -> None:
    path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
    try:
        await api.patch(path, {"spec": {"renewTime": _micro_now(), "holderIdentity": name}})
        return
    except ApiError as exc:
        if exc.code != 404:
            raise
    lease: Obj = {
        "metadata": {"name": name, "namespace": "kube-node-lease"},
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": _micro_now(),
        },
    }
    if node_uid:
        lease["metadata"]["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}
        ]
    try:
        await api.create(path.rpartition("/")[0], lease)
    except ApiError as exc:
        if exc.code != 409:
            raise
