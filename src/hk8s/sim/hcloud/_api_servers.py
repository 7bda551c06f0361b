"""``/servers`` and its actions: the life of a simulated server.

Lifecycle (openapi.json "Servers", "Server Actions"): create returns status ``initializing``
with a ``create_server`` action and, unless ``start_after_create`` is false, a
``start_server`` next action; the server is ``starting`` once created and ``running`` once
booted. Actions lock the server (``locked: true``; other actions get 423 ``locked``).
Rescue mode is consumed by the next boot ("Rescue Mode is automatically disabled when you
first boot into it", enable_rescue description).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from hk8s.sim.hcloud import _api_crud as crud
from hk8s.sim.hcloud._catalog import (
    LB_TYPES,
    LOCATIONS,
    SERVER_TYPES,
    Location,
    ServerType,
    find_datacenter,
    find_location,
)
from hk8s.sim.hcloud._errors import ApiError, invalid_input
from hk8s.sim.hcloud._model import Image, PrimaryIP, Server
from hk8s.sim.hcloud._routing import (
    Ctx,
    Reply,
    Router,
    as_int,
    check_name,
    labels_of,
    lookup,
    optional,
    require,
)
from hk8s.sim.hcloud._views import action_json, server_json

if TYPE_CHECKING:
    from hk8s.sim.hcloud._state import HcloudState

__all__ = ["router"]

router = Router()
SERVERS = crud.Resource("servers", "server", "server", lambda s: s.servers, server_json)
_HOSTNAME = re.compile(r"^(?=.{1,63}$)[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
SERVER_STATUSES = {
    "running",
    "initializing",
    "starting",
    "stopping",
    "off",
    "deleting",
    "migrating",
    "rebuilding",
    "unknown",
}
# A spread placement group holds at most 10 servers (docs.hetzner.com/cloud/placement-groups/
# overview#limits); the API answers as seen in hetznercloud/terraform-provider-hcloud#1170:
# "placement group with ID 369587 contains already 10 servers"
# with code placement_group_member_limit_reached.
PLACEMENT_GROUP_LIMIT = 10


def find_server_type(value: Any) -> ServerType:
    for st in SERVER_TYPES.values():
        if str(value) in (st.name, str(st.id)):
            return st
    raise invalid_input("server_type", f"server type {value!r} not found")


def find_image(state: HcloudState, value: Any, arch: str, field: str = "image") -> Image:
    """An image by id, or a system image by name for the server type's architecture."""
    text = str(value)
    if text.isdigit() and int(text) in state.images:
        image = state.images[int(text)]
    else:
        candidates = [i for i in state.images.values() if i.name == text and i.type == "system"]
        matching = [i for i in candidates if i.architecture == arch]
        if not candidates:
            raise invalid_input(field, f"image {text!r} not found")
        if not matching:
            raise invalid_input(field, f"image {text!r} is not available for architecture {arch}")
        image = matching[0]
    if image.architecture != arch:
        raise invalid_input(
            field,
            f"image architecture {image.architecture} does not match the"
            f" server type architecture {arch}",
        )
    if image.status != "available":
        raise ApiError("resource_unavailable", f"image {image.id} is not available yet")
    return image


def _location(state: HcloudState, body: dict[str, Any], st: ServerType) -> Location:
    if (name := optional(body, "location", (str, int), None)) is not None:
        if (found := find_location(name)) is None:
            raise invalid_input("location", f"location {name!r} not found")
        location = found
    elif (dc := optional(body, "datacenter", (str, int), None)) is not None:
        if (found := find_datacenter(dc)) is None:
            raise invalid_input("datacenter", f"datacenter {dc!r} not found")
        location = found
    else:
        # No place asked for: the API places it where the type can be ordered.
        sold = [loc for loc in st.locations if st.orderable_in(loc, None, state.faults.sold_out)]
        location = LOCATIONS[(sold or list(st.locations))[0]]
    if location.name not in st.locations:
        raise ApiError(
            "resource_unavailable",
            f"server type {st.name} is not available in location {location.name}",
        )
    if not st.orderable_in(location.name, None, state.faults.sold_out):
        # Deprecated past unavailable_after there, or sold out (available: false).
        raise ApiError(
            "resource_unavailable",
            f"server type {st.name} is currently not orderable in location {location.name}",
        )
    return location


