"""Find what a cluster owns: a fixed number of label-selector list calls (design.md section 4).

Six lists by ``cluster=<name>,managed-by=hk8s``, one for CCM load balancers (by the label the
CCM sets), one for CSI volumes, and with ``--images`` three more (hk8s' Talos snapshots,
cluster-labelled snapshots, and every server of the project, to see which snapshots other
clusters still use). The rules that decide what belongs to the cluster are the pure
functions of ``_ownership``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from hk8s.controller._ownership import (
    CCM_SERVICE_UID_LABEL,
    CSI_SELECTOR,
    TALOS_SNAPSHOT_LABELS,
    build_selector,
    ccm_load_balancer_owned,
    csi_volume_owned,
    is_build_resource,
    owner_selector,
    ownership_problem,
    snapshots_to_delete,
)
from hk8s.errors import AuthError, Hk8sError
from hk8s.model.labels import format_selector

if TYPE_CHECKING:
    from collections.abc import Iterable

    from hk8s.controller._ownership import KeptImage
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
    from hk8s.providers.hcloud import HcloudPort

__all__ = ["KubeFacts", "ObservedCluster", "observe_cluster"]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_N = TypeVar("_N", bound=_Named)


@dataclass(frozen=True)
class ObservedCluster:
    """Everything found that belongs to the cluster (filtered by the rules of ``_ownership``)."""

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


@dataclass(frozen=True)
class KubeFacts:
    """What the cluster's Kubernetes API says about the cloud resources made for it.

    ``service_uids``: UIDs of Services of type LoadBalancer (the CCM labels their Hetzner load
    balancers with them); ``pv_names``: PersistentVolumes of the Hetzner CSI driver (its
    volumes carry ``pv-name``). Empty when the API was not reachable.
    """

    service_uids: tuple[str, ...] = ()
    pv_names: tuple[str, ...] = ()


async def observe_cluster(
    hcloud: HcloudPort,
    cluster: str,
    *,
    images: bool = False,
    kube: KubeFacts | None = None,
) -> ObservedCluster:
    """Everything ``cluster`` owns, found by label, filtered by the ownership rules."""
    kube = kube or KubeFacts()
    selector = owner_selector(cluster)
    notes: list[str] = []
    owned, extra = await asyncio.gather(
        asyncio.gather(
            hcloud.list_servers(selector),
            hcloud.list_load_balancers(selector),
            hcloud.list_firewalls(selector),
            hcloud.list_placement_groups(selector),
            hcloud.list_networks(selector),
            hcloud.list_ssh_keys(selector),
        ),
        asyncio.gather(
            hcloud.list_load_balancers(CCM_SERVICE_UID_LABEL),
            _csi_volumes(hcloud, notes),
            hcloud.list_servers(build_selector(cluster)),
            hcloud.list_ssh_keys(build_selector(cluster)),
        ),
    )
    ccm_lbs, volumes, build_servers, build_keys = extra
    # The API's label filter is checked again on the labels read: what does not carry them
    # is never planned for deletion, whatever the answer held.
    servers_found, lbs_found, firewalls_found, groups_found, networks_found, keys_found = owned
    servers = _owned_only(servers_found, cluster, notes)
    lbs = _owned_only(lbs_found, cluster, notes)
    firewalls = _owned_only(firewalls_found, cluster, notes)
    groups = _owned_only(groups_found, cluster, notes)
    networks = _owned_only(networks_found, cluster, notes)
    keys = _owned_only(keys_found, cluster, notes)
    build_servers = [s for s in build_servers if is_build_resource(s.labels, cluster)]
    build_keys = [k for k in build_keys if is_build_resource(k.labels, cluster)]
    server_ids = [s.id for s in servers]
    network_ids = [n.id for n in networks]
    own_lb_ids = {lb.id for lb in lbs}
    ccm_owned = [
        lb
        for lb in ccm_lbs
        if lb.id not in own_lb_ids
        and ccm_load_balancer_owned(
            lb, network_ids=network_ids, server_ids=server_ids, service_uids=kube.service_uids
        )
    ]
    owned_volumes = [
        v
        for v in volumes
        if csi_volume_owned(v, cluster=cluster, server_ids=server_ids, pv_names=kube.pv_names)
    ]
    to_delete: list[Image] = []
    kept: list[KeptImage] = []
    if images:
        talos, labelled, everyone = await asyncio.gather(
            hcloud.list_images(format_selector(TALOS_SNAPSHOT_LABELS), type="snapshot"),
            hcloud.list_images(selector, type="snapshot"),
            hcloud.list_servers(),
        )
        to_delete, kept = snapshots_to_delete(cluster, talos, labelled, everyone)
    return ObservedCluster(
        cluster=cluster,
        servers=_by_name(servers),
        load_balancers=_by_name(lbs),
        ccm_load_balancers=_by_name(ccm_owned),
        firewalls=_by_name(firewalls),
        placement_groups=_by_name(groups),
        networks=_by_name(networks),
        ssh_keys=_by_name(keys),
        volumes=_by_name(owned_volumes),
        images=tuple(to_delete),
        kept_images=tuple(kept),
        build_servers=_by_name(build_servers),
        build_keys=_by_name(build_keys),
        notes=tuple(notes),
    )


async def _csi_volumes(hcloud: HcloudPort, notes: list[str]) -> list[Volume]:
    try:
        return await hcloud.list_volumes(CSI_SELECTOR)
    except AuthError:
        raise
    except Hk8sError as exc:
        # Volumes hold data, not running cost beyond storage: a failing volumes list (retries
        # ran out, an API incident) should not keep the rest of the cluster alive. Say so; a
        # re-run looks again.
        notes.append(
            f"CSI volumes were not checked: listing volumes failed ({exc.message}); re-run "
            "hk8s destroy, or look for volumes labelled managed-by=csi-driver in the console"
        )
        return []


class _Labelled(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> dict[str, str]: ...


_L = TypeVar("_L", bound=_Labelled)


def _owned_only(found: Iterable[_L], cluster: str, notes: list[str]) -> list[_L]:
    kept = []
    for item in found:
        if ownership_problem("hk8s", item.labels, cluster) is None:
            kept.append(item)
        else:
            notes.append(
                f"ignored {item.name}: the API listed it for cluster={cluster},managed-by=hk8s "
                "but its labels say otherwise"
            )
    return kept


def _by_name(items: Iterable[_N]) -> tuple[_N, ...]:
    return tuple(sorted(items, key=lambda r: r.name))
