"""What marks a Hetzner resource as a cluster's, for every component that creates one.

``infra`` (network, firewall, placement groups, load balancer) and the servers component both
label what they create with ``cluster_labels`` and refuse to take over a same-named resource
that is not the cluster's (``check_adoptable``); the servers fill the placement groups
``infra`` makes, ``PLACEMENT_GROUP_SIZE`` to a group.
"""

from __future__ import annotations

from hk8s.errors import ConflictError

__all__ = ["PLACEMENT_GROUP_SIZE", "check_adoptable", "cluster_labels"]

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
