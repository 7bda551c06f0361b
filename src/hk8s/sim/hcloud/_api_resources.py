"""Images, SSH keys, placement groups, primary IPs, and the catalogue."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TYPE_CHECKING, Any

from hk8s.sim.hcloud import _api_crud as crud
from hk8s.sim.hcloud._catalog import (
    DATACENTERS,
    LB_TYPES,
    LOCATIONS,
    SERVER_TYPES,
    datacenter_json,
    find_datacenter,
    find_location,
)
from hk8s.sim.hcloud._errors import ApiError, invalid_input, not_found, uniqueness_error
from hk8s.sim.hcloud._model import PlacementGroup, PrimaryIP, SSHKey
from hk8s.sim.hcloud._routing import (
    Ctx,
    Reply,
    Router,
    check_name,
    labels_of,
    list_reply,
    lookup,
    optional,
    require,
)
from hk8s.sim.hcloud._views import (
    action_json,
    image_json,
    placement_group_json,
    primary_ip_json,
    ssh_key_json,
)

if TYPE_CHECKING:
    from hk8s.sim.hcloud._catalog import ServerType
    from hk8s.sim.hcloud._model import Image
    from hk8s.sim.hcloud._state import HcloudState

__all__ = ["router"]

router = Router()
IMAGE_STATUSES = {"available", "creating", "unavailable"}
_IMAGE_STATUS = crud.status_filter(IMAGE_STATUSES, "image status")
IMAGES = crud.Resource("images", "image", "image", lambda s: s.images, image_json)
SSH_KEYS = crud.Resource("ssh_keys", "ssh_key", "SSH key", lambda s: s.ssh_keys, ssh_key_json)
PLACEMENT_GROUPS = crud.Resource(
    "placement_groups",
    "placement_group",
    "placement group",
    lambda s: s.placement_groups,
    placement_group_json,
)
PRIMARY_IPS = crud.Resource(
    "primary_ips", "primary_ip", "primary IP", lambda s: s.primary_ips, primary_ip_json
)


# --------------------------------------------------------------------------------- images
def _image_filters(ctx: Ctx, items: list[Image]) -> list[Image]:
    # Enum query parameters are validated (openapi.json /images "status"). hcloud-python 2.27
    # sends ``status=<per_page>`` (images/client.py get_list: params["status"] = per_page), so
    # ``images.get_all(status=[...])`` fails against the API; filter client side instead.
    items = _IMAGE_STATUS(ctx, items)
    if types := ctx.queries("type"):
        items = [i for i in items if i.type in types]
    if arches := ctx.queries("architecture"):
        if set(arches) - {"x86", "arm"}:
            raise invalid_input("architecture", "must be x86 or arm")
        items = [i for i in items if i.architecture in arches]
    if ctx.queries("bound_to"):
        items = []  # only backups are bound to servers, and the simulator makes none
    return items


def _not_system(_state: HcloudState, image: Image) -> None:
    if image.type == "system":
        raise ApiError("forbidden", "system images cannot be deleted")


crud.list_endpoint(router, IMAGES, _image_filters)
crud.get_endpoint(router, IMAGES)
crud.delete_endpoint(router, IMAGES, checks=[_not_system, IMAGES.unprotected])
crud.protection_endpoint(router, IMAGES)


@router.route("PUT", "/images/{id}")
async def update_image(ctx: Ctx) -> Reply:
    image = IMAGES.find(ctx)
    body = ctx.body()
    if image.type == "system":
        raise ApiError("forbidden", "system images cannot be changed")
    image.description = optional(body, "description", str, image.description)
    if optional(body, "type", str, "snapshot") != "snapshot":
        raise invalid_input("type", "must be snapshot")
    image.labels = labels_of(body, image.labels)
    return IMAGES.reply(ctx, image)


# ------------------------------------------------------------------------------- SSH keys
def fingerprint(public_key: str) -> str:
    """The MD5 fingerprint Hetzner shows (``aa:bb:...``) of an OpenSSH public key line."""
    parts = public_key.strip().split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        raise invalid_input("public_key", "is not a valid OpenSSH public key")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise invalid_input("public_key", "is not a valid OpenSSH public key") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def _by_fingerprint(ctx: Ctx, items: list[SSHKey]) -> list[SSHKey]:
    if (fp := ctx.query("fingerprint")) is not None:
        items = [k for k in items if k.fingerprint == fp]
    return items


crud.list_endpoint(router, SSH_KEYS, _by_fingerprint)
crud.get_endpoint(router, SSH_KEYS)
crud.update_endpoint(router, SSH_KEYS)
crud.delete_endpoint(router, SSH_KEYS, checks=[])


@router.route("POST", "/ssh_keys")
async def create_ssh_key(ctx: Ctx) -> Reply:
    state, body = ctx.state, ctx.body()
    name = require(body, "name")
    public_key = require(body, "public_key")
    labels = labels_of(body)
    check_name(name, state.ssh_keys.values())
    state.check_limit("ssh_keys")
    fp = fingerprint(public_key)
    if any(k.fingerprint == fp for k in state.ssh_keys.values()):
        # The reference's uniqueness_error example is exactly this case.
        raise uniqueness_error("public_key", "SSH key with the same fingerprint already exists")
    key = SSHKey(state.next_id(), name, public_key.strip(), fp, labels, state.now())
    state.ssh_keys[key.id] = key
    return SSH_KEYS.reply(ctx, key, 201)


# ----------------------------------------------------------------------- placement groups
def _by_type(ctx: Ctx, items: list[PlacementGroup]) -> list[PlacementGroup]:
    if types := ctx.queries("type"):
        items = [g for g in items if g.type in types]
    return items


def _leave_group(state: HcloudState, group: PlacementGroup) -> None:
    # Servers are removed from the group when it is deleted.
    for server in state.servers_in_placement_group(group.id):
        server.placement_group_id = None


crud.list_endpoint(router, PLACEMENT_GROUPS, _by_type)
crud.get_endpoint(router, PLACEMENT_GROUPS)
crud.update_endpoint(router, PLACEMENT_GROUPS)
crud.delete_endpoint(router, PLACEMENT_GROUPS, checks=[], cleanup=_leave_group)


@router.route("POST", "/placement_groups")
async def create_placement_group(ctx: Ctx) -> Reply:
    state, body = ctx.state, ctx.body()
    name = require(body, "name")
    if require(body, "type") != "spread":
        raise invalid_input("type", "must be spread")
    labels = labels_of(body)
    check_name(name, state.placement_groups.values())
    state.check_limit("placement_groups")
    group = PlacementGroup(state.next_id(), name, labels, state.now())
    state.placement_groups[group.id] = group
    return PLACEMENT_GROUPS.reply(ctx, group, 201, action=None)


# ---------------------------------------------------------------------------- primary IPs
def _by_ip(ctx: Ctx, items: list[PrimaryIP]) -> list[PrimaryIP]:
    if (ip := ctx.query("ip")) is not None:
        items = [p for p in items if p.ip == ip]
    return items


def _unassigned(_state: HcloudState, pip: PrimaryIP) -> None:
    if pip.assignee_id is not None:
        raise ApiError("server_not_stopped", "the primary IP is assigned to a running server")


crud.list_endpoint(router, PRIMARY_IPS, _by_ip)
crud.get_endpoint(router, PRIMARY_IPS)
crud.update_endpoint(router, PRIMARY_IPS, fields=("name", "auto_delete", "labels"))
crud.delete_endpoint(router, PRIMARY_IPS, checks=[PRIMARY_IPS.unprotected, _unassigned])
crud.protection_endpoint(router, PRIMARY_IPS)


@router.route("POST", "/primary_ips")
async def create_primary_ip(ctx: Ctx) -> Reply:
    state, body = ctx.state, ctx.body()
    name = require(body, "name")
    kind = require(body, "type")
    if kind not in ("ipv4", "ipv6"):
        raise invalid_input("type", "must be ipv4 or ipv6")
    assignee = optional(body, "assignee_id", int, None)
    # hcloud clients send assignee_type only together with assignee_id.
    if optional(body, "assignee_type", str, "server") != "server":
        raise invalid_input("assignee_type", "must be server")
    labels = labels_of(body)
    check_name(name, state.primary_ips.values())
    state.check_limit("primary_ips")
    target = None
    if assignee is not None:
        target = lookup(state.servers, assignee, "server")
        if target.status != "off":
            raise ApiError("server_not_stopped", "the server must be powered off")
        if (target.public_ipv4 if kind == "ipv4" else target.public_ipv6) is not None:
            raise ApiError(f"server_has_{kind}", f"the server already has an {kind} address")
    found = find_location(optional(body, "location", (str, int), None))
    if found is None and target is not None:
        found = target.location
    if found is None:
        found = find_datacenter(optional(body, "datacenter", (str, int), None))
    if found is None:
        raise invalid_input("location", "a valid location (or datacenter) is required")
    location_name = found.name
    address = state.allocate_server_ip() if kind == "ipv4" else state.allocate_ipv6()
    auto_delete = optional(body, "auto_delete", bool, False)
    pip = PrimaryIP(
        state.next_id(),
        name,
        kind,
        address,
        LOCATIONS[location_name],
        labels,
        state.now(),
        auto_delete=auto_delete,
    )
    state.primary_ips[pip.id] = pip
    if target is not None:
        pip.assignee_id = target.id
        if kind == "ipv4":
            target.public_ipv4, target.public_ipv4_id = pip.ip, pip.id
        else:
            target.public_ipv6, target.public_ipv6_id = pip.ip, pip.id
    action = state.finished_action("create_primary_ip", [(pip.id, "primary_ip")])
    return PRIMARY_IPS.reply(ctx, pip, 201, action=action_json(state, action))


# ------------------------------------------------------------------------------ catalogue
def _catalog(
    collection: str,
    key: str,
    items: dict[str, Any],
    render: Any,
    extra: dict[str, Any] | None = None,
) -> None:
    """``render(item, state)``: the item's JSON (``state`` None when only id/name are read)."""

    class Entry:
        def __init__(self, item: Any) -> None:
            self.item = item
            self.id = render(item, None)["id"]
            self.name = render(item, None)["name"]

    entries = [Entry(item) for item in items.values()]

    async def list_all(ctx: Ctx) -> Reply:
        return list_reply(
            ctx,
            collection,
            entries,
            lambda e: render(e.item, ctx.state),
            labels=False,
            sort_keys=("id", "name"),
            extra=extra,
        )

    async def get_one(ctx: Ctx) -> Reply:
        ident = ctx.id()
        for entry in entries:
            if entry.id == ident:
                return Reply(200, {key: render(entry.item, ctx.state)})
        raise not_found(key.replace("_", " "), ident)

    router.route("GET", f"/{collection}")(list_all)
    router.route("GET", f"/{collection}/{{id}}")(get_one)


