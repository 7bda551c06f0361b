"""Nodes as kubelet, the node lifecycle controller and the Hetzner cloud controller see them.

- A node registers NotReady: ``Ready=False`` with the kubelet's "cni plugin not initialized"
  message and the ``node.kubernetes.io/not-ready:NoSchedule`` taint, until a CNI agent (the
  ``kube-system/cilium`` DaemonSet) runs on it.
- With an external cloud provider (Talos ``cluster.externalCloudProvider``), kubelet adds
  ``node.cloudprovider.kubernetes.io/uninitialized=true:NoSchedule``; the running hcloud CCM
  sets ``spec.providerID=hcloud://<server id>``, topology labels, and removes the taint.
- Control planes carry ``node-role.kubernetes.io/control-plane`` (label and NoSchedule taint,
  Talos' default) and mirror pods for their static control-plane pods.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from hk8s.sim.kube._cluster import CloudInstance, NodeRuntime
from hk8s.sim.kube._disruption import pod_ready

if TYPE_CHECKING:
    from hk8s.sim.kube._cluster import Cluster

__all__ = ["UNINITIALIZED", "cni_nodes", "reconcile_nodes", "register_node"]

Obj = dict[str, Any]
UNINITIALIZED = "node.cloudprovider.kubernetes.io/uninitialized"
_NOT_READY = "node.kubernetes.io/not-ready"
_UNREACHABLE = "node.kubernetes.io/unreachable"
_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
_CONDITION_TAINTS = (_NOT_READY, _UNREACHABLE, _UNSCHEDULABLE)
_CP_ROLE = "node-role.kubernetes.io/control-plane"
_CNI_MESSAGE = (
    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
    "message:Network plugin returns error: cni plugin not initialized"
)
_STATIC = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def register_node(
    cluster: Cluster,
    runtime: NodeRuntime,
    *,
    labels: dict[str, str],
    taints: list[Obj],
    provider_id: str | None,
    external_cloud_provider: bool,
    os_image: str,
    kubelet_version: str,
    control_plane_taint: bool = True,
) -> Obj:
    rt = cluster.rt("v1", "Node")
    cluster.nodes[runtime.name] = runtime
    existing = cluster.store.get(rt, "", runtime.name)
    node_labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": runtime.name,
        "kubernetes.io/os": "linux",
        # Talos labels control planes so that cloud load balancers skip them.
        **(
            {_CP_ROLE: "", "node.kubernetes.io/exclude-from-external-load-balancers": ""}
            if runtime.control_plane
            else {}
        ),
        **labels,
    }
    addresses = [{"type": "InternalIP", "address": runtime.internal_ip}]
    if runtime.external_ip:
        addresses.append({"type": "ExternalIP", "address": runtime.external_ip})
    addresses.append({"type": "Hostname", "address": runtime.name})
    info = {
        "architecture": node_labels["kubernetes.io/arch"],
        "bootID": cluster.verbs.random_suffix(8),
        "containerRuntimeVersion": "containerd://2.1.4",
        "kernelVersion": "6.12.48-talos",
        "kubeProxyVersion": "",
        "kubeletVersion": f"v{kubelet_version.lstrip('v')}",
        "machineID": cluster.verbs.random_suffix(16),
        "operatingSystem": "linux",
        "osImage": os_image,
        "systemUUID": cluster.verbs.random_suffix(16),
    }
    capacity = {"cpu": "2", "memory": "3911196Ki", "pods": "110", "ephemeral-storage": "39Gi"}
    status = {
        "addresses": addresses,
        "capacity": capacity,
        "allocatable": dict(capacity),
        "nodeInfo": info,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "conditions": [],
    }
    if existing is None:
        node_taints = list(taints)
        if (
            runtime.control_plane
            and control_plane_taint
            and not any(t.get("key") == _CP_ROLE for t in node_taints)
        ):
            node_taints.append({"key": _CP_ROLE, "effect": "NoSchedule"})
        if external_cloud_provider and provider_id is None:
            node_taints.append({"key": UNINITIALIZED, "value": "true", "effect": "NoSchedule"})
        spec: Obj = {"taints": node_taints} if node_taints else {}
        if provider_id:
            spec["providerID"] = provider_id
        node = {
            "metadata": {"name": runtime.name, "labels": node_labels},
            "spec": spec,
            "status": status,
        }
        created = cluster.verbs.create(rt, "", node, manager="kubelet")
    else:
        # A kubelet re-registering (after a reboot or upgrade) updates labels and node info
        # but keeps what others set: cordon, providerID, taints.
        node = copy.deepcopy(existing)
        node["metadata"]["labels"] = {**existing["metadata"].get("labels", {}), **node_labels}
        cluster.save(rt, node, manager="kubelet")
        fresh = cluster.store.get(rt, "", runtime.name)
        assert fresh is not None
        status["conditions"] = (fresh.get("status") or {}).get("conditions") or []
        created = cluster.set_status(rt, fresh, status, manager="kubelet")
    _ensure_static_pods(cluster, created, kubelet_version.lstrip("v"))
    return created


def _ensure_static_pods(cluster: Cluster, node: Obj, version: str) -> None:
    """Mirror pods of the node's control-plane static pods, at the node's Kubernetes version.

    Talos renders the static pod manifests from the machine config's images (which hk8s and
    ``talosctl gen config`` set to the same version as the kubelet's); when a config applied
    without a reboot changes them, the kubelet runs the new pods and updates the mirrors.
    """
    if _CP_ROLE not in node["metadata"].get("labels", {}):
        return
    rt = cluster.rt("v1", "Pod")
    name = node["metadata"]["name"]
    for component in _STATIC:
        pod_name = f"{component}-{name}"
        image = f"registry.k8s.io/{component}:v{version}"
        existing = cluster.store.get(rt, "kube-system", pod_name)
        if existing is not None:
            if existing["spec"]["containers"][0].get("image") != image:
                pod = copy.deepcopy(existing)
                pod["spec"]["containers"][0]["image"] = image
                cluster.save(rt, pod, manager="kubelet")
            continue
        cluster.verbs.create(
            rt,
            "kube-system",
            {
                "metadata": {
                    "name": pod_name,
                    "labels": {"k8s-app": component, "tier": "control-plane"},
                    "annotations": {
                        "kubernetes.io/config.mirror": cluster.verbs.random_suffix(32),
                        "kubernetes.io/config.source": "file",
                    },
                    "ownerReferences": [
                        {
                            "apiVersion": "v1",
                            "kind": "Node",
                            "name": name,
                            "uid": node["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {
                    "nodeName": name,
                    "hostNetwork": True,
                    "priorityClassName": "system-cluster-critical",
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{"name": component, "image": image}],
                },
            },
            manager="kubelet",
        )


def cni_nodes(cluster: Cluster) -> set[str]:
    """Nodes where a ready CNI agent (a ``kube-system/cilium`` DaemonSet pod) runs."""
    pods = cluster.store.peek(cluster.rt("v1", "Pod"), "kube-system")
    return {
        p["spec"]["nodeName"]
        for p in pods
        if (p["metadata"].get("labels") or {}).get("k8s-app") == "cilium"
        and pod_ready(p)
        and p["spec"].get("nodeName")
    }


def _ready_condition(
    cluster: Cluster, runtime: NodeRuntime | None, name: str, cni: set[str]
) -> Obj:
    now = cluster.store.timestamp()
    if runtime is None or not runtime.kubelet_ready:
        status, reason = "Unknown", "NodeStatusUnknown"
        message = "Kubelet stopped posting node status."
    elif name not in cni:
        status, reason, message = "False", "KubeletNotReady", _CNI_MESSAGE
    else:
        status, reason, message = "True", "KubeletReady", "kubelet is posting ready status"
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    }


def _pressure(kind: str, reason: str, message: str, now: str) -> Obj:
    return {
        "type": kind,
        "status": "False",
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    }


def reconcile_nodes(cluster: Cluster) -> None:
    rt = cluster.rt("v1", "Node")
    ccm_running = _ccm_running(cluster)
    cni = cni_nodes(cluster)
    for node in cluster.store.list(rt):
        name = node["metadata"]["name"]
        runtime = cluster.nodes.get(name)
        now = cluster.store.timestamp()
        ready = _ready_condition(cluster, runtime, name, cni)
        status = copy.deepcopy(node.get("status") or {})
        status["conditions"] = [
            _pressure(
                "MemoryPressure",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                now,
            ),
            _pressure(
                "DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", now
            ),
            _pressure(
                "PIDPressure",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
                now,
            ),
            ready,
        ]
        node = cluster.set_status(rt, node, status, manager="kubelet")
        spec = copy.deepcopy(node.get("spec") or {})
        previous = {(t["key"], t["effect"]): t for t in spec.get("taints") or []}
        taints = [t for t in spec.get("taints") or [] if t["key"] not in _CONDITION_TAINTS]
        # Node lifecycle controller: TaintNodesByCondition (NoSchedule) and the NoExecute
        # taint whose tolerationSeconds evict pods (taint-based eviction), each kept with its
        # original timeAdded while the condition lasts.
        condition_key = {"False": _NOT_READY, "Unknown": _UNREACHABLE}.get(ready["status"])
        if condition_key is not None:
            taints.append({"key": condition_key, "effect": "NoSchedule"})
            taints.append(
                previous.get((condition_key, "NoExecute"))
                or {"key": condition_key, "effect": "NoExecute", "timeAdded": now}
            )
        if spec.get("unschedulable"):
            taints.append({"key": _UNSCHEDULABLE, "effect": "NoSchedule"})
        new = copy.deepcopy(node)
        if ccm_running and any(t["key"] == UNINITIALIZED for t in taints):
            _initialize(cluster, new, spec)
            taints = [t for t in taints if t["key"] != UNINITIALIZED or "providerID" not in spec]
        if taints:
            spec["taints"] = taints
        else:
            spec.pop("taints", None)
        new["spec"] = spec
        manager = "hcloud-cloud-controller-manager" if ccm_running else "kube-controller-manager"
        cluster.save(rt, new, manager=manager)


def _ccm_running(cluster: Cluster) -> bool:
    rt = cluster.rt("apps/v1", "Deployment")
    for deployment in cluster.store.list(rt):
        if deployment["metadata"]["name"] == "hcloud-cloud-controller-manager":
            return int((deployment.get("status") or {}).get("availableReplicas") or 0) > 0
    return False


def _initialize(cluster: Cluster, node: Obj, spec: Obj) -> bool:
    """The CCM's node controller: providerID and topology from the server behind the node."""
    if cluster.cloud_instance is None:
        return False
    found = cluster.cloud_instance(node["metadata"]["name"])
    if found is None:
        return False
    instance = found if isinstance(found, CloudInstance) else CloudInstance(server_id=found)
    spec["providerID"] = f"hcloud://{instance.server_id}"
    labels = node["metadata"].setdefault("labels", {})
    labels["instance.hetzner.cloud/provided-by"] = "cloud"
    if instance.server_type:
        labels["node.kubernetes.io/instance-type"] = instance.server_type
        labels["beta.kubernetes.io/instance-type"] = instance.server_type
    # hcloud-cloud-controller-manager: region = location (fsn1), zone = datacenter (fsn1-dc14).
    if instance.location:
        labels["topology.kubernetes.io/region"] = instance.location
    if instance.datacenter:
        labels["topology.kubernetes.io/zone"] = instance.datacenter
    return True
