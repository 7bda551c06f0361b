"""Actions: ``GET /actions?id=..`` (batch polling), ``/actions/{id}``, and per resource type
``/{type}/actions``, ``/{type}/actions/{id}``, ``/{type}/{id}/actions[/{action_id}]``."""

from __future__ import annotations

from typing import Any

from hk8s.sim.hcloud._errors import invalid_input, not_found
from hk8s.sim.hcloud._routing import Ctx, Reply, Router, list_reply, lookup
from hk8s.sim.hcloud._views import action_json

__all__ = ["router"]

router = Router()
ACTION_STATUSES = {"running", "success", "error"}
ACTION_SORT = ("id", "command", "status", "started", "finished")
RESOURCE_KINDS = {
    "servers": "server",
    "images": "image",
    "networks": "network",
    "firewalls": "firewall",
    "load_balancers": "load_balancer",
    "primary_ips": "primary_ip",
    "volumes": "volume",
}


def _action_list(ctx: Ctx, actions: list[Any]) -> Reply:
    if ids := ctx.queries("id"):
        if not all(i.isdigit() for i in ids):
            raise invalid_input("id", "must be integers")
        wanted = {int(i) for i in ids}
        actions = [a for a in actions if a.id in wanted]
    if statuses := ctx.queries("status"):
        if set(statuses) - ACTION_STATUSES:
            raise invalid_input("status", "must be running, success or error")
        actions = [a for a in actions if a.status in statuses]
    return list_reply(
        ctx,
        "actions",
        actions,
        lambda a: action_json(ctx.state, a),
        labels=False,
        names=False,
        sort_keys=ACTION_SORT,
    )


@router.route("GET", "/actions")
async def list_actions(ctx: Ctx) -> Reply:
    # Listing every action without ids was removed on 2025-01-30 (GET /actions description).
    if not ctx.queries("id"):
        raise invalid_input("id", "is required")
    return _action_list(ctx, list(ctx.state.actions.values()))


@router.route("GET", "/actions/{id}")
async def get_action(ctx: Ctx) -> Reply:
    action = lookup(ctx.state.actions, ctx.id(), "action")
    return Reply(200, {"action": action_json(ctx.state, action)})


def _register_resource_actions(collection: str, kind: str) -> None:
    def of_kind(ctx: Ctx, resource_id: int | None = None) -> list[Any]:
        return [
            a
            for a in ctx.state.actions.values()
            if any(t == kind and (resource_id is None or i == resource_id) for i, t in a.resources)
        ]

    def resources(ctx: Ctx) -> dict[int, Any]:
        return dict(getattr(ctx.state, collection))

    async def list_all(ctx: Ctx) -> Reply:
        return _action_list(ctx, of_kind(ctx))

    async def get_one(ctx: Ctx) -> Reply:
        action = lookup(ctx.state.actions, ctx.id(), "action")
        if action not in of_kind(ctx):
            raise not_found("action", action.id)
        return Reply(200, {"action": action_json(ctx.state, action)})

    async def list_for(ctx: Ctx) -> Reply:
        resource_id = ctx.id()
        lookup(resources(ctx), resource_id, kind)
        return _action_list(ctx, of_kind(ctx, resource_id))

    async def get_for(ctx: Ctx) -> Reply:
        resource_id = ctx.id()
        action = lookup(ctx.state.actions, ctx.id("action_id"), "action")
        if action not in of_kind(ctx, resource_id):
            raise not_found("action", action.id)
        return Reply(200, {"action": action_json(ctx.state, action)})

    router.route("GET", f"/{collection}/actions")(list_all)
    router.route("GET", f"/{collection}/actions/{{id}}")(get_one)
    router.route("GET", f"/{collection}/{{id}}/actions")(list_for)
    router.route("GET", f"/{collection}/{{id}}/actions/{{action_id}}")(get_for)


for _collection, _kind in RESOURCE_KINDS.items():
    _register_resource_actions(_collection, _kind)
