"""``/servers/{id}/actions/...``: power, rescue, images, rebuild, networks, type, placement.

Every action locks its server until it ends (423 ``locked`` for other actions meanwhile,
docs.hetzner.cloud "Errors"). Power state changes emit ``SimEvent``s for the rest of the
simulated world; see the package docstring.
"""

from __future__ import annotations

from typing import Any

from hk8s.sim.hcloud._api_servers import (
    PLACEMENT_GROUP_LIMIT,
    attach,
    boot,
    find_image,
    find_server_type,
    ssh_key_ids,
)
from hk8s.sim.hcloud._errors import ApiError, invalid_input, locked
from hk8s.sim.hcloud._model import Image, Server
from hk8s.sim.hcloud._routing import Ctx, Reply, Router, labels_of, lookup, optional, require
from hk8s.sim.hcloud._state import ActionFailure, HcloudState
from hk8s.sim.hcloud._views import action_json, image_json

__all__ = ["router"]

router = Router()


# ------------------------------------------------------------------------------- actions
def _server_for_action(ctx: Ctx) -> Server:
    server = lookup(ctx.state.servers, ctx.id(), "server")
    if server.locked:
        raise locked("server", server.id)
    return server


def _run(
    ctx: Ctx, server: Server, command: str, duration: float, done: Any = None, **extra: Any
) -> Reply:
    action = ctx.state.start_action(
        command, [(server.id, "server")], duration, lock=[server], done=done
    )
    return Reply(201, {"action": action_json(ctx.state, action), **extra})


@router.route("POST", "/servers/{id}/actions/poweron")
async def poweron(ctx: Ctx) -> Reply:
    state, server = ctx.state, _server_for_action(ctx)
    if server.status == "running":
        return _run(ctx, server, "start_server", state.durations.short)
    server.status = "starting"
    action = state.start_action(
        "start_server",
        [(server.id, "server")],
        state.durations.poweron,
        lock=[server],
        done=lambda _a: boot(state, server),
        held=lambda: server.id in state.servers and state.faults.never_running(server.name),
    )
    return Reply(201, {"action": action_json(state, action)})


def _off(state: HcloudState, server: Server) -> None:
    if server.id in state.servers:
        server.status, server.in_rescue = "off", False
        state.emit("server_powered_off", server=server)


@router.route("POST", "/servers/{id}/actions/poweroff")
async def poweroff(ctx: Ctx) -> Reply:
    state, server = ctx.state, _server_for_action(ctx)
    if server.status != "off":
        server.status = "stopping"
    return _run(
        ctx, server, "stop_server", state.durations.poweroff, lambda _a: _off(state, server)
    )


@router.route("POST", "/servers/{id}/actions/shutdown")
async def shutdown(ctx: Ctx) -> Reply:
    # The action only reflects that the ACPI request was sent (shutdown description); the
    # server goes off a little later.
    state, server = ctx.state, _server_for_action(ctx)

    async def later(_action: Any) -> None:
        await state.clock.sleep(state.durations.shutdown)
        _off(state, server)

    def sent(action: Any) -> None:
        state.spawn(later(action))

    return _run(ctx, server, "shutdown_server", state.durations.short, sent)


def _restart(ctx: Ctx, command: str, event: str, duration: float) -> Reply:
    state, server = ctx.state, _server_for_action(ctx)

    def done(_action: Any) -> None:
        if server.id not in state.servers:
            return
        state.emit(event, server=server)
        boot(state, server)

    return _run(ctx, server, command, duration, done)


@router.route("POST", "/servers/{id}/actions/reboot")
async def reboot(ctx: Ctx) -> Reply:
    return _restart(ctx, "reboot_server", "server_rebooted", ctx.state.durations.reboot)


@router.route("POST", "/servers/{id}/actions/reset")
async def reset(ctx: Ctx) -> Reply:
    return _restart(ctx, "reset_server", "server_reset", ctx.state.durations.reset)


@router.route("POST", "/servers/{id}/actions/enable_rescue")
async def enable_rescue(ctx: Ctx) -> Reply:
    state, server = ctx.state, _server_for_action(ctx)
    body = ctx.body()
    if optional(body, "type", str, "linux64") != "linux64":
        raise invalid_input("type", "must be linux64")
    keys = ssh_key_ids(state, optional(body, "ssh_keys", list, []))
    password = state.password()

    def done(action: Any) -> None:
        server.rescue_enabled, server.rescue_password = True, password
        server.rescue_ssh_key_ids = list(keys)
        state.emit(
            "rescue_enabled",
            server=server,
            action=action,
            details={
                "ssh_keys": [state.ssh_keys[k] for k in keys if k in state.ssh_keys],
                "root_password": password,
            },
        )

    return _run(ctx, server, "enable_rescue", state.durations.rescue, done, root_password=password)


@router.route("POST", "/servers/{id}/actions/disable_rescue")
async def disable_rescue(ctx: Ctx) -> Reply:
    state, server = ctx.state, _server_for_action(ctx)

    def done(action: Any) -> None:
        server.rescue_enabled = False
        state.emit("rescue_disabled", server=server, action=action)

    return _run(ctx, server, "disable_rescue", state.durations.rescue, done)


