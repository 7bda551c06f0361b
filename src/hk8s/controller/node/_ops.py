"""``hk8s node reboot|reset|replace``: act on one node without breaking the cluster.

- **reboot**: cordon and drain (PodDisruptionBudgets honoured), ``Reboot``, wait for the new
  boot (the kubelet's ``bootID`` changes), a control plane back in etcd, the Node Ready, then
  uncordon and gate on the cluster's health (``wait_healthy``).
- **reset**: drain, then a graceful ``Reset`` that wipes the node and reboots it into
  maintenance mode; graceful makes a control plane leave etcd first (Talos ``talosctl reset``
  docs). The Node object is deleted and the server's config-hash label dropped, so the next
  ``hk8s create`` configures it again; the rest of the cluster is gated on health.
- **replace**: ``NodeRemover`` (the scale-down path: drain, leave etcd or remove the member
  through another control plane, delete the Node and the server); ``create`` then makes a
  fresh server for the free slot.

Before anything is touched, ``quorum_refusal`` decides from the etcd member list and which
members answer: a reboot may not leave fewer than a majority up while the node is away, a
reset or replace may not leave the remaining members without a majority, and the last control
plane is never reset or replaced. A refusal is a ``UsageError`` (exit 2, nothing changed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hk8s.controller._etcd_members import wait_etcd_members
from hk8s.controller._health import wait_healthy
from hk8s.controller._node_reboots import boot_id
from hk8s.controller._scale import NodeRemover, quorum_after_removal
from hk8s.controller._servers import CONFIG_HASH_LABEL
from hk8s.errors import Hk8sError, UsageError
from hk8s.providers.talos import MaintenanceModeError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hk8s.controller._nodes import Node
    from hk8s.controller._waits import Waiter
    from hk8s.providers.hcloud import HcloudPort
    from hk8s.providers.k8s import KubernetesAPI
    from hk8s.providers.talos import EtcdMember, TalosNodeAPI

__all__ = ["NodeAction", "NodeOps", "quorum_refusal"]

NodeAction = Literal["reboot", "reset", "replace"]


def quorum_refusal(
    action: NodeAction, node: str, members: Sequence[str], down: set[str]
) -> str | None:
    """Why ``action`` on ``node`` would break etcd quorum, or None if it keeps it.

    ``members`` are the etcd voters' names, ``down`` those that do not answer now.

    >>> quorum_refusal("reboot", "cp-1", ["cp-1", "cp-2", "cp-3"], {"cp-2"})
    'with cp-1 rebooting, 1 of 3 etcd members would be up (2 needed)'
    """
    if node not in members:
        return None
    others_down = len(down - {node})
    if action == "reboot":
        total = len(members)
        up = total - others_down - 1
        need = total // 2 + 1
        if up < need:
            return (
                f"with {node} rebooting, {up} of {total} etcd members would be up ({need} needed)"
            )
        return None
    if len(members) == 1:
        return f"{node} is the only etcd member: the cluster would lose its data"
    if not quorum_after_removal(len(members), others_down):
        remaining = len(members) - 1
        return (
            f"without {node}, {remaining - others_down} of {remaining} remaining etcd members "
            f"would be up ({remaining // 2 + 1} needed)"
        )
    return None


@dataclass
class NodeOps:
    hcloud: HcloudPort
    talos: TalosNodeAPI
    probe: TalosNodeAPI
    kube: KubernetesAPI
    waiter: Waiter
    nodes: Sequence[Node]

    @property
    def control_planes(self) -> list[Node]:
        return [n for n in self.nodes if n.desired.control_plane]

    def find(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise UsageError(
            f"cluster has no node {name!r}",
            hint=f"its nodes are {', '.join(n.name for n in self.nodes)}",
        )

    # -- the guard -------------------------------------------------------------------------
    async def _members(self) -> list[EtcdMember]:
        last: Hk8sError | None = None
        for cp in self.control_planes:
            try:
                return await self.probe.etcd_members(cp.address)
            except Hk8sError as exc:
                last = exc
        raise UsageError(
            "refusing: no control plane answers, so etcd quorum cannot be checked "
            f"({last.message if last else 'no control plane'}); nothing was changed",
            hint="`hk8s health -f <config>` shows what is down",
        )

    async def guard(self, action: NodeAction, node: Node) -> None:
        """Refuse (exit 2, before any change) when ``action`` would break etcd quorum."""
        if not node.desired.control_plane:
            return
        members = [m for m in await self._members() if not m.is_learner]
        names = [m.hostname for m in members]
        by_name = {n.name: n for n in self.nodes}
        down = set()
        for name in names:
            other = by_name.get(name)
            try:
                if other is None:
                    raise UsageError(f"no server for etcd member {name}")
                await self.probe.version(other.address)
            except Hk8sError:
                down.add(name)
        why = quorum_refusal(action, node.name, names, down)
        if why is not None:
            raise UsageError(
                f"refusing to {action} {node.name}: {why}; nothing was changed",
                hint="repair or wait for the other control planes first (`hk8s health`)",
            )

    # -- actions ----------------------------------------------------------------------------
    async def _drain(self, node: Node) -> None:
        key = f"node/{node.name}"
        self.waiter.step(key, f"drain {node.name}")
        await self.kube.cordon(node.name)
        evicted = await self.kube.drain(node.name)
        self.waiter.done(key, f"drain {node.name}", f"{len(evicted)} pod(s) evicted")

    async def reboot(self, name: str) -> None:
        node = self.find(name)
        await self.guard("reboot", node)
        key = f"node/{node.name}"
        boot = await boot_id(self.kube, node.name)
        await self._drain(node)
        self.waiter.step(key, f"reboot {node.name}")
        await self.talos.reboot(node.address)

        async def rebooted() -> tuple[bool, str]:
            try:
                await self.probe.version(node.address)
                now = await boot_id(self.kube, node.name)
            except Hk8sError as exc:
                return False, exc.message
            return now is not None and now != boot, f"boot id {now}"

        await self.waiter.until(key, f"{node.name} booted again", rebooted)
        self.waiter.done(key, f"reboot {node.name}")
        if node.desired.control_plane:
            await wait_etcd_members(self.probe, self.waiter, self.control_planes)
        await self.kube.wait_nodes_ready([node.name], booted_since={node.name: boot})
        await self.kube.uncordon(node.name)
        await wait_healthy(self.probe, self.kube, self.waiter, self.nodes)

    async def reset(self, name: str) -> None:
        node = self.find(name)
        await self.guard("reset", node)
        key = f"node/{node.name}"
        await self._drain(node)
        self.waiter.step(key, f"reset {node.name}")
        # Graceful: a control plane leaves etcd before the wipe (Talos ResetRequest.graceful).
        await self.talos.reset(node.address, graceful=True, reboot=True)
        await self.kube.delete_node(node.name)
        labels = {k: v for k, v in node.server.labels.items() if k != CONFIG_HASH_LABEL}
        await self.hcloud.set_labels("server", node.server.id, labels)

        async def maintenance() -> tuple[bool, str]:
            # Only a node without a config answers a client without a certificate, and its
            # maintenance service answers Version with Unimplemented (Talos 1.11+).
            try:
                await self.probe.version(node.address, maintenance=True)
            except MaintenanceModeError:
                return True, "maintenance mode"
            except Hk8sError as exc:
                return False, exc.message
            return True, "maintenance mode"

        await self.waiter.until(key, f"{node.name} in maintenance mode", maintenance)
        self.waiter.done(key, f"reset {node.name}", "in maintenance mode")
        rest = [n for n in self.nodes if n.name != node.name]
        await wait_healthy(self.probe, self.kube, self.waiter, rest)

    async def replace(self, name: str) -> None:
        """Take the node out (etcd membership handled); ``create`` adds its successor."""
        node = self.find(name)
        await self.guard("replace", node)
        remover = NodeRemover(self.hcloud, self.talos, self.probe, self.waiter)
        remover.kube = self.kube
        remover.control_planes = [n for n in self.control_planes if n.name != node.name]
        remover.addresses = {n.name: n.address for n in self.nodes}
        await remover(node.server)
