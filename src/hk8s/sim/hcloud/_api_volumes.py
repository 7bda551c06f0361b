"""Volumes: list, get, create, update, delete, attach, detach, change_protection.

The shapes and rules are openapi.json's (``/volumes``): sizes 10-10240 GB, names of
alphanumerics, dashes, underscores and dots that start and end alphanumeric (at most 64),
``location`` or ``server`` on create (with ``server`` the volume joins its location and
``next_actions`` holds one ``attach_volume``), ``automount`` only with ``server``, ``format``
``xfs`` or ``ext4``. A volume must be detached and unprotected to be deleted; an attached one
answers ``service_error`` ("volume with ID ... is still attached to a server (service_error)",
as logged in hetznercloud/csi-driver issue 12).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from hk8s.sim.hcloud import _api_crud as crud
from hk8s.sim.hcloud._catalog import LOCATIONS, find_location
from hk8s.sim.hcloud._errors import ApiError, invalid_input
from hk8s.sim.hcloud._model import Volume
from hk8s.sim.hcloud._routing import (
    Ctx,
    Reply,
    Router,
    check_name,
    labels_of,
    lookup,
    optional,
    require,
)
from hk8s.sim.hcloud._views import action_json, volume_json

if TYPE_CHECKING:
    from hk8s.sim.hcloud._model import Action, Server
    from hk8s.sim.hcloud._state import HcloudState

__all__ = ["router"]

router = Router()
VOLUMES = crud.Resource("volumes", "volume", "volume", lambda s: s.volumes, volume_json)

VOLUME_STATUSES = {"available", "creating"}
MIN_SIZE, MAX_SIZE = 10, 10240
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$")
_FORMATS = ("xfs", "ext4")


def _server(state: HcloudState, value: object) -> Server:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_input("server", "has an invalid type")
    return lookup(state.servers, value, "server")


def _attach(state: HcloudState, volume: Volume, server: Server) -> Action:
    if volume.server_id is not None:
        raise ApiError("volume_already_attached", f"volume {volume.id} is already attached")
    if server.location.name != volume.location.name:
        raise invalid_input("server", "the server is in another location than the volume")
    volume.server_id = server.id
    return state.start_action(
        "attach_volume", [(volume.id, "volume"), (server.id, "server")], state.durations.short
    )


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid_input("name", "has an invalid type")
    if not _NAME.match(value):
        raise invalid_input("name", "must be alphanumeric with - _ . inside, at most 64")
    return value


def _detached(_state: HcloudState, volume: Volume) -> None:
    # "The Volume must not be attached to a Server and it must not have delete protection
    # enabled" (DELETE /volumes/{id}).
    if volume.server_id is not None:
        raise ApiError(
            "service_error", f"volume with ID '{volume.id}' is still attached to a server"
        )


crud.list_endpoint(router, VOLUMES, crud.status_filter(VOLUME_STATUSES, "volume status"))
crud.get_endpoint(router, VOLUMES)
crud.update_endpoint(router, VOLUMES, valid_name=_name)
crud.delete_endpoint(router, VOLUMES, checks=[VOLUMES.unprotected, _detached])
crud.protection_endpoint(router, VOLUMES)


@router.route("POST", "/volumes")
async def create_volume(ctx: Ctx) -> Reply:
    state, body = ctx.state, ctx.body()
    size = require(body, "size", int)
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise invalid_input("size", f"must be between {MIN_SIZE} and {MAX_SIZE} GB")
    name = _name(require(body, "name"))
    check_name(name, state.volumes.values())
    labels = labels_of(body)
    server = _server(state, body["server"]) if body.get("server") is not None else None
    if optional(body, "automount", bool, False) and server is None:
        raise invalid_input("automount", "needs server")
    fmt = optional(body, "format", str, None)
    if fmt is not None and fmt not in _FORMATS:
        raise invalid_input("format", "must be xfs or ext4")
    found = server.location if server is not None else find_location(body.get("location"))
    if found is None:
        raise invalid_input("location", "a valid location (or server) is required")
    location_name = found.name
    volume = Volume(
        state.next_id(), name, size, LOCATIONS[location_name], labels, state.now(), format=fmt
    )
    state.volumes[volume.id] = volume

    def available(_action: Action) -> None:
        volume.status = "available"

    action = state.start_action(
        "create_volume", [(volume.id, "volume")], state.durations.short, done=available
    )
    next_actions = [_attach(state, volume, server)] if server is not None else []
    next_json = [action_json(state, a) for a in next_actions]
    return VOLUMES.reply(
        ctx, volume, 201, action=action_json(state, action), next_actions=next_json
    )


@router.route("POST", "/volumes/{id}/actions/attach")
async def attach_volume(ctx: Ctx) -> Reply:
    state = ctx.state
    volume = VOLUMES.find(ctx)
    server = _server(state, ctx.body().get("server"))
    return Reply(201, {"action": action_json(state, _attach(state, volume, server))})


@router.route("POST", "/volumes/{id}/actions/detach")
async def detach_volume(ctx: Ctx) -> Reply:
    volume = VOLUMES.find(ctx)
    server = [(volume.server_id, "server")] if volume.server_id is not None else []
    volume.server_id = None
    return VOLUMES.start_action(ctx, volume, "detach_volume", also=server)
