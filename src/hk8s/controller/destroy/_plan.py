"""What ``hk8s destroy`` deletes, and in which order, as pure functions over observed data.

Ownership is decided by labels only (design.md section 3), by four rules:

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

Hetzner's delete protection (``protection.delete``, the model's ``protected``) blocks the
whole destroy: ``blocked`` lists every protected resource of the plan, their operations say
so in their reason, and ``Destroyer.run`` refuses before the first request that changes
anything (``protection: true`` makes ``hk8s create`` protect servers, the API load balancer
and the network).

Order (cluster-api's ``machineset_deletion_order.go`` idea: the rule is data, tested alone):
CCM load balancers first (while the network and servers that tie them to the cluster still
exist, so an interrupted run still recognises them), then servers, then everything that
servers use (API load balancer, firewall, placement groups, SSH keys, volumes, snapshots),
and the network last, after every load balancer attached to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from hk8s.controller._order import build_plan
from hk8s.controller._plan import Operation, Plan
from hk8s.controller.image._spec import BUILD_FOR_LABEL, is_build_resource

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from hk8s.model.resources import (
        Firewall,
        Image,
        LoadBalancer,
        Network,
        PlacementGroup,
        Server,
        SSHKey,
        Volume,
    )

__all__ = [
    "BLOCKED",
    "CCM_SERVICE_UID_LABEL",
    "CSI_SELECTOR",
    "DESTROY_ORDER",
    "TALOS_SNAPSHOT_LABELS",
    "KeptImage",
    "ObservedCluster",
    "Owner",
    "blocked",
    "ccm_load_balancer_owned",
    "csi_volume_owned",
    "image_name",
    "owner_selector",
    "ownership_problem",
    "plan_destroy",
    "snapshots_to_delete",
]

Owner = Literal["hk8s", "ccm", "csi", "snapshot", "build"]

# hcloud-cloud-controller-manager internal/hcops/load_balancer.go: LabelServiceUID.
CCM_SERVICE_UID_LABEL = "hcloud-ccm/service-uid"
# csi-driver internal/driver/controller.go: labelKeyManagedBy = "managed-by", "csi-driver".
CSI_SELECTOR = "managed-by=csi-driver"
# Every snapshot ``hk8s image build`` made (hk8s.controller.image._spec.SNAPSHOT_SELECTOR).
TALOS_SNAPSHOT_LABELS = {"os": "talos", "managed-by": "hk8s"}

# How ``destroy`` lists what it deletes: the order the deletes run in.
DESTROY_ORDER: tuple[str, ...] = (
    "load-balancer",
    "server",
    "firewall",
    "placement-group",
    "ssh-key",
    "volume",
    "image",
    "network",
)


def owner_selector(cluster: str) -> str:
    """The label selector of everything hk8s made for ``cluster``.

    >>> owner_selector("demo")
    'cluster=demo,managed-by=hk8s'
    """
    return f"cluster={cluster},managed-by=hk8s"


@dataclass(frozen=True)
class KeptImage:
    """A Talos snapshot ``--images`` leaves alone, and why."""

    image: Image
    reason: str


@dataclass(frozen=True)
class ObservedCluster:
    """Everything found that belongs to the cluster (already filtered by the rules above)."""

    cluster: str
    servers: tuple[Server, ...] = ()
    load_balancers: tuple[LoadBalancer, ...] = ()
    ccm_load_balancers: tuple[LoadBalancer, ...] = ()
    firewalls: tuple[Firewall, ...] = ()
    placement_groups: tuple[PlacementGroup, ...] = ()
    networks: tuple[Network, ...] = ()
    ssh_keys: tuple[SSHKey, ...] = ()
    volumes: tuple[Volume, ...] = ()
    images: tuple[Image, ...] = ()
    kept_images: tuple[KeptImage, ...] = ()
    # Image build servers and keys that runs for this cluster left (a killed build).
    build_servers: tuple[Server, ...] = ()
    build_keys: tuple[SSHKey, ...] = ()
    # Things the operator should know (e.g. volumes could not be listed).
    notes: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.servers,
                self.load_balancers,
                self.ccm_load_balancers,
                self.firewalls,
                self.placement_groups,
                self.networks,
                self.ssh_keys,
                self.volumes,
                self.images,
                self.build_servers,
                self.build_keys,
            )
        )


def blocked(observed: ObservedCluster) -> tuple[str, ...]:
    """``kind name`` of every resource in ``observed`` Hetzner protects against deletion.

    >>> from hk8s.model.resources import Network
    >>> blocked(ObservedCluster("demo", networks=(Network(1, "demo", "10.0.0.0/16",
    ...     protected=True),)))
    ('network demo',)
    """
    lbs = (*observed.ccm_load_balancers, *observed.load_balancers)
    found = [f"load-balancer {lb.name}" for lb in lbs if lb.protected]
    found += [f"server {server.name}" for server in observed.servers if server.protected]
    found += [f"volume {volume.name}" for volume in observed.volumes if volume.protected]
    found += [f"image {image_name(image)}" for image in observed.images if image.protected]
    found += [f"network {network.name}" for network in observed.networks if network.protected]
    return tuple(found)


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
        if server.image_id is None or _is_owned(server.labels, cluster):
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


def _is_owned(labels: Mapping[str, str], cluster: str) -> bool:
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


# Appended to the reason of an operation whose resource is protected (``plan --destroy``).
BLOCKED = "BLOCKED: protected against deletion in Hetzner Cloud"


def _op(
    kind: str,
    name: str,
    reason: str,
    current: object,
    owner: Owner,
    depends_on: Iterable[str] = (),
    **params: object,
) -> Operation:
    if getattr(current, "protected", False):
        reason = f"{reason}; {BLOCKED}"
    return Operation(
        "delete",
        kind,
        name,
        reason,
        depends_on=tuple(depends_on),
        current=current,
        params={"owner": owner, **params},
    )


_DESCRIBED = ("cluster", "managed-by", BUILD_FOR_LABEL)


def labelled(labels: Mapping[str, str]) -> str:
    """The ownership labels as read from the resource, never as the selector asked for them.

    >>> labelled({"cluster": "demo", "managed-by": "hk8s", "pool": "cp"})
    'labelled cluster=demo,managed-by=hk8s'
    """
    found = [f"{k}={labels[k]}" for k in _DESCRIBED if k in labels]
    return f"labelled {','.join(found)}" if found else "without ownership labels"


def image_name(image: Image) -> str:
    """A unique, readable name for a snapshot (snapshots have no name, only a description)."""
    return f"{image.description or image.name or 'snapshot'} (#{image.id})"


def plan_destroy(observed: ObservedCluster) -> Plan:
    """The delete operations for everything ``observed`` holds, ordered as described above.

    >>> plan_destroy(ObservedCluster("demo")).empty
    True
    """
    cluster = observed.cluster
    ccm_keys: list[str] = []
    ops: list[Operation] = []
    for lb in observed.ccm_load_balancers:
        uid = lb.labels[CCM_SERVICE_UID_LABEL]
        reason = f"made by the Hetzner CCM for Service {uid} of cluster {cluster}"
        op = _op("load-balancer", lb.name, reason, lb, "ccm", service_uid=uid)
        ccm_keys.append(op.key)
        ops.append(op)
    server_keys: list[str] = []
    for server in observed.servers:
        role = server.labels.get("role", "?")
        pool = server.labels.get("pool", "?")
        reason = f"{role} of pool {pool}, {labelled(server.labels)}"
        op = _op("server", server.name, reason, server, "hk8s", ccm_keys)
        server_keys.append(op.key)
        ops.append(op)
    build_keys: list[str] = []
    for server in observed.build_servers:
        reason = f"image build server left by an interrupted build, {labelled(server.labels)}"
        op = _op("server", server.name, reason, server, "build")
        build_keys.append(op.key)
        ops.append(op)
    for key in observed.build_keys:
        reason = f"image build SSH key, {labelled(key.labels)}"
        ops.append(_op("ssh-key", key.name, reason, key, "build", build_keys))
    api_lb_keys: list[str] = []
    for lb in observed.load_balancers:
        op = _op("load-balancer", lb.name, labelled(lb.labels), lb, "hk8s", server_keys)
        api_lb_keys.append(op.key)
        ops.append(op)
    for fw in observed.firewalls:
        detach = list(fw.applied_selectors)
        reason = labelled(fw.labels) + (
            f"; first removed from {', '.join(detach)}" if detach else ""
        )
        ops.append(_op("firewall", fw.name, reason, fw, "hk8s", server_keys, detach=detach))
    for group in observed.placement_groups:
        ops.append(
            _op("placement-group", group.name, labelled(group.labels), group, "hk8s", server_keys)
        )
    for key in observed.ssh_keys:
        ops.append(_op("ssh-key", key.name, labelled(key.labels), key, "hk8s", server_keys))
    for volume in observed.volumes:
        pvc = volume.labels.get("pvc-name")
        of = f" for claim {volume.labels.get('pvc-namespace', '?')}/{pvc}" if pvc else ""
        reason = f"made by the Hetzner CSI driver{of}, used by cluster {cluster}"
        ops.append(_op("volume", volume.name, reason, volume, "csi", server_keys))
    for image in observed.images:
        reason = (
            labelled(image.labels)
            if _is_owned(image.labels, cluster)
            else "Talos snapshot no server outside the cluster uses (--images)"
        )
        ops.append(_op("image", image_name(image), reason, image, "snapshot", server_keys))
    for network in observed.networks:
        deps = [*server_keys, *ccm_keys, *api_lb_keys]
        ops.append(_op("network", network.name, labelled(network.labels), network, "hk8s", deps))
    return build_plan(ops)
