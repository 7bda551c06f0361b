"""Hetzner volumes for PersistentVolumeClaims, as the hcloud CSI driver and its sidecars.

A real cluster's claims are served by hetznercloud/csi-driver's controller (with the
external-provisioner and external-attacher sidecars) and its node plugin; the control plane
does the rest: kube-controller-manager's PV controller binds claims to volumes and its
attach/detach controller makes VolumeAttachments for the pods' nodes, kube-scheduler delays a
``WaitForFirstConsumer`` claim until a pod using it is scheduled and names the node in the
claim's ``volume.kubernetes.io/selected-node`` annotation. This module plays only the
driver's part, as an API client of the real kube-apiserver and of the Hetzner API:

- ``install()``: the chart's ``CSIDriver csi.hetzner.cloud`` (attachRequired) and default
  StorageClass ``hcloud-volumes`` (``WaitForFirstConsumer``, reclaim ``Delete``, expansion
  allowed; csi-driver ``chart/templates/core/``), for when no Helm install made them;
- node plugin registration: every node whose ``providerID`` is ``hcloud://<id>`` gets the
  driver in its CSINode (node ID = server ID, topology key ``csi.hetzner.cloud/location``,
  16 volumes, ``internal/driver/node.go`` ``NodeGetInfo``) and the topology label;
- provisioning (external-provisioner with ``--extra-create-metadata``, then the driver's
  ``CreateVolume``, ``internal/driver/controller.go``): a claim the PV controller handed to
  ``csi.hetzner.cloud`` becomes a Hetzner volume named ``pvc-<claim uid>`` in the selected
  node's location, at least 10 GB, labelled ``managed-by=csi-driver``, ``pvc-name``,
  ``pvc-namespace``, ``pv-name`` (plus ``extra_labels``, the chart's
  ``controller.volumeExtraLabels``), and a PersistentVolume bound to the claim by ``claimRef``
  with ``spec.csi.driver=csi.hetzner.cloud``, the volume ID as handle, and node affinity
  to the location;
- deletion: a Released volume with reclaim policy ``Delete`` has its Hetzner volume deleted
  (refused while attached, retried, as the driver's ``ErrAttached``), then its PV;
- attaching (``_csi_attach``): VolumeAttachments become attach/detach calls on the server.

Deviations (docs/simulator.md): no filesystem, mount, resize (``allowVolumeExpansion`` is
declared but claims are not expanded), snapshots, encryption or volume stats; the node plugin
is registered on every hcloud node rather than where the DaemonSet's pod runs; the
external-attacher's finalizer on PersistentVolumes is not added.

>>> csi = CsiDriver(plane.client(), sim.endpoint)
>>> await csi.install(); task = asyncio.create_task(csi.run()); ...; await csi.stop()
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from typing import TYPE_CHECKING, Any

from hcloud.locations import Location

from hk8s.sim.k8s._client import ApiError
from hk8s.sim.k8s._cloud import HcloudAccess, blocking
from hk8s.sim.k8s._csi_attach import CsiAttacher
from hk8s.sim.k8s._informer import Controller, record_event

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hcloud import Client

    from hk8s.model.clock import Clock
    from hk8s.sim.k8s._client import KubeClient

__all__ = ["DRIVER", "STORAGE_CLASS", "CsiDriver", "chart_objects", "volume_size_gb"]

DRIVER = "csi.hetzner.cloud"  # internal/driver/driver.go PluginName
STORAGE_CLASS = "hcloud-volumes"
TOPOLOGY_KEY = f"{DRIVER}/location"
MAX_VOLUMES_PER_NODE = 16
MIN_VOLUME_GB = 10
PROVISIONER_FINALIZER = "external-provisioner.volume.kubernetes.io/finalizer"
_PROVISIONER_ANNOTATION = "volume.kubernetes.io/storage-provisioner"
_SELECTED_NODE = "volume.kubernetes.io/selected-node"
_LABEL_MAX = 63
_UNITS = {
    "": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5,
    "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5,
}  # fmt: skip
_QUANTITY = re.compile(r"^([0-9.]+)(e[0-9]+|[kMGTP]i?|Ki)?$")


def volume_size_gb(quantity: str) -> int:
    """The driver's size for a requested quantity: GiB rounded up, at least 10.

    >>> volume_size_gb("1Gi"), volume_size_gb("10G"), volume_size_gb("25Gi")
    (10, 10, 25)
    """
    match = _QUANTITY.match(quantity.strip())
    if not match:
        raise ValueError(f"not a quantity: {quantity!r}")
    number, suffix = float(match[1]), match[2] or ""
    factor = 10 ** int(suffix[1:]) if suffix.startswith("e") else _UNITS[suffix]
    return max(math.ceil(number * factor / 1024**3), MIN_VOLUME_GB)


def chart_objects(
    *, default_class: bool = True, reclaim_policy: str = "Delete"
) -> list[dict[str, Any]]:
    """The CSIDriver and StorageClass the csi-driver chart creates with its default values."""
    return [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "CSIDriver",
            "metadata": {"name": DRIVER},
            "spec": {
                "attachRequired": True,
                "fsGroupPolicy": "File",
                "podInfoOnMount": True,
                "seLinuxMount": True,
                "volumeLifecycleModes": ["Persistent"],
            },
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {
                    "storageclass.kubernetes.io/is-default-class": str(default_class).lower()
                },
            },
            "provisioner": DRIVER,
            "volumeBindingMode": "WaitForFirstConsumer",
            "allowVolumeExpansion": True,
            "reclaimPolicy": reclaim_policy,
        },
    ]


def _label_value(value: str) -> str:
    # internal/driver/controller.go: values past 63 characters keep their end, then any
    # leading non-alphanumerics are stripped.
    if len(value) <= _LABEL_MAX:
        return value
    return value[-_LABEL_MAX:].lstrip("-_.")


class CsiProvisioner(Controller):
    """external-provisioner + the driver's CreateVolume/DeleteVolume, and node registration."""

    name = "hcloud-csi provisioner"

    def __init__(
        self,
        api: KubeClient,
        cloud: HcloudAccess,
        *,
        clock: Clock | None = None,
        extra_labels: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(api, clock=clock)
        self.cloud = cloud
        self.extra_labels = dict(extra_labels or {})
        self.identity = f"{int(time.time() * 1000)}-{id(self) % 10000}-{DRIVER}"
        self.claims = self.informer("/api/v1/persistentvolumeclaims", self._on("pvc"))
        self.volumes = self.informer("/api/v1/persistentvolumes", self._on("pv"))
        self.nodes = self.informer("/api/v1/nodes", self._on("node"))
        self.classes = self.informer("/apis/storage.k8s.io/v1/storageclasses", lambda _k: None)
        self._registered: dict[str, str] = {}  # node -> location

    def _on(self, prefix: str) -> Any:
        return lambda key: self.enqueue(f"{prefix}:{key}")

    async def reconcile(self, key: str) -> None:
        kind, _, name = key.partition(":")
        if kind == "pvc":
            await self._provision(name)
        elif kind == "pv":
            await self._delete(name)
        elif kind == "node":
            await self._register(name)

    # --- node plugin registration --------------------------------------------------------

    async def _register(self, name: str) -> None:
        node = self.nodes.items.get(name)
        if node is None:
            self._registered.pop(name, None)
            return
        provider = str((node.get("spec") or {}).get("providerID", ""))
        if not provider.startswith("hcloud://") or not provider[9:].isdigit():
            return
        labels = (node.get("metadata") or {}).get("labels") or {}
        if name in self._registered and labels.get(TOPOLOGY_KEY) == self._registered[name]:
            return
        server_id = int(provider[9:])
        client, _ = await self.cloud.client()
        server = await blocking(lambda: client.servers.get_by_id(server_id))
        location = server.location.name if server.location else None
        if not location:
            raise RuntimeError(f"server {server_id} of node {name} has no location")
        entry = {
            "name": DRIVER,
            "nodeID": str(server_id),
            "topologyKeys": [TOPOLOGY_KEY],
            "allocatable": {"count": MAX_VOLUMES_PER_NODE},
        }
        path = f"/apis/storage.k8s.io/v1/csinodes/{name}"
        if await self.api.get_or_none(path) is None:
            owner = {
                "apiVersion": "v1",
                "kind": "Node",
                "name": name,
                "uid": node["metadata"]["uid"],
            }
            try:
                await self.api.create(
                    "/apis/storage.k8s.io/v1/csinodes",
                    {
                        "metadata": {"name": name, "ownerReferences": [owner]},
                        "spec": {"drivers": [entry]},
                    },
                )
            except ApiError as exc:
                if exc.code != 409:  # the kubelet made it meanwhile: merge below
                    raise
        await self.api.patch(path, {"spec": {"drivers": [entry]}}, kind="strategic")
        # The kubelet labels the node with the topology the plugin reports.
        await self.api.patch(
            f"/api/v1/nodes/{name}", {"metadata": {"labels": {TOPOLOGY_KEY: location}}}
        )
        self._registered[name] = location

    # --- provisioning --------------------------------------------------------------------

    def _class(self, claim: dict[str, Any]) -> dict[str, Any] | None:
        name = (claim.get("spec") or {}).get("storageClassName")
        found = self.classes.items.get(str(name)) if name else None
        return found if found and found.get("provisioner") == DRIVER else None

    def _location(self, claim: dict[str, Any], klass: dict[str, Any]) -> str | None:
        annotations = claim["metadata"].get("annotations") or {}
        selected = annotations.get(_SELECTED_NODE)
        if selected:
            return self._registered.get(selected)
        if klass.get("volumeBindingMode") == "WaitForFirstConsumer":
            return None
        return next(iter(sorted(self._registered.values())), None)  # Immediate: any node's

    async def _provision(self, key: str) -> None:
        claim = self.claims.items.get(key)
        if claim is None:
            return
        meta, spec = claim["metadata"], claim.get("spec") or {}
        annotations = meta.get("annotations") or {}
        if spec.get("volumeName") or annotations.get(_PROVISIONER_ANNOTATION) != DRIVER:
            return
        klass = self._class(claim)
        if klass is None or meta.get("deletionTimestamp"):
            return
        pv_name = f"pvc-{meta['uid']}"
        if pv_name in self.volumes.items or await self.api.get_or_none(
            f"/api/v1/persistentvolumes/{pv_name}"
        ):
            return
        location = self._location(claim, klass)
        if location is None:
            if annotations.get(_SELECTED_NODE):  # the node's plugin is not registered yet
                raise RuntimeError(f"node {annotations[_SELECTED_NODE]} has no {DRIVER} plugin")
            return
        await record_event(
            self.api, claim, "PersistentVolumeClaim", "Normal", "Provisioning",
            f'External provisioner is provisioning volume for claim "{key}"', DRIVER,
        )  # fmt: skip
        size = volume_size_gb(
            str(((spec.get("resources") or {}).get("requests") or {}).get("storage", "0"))
        )
        labels = {
            "managed-by": "csi-driver",
            **self.extra_labels,
            "pvc-name": _label_value(meta["name"]),
            "pvc-namespace": _label_value(meta["namespace"]),
            "pv-name": _label_value(pv_name),
        }
        client, _ = await self.cloud.client()
        try:
            volume_id = await blocking(
                lambda: _create_volume(client, pv_name, size, location, labels)
            )
        except Exception as exc:
            await record_event(
                self.api, claim, "PersistentVolumeClaim", "Warning", "ProvisioningFailed",
                f"failed to provision volume with StorageClass \"{klass['metadata']['name']}\": "
                f"rpc error: code = Internal desc = failed to create volume: {exc}", DRIVER,
            )  # fmt: skip
            raise
        pv = {
            "metadata": {
                "name": pv_name,
                "annotations": {"pv.kubernetes.io/provisioned-by": DRIVER},
                "finalizers": [PROVISIONER_FINALIZER],
            },
            "spec": {
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "capacity": {"storage": f"{size}Gi"},
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "resourceVersion": meta["resourceVersion"],
                },
                "csi": {
                    "driver": DRIVER,
                    "fsType": "ext4",
                    "volumeHandle": str(volume_id),
                    "volumeAttributes": {
                        "storage.kubernetes.io/csiProvisionerIdentity": self.identity
                    },
                },
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": TOPOLOGY_KEY, "operator": "In", "values": [location]}
                                ]
                            }
                        ]
                    }
                },
                "persistentVolumeReclaimPolicy": klass.get("reclaimPolicy", "Delete"),
                "storageClassName": klass["metadata"]["name"],
                "volumeMode": spec.get("volumeMode", "Filesystem"),
            },
        }
        try:
            await self.api.create("/api/v1/persistentvolumes", pv)
        except ApiError as exc:
            if exc.code != 409:
                raise
        await record_event(
            self.api, claim, "PersistentVolumeClaim", "Normal", "ProvisioningSucceeded",
            f"Successfully provisioned volume {pv_name}", DRIVER,
        )  # fmt: skip

    # --- deletion ------------------------------------------------------------------------

    async def _delete(self, name: str) -> None:
        pv = self.volumes.items.get(name)
        if pv is None:
            return
        spec, status = pv.get("spec") or {}, pv.get("status") or {}
        annotations = pv["metadata"].get("annotations") or {}
        if (spec.get("csi") or {}).get("driver") != DRIVER:
            return
        if annotations.get("pv.kubernetes.io/provisioned-by") != DRIVER:
            return
        if (
            status.get("phase") != "Released"
            or spec.get("persistentVolumeReclaimPolicy") != "Delete"
        ):
            return
        handle = str(spec["csi"].get("volumeHandle", ""))
        client, _ = await self.cloud.client()
        try:
            await blocking(lambda: _delete_volume(client, handle))
        except Exception as exc:
            await record_event(
                self.api, pv, "PersistentVolume", "Warning", "VolumeFailedDelete",
                f"rpc error: code = FailedPrecondition desc = {exc}", DRIVER,
            )  # fmt: skip
            raise
        path = f"/api/v1/persistentvolumes/{name}"
        finalizers = [
            f for f in pv["metadata"].get("finalizers") or [] if f != PROVISIONER_FINALIZER
        ]
        try:
            await self.api.patch(
                path,
                {
                    "metadata": {
                        "finalizers": finalizers,
                        "resourceVersion": pv["metadata"]["resourceVersion"],
                    }
                },
            )
        except ApiError as exc:
            if exc.code == 404:
                return
            raise
        await self.api.delete(path)


