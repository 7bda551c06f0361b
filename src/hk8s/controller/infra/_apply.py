"""Idempotent handlers that carry out infra operations through the Hetzner port.

Every handler can run again after an interruption: a delete that finds nothing is done; a
create that hits ``uniqueness_error`` adopts the resource of that name after checking it is
labelled as this cluster's (a run killed after the create request but before it could record
anything leaves exactly that), then converges it with the same comparison the diff uses.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

from hk8s.controller._ownership import check_adoptable
from hk8s.controller._report import NullReporter, ProgressEvent, Reporter
from hk8s.controller.infra._diff import firewall_parts, load_balancer_parts, network_parts
from hk8s.errors import ConflictError, NotFoundError
from hk8s.model.resources import (
    Firewall,
    FirewallSpec,
    LoadBalancer,
    LoadBalancerSpec,
    Network,
    NetworkSpec,
    PlacementGroupSpec,
    Subnet,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hk8s.controller._executor import Handler, Results
    from hk8s.controller._plan import Change, Operation
    from hk8s.controller.infra._diff import ObservedInfra
    from hk8s.providers.hcloud import HcloudPort

__all__ = ["InfraHandlers"]

_R = TypeVar("_R")

# Error codes that mean "what you asked for is already the case" (Hetzner API reference, errors
# of the load balancer and network actions). A retried request whose first attempt succeeded
# gets these; they are success for an idempotent step.
_ALREADY = frozenset(
    {
        "load_balancer_already_attached",
        "target_already_defined",
        "source_port_already_used",
        "firewall_already_applied",
    }
)


class InfraHandlers:
    """The executor handlers for network, subnet, firewall, placement group, load balancer."""

    def __init__(
        self,
        hcloud: HcloudPort,
        cluster: str,
        observed: ObservedInfra,
        reporter: Reporter | None = None,
    ) -> None:
        self._hcloud = hcloud
        self._cluster = cluster
        self._observed = observed
        self._reporter = reporter or NullReporter()

    def handlers(self) -> dict[str, Handler]:
        return {
            "network": self.network,
            "subnet": self.subnet,
            "firewall": self.firewall,
            "placement-group": self.placement_group,
            "load-balancer": self.load_balancer,
        }

    async def _create_or_adopt(
        self,
        op: Operation,
        create: Callable[[], Awaitable[_R]],
        find: Callable[[], Awaitable[list[_R]]],
    ) -> tuple[_R, bool]:
        try:
            return await create(), False
        except ConflictError as exc:
            if exc.context.get("code") != "uniqueness_error":
                raise
            found = await find()
            if not found:
                raise
        existing = found[0]
        check_adoptable(op.kind, op.name, dict(getattr(existing, "labels", {})), self._cluster)
        self._reporter.emit(ProgressEvent("info", op.key, f"adopted existing {op.kind} {op.name}"))
        return existing, True

    async def _delete(self, delete: Awaitable[None]) -> None:
        try:
            await delete
        except NotFoundError:
            return  # already gone: the goal of a delete

    # -- network and subnet
    async def network(self, op: Operation, results: Results) -> object:
        if op.type == "delete":
            await self._delete(self._hcloud.delete_network(_id(op.current)))
            return None
        spec = op.desired_as(NetworkSpec)
        if op.type == "create":
            network, adopted = await self._create_or_adopt(
                op,
                lambda: self._hcloud.create_network(spec),
                lambda: self._hcloud.list_networks(name=spec.name),
            )
            if not adopted:
                return network
        else:
            network = op.current_as(Network)
        return await self._converge_network(spec, network)

    async def _converge_network(self, spec: NetworkSpec, network: Network) -> Network:
        for part, change in network_parts(spec, network):
            if part.startswith("subnet"):
                network = await self._add_subnet(network.id, change.new_as(Subnet))
            elif part == "labels":
                network = dataclasses.replace(
                    network, labels=await self._set_labels("network", network.id, change)
                )
        return network

    async def _add_subnet(self, network_id: int, subnet: Subnet) -> Network:
        return await self._hcloud.add_subnet(network_id, subnet)

    async def subnet(self, op: Operation, results: Results) -> object:
        network = self.network_of(results)
        if network is None:
            raise NotFoundError(f"network {self._cluster} not found to add subnet {op.name}")
        if any(s.ip_range == op.name for s in network.subnets):
            return network
        return await self._add_subnet(network.id, op.desired_as(Subnet))

    def network_of(self, results: Results) -> Network | None:
        """The cluster network, as created or adopted in this run, or as observed."""
        created = results.of("network", self._cluster)
        if isinstance(created, Network):
            return created
        return self._observed.network(self._cluster)

    # -- firewall
    async def firewall(self, op: Operation, results: Results) -> object:
        if op.type == "delete":
            await self._delete(self._hcloud.delete_firewall(_id(op.current)))
            return None
        spec = op.desired_as(FirewallSpec)
        if op.type == "create":
            firewall, adopted = await self._create_or_adopt(
                op,
                lambda: self._hcloud.create_firewall(spec),
                lambda: self._hcloud.list_firewalls(name=spec.name),
            )
            if not adopted:
                return firewall
        else:
            firewall = op.current_as(Firewall)
        return await self._converge_firewall(spec, firewall)

    async def _converge_firewall(self, spec: FirewallSpec, firewall: Firewall) -> Firewall:
        for part, change in firewall_parts(spec, firewall):
            if part == "rules":
                firewall = await self._hcloud.set_firewall_rules(firewall.id, spec.rules)
            elif part == "apply-to":
                selectors = change.new_as(list)
                call = self._hcloud.apply_firewall_to_selectors(firewall.id, selectors)
                firewall = await _tolerate(call, firewall)
            elif part == "labels":
                firewall = dataclasses.replace(
                    firewall, labels=await self._set_labels("firewall", firewall.id, change)
                )
        return firewall

    # -- placement groups
    async def placement_group(self, op: Operation, results: Results) -> object:
        if op.type == "delete":
            await self._delete(self._hcloud.delete_placement_group(_id(op.current)))
            return None
        spec = op.desired_as(PlacementGroupSpec)
        group, _ = await self._create_or_adopt(
            op,
            lambda: self._hcloud.create_placement_group(spec),
            lambda: self._hcloud.list_placement_groups(name=spec.name),
        )
        return group

    # -- load balancer
    async def load_balancer(self, op: Operation, results: Results) -> object:
        if op.type == "delete":
            await self._delete(self._hcloud.delete_load_balancer(_id(op.current)))
            return None
        spec = op.desired_as(LoadBalancerSpec)
        network = self.network_of(results)
        if network is None:
            raise NotFoundError(f"network {self._cluster} not found for load balancer {op.name}")
        spec = dataclasses.replace(spec, network_id=network.id)
        if op.type == "create":
            lb, adopted = await self._create_or_adopt(
                op,
                lambda: self._hcloud.create_load_balancer(spec),
                lambda: self._hcloud.list_load_balancers(name=spec.name),
            )
            if not adopted:
                return lb
        else:
            lb = op.current_as(LoadBalancer)
        return await self._converge_load_balancer(spec, lb, network.id)

    async def _converge_load_balancer(
        self, spec: LoadBalancerSpec, lb: LoadBalancer, network_id: int
    ) -> LoadBalancer:
        for part, change in load_balancer_parts(spec, lb, network_id):
            if part == "type":
                lb = await self._hcloud.change_lb_type(lb.id, spec.type)
            elif part == "network":
                lb = await _tolerate(self._hcloud.attach_lb_to_network(lb.id, network_id), lb)
            elif part.startswith("service"):
                service: Any = change.new
                if change.old is None:
                    lb = await _tolerate(self._hcloud.add_service(lb.id, service), lb)
                else:
                    lb = await self._hcloud.update_service(lb.id, service)
            elif part.startswith("target"):
                target: Any = change.new
                lb = await _tolerate(self._hcloud.add_target(lb.id, target), lb)
            elif part == "labels":
                lb = dataclasses.replace(
                    lb, labels=await self._set_labels("load-balancer", lb.id, change)
                )
        return lb

    async def _set_labels(self, kind: Any, resource_id: int, change: Change) -> dict[str, str]:
        """Set the labels; returns them, so a handler returns the resource as it is now
        (``create`` reads the load balancer and network from the results)."""
        labels: dict[str, str] = change.new_as(dict)
        await self._hcloud.set_labels(kind, resource_id, labels)
        return labels


async def _tolerate(call: Awaitable[_R], unchanged: _R) -> _R:
    """``call``, where an "already so" error counts as success (see ``_ALREADY``)."""
    try:
        return await call
    except ConflictError as exc:
        if exc.context.get("code") in _ALREADY:
            return unchanged
        raise


def _id(resource: object) -> int:
    value = getattr(resource, "id", None)
    if not isinstance(value, int):
        raise ValueError(f"operation has no current resource id: {resource!r}")
    return value
