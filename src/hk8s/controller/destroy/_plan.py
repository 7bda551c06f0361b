"""What ``hk8s destroy`` deletes, and in which order, as pure functions over observed data.

Ownership is decided by labels only (design.md section 3), by the four rules of
``hk8s.controller._ownership`` (hk8s, ccm, csi, snapshot), and build leftovers by theirs.

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

from typing import TYPE_CHECKING

from hk8s.controller._order import build_plan
from hk8s.controller._ownership import BUILD_FOR_LABEL, CCM_SERVICE_UID_LABEL, Owner, is_owned
from hk8s.controller._plan import Operation, Plan

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from hk8s.controller._inventory import ObservedCluster
    from hk8s.model.resources import (
        Image,
    )

__all__ = [
    "BLOCKED",
    "DESTROY_ORDER",
    "blocked",
    "image_name",
    "plan_destroy",
]

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
            if is_owned(image.labels, cluster)
            else "Talos snapshot no server outside the cluster uses (--images)"
        )
        ops.append(_op("image", image_name(image), reason, image, "snapshot", server_keys))
    for network in observed.networks:
        deps = [*server_keys, *ccm_keys, *api_lb_keys]
        ops.append(_op("network", network.name, labelled(network.labels), network, "hk8s", deps))
    return build_plan(ops)