def ssh_key_ids(state: HcloudState, values: Any, field: str = "ssh_keys") -> list[int]:
    if not isinstance(values, list):
        raise invalid_input(field, "must be an array")
    ids = []
    for value in values:
        match = [k for k in state.ssh_keys.values() if str(value) in (k.name, str(k.id))]
        if not match:
            raise invalid_input(field, f"SSH key {value!r} not found")
        ids.append(match[0].id)
    return ids


def attach(state: HcloudState, server: Server, network_id: int, ip: str | None = None) -> None:
    network = state.networks.get(network_id)
    if network is None:
        raise ApiError("not_found", f"network with ID {network_id} not found")
    if network_id in server.private_net:
        raise ApiError("server_already_attached", "the server is already attached to the network")
    address = state.allocate_private_ip(network, server.location.network_zone, ip)
    if address is None:
        code = "ip_not_available" if ip else "no_subnet_available"
        raise ApiError(
            code,
            f"no free IP for the server in network {network_id} ({server.location.network_zone})",
        )
    server.private_net[network_id] = address


def boot(state: HcloudState, server: Server) -> None:
    """The server comes up: into the rescue system if it was enabled, which consumes it."""
    if server.id not in state.servers:
        return  # deleted while it was booting
    server.in_rescue = server.rescue_enabled
    server.rescue_enabled = False
    server.status = "running"
    state.emit("server_booted", server=server)


def _public_ip(state: HcloudState, server: Server, kind: str, wanted: Any) -> None:
    if wanted is not None:
        pip = state.primary_ips.get(as_int(wanted, f"public_net.{kind}"))
        if pip is None or pip.type != kind:
            raise invalid_input(f"public_net.{kind}", f"primary IP {wanted} not found")
        if pip.assignee_id is not None:
            raise ApiError("primary_ip_assigned", "the primary IP is already assigned")
    else:
        address = state.allocate_server_ip() if kind == "ipv4" else state.allocate_ipv6()
        pip = PrimaryIP(
            state.next_id(),
            f"primary_ip-{state.next_id()}",
            kind,
            address,
            server.location,
            {},
            state.now(),
            auto_delete=True,
        )
        state.primary_ips[pip.id] = pip
    pip.assignee_id = server.id
    if kind == "ipv4":
        server.public_ipv4, server.public_ipv4_id = pip.ip, pip.id
    else:
        server.public_ipv6, server.public_ipv6_id = pip.ip, pip.id


def _hostname(value: Any) -> str:
    if not isinstance(value, str) or not _HOSTNAME.match(value):
        raise invalid_input("name", "must be a valid hostname (RFC 1123)")
    return value


crud.list_endpoint(router, SERVERS, crud.status_filter(SERVER_STATUSES, "status"))
crud.get_endpoint(router, SERVERS)
crud.update_endpoint(router, SERVERS, valid_name=_hostname)


