"""Port calls for servers, images, SSH keys, volumes and labels."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from hcloud.firewalls.domain import Firewall as LibFirewall
from hcloud.images.domain import Image as LibImage
from hcloud.locations.domain import Location
from hcloud.networks.domain import Network as LibNetwork
from hcloud.placement_groups.domain import PlacementGroup as LibPlacementGroup
from hcloud.server_types.domain import ServerType as LibServerType
from hcloud.servers.domain import Server as LibServer
from hcloud.servers.domain import ServerCreatePublicNetwork
from hcloud.ssh_keys.domain import SSHKey as LibSSHKey
from hcloud.volumes.domain import Volume as LibVolume

from hk8s.errors import WaitTimeoutError
from hk8s.providers.hcloud._base import ProviderBase
from hk8s.providers.hcloud._convert import (
    to_image,
    to_server,
    to_ssh_key,
    to_volume,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hk8s.model.resources import (
        Image,
        Server,
        ServerSpec,
        SSHKey,
        SSHKeySpec,
        Volume,
    )
    from hk8s.providers.hcloud._port import LabelledKind, ProtectableKind

__all__ = ["ComputeCalls"]

_PATHS: dict[str, str] = {
    "server": "servers",
    "network": "networks",
    "firewall": "firewalls",
    "load-balancer": "load_balancers",
    "placement-group": "placement_groups",
    "image": "images",
    "ssh-key": "ssh_keys",
    "volume": "volumes",
}


class ComputeCalls(ProviderBase):
    # -- servers
    async def list_servers(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[Server]:
        found = await self._run(
            "list servers", self.client.servers.get_all, name=name, label_selector=selector
        )
        return [to_server(s) for s in found]

    async def _get_server(self, server_id: int) -> Server:
        return to_server(await self._run("get server", self.client.servers.get_by_id, server_id))

    async def create_server(self, spec: ServerSpec) -> Server:
        image = (
            LibImage(id=spec.image) if isinstance(spec.image, int) else LibImage(name=spec.image)
        )
        response = await self._run(
            f"create server {spec.name}",
            self.client.servers.create,
            name=spec.name,
            server_type=LibServerType(name=spec.server_type),
            image=image,
            ssh_keys=[LibSSHKey(id=i) for i in spec.ssh_key_ids] or None,
            firewalls=[LibFirewall(id=i) for i in spec.firewall_ids] or None,
            networks=[LibNetwork(id=i) for i in spec.network_ids] or None,
            user_data=spec.user_data,
            labels=dict(spec.labels),
            location=Location(name=spec.location),
            start_after_create=spec.start_after_create,
            placement_group=LibPlacementGroup(id=spec.placement_group_id)
            if spec.placement_group_id is not None
            else None,
            public_net=ServerCreatePublicNetwork(
                enable_ipv4=spec.enable_ipv4, enable_ipv6=spec.enable_ipv6
            ),
        )
        try:
            await self._wait_bound([response.action, *(response.next_actions or [])])
        except WaitTimeoutError as exc:
            # Name the server: "waiting for Hetzner action 100012" alone left the operator
            # guessing which of many servers never left "starting".
            raise WaitTimeoutError(
                f"server {spec.name} to be created and running ({exc.condition}); it may be "
                "stuck in the Hetzner Console's 'starting' state",
                exc.timeout,
                last_error=exc.last_error,
            ) from exc
        # The create answer already holds the server as created (ids, IPs, labels, placement):
        # no GET per server (design.md section 4) unless a requested network is missing from
        # it. Its status is the one at creation; callers that need the live state list again.
        server = to_server(response.server)
        attached = {p.network_id for p in server.private_ips}
        if not set(spec.network_ids) <= attached:
            return await self._get_server(server.id)
        return server

    async def _server_action(self, what: str, name: str, server_id: int) -> None:
        fn = getattr(self.client.servers, name)
        action = await self._run(what, fn, LibServer(id=server_id))
        await self._wait_bound([action])

    async def delete_server(self, server_id: int) -> None:
        await self._server_action("delete server", "delete", server_id)

    async def power_on(self, server_id: int) -> None:
        await self._server_action("power on server", "power_on", server_id)

    async def power_off(self, server_id: int) -> None:
        await self._server_action("power off server", "power_off", server_id)

    async def shutdown(self, server_id: int) -> None:
        await self._server_action("shut down server", "shutdown", server_id)

    async def enable_rescue(self, server_id: int, ssh_key_ids: Sequence[int]) -> str:
        # hcloud 2.27 annotates ssh_keys as list[str]; the API takes integer ids
        # (openapi.json: POST /servers/{id}/actions/enable_rescue, ssh_keys: integer[]).
        response = await self._run(
            "enable rescue",
            self.client.servers.enable_rescue,
            LibServer(id=server_id),
            type="linux64",
            ssh_keys=cast("list[str]", list(ssh_key_ids)),
        )
        await self._wait_bound([response.action])
        return str(response.root_password)

    async def create_snapshot(
        self, server_id: int, description: str, labels: dict[str, str]
    ) -> Image:
        response = await self._run(
            "create snapshot",
            self.client.servers.create_image,
            LibServer(id=server_id),
            description=description,
            type="snapshot",
            labels=dict(labels),
        )
        await self._wait_bound([response.action])
        return await self.get_image(int(response.image.data_model.id or 0))

    # -- images
    async def list_images(
        self,
        selector: str | None = None,
        *,
        type: str | None = None,
        architecture: str | None = None,
        status: str | None = None,
    ) -> list[Image]:
        # hcloud 2.27 ImagesClient.get_list sends ``params["status"] = per_page`` when a
        # status filter is given (images/client.py), so the filter is applied here instead.
        found = await self._run(
            "list images",
            self.client.images.get_all,
            label_selector=selector,
            type=[type] if type else None,
            architecture=[architecture] if architecture else None,
        )
        images = [to_image(i) for i in found]
        return [i for i in images if status is None or i.status == status]

    async def get_image(self, image_id: int) -> Image:
        return to_image(await self._run("get image", self.client.images.get_by_id, image_id))

    async def delete_image(self, image_id: int) -> None:
        await self._run("delete image", self.client.images.delete, LibImage(id=image_id))

    # -- SSH keys
    async def list_ssh_keys(
        self, selector: str | None = None, *, name: str | None = None
    ) -> list[SSHKey]:
        found = await self._run(
            "list SSH keys", self.client.ssh_keys.get_all, name=name, label_selector=selector
        )
        return [to_ssh_key(k) for k in found]

    async def create_ssh_key(self, spec: SSHKeySpec) -> SSHKey:
        bound = await self._run(
            f"create SSH key {spec.name}",
            self.client.ssh_keys.create,
            name=spec.name,
            public_key=spec.public_key,
            labels=dict(spec.labels),
        )
        return to_ssh_key(bound)

    async def delete_ssh_key(self, key_id: int) -> None:
        await self._run("delete SSH key", self.client.ssh_keys.delete, LibSSHKey(id=key_id))

    # -- volumes
    async def list_volumes(self, selector: str | None = None) -> list[Volume]:
        found = await self._run(
            "list volumes", self.client.volumes.get_all, label_selector=selector
        )
        return [to_volume(v) for v in found]

    async def get_volume(self, volume_id: int) -> Volume:
        return to_volume(await self._run("get volume", self.client.volumes.get_by_id, volume_id))

    async def delete_volume(self, volume_id: int) -> None:
        await self._run("delete volume", self.client.volumes.delete, LibVolume(id=volume_id))

    # -- labels
    async def set_labels(
        self, kind: LabelledKind, resource_id: int, labels: dict[str, str]
    ) -> None:
        """Replace the labels of any labelled resource (``PUT /<kind>/{id}``)."""
        await self._run(
            f"update labels of {kind} {resource_id}",
            self.client.request,
            "PUT",
            f"/{_PATHS[kind]}/{resource_id}",
            json={"labels": dict(labels)},
        )

    # -- delete protection
    async def set_delete_protection(
        self, kind: ProtectableKind, resource_id: int, protected: bool
    ) -> None:
        """``POST /<kind>/{id}/actions/change_protection`` and wait for its action.

        Servers get ``rebuild`` set alike: the API requires "delete and rebuild attribute
        needs to have the same value" (openapi.json, servers change_protection).
        """
        body: dict[str, bool] = {"delete": protected}
        if kind == "server":
            body["rebuild"] = protected
        response = await self._run(
            f"change protection of {kind} {resource_id}",
            self.client.request,
            "POST",
            f"/{_PATHS[kind]}/{resource_id}/actions/change_protection",
            json=body,
        )
        action = response.get("action")
        if action:
            await self.wait_actions([int(action["id"])])
