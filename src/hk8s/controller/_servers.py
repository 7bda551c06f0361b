"""Which servers a cluster should have, and what to create or remove to get there (pure).

Servers are named ``<cluster>-<pool>-<n>`` (n from 1), so a re-run after an interruption finds
what it made before by name and label and never duplicates it. Everything a server needs goes
into its one create request (design.md section 4): the pool's snapshot for its architecture,
type, location, the cluster network, its placement group and the labels the firewall (applied
by label selector) and the API load balancer (targets by label selector) pick it up by.

Scaling down removes the highest-numbered servers of a pool, and whole pools that left the
config. Removals are chained one after the other, workers before control planes, so at most
one node is being drained and at most one etcd member leaves at a time (the cluster-api
``machineset_deletion_order.go`` idea: the order is a pure, tested function).

>>> desired = desired_servers(config, cluster_id="abc123")
>>> [s.name for s in desired][:2]
['demo-cp-1', 'demo-cp-2']
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hk8s.controller._ownership import PLACEMENT_GROUP_SIZE, cluster_labels
from hk8s.controller._plan import Operation
from hk8s.errors import NotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from hk8s.config import ClusterConfig
    from hk8s.model.resources import Server

__all__ = [
    "CLUSTER_ID_LABEL",
    "CONFIG_HASH_LABEL",
    "DesiredServer",
    "Node",
    "cluster_id_label",
    "desired_servers",
    "diff_servers",
    "pending_servers",
    "removal_order",
    "server_index",
    "server_selector",
]

# The short fingerprint of the secrets bundle a server was created for (see ``_secrets``).
CLUSTER_ID_LABEL = "hk8s/cluster-id"
# A hash of the machine config last applied to the server (see ``_nodes``).
CONFIG_HASH_LABEL = "hk8s/config-hash"

Role = Literal["control-plane", "worker"]


def server_selector(cluster: str) -> str:
    """Every server of the cluster (image-build servers carry no ``cluster`` label)."""
    return f"cluster={cluster},managed-by=hk8s"


def cluster_id_label(cluster_id: str) -> str:
    """The ``hk8s/cluster-id`` label value: 16 hex digits of the bundle's cluster id's SHA-256.

    The cluster id itself is a secret-ish identity (it seeds Talos discovery); its hash is not.
    """
    return hashlib.sha256(cluster_id.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DesiredServer:
    name: str
    pool: str
    role: Role
    index: int
    server_type: str
    location: str
    arch: str
    placement_group: str
    labels: dict[str, str]

    @property
    def control_plane(self) -> bool:
        return self.role == "control-plane"


@dataclass(frozen=True)
class Node:
    """A desired server and the server that exists for it."""

    desired: DesiredServer
    server: Server

    @property
    def name(self) -> str:
        return self.desired.name

    @property
    def address(self) -> str:
        """Where hk8s dials the node's Talos API (its public IPv4)."""
        if not self.server.public_ipv4:
            raise NotFoundError(f"server {self.name} has no public IPv4 address")
        return self.server.public_ipv4

    @property
    def private_ip(self) -> str | None:
        return self.server.private_ips[0].ip if self.server.private_ips else None


def desired_servers(config: ClusterConfig, *, cluster_id: str) -> list[DesiredServer]:
    """Every server of every pool, control planes first, in index order."""
    result = []
    for pool in config.pools():
        for index in range(1, pool.count + 1):
            group = math.ceil(index / PLACEMENT_GROUP_SIZE)
            labels = cluster_labels(config.name, role=pool.role, pool=pool.name)
            labels[CLUSTER_ID_LABEL] = cluster_id_label(cluster_id)
            result.append(
                DesiredServer(
                    name=pool.server_name(index),
                    pool=pool.name,
                    role=pool.role,
                    index=index,
                    server_type=pool.server_type,
                    location=pool.location,
                    arch=pool.arch,
                    placement_group=f"{config.name}-{pool.name}-pg-{group}",
                    labels=labels,
                )
            )
    return result


def server_index(cluster: str, server: Server) -> int | None:
    """``n`` of ``<cluster>-<pool>-<n>`` for a server of pool ``labels["pool"]``, else None."""
    pool = server.labels.get("pool", "")
    match = re.fullmatch(rf"{re.escape(cluster)}-{re.escape(pool)}-(\d+)", server.name)
    return int(match.group(1)) if match else None


def removal_order(cluster: str, servers: Iterable[Server]) -> list[Server]:
    """The order to remove servers in: workers first, then control planes; in each group
    the highest index first (pool name breaks ties), unparseable names last."""

    def key(server: Server) -> tuple[int, int, str]:
        role_rank = 1 if server.labels.get("role") == "control-plane" else 0
        index = server_index(cluster, server)
        return (role_rank, -(index if index is not None else -1), server.name)

    return sorted(servers, key=key)


def diff_servers(
    cluster: str,
    desired: Sequence[DesiredServer],
    observed: Sequence[Server],
    *,
    images: dict[str, int] | None = None,
) -> list[Operation]:
    """Creates for missing servers, deletes (chained, in ``removal_order``) for extra ones.

    ``images`` (arch -> snapshot id) goes into the create operations when known; the handler
    resolves it otherwise.
    """
    by_name = {s.name: s for s in observed}
    wanted = {d.name for d in desired}
    ops: list[Operation] = []
    for server in desired:
        if server.name in by_name:
            continue
        image = (images or {}).get(server.arch)
        ops.append(
            Operation(
                "create",
                "server",
                server.name,
                reason=f"pool {server.pool} wants {server.index} or more servers",
                desired=server,
                params={"image": image} if image is not None else {},
            )
        )
    pools = {d.pool: d for d in desired}
    extra = [s for s in observed if s.name not in wanted]
    previous: str | None = None
    for extra_server in removal_order(cluster, extra):
        pool = extra_server.labels.get("pool", "?")
        if pool not in pools:
            reason = f"pool {pool} is no longer in the config"
        else:
            count = sum(1 for d in desired if d.pool == pool)
            reason = f"pool {pool} is scaled down to {count}"
        role = extra_server.labels.get("role", "worker")
        what = "drain, leave etcd, delete node" if role == "control-plane" else "drain, delete node"
        ops.append(
            Operation(
                "delete",
                "server",
                extra_server.name,
                reason=f"{reason} ({what})",
                depends_on=(f"server/{previous}",) if previous else (),
                current=extra_server,
            )
        )
        previous = extra_server.name
    return ops


def pending_servers(desired: Sequence[DesiredServer], observed: Sequence[Server]) -> list[str]:
    """Work ``create`` still has to do on servers that exist: each as ``"<name>: <why>"``.

    A server that is not running, or that never got its machine config (no config-hash label:
    it sits in maintenance mode, e.g. after a run was cut short), is not "nothing to do" even
    though nothing needs creating or deleting.

    >>> pending_servers([], [])
    []
    """
    wanted = {d.name for d in desired}
    pending = []
    for server in sorted(observed, key=lambda s: s.name):
        if server.name not in wanted:
            continue  # a removal: already in the plan
        if server.status == "off":
            pending.append(f"{server.name}: the server is off — create powers it on")
        elif server.status != "running":
            pending.append(
                f"{server.name}: the server is {server.status}, not running — create waits "
                "for Hetzner to start it and names it if it never does"
            )
        elif CONFIG_HASH_LABEL not in server.labels:
            pending.append(
                f"{server.name}: no machine config applied yet (maintenance mode) — create "
                "applies its machine config"
            )
    return pending