def _server_type_json(st: ServerType, state: HcloudState | None) -> dict[str, Any]:
    # Sell-outs injected with the fault spec's ``sold_out`` show as available: false.
    return st.to_json(sold_out=state.faults.sold_out if state is not None else None)


_catalog("locations", "location", LOCATIONS, lambda loc, _state: loc.to_json())
# GET /datacenters also names a recommended datacenter (deprecated, still required).
_catalog(
    "datacenters",
    "datacenter",
    DATACENTERS,
    lambda location, state: datacenter_json(location, state.faults.sold_out if state else None),
    extra={"recommendation": LOCATIONS["fsn1"].datacenter_id},
)
_catalog("server_types", "server_type", SERVER_TYPES, _server_type_json)
_catalog("load_balancer_types", "load_balancer_type", LB_TYPES, lambda lb, _state: dict(lb))


@router.route("POST", "/primary_ips/{id}/actions/assign")
async def assign_primary_ip(ctx: Ctx) -> Reply:
    # A server must be powered off to get a primary IP (Primary IP Actions: assign).
    state = ctx.state
    pip = PRIMARY_IPS.find(ctx)
    body = ctx.body()
    if optional(body, "assignee_type", str, "server") != "server":
        raise invalid_input("assignee_type", "must be server")
    server = lookup(state.servers, require(body, "assignee_id", int), "server")
    if pip.assignee_id is not None:
        raise ApiError("primary_ip_already_assigned", "the primary IP is already assigned")
    if server.status != "off":
        raise ApiError("server_not_stopped", "the server must be powered off")
    current = server.public_ipv4 if pip.type == "ipv4" else server.public_ipv6
    if current is not None:
        raise ApiError(f"server_has_{pip.type}", f"the server already has an {pip.type} address")
    pip.assignee_id = server.id
    if pip.type == "ipv4":
        server.public_ipv4, server.public_ipv4_id = pip.ip, pip.id
    else:
        server.public_ipv6, server.public_ipv6_id = pip.ip, pip.id
    return PRIMARY_IPS.start_action(ctx, pip, "assign_primary_ip", also=[(server.id, "server")])


@router.route("POST", "/primary_ips/{id}/actions/unassign")
async def unassign_primary_ip(ctx: Ctx) -> Reply:
    state = ctx.state
    pip = PRIMARY_IPS.find(ctx)
    server = state.servers.get(pip.assignee_id or 0)
    if server is not None:
        if server.status != "off":
            raise ApiError("server_not_stopped", "the server must be powered off")
        if server.public_ipv4_id == pip.id:
            server.public_ipv4 = server.public_ipv4_id = None
        if server.public_ipv6_id == pip.id:
            server.public_ipv6 = server.public_ipv6_id = None
    pip.assignee_id = None
    also = [(server.id, "server")] if server else []
    return PRIMARY_IPS.start_action(ctx, pip, "unassign_primary_ip", also=also)
