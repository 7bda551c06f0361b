"""The fake's servers, placement groups, images, SSH keys and volumes, and the calls by kind."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from hk8s.errors import ConflictError
from hk8s.model.labels import match_selector
from hk8s.model.resources import Action, Image, PlacementGroup, PrivateIP, Server, SSHKey
from hk8s.providers.hcloud.fake._core import FakeState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hk8s.model.catalogue import LoadBalancerType, Location
    from hk8s.model.resources import (
        PlacementGroupSpec,
        ServerSpec,
        ServerType,
        SSHKeySpec,
        Volume,
    )
    from hk8s.providers.hcloud._port import LabelledKind, ProtectableKind

__all__ = ["ComputeCalls"]


class ComputeCalls(FakeState):
    """The port's server-side calls; ``set_labels``/``set_delete_protection`` reach every kind."""

    # -- placement groups
    async def list_placement_groups(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[PlacementGroup]:
        return self._list("list_placement_groups", self.placement_groups, selector, name)

    async def create_placement_group(self, spec: PlacementGroupSpec) -> PlacementGroup:
        def build(gid: int) -> PlacementGroup:
            return PlacementGroup(gid, spec.name, spec.type, dict(spec.labels))

        return self._create("create_placement_group", spec, self.placement_groups, build)

    async def delete_placement_group(self, group_id: int) -> None:
        def empty(group: PlacementGroup) -> None:
            if group.server_ids:
                raise ConflictError("placement group still has servers", code="resource_in_use")

        self._delete(
            "delete_placement_group",
            self.placement_groups,
            group_id,
            "placement group",
            check=empty,
        )

    def _set_members(self, group: PlacementGroup, server_ids: tuple[int, ...]) -> None:
        self.placement_groups[group.id] = dataclasses.replace(group, server_ids=server_ids)

    # -- servers
    async def list_servers(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[Server]:
        return self._list("list_servers", self.servers, selector, name)

    async def create_server(self, spec: ServerSpec) -> Server:
        def build(sid: int) -> Server:
            private = tuple(PrivateIP(n, f"10.0.1.{sid % 250 + 2}") for n in spec.network_ids)
            return Server(
                sid,
                spec.name,
                "running" if spec.start_after_create else "off",
                spec.server_type,
                spec.location,
                dict(spec.labels),
                spec.image if isinstance(spec.image, int) else None,
                f"127.2.0.{sid % 250 + 1}",
                private,
                spec.placement_group_id,
            )

        def join_group(server: Server) -> None:
            if spec.placement_group_id is not None:
                group_id = spec.placement_group_id
                group = self._get(self.placement_groups, group_id, "placement group")
                self._set_members(group, (*group.server_ids, server.id))

        return self._create("create_server", spec, self.servers, build, join_group)

    async def delete_server(self, server_id: int) -> None:
        def leave_group(server: Server) -> None:
            if server.placement_group_id in self.placement_groups:
                group = self.placement_groups[server.placement_group_id]
                self._set_members(group, tuple(i for i in group.server_ids if i != server_id))

        self._delete("delete_server", self.servers, server_id, "server", then=leave_group)

    def _set_server(self, name: str, server_id: int, **changes: Any) -> None:
        fault = self._call(name, server_id)
        self._replace(self.servers, server_id, "server", fault, **changes)

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

    async def load_balancer_types(self) -> list[LoadBalancerType]:
        self._call("load_balancer_types")
        return list(self.lb_types)

    async def locations(self) -> list[Location]:
        self._call("locations")
        return list(self.catalogue_locations)

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
        return self._get(self.images, image_id, "image")

    async def delete_image(self, image_id: int) -> None:
        self._delete("delete_image", self.images, image_id, "image")

    async def list_ssh_keys(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[SSHKey]:
        return self._list("list_ssh_keys", self.ssh_keys, selector, name)

    async def create_ssh_key(self, spec: SSHKeySpec) -> SSHKey:
        def build(kid: int) -> SSHKey:
            fingerprint = f"fp:{spec.public_key[-16:]}"
            return SSHKey(kid, spec.name, fingerprint, spec.public_key, dict(spec.labels))

        return self._create("create_ssh_key", spec, self.ssh_keys, build)

    async def delete_ssh_key(self, key_id: int) -> None:
        self._delete("delete_ssh_key", self.ssh_keys, key_id, "SSH key")

    async def list_volumes(self, selector: str | None = None) -> list[Volume]:
        self._call("list_volumes", selector)
        return self._select(self.volumes, selector, None)

    async def get_volume(self, volume_id: int) -> Volume:
        self._call("get_volume", volume_id)
        return self._get(self.volumes, volume_id, "volume")

    async def delete_volume(self, volume_id: int) -> None:
        self._delete("delete_volume", self.volumes, volume_id, "volume")

    # -- by kind
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
        self._replace(stores[kind], resource_id, kind, fault, labels=dict(labels))

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
        self._replace(stores[kind], resource_id, kind, fault, protected=protected)

    async def wait_actions(self, action_ids: Sequence[int]) -> list[Action]:
        self._call("wait_actions", tuple(action_ids))
        return [Action(i, "fake", "success", 100) for i in action_ids]
