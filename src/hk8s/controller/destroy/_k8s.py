"""Before deleting servers: let the cluster remove the cloud resources it made itself.

The Hetzner CCM owns a load balancer per Service of type LoadBalancer and deletes it when the
Service goes (its finalizer ``service.kubernetes.io/load-balancer-cleanup`` holds the Service
until then); the Hetzner CSI driver deletes the volume of a PersistentVolume whose claim is
deleted under reclaim policy ``Delete``. Deleting Services and claims while the cluster still
runs lets them do that, with the credentials and knowledge they have. What is left after the
timeout is reported; the Hetzner side is then cleaned by label (``destroy._plan``).

A claim a scheduled pod mounts is held by ``kubernetes.io/pvc-protection`` until that pod is
gone (kube-controller-manager ``pkg/controller/volume/pvcprotection``: only pods bound to a
node count), so the pods mounting the deleted claims are deleted too; the pods their owners
make again are not scheduled (kube-scheduler's VolumeBinding refuses a claim being deleted)
and hold nothing. Volumes whose claims went earlier (an interrupted destroy run again) are
still being removed by the CSI driver: they are waited for as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from hk8s.controller._inventory import KubeFacts
from hk8s.controller._report import NullReporter, ProgressEvent, Reporter
from hk8s.errors import Hk8sError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Mapping

    from hk8s.model.clock import Clock
    from hk8s.providers.k8s import KubernetesAPI, ObjectRef

__all__ = [
    "CSI_DRIVER",
    "InClusterObjects",
    "clean_in_cluster",
    "kube_reachable",
    "kubeconfig_cluster",
    "observe_in_cluster",
]

# csi-driver internal/driver/driver.go: PluginName.
CSI_DRIVER = "csi.hetzner.cloud"
_KEY = "kubernetes/cleanup"
_T = TypeVar("_T")


@dataclass(frozen=True)
class InClusterObjects:
    """The Services of type LoadBalancer and the claims ``destroy`` deletes first."""

    services: tuple[ObjectRef, ...] = ()
    claims: tuple[ObjectRef, ...] = ()
    facts: KubeFacts = field(default_factory=KubeFacts)
    # PersistentVolumes whose volume is to be deleted though no claim is left to delete.
    releasing: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.services and not self.claims and not self.releasing


def kubeconfig_cluster(document: Mapping[str, Any]) -> str | None:
    """The cluster name the kubeconfig's current context points at (talosctl names it after
    the Talos cluster), so destroy never cleans up a cluster it was not asked to.

    >>> kubeconfig_cluster({"current-context": "admin@demo",
    ...     "contexts": [{"name": "admin@demo", "context": {"cluster": "demo"}}]})
    'demo'
    """
    current = document.get("current-context")
    for entry in document.get("contexts") or []:
        if isinstance(entry, dict) and entry.get("name") == current:
            cluster = (entry.get("context") or {}).get("cluster")
            return str(cluster) if cluster else None
    return None


async def kube_reachable(kube: KubernetesAPI, timeout: float) -> str | None:
    """None when the API answers within ``timeout``, else why not."""
    try:
        await kube.wait_api_ready(timeout=timeout)
    except Hk8sError as exc:
        return str(exc)
    return None


async def _served(call: Awaitable[list[_T]]) -> list[_T]:
    """``call``'s items, or none when the API does not serve that kind at all (a cluster
    without storage APIs holds no claims to clean up)."""
    try:
        return await call
    except NotFoundError:
        return []


def _claim_of(pv: dict[str, Any]) -> tuple[str, str] | None:
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    if not ref.get("name"):
        return None
    return (str(ref.get("namespace", "")), str(ref.get("name", "")))


def _to_be_deleted(pv: dict[str, Any], live: set[tuple[str, str]]) -> bool:
    """The PV's volume goes with its claim (reclaim policy ``Delete``), and no claim that
    stays holds it: a claim deleted now or earlier."""
    spec = pv.get("spec") or {}
    if spec.get("persistentVolumeReclaimPolicy", "Delete") != "Delete":
        return False
    claim = _claim_of(pv)
    return claim is not None and claim not in live


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _mounted_claims(pod: dict[str, Any]) -> set[tuple[str, str]]:
    """The claims a pod mounts: named ones, and generic ephemeral volumes' (``<pod>-<volume>``,
    ``pkg/volume/util/ephemeral``)."""
    meta = pod.get("metadata") or {}
    namespace, found = str(meta.get("namespace", "")), set()
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        if claim := (volume.get("persistentVolumeClaim") or {}).get("claimName"):
            found.add((namespace, str(claim)))
        elif "ephemeral" in volume:
            found.add((namespace, f"{meta.get('name', '')}-{volume.get('name', '')}"))
    return found


async def _free_claims(kube: KubernetesAPI, claims: set[tuple[str, str]]) -> list[str]:
    """Delete the scheduled pods that mount ``claims``; returns ``ns/pod`` of those deleted."""
    deleted = []
    for pod in await kube.list("v1", "Pod"):
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        if (
            not (pod.get("spec") or {}).get("nodeName")
            or meta.get("deletionTimestamp")
            or status.get("phase") in ("Succeeded", "Failed")
            or not _mounted_claims(pod) & claims
        ):
            continue
        namespace = str(meta.get("namespace", ""))
        if await kube.delete("v1", "Pod", _name(pod), namespace=namespace):
            deleted.append(f"{namespace}/{_name(pod)}")
    return deleted


async def observe_in_cluster(kube: KubernetesAPI) -> InClusterObjects:
    """The LoadBalancer Services, claims and CSI volumes the cluster has now."""
    refs = tuple(await kube.list_load_balancer_services())
    services = await kube.list("v1", "Service")
    claims = await _served(kube.list_pvcs())
    volumes = await _served(kube.list("v1", "PersistentVolume"))
    lb = [s for s in services if (s.get("spec") or {}).get("type") == "LoadBalancer"]
    uids = tuple(str((s.get("metadata") or {}).get("uid", "")) for s in lb)
    pv_names = tuple(
        _name(pv)
        for pv in volumes
        if ((pv.get("spec") or {}).get("csi") or {}).get("driver") == CSI_DRIVER
    )
    live = {(c.namespace or "", c.name) for c in claims}
    releasing = tuple(_name(pv) for pv in volumes if _to_be_deleted(pv, live))
    return InClusterObjects(refs, tuple(claims), KubeFacts(uids, pv_names), releasing)


async def clean_in_cluster(
    kube: KubernetesAPI,
    *,
    clock: Clock,
    timeout: float,
    poll_interval: float,
    reporter: Reporter | None = None,
) -> list[str]:
    """Delete LoadBalancer Services and claims, wait for the CCM/CSI; return what is left.

    Left over after ``timeout``: Services still terminating, claims still held by a pod, and
    PersistentVolumes whose claims are gone but whose volumes are not deleted yet (reclaim
    policy ``Delete``), also those of claims deleted by an earlier, interrupted run.
    """
    reporter = reporter or NullReporter()
    services = await kube.delete_load_balancer_services()
    claims = await _served(kube.delete_pvcs())
    for ref in (*services, *claims):
        reporter.emit(ProgressEvent("done", f"kubernetes/{ref}", f"delete {ref}"))
    deleted_claims = {(c.namespace or "", c.name) for c in claims}
    deadline = clock.now() + timeout
    while True:
        # Owners make their pods again: delete each new scheduled user of a deleted claim.
        for pod in await _free_claims(kube, deleted_claims) if deleted_claims else []:
            reporter.emit(ProgressEvent("done", f"kubernetes/pod/{pod}", f"delete pod {pod}"))
        left = [f"{ref} (still terminating)" for ref in await kube.list_load_balancer_services()]
        remaining_claims = await _served(kube.list_pvcs())
        live = {(c.namespace or "", c.name) for c in remaining_claims}
        left += [
            f"{ref} (still used by a pod)"
            for ref in remaining_claims
            if (ref.namespace or "", ref.name) in deleted_claims
        ]
        for pv in await _served(kube.list("v1", "PersistentVolume")):
            if _to_be_deleted(pv, live):
                left.append(f"PersistentVolume {_name(pv)} (its volume is not deleted yet)")
        waited = "the CCM and CSI driver deleted their load balancers and volumes"
        if not left:
            reporter.emit(ProgressEvent("done", _KEY, waited))
            return []
        remaining = deadline - clock.now()
        if remaining <= 0:
            reporter.emit(ProgressEvent("failed", _KEY, waited, f"{len(left)} left"))
            return left
        reporter.emit(
            ProgressEvent(
                "waiting",
                _KEY,
                "waiting for the CCM and CSI driver to delete their load balancers and volumes",
                f"{len(left)} left",
            )
        )
        await clock.sleep(min(poll_interval, remaining))
