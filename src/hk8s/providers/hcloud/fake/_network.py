"""The fake's networks, firewalls and load balancers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hk8s.errors import ConflictError
from hk8s.model.resources import Firewall, LoadBalancer, Network, PrivateIP
from hk8s.providers.hcloud.fake._core import FakeState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hk8s.model.resources import (
        FirewallRule,
        FirewallSpec,
        LBService,
        LBTarget,
        LoadBalancerSpec,
        NetworkSpec,
        Subnet,
    )
    from hk8s.providers.hcloud.fake._core import _Fault

__all__ = ["NetworkCalls"]


class NetworkCalls(FakeState):
    """The port's network, firewall and load balancer calls, with the API's conflict codes."""

    # -- networks
    async def list_networks(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[Network]:
        return self._list("list_networks", self.networks, selector, name)

    async def create_network(self, spec: NetworkSpec) -> Network:
        def build(nid: int) -> Network:
            return Network(nid, spec.name, spec.ip_range, dict(spec.labels), spec.subnets)

        return self._create("create_network", spec, self.networks, build)

    async def add_subnet(self, network_id: int, subnet: Subnet) -> Network:
        fault = self._call("add_subnet", network_id, subnet)
        net = self._get(self.networks, network_id, "network")
        return self._replace(
            self.networks, network_id, "network", fault, subnets=(*net.subnets, subnet)
        )

    async def delete_network(self, network_id: int) -> None:
        self._delete("delete_network", self.networks, network_id, "network")

    # -- firewalls
    async def list_firewalls(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[Firewall]:
        return self._list("list_firewalls", self.firewalls, selector, name)

    async def create_firewall(self, spec: FirewallSpec) -> Firewall:
        def build(fid: int) -> Firewall:
            return Firewall(fid, spec.name, dict(spec.labels), spec.rules, spec.apply_to_selectors)

        return self._create("create_firewall", spec, self.firewalls, build)

    def _update_fw(self, fid: int, fault: _Fault | None, **changes: object) -> Firewall:
        return self._replace(self.firewalls, fid, "firewall", fault, **changes)

    async def set_firewall_rules(self, firewall_id: int, rules: Sequence[FirewallRule]) -> Firewall:
        fault = self._call("set_firewall_rules", firewall_id, tuple(rules))
        return self._update_fw(firewall_id, fault, rules=tuple(rules))

    async def apply_firewall_to_selectors(
        self, firewall_id: int, selectors: Sequence[str]
    ) -> Firewall:
        fault = self._call("apply_firewall_to_selectors", firewall_id, tuple(selectors))
        have = self._get(self.firewalls, firewall_id, "firewall").applied_selectors
        merged = tuple(dict.fromkeys((*have, *selectors)))
        return self._update_fw(firewall_id, fault, applied_selectors=merged)

    async def remove_firewall_from_selectors(
        self, firewall_id: int, selectors: Sequence[str]
    ) -> Firewall:
        fault = self._call("remove_firewall_from_selectors", firewall_id, tuple(selectors))
        have = self._get(self.firewalls, firewall_id, "firewall").applied_selectors
        kept = tuple(s for s in have if s not in selectors)
        return self._update_fw(firewall_id, fault, applied_selectors=kept)

    async def delete_firewall(self, firewall_id: int) -> None:
        self._delete("delete_firewall", self.firewalls, firewall_id, "firewall")

    # -- load balancers
    async def list_load_balancers(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[LoadBalancer]:
        return self._list("list_load_balancers", self.load_balancers, selector, name)

    async def create_load_balancer(self, spec: LoadBalancerSpec) -> LoadBalancer:
        def build(lid: int) -> LoadBalancer:
            private = (
                (PrivateIP(spec.network_id, f"10.0.0.{lid % 250 + 2}"),) if spec.network_id else ()
            )
            return LoadBalancer(
                lid,
                spec.name,
                spec.type,
                spec.location,
                dict(spec.labels),
                f"127.1.0.{lid % 250 + 1}",
                private,
                spec.services,
                spec.targets,
            )

        return self._create("create_load_balancer", spec, self.load_balancers, build)

    def _lb(self, lb_id: int) -> LoadBalancer:
        return self._get(self.load_balancers, lb_id, "load balancer")

    def _update_lb(self, lid: int, fault: _Fault | None, **changes: object) -> LoadBalancer:
        return self._replace(self.load_balancers, lid, "load balancer", fault, **changes)

    async def attach_lb_to_network(self, lb_id: int, network_id: int) -> LoadBalancer:
        fault = self._call("attach_lb_to_network", lb_id, network_id)
        lb = self._lb(lb_id)
        if any(p.network_id == network_id for p in lb.private_ips):
            raise ConflictError("already attached", code="load_balancer_already_attached")
        ips = (*lb.private_ips, PrivateIP(network_id, f"10.0.0.{lb_id % 250 + 2}"))
        return self._update_lb(lb_id, fault, private_ips=ips)

    async def add_service(self, lb_id: int, service: LBService) -> LoadBalancer:
        fault = self._call("add_service", lb_id, service)
        lb = self._lb(lb_id)
        if any(s.listen_port == service.listen_port for s in lb.services):
            raise ConflictError("port in use", code="source_port_already_used")
        return self._update_lb(lb_id, fault, services=(*lb.services, service))

    async def update_service(self, lb_id: int, service: LBService) -> LoadBalancer:
        fault = self._call("update_service", lb_id, service)
        kept = tuple(s for s in self._lb(lb_id).services if s.listen_port != service.listen_port)
        return self._update_lb(lb_id, fault, services=(*kept, service))

    async def add_target(self, lb_id: int, target: LBTarget) -> LoadBalancer:
        fault = self._call("add_target", lb_id, target)
        lb = self._lb(lb_id)
        if target in lb.targets:
            raise ConflictError("target exists", code="target_already_defined")
        return self._update_lb(lb_id, fault, targets=(*lb.targets, target))

    async def change_lb_type(self, lb_id: int, lb_type: str) -> LoadBalancer:
        fault = self._call("change_lb_type", lb_id, lb_type)
        return self._update_lb(lb_id, fault, type=lb_type)

    async def delete_load_balancer(self, lb_id: int) -> None:
        self._delete("delete_load_balancer", self.load_balancers, lb_id, "load balancer")
