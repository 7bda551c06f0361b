"""Scaling down safely: which operations wait for a healthy cluster, and how a node leaves.

``create`` runs a plan in two phases. Everything that adds or converges runs first; server
removals (and whatever depends on them, e.g. the placement group of a removed pool) run only
once the cluster is up and every remaining node is Ready, so evicted pods have somewhere to
go. ``split_removals`` is that cut, as a pure function.

``NodeRemover`` takes one server out, in the order ``kubectl drain`` + ``talosctl etcd
remove-member`` runbooks use (Talos docs, "Scaling down"): cordon and drain (evictions
honour PodDisruptionBudgets), a control plane then leaves etcd, the Node object is deleted,
and finally the server. Each step tolerates "already done", so an interrupted removal
resumes. A control plane is never the last one removed, and never removed while the etcd
members that stay could not keep quorum.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hk8s.controller._plan import Plan
from hk8s.errors import ConflictError, Hk8sError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hk8s.controller._nodes import Node
    from hk8s.controller._waits import Waiter
    from hk8s.model.resources import Server
    from hk8s.providers.hcloud import HcloudPort
    from hk8s.providers.k8s import KubernetesAPI
    from hk8s.providers.talos import EtcdMember, TalosNodeAPI

__all__ = ["NodeRemover", "quorum_after_removal", "split_removals"]


def split_removals(plan: Plan) -> tuple[Plan, Plan]:
    """(everything else, server deletes and their dependents), each in plan order."""
    later = {op.key for op in plan.operations if op.kind == "server" and op.type == "delete"}
    changed = True
    while changed:
        changed = False
        for op in plan.operations:
            if op.key not in later and any(d in later for d in op.depends_on):
                later.add(op.key)
                changed = True
    first = tuple(op for op in plan.operations if op.key not in later)
    second = tuple(op for op in plan.operations if op.key in later)
    return Plan(first), Plan(second)


def quorum_after_removal(members: int, unreachable_remaining: int) -> bool:
    """Whether ``members - 1`` members with ``unreachable_remaining`` of them down keep a
    majority (etcd needs floor(n/2)+1 voting members up)."""
    remaining = members - 1
    if remaining < 1:
        return False
    return remaining - unreachable_remaining >= remaining // 2 + 1


class NodeRemover:
    """Removes servers of one cluster; ``kube`` and ``control_planes`` are set once known."""

    def __init__(
        self,
        hcloud: HcloudPort,
        talos: TalosNodeAPI,
        probe: TalosNodeAPI,
        waiter: Waiter,
        *,
        drain_timeout: float | None = None,
    ) -> None:
        self.hcloud = hcloud
        self.talos = talos
        self.probe = probe
        self.waiter = waiter.within("scale down")  # server keys, but after nodes Ready
        self.drain_timeout = drain_timeout
        self.kube: KubernetesAPI | None = None
        # The control planes that stay (the desired ones).
        self.control_planes: Sequence[Node] = ()
        # Public IPv4 of every server of the cluster by name (etcd members to probe).
        self.addresses: dict[str, str] = {}

    async def __call__(self, server: Server) -> None:
        key = f"server/{server.name}"
        if self.kube is not None:
            names = {n.name for n in await self.kube.list_nodes()}
            if server.name in names:
                self.waiter.step(key, f"drain {server.name}")
                evicted = await self.kube.drain(server.name, timeout=self.drain_timeout)
                self.waiter.done(key, f"drain {server.name}", f"{len(evicted)} pod(s) evicted")
        if server.labels.get("role") == "control-plane":
            await self._leave_etcd(server)
        if self.kube is not None:
            await self.kube.delete_node(server.name)
        try:
            await self.hcloud.delete_server(server.id)
        except NotFoundError:
            return

    async def _members(self) -> tuple[list[EtcdMember], Node]:
        last: Hk8sError | None = None
        for node in self.control_planes:
            try:
                return await self.talos.etcd_members(node.address), node
            except Hk8sError as exc:
                last = exc
        raise ConflictError(
            "no remaining control plane answers, so etcd membership cannot be changed safely",
            hint="bring the control planes back (hk8s health) before scaling down",
        ) from last

    async def _leave_etcd(self, server: Server) -> None:
        staying = [n for n in self.control_planes if n.name != server.name]
        if not staying:
            raise ConflictError(
                f"refusing to remove {server.name}: it is the last control plane",
                hint="a cluster keeps at least one control plane node",
            )
        members, via = await self._members()
        leaving = [m for m in members if m.hostname == server.name]
        if not leaving:
            return  # already left (an interrupted run got this far)
        down = 0
        for member in members:
            if member.hostname == server.name:
                continue
            address = self.addresses.get(member.hostname)
            try:
                if address is None:
                    raise NotFoundError(f"no server for etcd member {member.hostname}")
                await self.probe.version(address)
            except Hk8sError:
                down += 1
        if not quorum_after_removal(len(members), down):
            raise ConflictError(
                f"refusing to remove {server.name} from etcd: {down} of the "
                f"{len(members) - 1} remaining members are unreachable, quorum would be lost",
                hint="repair the unreachable control planes first (hk8s health)",
            )
        key = f"server/{server.name}"
        self.waiter.step(key, f"{server.name} leaves etcd")
        try:
            if not server.public_ipv4:
                raise NotFoundError(f"{server.name} has no address")
            await self.talos.leave_etcd(server.public_ipv4)
        except Hk8sError:
            # The node cannot leave by itself (down, or not answering): remove it by id
            # through a member that stays (talosctl etcd remove-member).
            await self.talos.remove_etcd_member(via.address, leaving[0].id)
        self.waiter.done(key, f"{server.name} leaves etcd")
