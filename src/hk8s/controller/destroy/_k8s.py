"""Before deleting servers: let the cluster remove the cloud resources it made itself.

The Hetzner CCM owns a load balancer per Service of type LoadBalancer and deletes it when the
Service goes (its finalizer ``service.kubernetes.io/load-balancer-cleanup`` holds the Service
until then); the Hetzner CSI driver deletes the volume of a PersistentVolume whose claim is
deleted under reclaim policy ``Delete``. Deleting Services and claims while the cluster still
runs lets them do that, with the credentials and knowledge they have. What is left after the
timeout is reported; the Hetzner side is then cleaned by label (``destroy._plan``).
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

    @property
    def empty(self) -> bool:
        return not self.services and not self.claims


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


def _pv_of_claims(pv: dict[str, Any], claims: set[tuple[str, str]]) -> bool:
    spec = pv.get("spec") or {}
    ref = spec.get("claimRef") or {}
    return (str(ref.get("namespace", "")), str(ref.get("name", ""))) in claims


async def observe_in_cluster(kube: KubernetesAPI) -> InClusterObjects:
    """The LoadBalancer Services, claims and CSI volumes the cluster has now."""
    refs = tuple(await kube.list_load_balancer_services())
    services = await kube.list("v1", "Service")
    claims = await _served(kube.list_pvcs())
    volumes = await _served(kube.list("v1", "PersistentVolume"))
    lb = [s for s in services if (s.get("spec") or {}).get("type") == "LoadBalancer"]
    uids = tuple(str((s.get("metadata") or {}).get("uid", "")) for s in lb)
    pv_names = tuple(
        str((pv.get("metadata") or {}).get("name", ""))
        for pv in volumes
        if ((pv.get("spec") or {}).get("csi") or {}).get("driver") == CSI_DRIVER
    )
    return InClusterObjects(refs, tuple(claims), KubeFacts(uids, pv_names))


async def clean_in_cluster(
    kube: KubernetesAPI,
    *,
    clock: Clock,
    timeout: float,
    poll_interval: float,
    reporter: Reporter | None = None,
) -> list[str]:
    """Delete LoadBalancer Services and claims, wait for the CCM/CSI; return what is left.

    Left over after ``timeout``: Services still terminating, and PersistentVolumes of the
    deleted claims that should have gone (reclaim policy ``Delete``).
    """
    reporter = reporter or NullReporter()
    services = await kube.delete_load_balancer_services()
    claims = await _served(kube.delete_pvcs())
    for ref in (*services, *claims):
        reporter.emit(ProgressEvent("done", f"kubernetes/{ref}", f"delete {ref}"))
    if not services and not claims:
        return []
    deleted_claims = {(c.namespace or "", c.name) for c in claims}
    deadline = clock.now() + timeout
    while True:
        left = [f"{ref} (still terminating)" for ref in await kube.list_load_balancer_services()]
        for pv in await _served(kube.list("v1", "PersistentVolume")):
            spec = pv.get("spec") or {}
            if spec.get("persistentVolumeReclaimPolicy", "Delete") != "Delete":
                continue
            if _pv_of_claims(pv, deleted_claims):
                name = (pv.get("metadata") or {}).get("name", "")
                left.append(f"PersistentVolume {name} (its volume is not deleted yet)")
        if not left:
            return []
        remaining = deadline - clock.now()
        if remaining <= 0:
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
