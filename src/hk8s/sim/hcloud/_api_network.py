"""Networks (with subnets and routes) and firewalls."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

from hk8s.model.labels import LabelError, parse_selector
from hk8s.sim.hcloud import _api_crud as crud
from hk8s.sim.hcloud._catalog import LOCATIONS
from hk8s.sim.hcloud._errors import ApiError, invalid_input
from hk8s.sim.hcloud._model import Firewall, Network, Subnet
from hk8s.sim.hcloud._routing import (
    Ctx,
    Reply,
    Router,
    check_name,
    labels_of,
    member,
    objects,
    optional,
    require,
)
from hk8s.sim.hcloud._views import (
    action_json,
    firewall_json,
    network_json,
)

if TYPE_CHECKING:
    from hk8s.sim.hcloud._state import HcloudState

__all__ = ["router"]

router = Router()
NETWORKS = crud.Resource("networks", "network", "network", lambda s: s.networks, network_json)
FIREWALLS = crud.Resource("firewalls", "firewall", "firewall", lambda s: s.firewalls, firewall_json)


def _cidr(value: Any, field: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(str(value), strict=True)
    except ValueError:
        raise invalid_input(field, f"{value!r} is not a valid IPv4 network") from None
    return net


def _changing(ctx: Ctx, res: crud.Resource[Any]) -> Any:
    """The resource a change is about; 409 ``conflict`` while another change runs on it.

    Documented for networks ("If a change is currently being performed on this Network, a
    error response with code conflict will be returned", add_subnet and others) and firewalls
    ("In case of a parallel running change on the Firewall a conflict error will be returned").
    """
    resource = res.find(ctx)
    if ctx.state.busy(resource.id, res.key):
        raise ApiError("conflict", f"{res.key} {resource.id} is being changed; retry later")
    return resource


def _changing_network(ctx: Ctx) -> Network:
    network: Network = _changing(ctx, NETWORKS)
    return network


def _changing_firewall(ctx: Ctx) -> Firewall:
    fw: Firewall = _changing(ctx, FIREWALLS)
    return fw


# ------------------------------------------------------------------------------- networks
def _add_subnet(network: Network, body: dict[str, Any], field: str = "ip_range") -> Subnet:
    kind = require(body, "type")
    if kind not in ("cloud", "server", "vswitch"):
        raise invalid_input("type", "must be cloud, server or vswitch")
    zone = require(body, "network_zone")
    if zone not in {loc.network_zone for loc in LOCATIONS.values()}:
        raise invalid_input("network_zone", f"unknown network zone {zone!r}")
    parent = ipaddress.IPv4Network(network.ip_range)
    taken = [ipaddress.IPv4Network(s.ip_range) for s in network.subnets]
    if body.get("ip_range") is not None:
        net = _cidr(body["ip_range"], field)
        if not net.subnet_of(parent):
            raise invalid_input(field, "subnet must be inside the network's ip_range")
        if any(net.overlaps(other) for other in taken):
            raise invalid_input(field, "subnet overlaps with an existing subnet")
    else:
        # "If the subnet ip_range is not provided, the first available /24 will be used."
        free = [
            n
            for n in parent.subnets(new_prefix=max(24, parent.prefixlen))
            if not any(n.overlaps(o) for o in taken)
        ]
        if not free:
            raise ApiError("no_subnet_available", "no free /24 left in the network")
        net = free[0]
    subnet = Subnet(
        kind, str(net), zone, str(next(parent.hosts())), optional(body, "vswitch_id", int, None)
    )
    network.subnets.append(subnet)
    return subnet


def _detach_all(state: HcloudState, network: Network) -> None:
    # "Attached resources will be detached automatically." (DELETE /networks/{id})
    for server in state.servers_in_network(network.id):
        server.private_net.pop(network.id, None)
    for lb in state.lbs_in_network(network.id):
        lb.private_net.pop(network.id, None)


crud.list_endpoint(router, NETWORKS)
crud.get_endpoint(router, NETWORKS)
crud.update_endpoint(router, NETWORKS, fields=("name", "labels", "expose_routes_to_vswitch"))
crud.delete_endpoint(router, NETWORKS, checks=[NETWORKS.unprotected], cleanup=_detach_all)
crud.protection_endpoint(router, NETWORKS, find=_changing_network)


@router.route("POST", "/networks")
async def create_network(ctx: Ctx) -> Reply:
    state, body = ctx.state, ctx.body()
    name = require(body, "name")
    net = _cidr(require(body, "ip_range"), "ip_range")
    if not net.is_private or net.prefixlen > 24:
        raise invalid_input("ip_range", "must be a private (RFC 1918) range of /24 or larger")
    labels = labels_of(body)
    check_name(name, state.networks.values())
    state.check_limit("networks")
    network = Network(state.next_id(), name, str(net), labels, state.now())
    network.expose_routes_to_vswitch = optional(body, "expose_routes_to_vswitch", bool, False)
    for index, subnet in enumerate(objects(body, "subnets")):
        _add_subnet(network, subnet, f"subnets[{index}].ip_range")
    network.routes = [
        {
            "destination": str(_cidr(require(r, "destination"), "routes.destination")),
            "gateway": require(r, "gateway"),
        }
        for r in objects(body, "routes")
    ]
    state.networks[network.id] = network
    return NETWORKS.reply(ctx, network, 201)


@router.route("POST", "/networks/{id}/actions/add_subnet")
async def add_subnet(ctx: Ctx) -> Reply:
    network = _changing_network(ctx)
    _add_subnet(network, ctx.body())
    return NETWORKS.start_action(ctx, network, "add_subnet")


@router.route("POST", "/networks/{id}/actions/delete_subnet")
async def delete_subnet(ctx: Ctx) -> Reply:
    state = ctx.state
    network = _changing_network(ctx)
    target = require(ctx.body(), "ip_range")
    subnet = next((s for s in network.subnets if s.ip_range == target), None)
    if subnet is None:
        raise ApiError("not_found", f"subnet {target} not found")
    net = ipaddress.IPv4Network(subnet.ip_range)
    if any(ipaddress.IPv4Address(ip) in net for ip in state.used_private_ips(network.id)):
        raise ApiError("service_error", "subnet has attached resources; detach them first")
    network.subnets.remove(subnet)
    return NETWORKS.start_action(ctx, network, "delete_subnet")


@router.route("POST", "/networks/{id}/actions/add_route")
async def add_route(ctx: Ctx) -> Reply:
    network = _changing_network(ctx)
    body = ctx.body()
    route = {
        "destination": str(_cidr(require(body, "destination"), "destination")),
        "gateway": require(body, "gateway"),
    }
    network.routes.append(route)
    return NETWORKS.start_action(ctx, network, "add_route")


@router.route("POST", "/networks/{id}/actions/delete_route")
async def delete_route(ctx: Ctx) -> Reply:
    network = _changing_network(ctx)
    body = ctx.body()
    route = {"destination": require(body, "destination"), "gateway": require(body, "gateway")}
    if route not in network.routes:
        raise ApiError("not_found", "route not found")
    network.routes.remove(route)
    return NETWORKS.start_action(ctx, network, "delete_route")


# ------------------------------------------------------------------------------ firewalls
_PROTOCOLS = ("tcp", "udp", "icmp", "esp", "gre")
_PORT = re.compile(r"^[0-9]{1,5}(-[0-9]{1,5})?$")


def _rules(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise invalid_input("rules", "must be an array")
    rules = []
    for index, rule in enumerate(value):
        where = f"rules[{index}]"
        if not isinstance(rule, dict):
            raise invalid_input(where, "must be an object")
        direction, protocol = rule.get("direction"), rule.get("protocol")
        if direction not in ("in", "out"):
            raise invalid_input(f"{where}.direction", "must be in or out")
        if protocol not in _PROTOCOLS:
            raise invalid_input(f"{where}.protocol", f"must be one of {', '.join(_PROTOCOLS)}")
        description = rule.get("description")
        if description is not None and not isinstance(description, str):
            raise invalid_input(f"{where}.description", "must be a string")
        port = rule.get("port")
        if protocol in ("tcp", "udp") and not port:
            raise invalid_input(f"{where}.port", "is required for tcp and udp")
        if protocol not in ("tcp", "udp") and port:
            raise invalid_input(f"{where}.port", "is only allowed for tcp and udp")
        # A port or a range "80-85" (openapi.json Rule.port).
        if port and (not isinstance(port, str) or not _PORT.match(port)):
            raise invalid_input(f"{where}.port", "must be a port or a range like 80-85")
        ips_key = "source_ips" if direction == "in" else "destination_ips"
        ips = rule.get(ips_key) or []
        if not isinstance(ips, list) or not ips:
            raise invalid_input(f"{where}.{ips_key}", "is required (an array of CIDRs)")
        for ip in ips:
            try:
                ipaddress.ip_network(str(ip), strict=True)
            except ValueError:
                raise invalid_input(f"{where}.{ips_key}", f"{ip!r} is not a CIDR") from None
        rules.append(
            {
                "description": description,
                "direction": direction,
                "source_ips": list(ips) if direction == "in" else [],
                "destination_ips": list(ips) if direction == "out" else [],
                "protocol": protocol,
                "port": port or None,
            }
        )
    return rules


def _targets(state: HcloudState, value: Any, field: str) -> list[tuple[str, int | str]]:
    if not isinstance(value, list):
        raise invalid_input(field, "must be an array")
    targets: list[tuple[str, int | str]] = []
    for entry in value:
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind == "server":
            server_id = member(entry, "server").get("id")
            if server_id not in state.servers:
                raise ApiError(
                    "firewall_resource_not_found", f"server {server_id} not found", status=404
                )
            targets.append(("server", int(server_id)))
        elif kind == "label_selector":
            selector = member(entry, "label_selector").get("selector")
            try:
                parse_selector(str(selector))
            except LabelError as exc:
                raise invalid_input(field, exc.message) from None
            targets.append(("label_selector", str(selector)))
        else:
            raise invalid_input(field, "type must be server or label_selector")
    return targets


def _by_selector(state: HcloudState, fw: Firewall, target: tuple[str, int | str]) -> bool:
    """Whether ``target`` (a server) gets ``fw`` through one of its label selectors."""
    kind, ident = target
    server = state.servers.get(int(ident)) if kind == "server" else None
    if server is None:
        return False
    return any(
        parse_selector(str(selector)).matches(server.labels)
        for applied_kind, selector in fw.applied_to
        if applied_kind == "label_selector"
    )


def _firewall_actions(
    state: HcloudState, fw: Firewall, command: str, targets: list[tuple[str, int | str]]
) -> list[dict[str, Any]]:
    actions = []
    for kind, target in targets:
        res = [(fw.id, "firewall")] + ([(int(target), "server")] if kind == "server" else [])
        actions.append(action_json(state, state.start_action(command, res, state.durations.short)))
    return actions


def _not_in_use(state: HcloudState, fw: Firewall) -> None:
    applied = firewall_json(state, fw)["applied_to"]
    if any(a["type"] == "server" or a["applied_to_resources"] for a in applied):
        raise ApiError("resource_in_use", "firewall is still applied to a resource")


crud.list_endpoint(router, FIREWALLS)
crud.get_endpoint(router, FIREWALLS)
crud.update_endpoint(router, FIREWALLS, find=_changing_firewall)
crud.delete_endpoint(router, FIREWALLS, checks=[_not_in_use])


@router.route("POST", "/firewalls")
async def create_firewall(ctx: Ctx) -> Reply:
    state, body = ctx.state, ctx.body()
    name = require(body, "name")
    labels = labels_of(body)
    rules = _rules(optional(body, "rules", list, []))
    targets = _targets(state, optional(body, "apply_to", list, []), "apply_to")
    check_name(name, state.firewalls.values())
    state.check_limit("firewalls")
    fw = Firewall(state.next_id(), name, labels, state.now(), rules, list(dict.fromkeys(targets)))
    state.firewalls[fw.id] = fw
    actions = _firewall_actions(state, fw, "apply_firewall", fw.applied_to)
    return FIREWALLS.reply(ctx, fw, 201, actions=actions)


@router.route("POST", "/firewalls/{id}/actions/set_rules")
async def set_rules(ctx: Ctx) -> Reply:
    state = ctx.state
    fw = _changing_firewall(ctx)
    fw.rules = _rules(require(ctx.body(), "rules", list))
    action = state.start_action("set_firewall_rules", [(fw.id, "firewall")], state.durations.short)
    return Reply(201, {"actions": [action_json(state, action)]})


@router.route("POST", "/firewalls/{id}/actions/apply_to_resources")
async def apply_to_resources(ctx: Ctx) -> Reply:
    state = ctx.state
    fw = _changing_firewall(ctx)
    targets = _targets(state, require(ctx.body(), "apply_to", list), "apply_to")
    for target in targets:
        if target in fw.applied_to:
            raise ApiError("firewall_already_applied", "firewall is already applied to resource")
    fw.applied_to += targets
    return Reply(201, {"actions": _firewall_actions(state, fw, "apply_firewall", targets)})


@router.route("POST", "/firewalls/{id}/actions/remove_from_resources")
async def remove_from_resources(ctx: Ctx) -> Reply:
    state = ctx.state
    fw = _changing_firewall(ctx)
    targets = _targets(state, require(ctx.body(), "remove_from", list), "remove_from")
    for target in targets:
        if target not in fw.applied_to:
            if _by_selector(state, fw, target):
                # openapi.json, remove_from_resources: 422 firewall_managed_by_label_selector,
                # "applied via a Label Selector and cannot be removed manually".
                raise ApiError(
                    "firewall_managed_by_label_selector",
                    "firewall is applied via a label selector and cannot be removed manually",
                    status=422,
                )
            raise ApiError(
                "firewall_resource_not_found", "firewall is not applied to resource", status=404
            )
        fw.applied_to.remove(target)
    return Reply(201, {"actions": _firewall_actions(state, fw, "remove_firewall", targets)})


@router.route("POST", "/networks/{id}/actions/change_ip_range")
async def change_ip_range(ctx: Ctx) -> Reply:
    # "The provided ip_range can only be extended later on, but not reduced" (POST /networks).
    network = _changing_network(ctx)
    net = _cidr(require(ctx.body(), "ip_range"), "ip_range")
    if not ipaddress.IPv4Network(network.ip_range).subnet_of(net):
        raise invalid_input("ip_range", "the range can only be extended")
    network.ip_range = str(net)
    return NETWORKS.start_action(ctx, network, "change_ip_range")
