"""The Hetzner cloud controller manager's node part, as the simulated cloud plays it.

Once the ``hcloud-cloud-controller-manager`` pod runs (it is what the addon installs), its node
controller initializes each Node that kubelet registered with the
``node.cloudprovider.kubernetes.io/uninitialized`` taint (Talos runs an external cloud
provider): ``spec.providerID=hcloud://<server id>``, the instance-type and topology labels, and
the taint removed (``hcloud-cloud-controller-manager/hcloud/instances.go``, k8s.io/cloud-provider
``node_controller.go``). Its node lifecycle part deletes the Node of a server that is gone.

``reconcile`` is the hook the world calls on every pass; the cloud's other controllers (load
balancers, volumes, metrics: ``_cloudside.CloudControllers``) are started from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hk8s.sim.k8s import ApiError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from hk8s.sim.k8s import KubeClient
    from hk8s.sim.machines._cloudside import CloudControllers

__all__ = ["UNINITIALIZED", "CloudInstance", "CloudNodes", "ccm_running"]

Obj = dict[str, Any]
UNINITIALIZED = "node.cloudprovider.kubernetes.io/uninitialized"
CCM_NAME = "hcloud-cloud-controller-manager"


@dataclass(frozen=True)
class CloudInstance:
    """What the CCM learns about a node's server from the Hetzner API."""

    server_id: int
    server_type: str | None = None
    location: str | None = None
    datacenter: str | None = None


def ccm_running(pods: Iterable[Obj]) -> bool:
    """A ready pod of the CCM Deployment runs in kube-system."""
    for pod in pods:
        meta = pod["metadata"]
        if (
            meta.get("namespace") == "kube-system"
            and meta.get("name", "").startswith(f"{CCM_NAME}-")
            and (pod.get("status") or {}).get("phase") == "Running"
            and any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (pod.get("status") or {}).get("conditions") or []
            )
        ):
            return True
    return False


class CloudNodes:
    """Initializes Nodes from their servers; ``instance(node_name)`` looks a server up."""

    def __init__(
        self,
        api: KubeClient,
        instance: Callable[[str], CloudInstance | None],
        controllers: CloudControllers | None = None,
    ) -> None:
        self.api = api
        self.instance = instance
        self.controllers = controllers  # the addons' cloud side (``_cloudside``)

    async def reconcile(self, nodes: Iterable[Obj], pods: Iterable[Obj]) -> None:
        pods = list(pods)
        if self.controllers is not None:
            await self.controllers.reconcile(pods)
        if not ccm_running(pods):
            return
        for node in nodes:
            taints = (node.get("spec") or {}).get("taints") or []
            if any(t.get("key") == UNINITIALIZED for t in taints):
                await self._initialize(node, taints)

    async def _initialize(self, node: Obj, taints: list[Obj]) -> None:
        name = node["metadata"]["name"]
        found = self.instance(name)
        if found is None:
            return  # no server (yet): the real CCM retries too
        labels = {"instance.hetzner.cloud/provided-by": "cloud"}
        if found.server_type:
            labels["node.kubernetes.io/instance-type"] = found.server_type
            labels["beta.kubernetes.io/instance-type"] = found.server_type
        # hcloud CCM: region = location (fsn1), zone = datacenter (fsn1-dc14).
        if found.location:
            labels["topology.kubernetes.io/region"] = found.location
            labels["failure-domain.beta.kubernetes.io/region"] = found.location
        if found.datacenter:
            labels["topology.kubernetes.io/zone"] = found.datacenter
            labels["failure-domain.beta.kubernetes.io/zone"] = found.datacenter
        patch = {
            "metadata": {
                "labels": labels,
                # Optimistic concurrency: the taint list is read-modify-written.
                "resourceVersion": node["metadata"]["resourceVersion"],
            },
            "spec": {
                "providerID": f"hcloud://{found.server_id}",
                "taints": [t for t in taints if t.get("key") != UNINITIALIZED] or None,
            },
        }
        try:
            await self.api.patch(f"/api/v1/nodes/{name}", patch, kind="merge")
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise

    async def server_deleted(self, node_name: str) -> None:
        """The server behind the node is gone: the CCM deletes its Node."""
        await self.api.delete(f"/api/v1/nodes/{node_name}")
