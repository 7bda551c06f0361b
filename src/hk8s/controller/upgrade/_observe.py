"""What the nodes of a cluster run now, as ``hk8s upgrade`` plans from it.

Talos versions come from each node's ``Version`` RPC (waiting while a node reboots: an
interrupted run may have left one mid-upgrade); Kubernetes versions from the Node objects'
``kubeletVersion`` and the control-plane mirror pods' images; the config hash from the server
label ``create`` and ``upgrade`` keep (``_nodes``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hk8s.controller._nodes import config_hash
from hk8s.controller._releases import (
    UPGRADING_ANNOTATION,
    running_releases,
    static_pod_versions,
    talos_tag,
)
from hk8s.controller._servers import CONFIG_HASH_LABEL
from hk8s.controller.upgrade._plan import NodeVersions

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hk8s.config import ClusterConfig
    from hk8s.controller._access import ClusterAccess
    from hk8s.controller._waits import Waiter
    from hk8s.providers.k8s import KubernetesAPI
    from hk8s.providers.talos import TalosNodeAPI

__all__ = ["config_for_versions", "observe_versions"]


async def observe_versions(
    access: ClusterAccess,
    talos: TalosNodeAPI,
    kube: KubernetesAPI,
    waiter: Waiter,
    desired: Mapping[str, bytes],
) -> list[NodeVersions]:
    """What each node runs now: Talos release, kubelet and control-plane pod versions,
    whether its config-hash label matches ``desired`` and whether a run left it marked."""
    tags = await running_releases(talos, waiter, access.nodes)
    kube_nodes = {n["metadata"]["name"]: n for n in await kube.list("v1", "Node")}
    pods = await kube.list("v1", "Pod", namespace="kube-system")
    found = []
    for node, tag in zip(access.nodes, tags, strict=True):
        static: tuple[str, ...] = ()
        if node.desired.control_plane:
            static = tuple(v for v in static_pod_versions(pods, node.name).values() if v)
        kube_node = kube_nodes.get(node.name) or {}
        kubelet = ((kube_node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion")
        annotations = (kube_node.get("metadata") or {}).get("annotations") or {}
        found.append(
            NodeVersions(
                node.name,
                node.desired.control_plane,
                tag,
                str(kubelet).removeprefix("v") if kubelet else None,
                static,
                config_current=node.server.labels.get(CONFIG_HASH_LABEL)
                == config_hash(desired[node.name]),
                upgrading=UPGRADING_ANNOTATION in annotations,
            )
        )
    return found


def config_for_versions(config: ClusterConfig, talos: str, kubernetes: str) -> ClusterConfig:
    """``config`` as if it named these versions (render a node's config for a phase)."""
    return config.model_copy(
        update={
            "talos": config.talos.model_copy(update={"version": talos_tag(talos)}),
            "kubernetes": config.kubernetes.model_copy(
                update={"version": kubernetes.removeprefix("v")}
            ),
        }
    )