def _create_volume(
    client: Client, name: str, size: int, location: str, labels: dict[str, str]
) -> int:
    existing = client.volumes.get_by_name(name)
    if existing is not None and existing.id is not None:  # CSI CreateVolume is idempotent
        return existing.id
    # hcloud-python 2.27 annotates ``labels`` as str; it sends the map as the API takes it.
    created = client.volumes.create(
        size=size,
        name=name,
        labels=labels,  # type: ignore[arg-type]
        location=Location(name=location),
    )
    if created.action is not None:
        created.action.wait_until_finished()
    if created.volume.id is None:
        raise RuntimeError("the Hetzner API answered a volume without an id")
    return created.volume.id


def _delete_volume(client: Client, handle: str) -> None:
    if not handle.isdigit():
        return  # upstream: an unparsable ID is nothing to delete
    try:
        volume = client.volumes.get_by_id(int(handle))
    except Exception as exc:
        if getattr(exc, "code", "") == "not_found":
            return
        raise
    if volume.server is not None:
        raise RuntimeError(f"volume {handle} is attached to server {volume.server.id}")
    client.volumes.delete(volume)


class CsiDriver:
    """The driver's controller (with its provisioner and attacher sidecars) and node plugins."""

    def __init__(
        self,
        api: KubeClient,
        hcloud_endpoint: str,
        *,
        clock: Clock | None = None,
        extra_labels: Mapping[str, str] | None = None,
        poll_interval: float = 0.2,
    ) -> None:
        self.api = api
        cloud = HcloudAccess(
            api, hcloud_endpoint, agent="hcloud-csi-driver", poll_interval=poll_interval
        )
        self.provisioner = CsiProvisioner(api, cloud, clock=clock, extra_labels=extra_labels)
        self.attacher = CsiAttacher(api, cloud, clock=clock)

    async def install(self) -> None:
        """Server-side apply the chart's CSIDriver and StorageClass (field manager ``helm``)."""
        for obj in chart_objects():
            plural = "csidrivers" if obj["kind"] == "CSIDriver" else "storageclasses"
            await self.api.patch(
                f"/apis/storage.k8s.io/v1/{plural}/{obj['metadata']['name']}",
                obj,
                kind="apply",
                field_manager="helm",
                force=True,
            )

    async def started(self) -> None:
        await asyncio.gather(self.provisioner.started(), self.attacher.started())

    async def run(self) -> None:
        await asyncio.gather(self.provisioner.run(), self.attacher.run())

    async def stop(self) -> None:
        await asyncio.gather(self.provisioner.stop(), self.attacher.stop())