@router.route("POST", "/servers/{id}/actions/create_image")
async def create_image(ctx: Ctx) -> Reply:
    state, server = ctx.state, _server_for_action(ctx)
    body = ctx.body()
    kind = optional(body, "type", str, "snapshot")
    if kind not in ("snapshot", "backup"):
        raise invalid_input("type", "must be snapshot or backup")
    if kind == "backup":
        raise ApiError("unsupported_error", "backups are not enabled for this server")
    image = Image(
        state.next_id(),
        "snapshot",
        None,
        optional(body, "description", str, f"snapshot of {server.name}"),
        server.architecture,
        state.now(),
        status="creating",
        labels=labels_of(body),
        created_from=(server.id, server.name),
        disk_size=server.server_type.disk,
        os_flavor=server.image.os_flavor if server.image else "unknown",
    )
    state.images[image.id] = image

    def done(action: Any) -> None:
        if image.id not in state.images:
            raise ActionFailure("image_deleted", "the image was deleted while it was created")
        image.status, image.image_size = "available", round(server.server_type.disk / 20, 2)
        state.emit("image_created", server=server, image=image, action=action)

    action = state.start_action(
        "create_image",
        [(server.id, "server"), (image.id, "image")],
        state.durations.create_image,
        lock=[server],
        done=done,
    )
    # Listeners attach "what was written" to image.metadata before the snapshot completes.
    state.emit("image_create_requested", server=server, image=image, action=action)
    return Reply(201, {"action": action_json(state, action), "image": image_json(state, image)})


@router.route("POST", "/servers/{id}/actions/rebuild")
async def rebuild(ctx: Ctx) -> Reply:
    state, server = ctx.state, _server_for_action(ctx)
    if server.protection_rebuild:
        raise ApiError("protected", "server is protected against rebuild")
    image = find_image(state, require(ctx.body(), "image", (str, int)), server.architecture)
    server.status = "rebuilding"

    def done(action: Any) -> None:
        server.image = image
        state.emit("server_rebuilt", server=server, image=image, action=action)
        boot(state, server)

    password = None if server.ssh_key_ids else state.password()
    return _run(
        ctx, server, "rebuild_server", state.durations.rebuild, done, root_password=password
    )


@router.route("POST", "/servers/{id}/actions/attach_to_network")
async def attach_to_network(ctx: Ctx) -> Reply:
    state, server = ctx.state, _server_for_action(ctx)
    body = ctx.body()
    network_id = require(body, "network", int)
    attach(state, server, network_id, optional(body, "ip", str, None))

    def done(action: Any) -> None:
        state.emit("server_attached", server=server, action=action, details={"network": network_id})

    action = state.start_action(
        "attach_to_network",
        [(server.id, "server"), (network_id, "network")],
        state.durations.network_change,
        lock=[server],
        done=done,
    )
    return Reply(201, {"action": action_json(state, action)})


@router.route("POST", "/servers/{id}/actions/detach_from_network")
async def detach_from_network(ctx: Ctx) -> Reply:
    state, server = ctx.state, _server_for_action(ctx)
    network_id = require(ctx.body(), "network", int)
    if server.private_net.pop(network_id, None) is None:
        raise ApiError("not_found", f"server is not attached to network {network_id}")
    return _run(ctx, server, "detach_from_network", state.durations.network_change)


@router.route("POST", "/servers/{id}/actions/change_type")
async def change_type(ctx: Ctx) -> Reply:
    state, server = ctx.state, _server_for_action(ctx)
    body = ctx.body()
    st = find_server_type(require(body, "server_type"))
    require(body, "upgrade_disk", bool)
    if server.status != "off":
        raise ApiError("server_not_stopped", "the server must be powered off to change its type")
    if st.architecture != server.architecture:
        raise invalid_input("server_type", "cannot change the architecture of a server")

    def done(_action: Any) -> None:
        server.server_type = st

    return _run(ctx, server, "change_server_type", state.durations.change_type, done)


@router.route("POST", "/servers/{id}/actions/change_protection")
async def change_protection(ctx: Ctx) -> Reply:
    state, server = ctx.state, _server_for_action(ctx)
    body = ctx.body()
    server.protection_delete = optional(body, "delete", bool, server.protection_delete)
    server.protection_rebuild = optional(body, "rebuild", bool, server.protection_rebuild)
    return _run(ctx, server, "change_protection", state.durations.short)


@router.route("POST", "/servers/{id}/actions/add_to_placement_group")
async def add_to_placement_group(ctx: Ctx) -> Reply:
    state, server = ctx.state, _server_for_action(ctx)
    group_id = require(ctx.body(), "placement_group", int)
    lookup(state.placement_groups, group_id, "placement group")
    if server.status != "off":
        raise ApiError("server_not_stopped", "the action requires a stopped server")
    if server.placement_group_id is not None:
        raise ApiError("already_in_placement_group", "the server is already in a placement group")
    if len(state.servers_in_placement_group(group_id)) >= PLACEMENT_GROUP_LIMIT:
        raise ApiError(
            "placement_group_member_limit_reached",
            f"placement group with ID {group_id} contains already {PLACEMENT_GROUP_LIMIT} servers",
        )
    server.placement_group_id = group_id
    return _run(ctx, server, "add_to_placement_group", state.durations.short)


@router.route("POST", "/servers/{id}/actions/remove_from_placement_group")
async def remove_from_placement_group(ctx: Ctx) -> Reply:
    state, server = ctx.state, _server_for_action(ctx)
    server.placement_group_id = None
    return _run(ctx, server, "remove_from_placement_group", state.durations.short)
