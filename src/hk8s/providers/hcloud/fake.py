"""A stateful in-memory ``HcloudPort`` for unit tests of the controller.

Keeps resources in dicts, filters by real label-selector semantics (``hk8s.model.labels``),
enforces name uniqueness (``ConflictError`` with ``code="uniqueness_error"``), answers
``NotFoundError`` for unknown ids, and records every call in ``calls`` so tests can count
mutations. ``fail(method, error, times=1)`` makes the next call(s) of a method raise, before
(``after=False``) or after (``after=True``, the request "succeeded" but the answer was lost)
the change is made. Deleting a resource whose ``protected`` is set raises ``ConflictError``
with ``code="protected"``, as the API answers. After CAPH's ``pkg/services/hcloud/client/fake``.

It is not the simulator: no HTTP, no actions in flight, no rate limit. End-to-end behaviour is
tested against ``hk8s.sim``.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hk8s.errors import ConflictError, NotFoundError
from hk8s.model.labels import match_selector
from hk8s.model.resources import (
    Action,
    Firewall,
    Image,
    LoadBalancer,
    Network,
    PlacementGroup,
    PrivateIP,
    Server,
    ServerType,
    SSHKey,
    Volume,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hk8s.model.resources import (
        FirewallRule,
        FirewallSpec,
        LBService,
        LBTarget,
        LoadBalancerSpec,
        NetworkSpec,
        PlacementGroupSpec,
        ServerSpec,
        SSHKeySpec,
        Subnet,
    )
    from hk8s.providers.hcloud._port import HcloudPort, LabelledKind, ProtectableKind

__all__ = ["MUTATING_PREFIXES", "FakeHcloud"]

MUTATING_PREFIXES = (
    "create_",
    "delete_",
    "add_",
    "set_",
    "apply_",
    "remove_",
    "attach_",
    "change_",
    "update_",
    "power_",
    "shutdown",
    "enable_",
)


@dataclass
class _Fault:
    error: Exception
    times: int
    after: bool


@dataclass
class FakeHcloud:
    """In-memory Hetzner project. Inspect ``networks``, ``firewalls``, ... directly."""

    networks: dict[int, Network] = field(default_factory=dict)
    firewalls: dict[int, Firewall] = field(default_factory=dict)
    load_balancers: dict[int, LoadBalancer] = field(default_factory=dict)
    placement_groups: dict[int, PlacementGroup] = field(default_factory=dict)
    servers: dict[int, Server] = field(default_factory=dict)
    images: dict[int, Image] = field(default_factory=dict)
    ssh_keys: dict[int, SSHKey] = field(default_factory=dict)
    volumes: dict[int, Volume] = field(default_factory=dict)
    types: list[ServerType] = field(default_factory=list)
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    _faults: dict[str, list[_Fault]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- test helpers
    def fail(self, method: str, error: Exception, *, times: int = 1, after: bool = False) -> None:
        self._faults.setdefault(method, []).append(_Fault(error, times, after))

    def mutations(self) -> list[str]:
        return [name for name, _ in self.calls if name.startswith(MUTATING_PREFIXES)]

    def _call(self, name: str, *args: Any) -> _Fault | None:
        self.calls.append((name, args))
        queue = self._faults.get(name) or []
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        if not fault.after:
            raise fault.error
        return fault

    @staticmethod
    def _done(fault: _Fault | None) -> None:
        if fault is not None:
            raise fault.error

    def _new_id(self) -> int:
        return next(self._ids)

    @staticmethod
    def _unique(store: dict[int, Any], name: str) -> None:
        if any(r.name == name for r in store.values()):
            raise ConflictError(f"name {name!r} is already used", code="uniqueness_error")

    @staticmethod
    def _get(store: dict[int, Any], rid: int, kind: str) -> Any:
        if rid not in store:
            raise NotFoundError(f"{kind} {rid} not found", code="not_found")
        return store[rid]

    @staticmethod
    def _deletable(store: dict[int, Any], rid: int, kind: str) -> Any:
        """The resource to delete; ``protected`` (HTTP 423) while its delete protection is on."""
        current = FakeHcloud._get(store, rid, kind)
        if getattr(current, "protected", False):
            raise ConflictError(f"{kind} {rid} is protected against deletion", code="protected")
        return current

    @staticmethod
    def _select(store: dict[int, Any], selector: str | None, name: str | None) -> list[Any]:
        return [
            r
            for r in store.values()
            if (selector is None or match_selector(selector, r.labels))
            and (name is None or r.name == name)
        ]

    # -- networks
    async def list_networks(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[Network]:
        self._call("list_networks", selector, name)
        return self._select(self.networks, selector, name)

    async def create_network(self, spec: NetworkSpec) -> Network:
        fault = self._call("create_network", spec)
        self._unique(self.networks, spec.name)
        net = Network(self._new_id(), spec.name, spec.ip_range, dict(spec.labels), spec.subnets)
        self.networks[net.id] = net
        self._done(fault)
        return net

    async def add_subnet(self, network_id: int, subnet: Subnet) -> Network:
        fault = self._call("add_subnet", network_id, subnet)
        net = self._get(self.networks, network_id, "network")
        net = dataclasses.replace(net, subnets=(*net.subnets, subnet))
        self.networks[network_id] = net
        self._done(fault)
        return net  # type: ignore[no-any-return]

    async def delete_network(self, network_id: int) -> None:
        fault = self._call("delete_network", network_id)
        self._deletable(self.networks, network_id, "network")
        del self.networks[network_id]
        self._done(fault)

    # -- firewalls
    async def list_firewalls(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[Firewall]:
        self._call("list_firewalls", selector, name)
        return self._select(self.firewalls, selector, name)

    async def create_firewall(self, spec: FirewallSpec) -> Firewall:
        fault = self._call("create_firewall", spec)
        self._unique(self.firewalls, spec.name)
        fw = Firewall(
            self._new_id(), spec.name, dict(spec.labels), spec.rules, spec.apply_to_selectors
        )
        self.firewalls[fw.id] = fw
        self._done(fault)
        return fw

    def _update_fw(self, fid: int, fault: _Fault | None, **changes: Any) -> Firewall:
        fw: Firewall = dataclasses.replace(self._get(self.firewalls, fid, "firewall"), **changes)
        self.firewalls[fid] = fw
        self._done(fault)
        return fw

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
        fault = self._call("delete_firewall", firewall_id)
        self._get(self.firewalls, firewall_id, "firewall")
        del self.firewalls[firewall_id]
        self._done(fault)

    # -- load balancers
    async def list_load_balancers(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[LoadBalancer]:
        self._call("list_load_balancers", selector, name)
        return self._select(self.load_balancers, selector, name)

    async def create_load_balancer(self, spec: LoadBalancerSpec) -> LoadBalancer:
        fault = self._call("create_load_balancer", spec)
        self._unique(self.load_balancers, spec.name)
        lid = self._new_id()
        private = (
            (PrivateIP(spec.network_id, f"10.0.0.{lid % 250 + 2}"),) if spec.network_id else ()
        )
        lb = LoadBalancer(
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
        self.load_balancers[lid] = lb
        self._done(fault)
        return lb

    def _update_lb(self, lid: int, fault: _Fault | None, **changes: Any) -> LoadBalancer:
        lb: LoadBalancer = dataclasses.replace(
            self._get(self.load_balancers, lid, "load balancer"), **changes
        )
        self.load_balancers[lid] = lb
        self._done(fault)
        return lb

    async def attach_lb_to_network(self, lb_id: int, network_id: int) -> LoadBalancer:
        fault = self._call("attach_lb_to_network", lb_id, network_id)
        lb = self._get(self.load_balancers, lb_id, "load balancer")
        if any(p.network_id == network_id for p in lb.private_ips):
            raise ConflictError("already attached", code="load_balancer_already_attached")
        ips = (*lb.private_ips, PrivateIP(network_id, f"10.0.0.{lb_id % 250 + 2}"))
        return self._update_lb(lb_id, fault, private_ips=ips)

    async def add_service(self, lb_id: int, service: LBService) -> LoadBalancer:
        fault = self._call("add_service", lb_id, service)
        lb = self._get(self.load_balancers, lb_id, "load balancer")
        if any(s.listen_port == service.listen_port for s in lb.services):
            raise ConflictError("port in use", code="source_port_already_used")
        return self._update_lb(lb_id, fault, services=(*lb.services, service))

    async def update_service(self, lb_id: int, service: LBService) -> LoadBalancer:
        fault = self._call("update_service", lb_id, service)
        lb = self._get(self.load_balancers, lb_id, "load balancer")
        kept = tuple(s for s in lb.services if s.listen_port != service.listen_port)
        return self._update_lb(lb_id, fault, services=(*kept, service))

    async def add_target(self, lb_id: int, target: LBTarget) -> LoadBalancer:
        fault = self._call("add_target", lb_id, target)
        lb = self._get(self.load_balancers, lb_id, "load balancer")
        if target in lb.targets:
            raise ConflictError("target exists", code="target_already_defined")
        return self._update_lb(lb_id, fault, targets=(*lb.targets, target))

    async def change_lb_type(self, lb_id: int, lb_type: str) -> LoadBalancer:
        fault = self._call("change_lb_type", lb_id, lb_type)
        return self._update_lb(lb_id, fault, type=lb_type)

    async def delete_load_balancer(self, lb_id: int) -> None:
        fault = self._call("delete_load_balancer", lb_id)
        self._deletable(self.load_balancers, lb_id, "load balancer")
        del self.load_balancers[lb_id]
        self._done(fault)

    # -- placement groups
    async def list_placement_groups(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[PlacementGroup]:
        self._call("list_placement_groups", selector, name)
        return self._select(self.placement_groups, selector, name)

    async def create_placement_group(self, spec: PlacementGroupSpec) -> PlacementGroup:
        fault = self._call("create_placement_group", spec)
        self._unique(self.placement_groups, spec.name)
        group = PlacementGroup(self._new_id(), spec.name, spec.type, dict(spec.labels))
        self.placement_groups[group.id] = group
        self._done(fault)
        return group

    async def delete_placement_group(self, group_id: int) -> None:
        fault = self._call("delete_placement_group", group_id)
        group = self._get(self.placement_groups, group_id, "placement group")
        if group.server_ids:
            raise ConflictError("placement group still has servers", code="resource_in_use")
        del self.placement_groups[group_id]
        self._done(fault)

    # -- servers
    async def list_servers(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[Server]:
        self._call("list_servers", selector, name)
        return self._select(self.servers, selector, name)

    async def create_server(self, spec: ServerSpec) -> Server:
        fault = self._call("create_server", spec)
        self._unique(self.servers, spec.name)
        sid = self._new_id()
        private = tuple(PrivateIP(n, f"10.0.1.{sid % 250 + 2}") for n in spec.network_ids)
        image_id = spec.image if isinstance(spec.image, int) else None
        status = "running" if spec.start_after_create else "off"
        server = Server(
            sid,
            spec.name,
            status,
            spec.server_type,
            spec.location,
            dict(spec.labels),
            image_id,
            f"127.2.0.{sid % 250 + 1}",
            private,
            spec.placement_group_id,
        )
        self.servers[sid] = server
        if spec.placement_group_id is not None:
            group = self._get(self.placement_groups, spec.placement_group_id, "placement group")
            ids = (*group.server_ids, sid)
            self.placement_groups[group.id] = dataclasses.replace(group, server_ids=ids)
        self._done(fault)
        return server

    async def delete_server(self, server_id: int) -> None:
        fault = self._call("delete_server", server_id)
        server = self._deletable(self.servers, server_id, "server")
        del self.servers[server_id]
        if server.placement_group_id in self.placement_groups:
            group = self.placement_groups[server.placement_group_id]
            ids = tuple(i for i in group.server_ids if i != server_id)
            self.placement_groups[group.id] = dataclasses.replace(group, server_ids=ids)
        self._done(fault)

    def _set_server(self, name: str, server_id: int, **changes: Any) -> None:
        fault = self._call(name, server_id)
        server = self._get(self.servers, server_id, "server")
        self.servers[server_id] = dataclasses.replace(server, **changes)
        self._done(fault)

    async def power_on(self, server_id: int) -> None:
        self._set_server("power_on", server_id, status="running")

    async def power_off(self, server_id: int) -> None:
        self._set_server("power_off", server_id, status="off")

    async def shutdown(self, server_id: int) -> None:
        self._set_server("shutdown", server_id, status="off")

    async def enable_rescue(self, server_id: int, ssh_key_ids: Sequence[int]) -> str:
        self._set_server("enable_rescue", server_id, rescue_enabled=True)
        return "fake-root-password"

    async def create_snapshot(
        self, server_id: int, description: str, labels: dict[str, str]
    ) -> Image:
        fault = self._call("create_snapshot", server_id, description)
        server = self._get(self.servers, server_id, "server")
        arch = next((t.architecture for t in self.types if t.name == server.server_type), "x86")
        image = Image(
            self._new_id(), None, "snapshot", "available", arch, description, dict(labels)
        )
        self.images[image.id] = image
        self._done(fault)
        return image

    async def server_types(self) -> list[ServerType]:
        self._call("server_types")
        return list(self.types)

    # -- images, SSH keys, volumes
    async def list_images(
        self,
        selector: str | None = None,
        *,
        type: str | None = None,
        architecture: str | None = None,
        status: str | None = None,
    ) -> list[Image]:
        self._call("list_images", selector, type, architecture, status)
        return [
            i
            for i in self.images.values()
            if (selector is None or match_selector(selector, i.labels))
            and (type is None or i.type == type)
            and (architecture is None or i.architecture == architecture)
            and (status is None or i.status == status)
        ]

    async def get_image(self, image_id: int) -> Image:
        self._call("get_image", image_id)
        return self._get(self.images, image_id, "image")  # type: ignore[no-any-return]

    async def delete_image(self, image_id: int) -> None:
        fault = self._call("delete_image", image_id)
        self._deletable(self.images, image_id, "image")
        del self.images[image_id]
        self._done(fault)

    async def list_ssh_keys(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[SSHKey]:
        self._call("list_ssh_keys", selector, name)
        return self._select(self.ssh_keys, selector, name)

    async def create_ssh_key(self, spec: SSHKeySpec) -> SSHKey:
        fault = self._call("create_ssh_key", spec)
        self._unique(self.ssh_keys, spec.name)
        key = SSHKey(
            self._new_id(),
            spec.name,
            f"fp:{spec.public_key[-16:]}",
            spec.public_key,
            dict(spec.labels),
        )
        self.ssh_keys[key.id] = key
        self._done(fault)
        return key

    async def delete_ssh_key(self, key_id: int) -> None:
        fault = self._call("delete_ssh_key", key_id)
        self._get(self.ssh_keys, key_id, "SSH key")
        del self.ssh_keys[key_id]
        self._done(fault)

    async def list_volumes(self, selector: str | None = None) -> list[Volume]:
        self._call("list_volumes", selector)
        return self._select(self.volumes, selector, None)

    async def get_volume(self, volume_id: int) -> Volume:
        self._call("get_volume", volume_id)
        return self._get(self.volumes, volume_id, "volume")  # type: ignore[no-any-return]

    async def delete_volume(self, volume_id: int) -> None:
        fault = self._call("delete_volume", volume_id)
        self._deletable(self.volumes, volume_id, "volume")
        del self.volumes[volume_id]
        self._done(fault)

    # -- generic
    async def set_labels(
        self, kind: LabelledKind, resource_id: int, labels: dict[str, str]
    ) -> None:
        fault = self._call("set_labels", kind, resource_id, dict(labels))
        stores: dict[str, dict[int, Any]] = {
            "server": self.servers,
            "network": self.networks,
            "firewall": self.firewalls,
            "load-balancer": self.load_balancers,
            "placement-group": self.placement_groups,
            "image": self.images,
            "ssh-key": self.ssh_keys,
        }
        store = stores[kind]
        current = self._get(store, resource_id, kind)
        store[resource_id] = dataclasses.replace(current, labels=dict(labels))
        self._done(fault)

    async def set_delete_protection(
        self, kind: ProtectableKind, resource_id: int, protected: bool
    ) -> None:
        fault = self._call("set_delete_protection", kind, resource_id, protected)
        stores: dict[str, dict[int, Any]] = {
            "server": self.servers,
            "network": self.networks,
            "load-balancer": self.load_balancers,
            "image": self.images,
            "volume": self.volumes,
        }
        store = stores[kind]
        current = self._get(store, resource_id, kind)
        store[resource_id] = dataclasses.replace(current, protected=protected)
        self._done(fault)

    async def wait_actions(self, action_ids: Sequence[int]) -> list[Action]:
        self._call("wait_actions", tuple(action_ids))
        return [Action(i, "fake", "success", 100) for i in action_ids]


if TYPE_CHECKING:
    # mypy proves the fake implements the whole port.
    def _implements_port(fake: FakeHcloud) -> HcloudPort:
        return fake
