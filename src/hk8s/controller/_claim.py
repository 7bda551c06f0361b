"""First writer wins: a cluster name is claimed on Hetzner before any server exists.

Two operators creating the same cluster from two directories each generate a secrets bundle;
without a claim both went on creating servers, and the cluster ended with servers labelled
with one cluster id and running the other's PKI, manageable by neither. Hetzner enforces
unique names per project, so creating one resource with a fixed name is an atomic test-and-set:
``create`` makes a placement group ``<cluster>-claim`` labelled with its bundle's cluster id
(a placement group costs nothing and holds no server), and a second operator, whose create
answers ``uniqueness_error`` or who finds the claim with another id, stops before its first
server or build with a clear message. ``destroy`` deletes the claim with the cluster (it is
labelled ``cluster=<name>,managed-by=hk8s``); infra leaves it alone (its component is not
``placement-group``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hk8s.controller._servers import CLUSTER_ID_LABEL, cluster_id_label
from hk8s.errors import ConflictError
from hk8s.model.labels import format_selector
from hk8s.model.resources import PlacementGroupSpec

if TYPE_CHECKING:
    from hk8s.model.resources import PlacementGroup
    from hk8s.pki import SecretsBundle
    from hk8s.providers.hcloud import HcloudPort

__all__ = ["CLAIM_COMPONENT", "claim_cluster", "claim_name"]

CLAIM_COMPONENT = "claim"


def claim_name(cluster: str) -> str:
    return f"{cluster}-claim"


def _labels(cluster: str) -> dict[str, str]:
    return {"cluster": cluster, "managed-by": "hk8s", "component": CLAIM_COMPONENT}


def _ours(group: PlacementGroup, cluster: str) -> bool:
    return all(group.labels.get(k) == v for k, v in _labels(cluster).items())


async def claim_cluster(
    hcloud: HcloudPort,
    cluster: str,
    bundle: SecretsBundle,
    *,
    listed: list[PlacementGroup] | None = None,
) -> bool:
    """Claim ``cluster`` for ``bundle``; True when this run made the claim.

    Raises ``ConflictError`` when the cluster is claimed by another secrets bundle. The claim
    is found among all the cluster's placement groups (one list for the claim and the pools'
    groups); ``listed``, when given, receives that list as it was before any claim was made,
    so ``create`` plans the pools' groups from it instead of listing them again.
    """
    mine = cluster_id_label(bundle.cluster_id)
    groups = await hcloud.list_placement_groups(
        format_selector({"cluster": cluster, "managed-by": "hk8s"})
    )
    if listed is not None:
        listed.extend(groups)
    found = [g for g in groups if _ours(g, cluster)]
    if not found:
        labels = {**_labels(cluster), CLUSTER_ID_LABEL: mine}
        try:
            await hcloud.create_placement_group(PlacementGroupSpec(claim_name(cluster), labels))
        except ConflictError:
            # Someone else's create won the race for the name: theirs is the cluster.
            found = await hcloud.list_placement_groups(name=claim_name(cluster))
            if not found:
                raise
        else:
            return True
    owner = found[0].labels.get(CLUSTER_ID_LABEL)
    if owner != mine:
        raise ConflictError(
            f"cluster {cluster} is already claimed by another secrets bundle (cluster id "
            f"{owner or 'unknown'}, placement group {found[0].name}); another hk8s create of "
            "this cluster, from another directory, was first",
            hint="run hk8s from the directory whose secrets.yaml created the cluster, or give "
            "this cluster another name",
        )
    return False
