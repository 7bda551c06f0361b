"""VolumeAttachments of ``csi.hetzner.cloud`` made real: the external-attacher sidecar with the
driver's ControllerPublishVolume / ControllerUnpublishVolume behind it.

kube-controller-manager's attach/detach controller creates a VolumeAttachment (attacher
``csi.hetzner.cloud``, the node, the PersistentVolume) when a pod using the volume is on a
node, and deletes it when no pod there needs it any more. The external-attacher
(kubernetes-csi/external-attacher ``pkg/controller/csi_handler.go``) first puts its finalizer
``external-attacher/csi-hetzner-cloud`` on the attachment, asks the driver to attach the
volume to the node's server (the node ID from the node's CSINode), and reports
``status.attached`` with the device path; on deletion it detaches, then drops the finalizer.
The driver attaches through the Hetzner API, refuses a volume attached to another server
(``internal/volsrv/volume.go`` ``ErrAttached``), and treats a volume already gone as detached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hk8s.sim.k8s._client import ApiError
from hk8s.sim.k8s._cloud import blocking
from hk8s.sim.k8s._informer import Controller, now_rfc3339

if TYPE_CHECKING:
    from hcloud import Client

    from hk8s.model.clock import Clock
    from hk8s.sim.k8s._client import KubeClient
    from hk8s.sim.k8s._cloud import HcloudAccess

__all__ = ["ATTACHER_FINALIZER", "CsiAttacher"]

_DRIVER = "csi.hetzner.cloud"
# external-attacher GetFinalizerName: "external-attacher/" + the driver name sanitised.
ATTACHER_FINALIZER = "external-attacher/csi-hetzner-cloud"
_PATH = "/apis/storage.k8s.io/v1/volumeattachments"


class CsiAttacher(Controller):
    name = "hcloud-csi attacher"

    def __init__(self, api: KubeClient, cloud: HcloudAccess, *, clock: Clock | None = None) -> None:
        super().__init__(api, clock=clock)
        self.cloud = cloud
        self.attachments = self.informer(_PATH)

    async def reconcile(self, key: str) -> None:
        va = self.attachments.items.get(key)
        if va is None or (va.get("spec") or {}).get("attacher") != _DRIVER:
            return
        meta = va["metadata"]
        finalizers: list[str] = list(meta.get("finalizers") or [])
        if meta.get("deletionTimestamp"):
            if ATTACHER_FINALIZER not in finalizers:
                return
            await self._publish(va, attach=False)
            finalizers.remove(ATTACHER_FINALIZER)
            await self._patch(va, {"metadata": {"finalizers": finalizers}})
            return
        if (va.get("status") or {}).get("attached"):
            return
        if ATTACHER_FINALIZER not in finalizers:
            va = await self._patch(
                va, {"metadata": {"finalizers": [*finalizers, ATTACHER_FINALIZER]}}
            )
        try:
            device = await self._publish(va, attach=True)
        except Exception as exc:
            error = {"time": now_rfc3339(), "message": f"rpc error: code = Internal desc = {exc}"}
            await self.api.patch(f"{_PATH}/{key}/status", {"status": {"attachError": error}})
            raise
        status = {
            "attached": True,
            "attachmentMetadata": {"devicePath": device},
            "attachError": None,
        }
        await self.api.patch(f"{_PATH}/{key}/status", {"status": status})

    async def _patch(self, va: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
        patch["metadata"]["resourceVersion"] = va["metadata"]["resourceVersion"]
        try:
            return await self.api.patch(f"{_PATH}/{va['metadata']['name']}", patch)
        except ApiError as exc:
            if exc.code == 404:
                return va
            raise

    async def _publish(self, va: dict[str, Any], *, attach: bool) -> str:
        spec = va["spec"]
        pv_name = (spec.get("source") or {}).get("persistentVolumeName")
        pv = await self.api.get_or_none(f"/api/v1/persistentvolumes/{pv_name}") if pv_name else None
        if pv is None:
            if attach:
                raise RuntimeError(f"PersistentVolume {pv_name} not found")
            return ""  # nothing left to detach from
        handle = str(((pv.get("spec") or {}).get("csi") or {}).get("volumeHandle", ""))
        node = spec.get("nodeName", "")
        csinode = await self.api.get_or_none(f"/apis/storage.k8s.io/v1/csinodes/{node}")
        drivers = ((csinode or {}).get("spec") or {}).get("drivers") or []
        node_id = next((str(d.get("nodeID", "")) for d in drivers if d.get("name") == _DRIVER), "")
        if not node_id.isdigit() or not handle.isdigit():
            if attach:
                raise RuntimeError(f"node {node} has no {_DRIVER} node ID")
            return ""
        client, _ = await self.cloud.client()
        if attach:
            return await blocking(lambda: _attach(client, int(handle), int(node_id)))
        await blocking(lambda: _detach(client, int(handle), int(node_id)))
        return ""


def _attach(client: Client, volume_id: int, server_id: int) -> str:
    volume = client.volumes.get_by_id(volume_id)
    if volume.server is not None:
        if volume.server.id != server_id:
            raise RuntimeError(
                f"failed to publish volume: volume is attached to server {volume.server.id}"
            )
    else:
        server = client.servers.get_by_id(server_id)
        client.volumes.attach(volume, server, automount=False).wait_until_finished()
        volume = client.volumes.get_by_id(volume_id)
    return str(volume.linux_device or f"/dev/disk/by-id/scsi-0HC_Volume_{volume_id}")


def _detach(client: Client, volume_id: int, server_id: int) -> None:
    try:
        volume = client.volumes.get_by_id(volume_id)
    except Exception as exc:
        if getattr(exc, "code", "") == "not_found":
            return  # the CSI spec: a volume that is gone counts as detached
        raise
    if volume.server is None or volume.server.id != server_id:
        return
    client.volumes.detach(volume).wait_until_finished()
