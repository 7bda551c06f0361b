"""The Hetzner Cloud port: every call hk8s makes, named by intent, in hk8s model types.

The controller depends on this ``Protocol`` only. ``HcloudProvider`` implements it on the
official ``hcloud`` library; ``FakeHcloud`` implements it in memory for unit tests. After
CAPH's ``pkg/services/hcloud/client/client.go``.

Conventions every implementation keeps:
- ``selector`` is a Hetzner label selector (``cluster=demo,managed-by=hk8s``); ``name`` filters
  by exact name. Lists return everything (all pages).
- Mutating calls wait for the actions they start (batched across concurrent callers) and return
  the resource as it is afterwards; a failed action raises ``ActionFailedError``.
- Errors are ``hk8s.errors``: ``NotFoundError`` for a missing resource, ``ConflictError`` with
  ``context["code"]`` set to the API's code (``uniqueness_error``, ``resource_in_use``, ...),
  ``AuthError``, ``TransientAPIError`` after retries ran out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hk8s.model.catalogue import LoadBalancerType, Location
    from hk8s.model.resources import (
        Action,
        Firewall,
        FirewallRule,
        FirewallSpec,
        Image,
        LBService,
        LBTarget,
        LoadBalancer,
        LoadBalancerSpec,
        Network,
        NetworkSpec,
        PlacementGroup,
        PlacementGroupSpec,
        Server,
        ServerSpec,
        ServerType,
        SSHKey,
        SSHKeySpec,
        Subnet,
        Volume,
    )

__all__ = ["HcloudPort", "LabelledKind", "ProtectableKind"]

LabelledKind = Literal[
    "server", "network", "firewall", "load-balancer", "placement-group", "image", "ssh-key"
]
# The kinds with a ``change_protection`` action (openapi.json); firewalls, placement groups
# and SSH keys cannot be protected against deletion.
ProtectableKind = Literal["server", "load-balancer", "network", "image", "volume"]


class HcloudPort(Protocol):
    # -- networks
    async def list_networks(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[Network]: ...
    async def create_network(self, spec: NetworkSpec) -> Network: ...
    async def add_subnet(self, network_id: int, subnet: Subnet) -> Network: ...
    async def delete_network(self, network_id: int) -> None: ...

    # -- firewalls
    async def list_firewalls(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[Firewall]: ...
    async def create_firewall(self, spec: FirewallSpec) -> Firewall: ...
    async def set_firewall_rules(
        self, firewall_id: int, rules: Sequence[FirewallRule]
    ) -> Firewall: ...
    async def apply_firewall_to_selectors(
        self, firewall_id: int, selectors: Sequence[str]
    ) -> Firewall: ...
    async def remove_firewall_from_selectors(
        self, firewall_id: int, selectors: Sequence[str]
    ) -> Firewall: ...
    async def delete_firewall(self, firewall_id: int) -> None: ...

    # -- load balancers
    async def list_load_balancers(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[LoadBalancer]: ...
    async def create_load_balancer(self, spec: LoadBalancerSpec) -> LoadBalancer: ...
    async def attach_lb_to_network(self, lb_id: int, network_id: int) -> LoadBalancer: ...
    async def add_service(self, lb_id: int, service: LBService) -> LoadBalancer: ...
    async def update_service(self, lb_id: int, service: LBService) -> LoadBalancer: ...
    async def add_target(self, lb_id: int, target: LBTarget) -> LoadBalancer: ...
    async def change_lb_type(self, lb_id: int, lb_type: str) -> LoadBalancer: ...
    async def delete_load_balancer(self, lb_id: int) -> None: ...

    # -- placement groups
    async def list_placement_groups(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[PlacementGroup]: ...
    async def create_placement_group(self, spec: PlacementGroupSpec) -> PlacementGroup: ...
    async def delete_placement_group(self, group_id: int) -> None: ...

    # -- servers
    async def list_servers(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[Server]: ...
    async def create_server(self, spec: ServerSpec) -> Server: ...
    async def delete_server(self, server_id: int) -> None: ...
    async def power_on(self, server_id: int) -> None: ...
    async def power_off(self, server_id: int) -> None: ...
    async def shutdown(self, server_id: int) -> None: ...
    async def enable_rescue(self, server_id: int, ssh_key_ids: Sequence[int]) -> str:
        """Enable the Linux rescue system; returns the root password the API generated."""
        ...

    async def create_snapshot(
        self, server_id: int, description: str, labels: dict[str, str]
    ) -> Image: ...

    # -- the catalogue (read once per run; see hk8s.model.catalogue)
    async def server_types(self) -> list[ServerType]: ...
    async def load_balancer_types(self) -> list[LoadBalancerType]: ...
    async def locations(self) -> list[Location]: ...

    # -- images, SSH keys, volumes
    async def list_images(
        self,
        selector: str | None = None,
        *,
        type: str | None = None,
        architecture: str | None = None,
        status: str | None = None,
    ) -> list[Image]: ...
    async def get_image(self, image_id: int) -> Image: ...
    async def delete_image(self, image_id: int) -> None: ...
    async def list_ssh_keys(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[SSHKey]: ...
    async def create_ssh_key(self, spec: SSHKeySpec) -> SSHKey: ...
    async def delete_ssh_key(self, key_id: int) -> None: ...
    async def list_volumes(self, selector: str | None = None) -> list[Volume]: ...
    async def get_volume(self, volume_id: int) -> Volume: ...
    async def delete_volume(self, volume_id: int) -> None: ...

    # -- generic
    async def set_labels(
        self, kind: LabelledKind, resource_id: int, labels: dict[str, str]
    ) -> None: ...
    async def set_delete_protection(
        self, kind: ProtectableKind, resource_id: int, protected: bool
    ) -> None:
        """Turn Hetzner's delete protection on or off (``change_protection``); waits for it.

        A protected resource answers ``protected`` (``ConflictError``) to a delete.
        """
        ...

    async def wait_actions(self, action_ids: Sequence[int]) -> list[Action]:
        """Wait until every action finished; raises ``ActionFailedError`` for a failed one."""
        ...