@router.route("POST", "/servers")
async def create_server(ctx: Ctx) -> Reply:
    state, body = ctx.state, ctx.body()
    name = _hostname(require(body, "name"))
    check_name(name, state.servers.values())
    state.check_limit("servers")
    st = find_server_type(require(body, "server_type"))
    location = _location(state, body, st)
    image = find_image(state, require(body, "image", (str, int)), st.architecture)
    labels = labels_of(body)
    ssh_keys = ssh_key_ids(state, optional(body, "ssh_keys", list, []))
    public = optional(body, "public_net", dict, {})
    networks = optional(body, "networks", list, [])
    volumes = []
    for raw in optional(body, "volumes", list, []):
        volume = state.volumes.get(as_int(raw, "volumes"))
        if volume is None:
            raise invalid_input("volumes", f"volume {raw} not found")
        if volume.server_id is not None or volume.location.name != location.name:
            raise invalid_input("volumes", f"volume {raw} is attached or in another location")
        volumes.append(volume)
    # Cloud-init user data is limited to 32 KiB (POST /servers "user_data").
    if len(optional(body, "user_data", str, "").encode()) > 32 * 1024:
        raise invalid_input("user_data", "must not be longer than 32 KiB")
    if public.get("enable_ipv4") is False and public.get("enable_ipv6") is False and not networks:
        raise invalid_input("networks", "a server without public network must join a network")
    group_id = optional(body, "placement_group", int, None)
    if group_id is not None:
        lookup(state.placement_groups, group_id, "placement group")
        if len(state.servers_in_placement_group(group_id)) >= PLACEMENT_GROUP_LIMIT:
            raise ApiError(
                "placement_group_member_limit_reached",
                f"placement group with ID {group_id} contains already"
                f" {PLACEMENT_GROUP_LIMIT} servers",
            )
    firewall_ids = []
    for entry in optional(body, "firewalls", list, []):
        fid = entry.get("firewall") if isinstance(entry, dict) else None
        if not isinstance(fid, int) or fid not in state.firewalls:
            raise invalid_input("firewalls", f"firewall {fid!r} not found")
        firewall_ids.append(fid)
    server = Server(
        state.next_id(),
        name,
        st,
        location,
        image,
        labels,
        state.now(),
        ssh_key_ids=ssh_keys,
        placement_group_id=group_id,
        user_data=optional(body, "user_data", str, None),
    )
    for net in networks:
        attach(state, server, as_int(net, "networks"))
    if public.get("enable_ipv4", True) is not False:
        _public_ip(state, server, "ipv4", public.get("ipv4"))
    if public.get("enable_ipv6", True) is not False:
        _public_ip(state, server, "ipv6", public.get("ipv6"))
    for fid in firewall_ids:
        state.firewalls[fid].applied_to.append(("server", server.id))
    for volume in volumes:
        volume.server_id = server.id
    password = None if ssh_keys else state.password()
    server.root_password = password
    state.servers[server.id] = server
    state.emit("server_created", server=server, image=image)
    start = optional(body, "start_after_create", bool, True)
    durations, res = state.durations, [(server.id, "server")]

    def created(_action: Any) -> None:
        if server.id in state.servers and server.status == "initializing":
            server.status = "starting" if start else "off"

    action = state.start_action(
        "create_server", res, durations.create_server, lock=[server], done=created
    )
    next_actions = []
    if start:
        next_actions.append(
            state.start_action(
                "start_server",
                res,
                durations.create_server + durations.start_server,
                lock=[server],
                done=lambda _a: boot(state, server),
                held=lambda: server.id in state.servers and state.faults.never_running(name),
            )
        )
    return Reply(
        201,
        {
            "server": server_json(state, server),
            "action": action_json(state, action),
            "next_actions": [action_json(state, a) for a in next_actions],
            "root_password": password,
        },
    )


@router.route("DELETE", "/servers/{id}")
async def delete_server(ctx: Ctx) -> Reply:
    state = ctx.state
    server = SERVERS.find(ctx)
    SERVERS.unprotected(state, server)
    # "This immediately removes the Server from your account" (DELETE /servers/{id}).
    del state.servers[server.id]
    server.status = "deleting"
    for pip in list(state.primary_ips.values()):
        if pip.assignee_id == server.id:
            pip.assignee_id = None
            if pip.auto_delete:
                del state.primary_ips[pip.id]
    for fw in state.firewalls.values():
        fw.applied_to = [(k, t) for k, t in fw.applied_to if (k, t) != ("server", server.id)]
    # Volumes outlive their server: they are detached, not deleted.
    for volume in state.volumes_of(server.id):
        volume.server_id = None
    action = state.start_action(
        "delete_server", [(server.id, "server")], state.durations.delete_server
    )
    state.emit("server_deleted", server=server, action=action)
    return Reply(200, {"action": action_json(state, action)})


def lookup_lb_type(value: Any) -> dict[str, Any]:
    for lb_type in LB_TYPES.values():
        if str(value) in (lb_type["name"], str(lb_type["id"])):
            return lb_type
    raise invalid_input("load_balancer_type", f"load balancer type {value!r} not found")
