"""What marks a Hetzner resource as a cluster's: the labels hk8s puts on what it makes, and the
rules that decide what else belongs to a cluster.

``infra`` (network, firewall, placement groups, load balancer) and the servers component both
label what they create with ``cluster_labels`` and refuse to take over a same-named resource
that is not the cluster's (``check_adoptable``); the servers fill the placement groups
``infra`` makes, ``PLACEMENT_GROUP_SIZE`` to a group. Image builds label their temporary
servers and keys as builds (``build_selector``), never as the cluster's nodes.

What a cluster owns (``_inventory`` finds it, ``destroy`` deletes it, ``doctor`` reports
orphans) is decided by labels only (design.md section 3), by four rules:

- ``hk8s``: labelled ``cluster=<name>,managed-by=hk8s`` (servers, the API load balancer,
  firewall, placement groups, network, SSH keys, cluster-labelled snapshots);
- ``ccm``: a load balancer the Hetzner cloud controller manager made for a Service of type
  LoadBalancer. The CCM labels it ``hcloud-ccm/service-uid=<Service UID>``
  (hcloud-cloud-controller-manager ``internal/hcops/load_balancer.go``, ``LabelServiceUID``);
  it is this cluster's when the UID is one of its Services, or it is attached to the
  cluster's network (the CCM attaches it when it knows the network, as hk8s configures it:
  ``LoadBalancerOps.attachToNetwork``), or it targets one of the cluster's servers;
- ``csi``: a volume the Hetzner CSI driver made for a PersistentVolume. The driver labels it
  ``managed-by=csi-driver`` and ``pv-name``/``pvc-name``/``pvc-namespace`` (csi-driver
  ``internal/driver/controller.go``); it is this cluster's when it is attached to one of the
  cluster's servers, its ``pv-name`` is one of the cluster's PersistentVolumes, or it carries
  ``cluster=<name>`` (the chart's ``controller.volumeExtraLabels``);
- ``snapshot`` (only with ``--images``): an hk8s Talos snapshot (``os=talos,managed-by=hk8s``)
  that no server outside this cluster was created from. Snapshots are shared by every cluster
  of the project, so one another cluster's servers use is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hk8s.errors import ConflictError
from hk8s.model.labels import format_selector

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from hk8s.model.resources import Image, LoadBalancer, Server, Volume

__all__ = [
    "BUILD_FOR_LABEL",
    "BUILD_ROLE",
    "BUILD_ROLE_LABEL",
    "CCM_SERVICE_UID_LABEL",
    "CSI_SELECTOR",
    "PLACEMENT_GROUP_SIZE",
    "TALOS_SNAPSHOT_LABELS",
    "KeptImage",
    "Owner",
    "build_selector",
    "ccm_load_balancer_owned",
    "check_adoptable",
    "cluster_labels",
    "csi_volume_owned",
    "is_build_resource",
    "is_owned",
    "owner_selector",
    "ownership_problem",
    "snapshots_to_delete",
]

Owner = Literal["hk8s", "ccm", "csi", "snapshot", "build"]


# "A spread Placement Group can contain at most 10 servers" (Hetzner docs, Placement Groups).
PLACEMENT_GROUP_SIZE = 10


def cluster_labels(cluster: str, **extra: str) -> dict[str, str]:
    """The labels every hk8s resource of ``cluster`` carries, plus ``extra``."""
    return {"cluster": cluster, "managed-by": "hk8s", **extra}


def check_adoptable(kind: str, name: str, labels: dict[str, str], cluster: str) -> None:
    """Refuse to take over a resource hk8s did not create for ``cluster``.

    >>> check_adoptable("network", "demo", {"cluster": "demo", "managed-by": "hk8s"}, "demo")
    """
    if labels.get("managed-by") == "hk8s" and labels.get("cluster") == cluster:
        return
    owner = labels.get("cluster")
    whose = f"cluster {owner!r}" if owner else "something other than hk8s"
    raise ConflictError(
        f"a {kind} named {name!r} already exists and belongs to {whose}",
        hint=f"rename or delete that {kind}, or choose another cluster name",
    )


# hcloud-cloud-controller-manager internal/hcops/load_balancer.go: LabelServiceUID.
CCM_SERVICE_UID_LABEL = "hcloud-ccm/service-uid"
# csi-driver internal/driver/controller.go: labelKeyManagedBy = "managed-by", "csi-driver".
CSI_SELECTOR = "managed-by=csi-driver"
# Every snapshot ``hk8s image build`` made (its selector: image._spec.SNAPSHOT_SELECTOR).
TALOS_SNAPSHOT_LABELS = {"os": "talos", "managed-by": "hk8s"}
BUILD_ROLE = "image-build"
BUILD_ROLE_LABEL = "hk8s/role"
# The cluster whose run started the build: ``destroy`` removes that cluster's build leftovers.
# (Not ``cluster=``: build servers must never be mistaken for the cluster's nodes.)
BUILD_FOR_LABEL = "hk8s/build-for"


def owner_selector(cluster: str) -> str:
    """The label selector of everything hk8s made for ``cluster``.

    >>> owner_selector("demo")
    'cluster=demo,managed-by=hk8s'
    """
    return f"cluster={cluster},managed-by=hk8s"


def build_selector(cluster: str | None = None) -> str:
    """Every build server and key (of ``cluster``'s runs, when given)."""
    labels = {"managed-by": "hk8s", BUILD_ROLE_LABEL: BUILD_ROLE}
    if cluster:
        labels[BUILD_FOR_LABEL] = cluster
    return format_selector(labels)


def is_build_resource(labels: Mapping[str, str], cluster: str | None = None) -> bool:
    """Client-side check of what ``build_selector`` asked the API for."""
    return (
        labels.get("managed-by") == "hk8s"
        and labels.get(BUILD_ROLE_LABEL) == BUILD_ROLE
        and (cluster is None or labels.get(BUILD_FOR_LABEL) == cluster)
    )


@dataclass(frozen=True)
class KeptImage:
    """A Talos snapshot ``--images`` leaves alone, and why."""

    image: Image
    reason: str


def ccm_load_balancer_owned(
    lb: LoadBalancer,
    *,
    network_ids: Iterable[int],
    server_ids: Iterable[int],
    service_uids: Iterable[str] = (),
) -> bool:
    """Whether a CCM-made load balancer serves this cluster (see the module docstring)."""
    uid = lb.labels.get(CCM_SERVICE_UID_LABEL)
    if uid is None:
        return False
    if uid in set(service_uids):
        return True
    networks = set(network_ids)
    if any(p.network_id in networks for p in lb.private_ips):
        return True
    servers = set(server_ids)
    return any(t.server_id is not None and t.server_id in servers for t in lb.targets)


def csi_volume_owned(
    volume: Volume,
    *,
    cluster: str,
    server_ids: Iterable[int],
    pv_names: Iterable[str] = (),
) -> bool:
    """Whether a CSI-made volume holds data of this cluster (see the module docstring)."""
    if volume.labels.get("managed-by") != "csi-driver":
        return False
    if volume.server_id is not None and volume.server_id in set(server_ids):
        return True
    if volume.labels.get("cluster") == cluster:
        return True
    return volume.labels.get("pv-name", volume.name) in set(pv_names)


def snapshots_to_delete(
    cluster: str,
    talos_snapshots: Iterable[Image],
    cluster_snapshots: Iterable[Image],
    all_servers: Iterable[Server],
) -> tuple[list[Image], list[KeptImage]]:
    """Which snapshots ``--images`` deletes and which it keeps (in use elsewhere).

    A snapshot is in use when a server outside this cluster was created from it: deleting it
    would not stop that server, but its cluster could no longer add nodes from it.
    """
    used_elsewhere: dict[int, list[str]] = {}
    for server in all_servers:
        if server.image_id is None or is_owned(server.labels, cluster):
            continue
        used_elsewhere.setdefault(server.image_id, []).append(server.name)
    delete: dict[int, Image] = {}
    kept: list[KeptImage] = []
    for image in (*cluster_snapshots, *talos_snapshots):
        if image.type != "snapshot" or image.id in delete:
            continue
        users = used_elsewhere.get(image.id)
        if users:
            shown = ", ".join(sorted(users)[:3]) + (" ..." if len(users) > 3 else "")
            if all(k.image.id != image.id for k in kept):
                kept.append(KeptImage(image, f"servers of other clusters use it ({shown})"))
            continue
        delete[image.id] = image
    return sorted(delete.values(), key=lambda i: i.id), kept


def is_owned(labels: Mapping[str, str], cluster: str) -> bool:
    return labels.get("cluster") == cluster and labels.get("managed-by") == "hk8s"


def ownership_problem(
    owner: Owner,
    labels: Mapping[str, str],
    cluster: str,
    *,
    service_uid: str | None = None,
) -> str | None:
    """Why a resource may no longer be deleted as the cluster's, or None when it may.

    Checked again right before each delete: a resource relabelled since the plan was made
    (handed to another cluster, or taken out of hk8s' hands) is refused, never deleted.

    >>> ownership_problem("hk8s", {"cluster": "demo", "managed-by": "hk8s"}, "demo") is None
    True
    >>> ownership_problem("hk8s", {"cluster": "prod", "managed-by": "hk8s"}, "demo")
    'it is labelled cluster=prod, not cluster=demo'
    """
    if owner == "hk8s":
        if labels.get("managed-by") != "hk8s":
            return "it is not labelled managed-by=hk8s"
        if labels.get("cluster") != cluster:
            return f"it is labelled cluster={labels.get('cluster', '')}, not cluster={cluster}"
        return None
    if owner == "build":
        if not is_build_resource(labels, cluster):
            return f"it is no longer labelled as an image build of cluster {cluster}"
        return None
    if owner == "ccm":
        have = labels.get(CCM_SERVICE_UID_LABEL)
        if have is None or (service_uid is not None and have != service_uid):
            return f"its {CCM_SERVICE_UID_LABEL} label changed"
        return None
    if owner == "csi":
        return None if labels.get("managed-by") == "csi-driver" else "it is no longer a CSI volume"
    if labels.get("managed-by") != "hk8s" or (
        labels.get("os") != "talos" and labels.get("cluster") != cluster
    ):
        return "it is no longer labelled as an hk8s snapshot"
    return None
