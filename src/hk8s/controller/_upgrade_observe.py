"""What the nodes of a cluster run now, as ``hk8s upgrade`` plans from it.

Talos versions come from each node's ``Version`` RPC (waiting while a node reboots: an
interrupted run may have left one mid-upgrade); Kubernetes versions from the Node objects'
``kubeletVersion`` and the control-plane mirror pods' images; the config hash from the server
label ``create`` and ``upgrade`` keep (``_nodes``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hk8s.controller._nodes import config_hash
from hk8s.controller._servers import CONFIG_HASH_LABEL
from hk8s.controller._upgrade_node import UPGRADING_ANNOTATION, static_pod_versions
from hk8s.controller._upgrade_plan import NodeVersions, talos_tag
from hk8s.errors import AuthError, UnavailableError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from hk8s.config import ClusterConfig
    from hk8s.controller._create_access import ClusterAccess
    from hk8s.controller._create_wait import Waiter
    from hk8s.controller._nodes import Node
    from hk8s.providers.k8s import KubernetesAPI
    from hk8s.providers.talos import TalosNodeAPI

__all__ = ["config_for_versions", "observe_versions", "running_releases"]


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


async def running_releases(talos: TalosNodeAPI, waiter: Waiter, nodes: Sequence[Node]) -> list[str]:
    """Each node's Talos version tag (``v1.12.0``), in order; also ``create``'s skew check."""
    return list(await asyncio.gather(*(_running_release(talos, waiter, n) for n in nodes)))


async def _running_release(talos: TalosNodeAPI, waiter: Waiter, node: Node) -> str:
    """The node's Talos version; waits while it does not answer (an interrupted run may have
    left it rebooting).

    A refused client certificate is waited out too: a node going down for its reboot closes
    connections right after the TLS handshake, which reads as a refusal (``_transport``),
    and the bundle was already checked against the servers' cluster-id label; a node that
    really belongs to another PKI ends in a timeout that names the refusal."""
    tag: list[str] = []

    async def answers() -> tuple[bool, str]:
        try:
            tag.append((await talos.version(node.address)).tag)
        except AuthError as exc:
            raise UnavailableError(exc.message, hint=exc.hint, node=node.name) from exc
        return True, ""

    await waiter.until(
        f"node/{node.name}", f"Talos API of {node.name} to answer", answers,
        timeout=waiter.timing.boot_timeout,
    )  # fmt: skip
    return tag[-1]


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
