"""Load balancers: services, targets (server, label selector, IP), networks, health status.

Shapes and operation-specific errors follow openapi.json "Load Balancers" and
"Load Balancer Actions"; the health checks and TCP forwarding behind them live in ``_lb``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hk8s.model.labels import LabelError, parse_selector
from hk8s.sim.hcloud._api_servers import lookup_lb_type
from hk8s.sim.hcloud._catalog import LOCATIONS
from hk8s.sim.hcloud._errors import ApiError, invalid_input
from hk8s.sim.hcloud._model import LBService, LBTarget, LoadBalancer
from hk8s.sim.hcloud._routing import (
    Ctx,
    Reply,
    Router,
    as_int,
    check_name,
    labels_of,
    list_reply,
    lookup,
    optional,
    require,
)
from hk8s.sim.hcloud._views import action_json, lb_json, lb_target_servers

if TYPE_CHECKING:
    from hk8s.sim.hcloud._state import HcloudState

__all__ = ["router"]

router = Router()


# -------------------------------------------------------------------------- load balancers
def _service(body: dict[str, Any], existing: LBService | None = None) -> LBService:
    protocol = body.get("protocol", existing.protocol if existing else None)
    if protocol not in ("tcp", "http", "https"):
        raise invalid_input("protocol", "must be tcp, http or https")
    default_port = 80 if protocol == "http" else 443 if protocol == "https" else None
    listen = body.get("listen_port", existing.listen_port if existing else default_port)
    dest = body.get("destination_port", existing.destination_port if existing else listen)
    if not isinstance(listen, int) or not isinstance(dest, int):
        raise invalid_input("listen_port", "listen_port and destination_port are required")
    check = {"protocol": "tcp", "port": dest, "interval": 15, "timeout": 10, "retries": 3}
    if existing:
        check = dict(existing.health_check)
    check.update(body.get("health_check") or {})
    http = None
    if protocol != "tcp":
        http = {
            "cookie_name": "HCLBSTICKY",
            "cookie_lifetime": 300,
            "certificates": [],
            "redirect_http": False,
            "sticky_sessions": False,
            "timeout_idle": 60,
        }
        http.update((existing.http or {}) if existing else {})
        http.update(body.get("http") or {})
    proxy = body.get("proxyprotocol", existing.proxyprotocol if existing else False)
    return LBService(protocol, listen, dest, bool(proxy), check, http)


def _lb_target(state: HcloudState, lb: LoadBalancer, body: dict[str, Any]) -> LBTarget:
    kind = require(body, "type")
    private = bool(body.get("use_private_ip", False))
    if kind == "server":
        server_id = (body.get("server") or {}).get("id")
        server = lookup(state.servers, as_int(server_id, "server.id"), "server")
        if private and not set(server.private_net) & set(lb.private_net):
            raise ApiError(
                "resolve_cloud_private_targets_error",
                "the server is not attached to the load balancer's network",
            )
        target = LBTarget("server", server_id=server.id, use_private_ip=private)
    elif kind == "label_selector":
        selector = str((body.get("label_selector") or {}).get("selector"))
        try:
            parse_selector(selector)
        except LabelError as exc:
            raise invalid_input("label_selector.selector", exc.message) from None
        if private and not lb.private_net:
            raise ApiError(
                "load_balancer_not_attached_to_network",
                "the load balancer is not attached to a network",
            )
        target = LBTarget("label_selector", selector=selector, use_private_ip=private)
    elif kind == "ip":
        target = LBTarget("ip", ip=str((body.get("ip") or {}).get("ip")))
    else:
        raise invalid_input("type", "must be server, label_selector or ip")
    if any(
        (t.type, t.server_id, t.selector, t.ip)
        == (target.type, target.server_id, target.selector, target.ip)
        for t in lb.targets
    ):
        raise ApiError("target_already_defined", "the target is already defined")
    return target


def _lb_attach(state: HcloudState, lb: LoadBalancer, network_id: int, ip: str | None) -> None:
    network = lookup(state.networks, network_id, "network")
    if lb.private_net:
        raise ApiError("load_balancer_already_attached", "the load balancer is already attached")
    address = state.allocate_private_ip(network, lb.location.network_zone, ip)
    if address is None:
        raise ApiError(
            "ip_not_available" if ip else "no_subnet_available",
            "no free IP for the load balancer in the network",
        )
    lb.private_net[network_id] = address


def _lb_action(ctx: Ctx, lb: LoadBalancer, command: str) -> Reply:
    action = ctx.state.start_action(command, [(lb.id, "load_balancer")], ctx.state.durations.short)
    return Reply(201, {"action": action_json(ctx.state, action)})


@router.route("GET", "/load_balancers")
async def list_lbs(ctx: Ctx) -> Reply:
    return list_reply(
        ctx, "load_balancers", ctx.state.load_balancers.values(), lambda lb: lb_json(ctx.state, lb)
    )


@router.route("GET", "/load_balancers/{id}")
async def get_lb(ctx: Ctx) -> Reply:
    lb = lookup(ctx.state.load_balancers, ctx.id(), "load balancer")
    return Reply(200, {"load_balancer": lb_json(ctx.state, lb)})


@router.route("POST", "/load_balancers")
async def create_lb(ctx: Ctx) -> Reply:
    state, body = ctx.state, ctx.body()
    name = require(body, "name")
    lb_type = lookup_lb_type(require(body, "load_balancer_type", (str, int)))
    labels = labels_of(body)
    check_name(name, state.load_balancers.values())
    state.check_limit("load_balancers")
    if (loc := body.get("location")) is not None:
        if loc not in LOCATIONS:
            raise invalid_input("location", f"location {loc!r} not found")
        location = LOCATIONS[loc]
    elif (zone := body.get("network_zone")) is not None:
        in_zone = [x for x in LOCATIONS.values() if x.network_zone == zone]
        if not in_zone:
            raise invalid_input("network_zone", f"unknown network zone {zone!r}")
        location = in_zone[0]
    else:
        raise invalid_input("location", "location or network_zone is required")
    algorithm = (body.get("algorithm") or {}).get("type", "round_robin")
    if algorithm not in ("round_robin", "least_connections"):
        raise invalid_input("algorithm.type", "must be round_robin or least_connections")
    lb = LoadBalancer(
        state.next_id(),
        name,
        lb_type,
        location,
        labels,
        state.now(),
        state.allocate_lb_ip(),
        state.allocate_ipv6(),
        algorithm,
        public_interface=optional(body, "public_interface", bool, True),
    )
    if (network := body.get("network")) is not None:
        _lb_attach(state, lb, as_int(network, "network"), None)
    for service in optional(body, "services", list, []):
        lb.services.append(_service(service))
    for target in optional(body, "targets", list, []):
        lb.targets.append(_lb_target(state, lb, target))
    state.load_balancers[lb.id] = lb
    action = state.start_action(
        "create_load_balancer", [(lb.id, "load_balancer")], state.durations.short
    )
    return Reply(201, {"load_balancer": lb_json(state, lb), "action": action_json(state, action)})


@router.route("PUT", "/load_balancers/{id}")
async def update_lb(ctx: Ctx) -> Reply:
    lb = lookup(ctx.state.load_balancers, ctx.id(), "load balancer")
    body = ctx.body()
    if (name := optional(body, "name", str, None)) is not None:
        check_name(name, ctx.state.load_balancers.values(), exclude=lb.id)
        lb.name = name
    lb.labels = labels_of(body, lb.labels)
    return Reply(200, {"load_balancer": lb_json(ctx.state, lb)})


@router.route("DELETE", "/load_balancers/{id}")
async def delete_lb(ctx: Ctx) -> Reply:
    state = ctx.state
    lb = lookup(state.load_balancers, ctx.id(), "load balancer")
    if lb.protection_delete:
        raise ApiError("protected", "load balancer is protected against deletion")
    del state.load_balancers[lb.id]
    # openapi.json documents 204 without a body, but hcloud-python 2.27 reads
    # response["action"] (load_balancers/client.py delete), so the API it was released
    # against answers with the delete action; design.md section 4 records the quirk.
    action = state.finished_action("delete_load_balancer", [(lb.id, "load_balancer")])
    state.emit("load_balancer_deleted", details={"load_balancer": lb})
    return Reply(200, {"action": action_json(state, action)})


@router.route("POST", "/load_balancers/{id}/actions/add_service")
async def add_service(ctx: Ctx) -> Reply:
    lb = lookup(ctx.state.load_balancers, ctx.id(), "load balancer")
    service = _service(ctx.body())
    if any(s.listen_port == service.listen_port for s in lb.services):
        raise ApiError("source_port_already_used", "the listen port is already in use", status=412)
    if len(lb.services) >= lb.lb_type["max_services"]:
        raise ApiError("resource_limit_exceeded", "load balancer service limit reached")
    lb.services.append(service)
    return _lb_action(ctx, lb, "add_service")


@router.route("POST", "/load_balancers/{id}/actions/update_service")
async def update_service(ctx: Ctx) -> Reply:
    lb = lookup(ctx.state.load_balancers, ctx.id(), "load balancer")
    body = ctx.body()
    port = require(body, "listen_port", int)
    index = next((i for i, s in enumerate(lb.services) if s.listen_port == port), None)
    if index is None:
        raise ApiError("not_found", f"service with listen port {port} not found")
    lb.services[index] = _service(body, lb.services[index])
    return _lb_action(ctx, lb, "update_service")


@router.route("POST", "/load_balancers/{id}/actions/delete_service")
async def delete_service(ctx: Ctx) -> Reply:
    lb = lookup(ctx.state.load_balancers, ctx.id(), "load balancer")
    port = require(ctx.body(), "listen_port", int)
    if not any(s.listen_port == port for s in lb.services):
        raise ApiError("not_found", f"service with listen port {port} not found")
    lb.services = [s for s in lb.services if s.listen_port != port]
    return _lb_action(ctx, lb, "delete_service")


@router.route("POST", "/load_balancers/{id}/actions/add_target")
async def add_target(ctx: Ctx) -> Reply:
    lb = lookup(ctx.state.load_balancers, ctx.id(), "load balancer")
    if len(lb_target_servers(ctx.state, lb)) >= lb.lb_type["max_targets"]:
        raise ApiError("resource_limit_exceeded", "load balancer target limit reached")
    lb.targets.append(_lb_target(ctx.state, lb, ctx.body()))
    return _lb_action(ctx, lb, "add_target")


@router.route("POST", "/load_balancers/{id}/actions/remove_target")
async def remove_target(ctx: Ctx) -> Reply:
    lb = lookup(ctx.state.load_balancers, ctx.id(), "load balancer")
    body = ctx.body()
    kind = require(body, "type")
    key = {
        "server": ("server_id", (body.get("server") or {}).get("id")),
        "label_selector": ("selector", (body.get("label_selector") or {}).get("selector")),
        "ip": ("ip", (body.get("ip") or {}).get("ip")),
    }.get(kind)
    if key is None:
        raise invalid_input("type", "must be server, label_selector or ip")
    remaining = [t for t in lb.targets if not (t.type == kind and getattr(t, key[0]) == key[1])]
    if len(remaining) == len(lb.targets):
        raise ApiError("load_balancer_target_not_found", "target not found", status=404)
    lb.targets = remaining
    return _lb_action(ctx, lb, "remove_target")


@router.route("POST", "/load_balancers/{id}/actions/attach_to_network")
async def lb_attach(ctx: Ctx) -> Reply:
    lb = lookup(ctx.state.load_balancers, ctx.id(), "load balancer")
    body = ctx.body()
    _lb_attach(ctx.state, lb, require(body, "network", int), optional(body, "ip", str, None))
    return _lb_action(ctx, lb, "attach_to_network")


@router.route("POST", "/load_balancers/{id}/actions/detach_from_network")
async def lb_detach(ctx: Ctx) -> Reply:
    lb = lookup(ctx.state.load_balancers, ctx.id(), "load balancer")
    if lb.private_net.pop(require(ctx.body(), "network", int), None) is None:
        raise ApiError("not_found", "load balancer is not attached to this network")
    return _lb_action(ctx, lb, "detach_from_network")


@router.route("POST", "/load_balancers/{id}/actions/change_algorithm")
async def lb_algorithm(ctx: Ctx) -> Reply:
    lb = lookup(ctx.state.load_balancers, ctx.id(), "load balancer")
    algorithm = require(ctx.body(), "type")
    if algorithm not in ("round_robin", "least_connections"):
        raise invalid_input("type", "must be round_robin or least_connections")
    lb.algorithm = algorithm
    return _lb_action(ctx, lb, "change_algorithm")


@router.route("POST", "/load_balancers/{id}/actions/change_type")
async def lb_change_type(ctx: Ctx) -> Reply:
    lb = lookup(ctx.state.load_balancers, ctx.id(), "load balancer")
    lb.lb_type = lookup_lb_type(require(ctx.body(), "load_balancer_type", (str, int)))
    return _lb_action(ctx, lb, "change_load_balancer_type")


@router.route("POST", "/load_balancers/{id}/actions/change_protection")
async def lb_protection(ctx: Ctx) -> Reply:
    lb = lookup(ctx.state.load_balancers, ctx.id(), "load balancer")
    lb.protection_delete = optional(ctx.body(), "delete", bool, lb.protection_delete)
    return _lb_action(ctx, lb, "change_protection")


@router.route("POST", "/load_balancers/{id}/actions/enable_public_interface")
async def lb_enable_public(ctx: Ctx) -> Reply:
    lb = lookup(ctx.state.load_balancers, ctx.id(), "load balancer")
    lb.public_interface = True
    return _lb_action(ctx, lb, "enable_public_interface")


@router.route("POST", "/load_balancers/{id}/actions/disable_public_interface")
async def lb_disable_public(ctx: Ctx) -> Reply:
    lb = lookup(ctx.state.load_balancers, ctx.id(), "load balancer")
    # Only a load balancer in a private network can go without its public interface.
    if not lb.private_net:
        raise ApiError(
            "load_balancer_not_attached_to_network", "the load balancer is not in a network"
        )
    lb.public_interface = False
    return _lb_action(ctx, lb, "disable_public_interface")
