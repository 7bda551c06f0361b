"""hcloud library objects -> hk8s model types, and model specs -> library arguments.

Reads only ``bound.data_model`` fields: a bound object's ``__getattr__`` reloads itself with a
GET when a field is falsy and the object is incomplete (hcloud ``core/client.py``), which would
turn one list call into one request per resource.
"""

from __future__ import annotations

from typing import Any, TypedDict

from hcloud.firewalls.domain import FirewallResource, FirewallResourceLabelSelector
from hcloud.firewalls.domain import FirewallRule as LibFirewallRule
from hcloud.load_balancers.domain import (
    LoadBalancerHealthCheck,
    LoadBalancerService,
    LoadBalancerTarget,
    LoadBalancerTargetLabelSelector,
)
from hcloud.networks.domain import NetworkSubnet

from hk8s.model.resources import (
    Action,
    Firewall,
    FirewallRule,
    HealthCheck,
    Image,
    LBService,
    LBTarget,
    LoadBalancer,
    Network,
    PlacementGroup,
    PrivateIP,
    Server,
    SSHKey,
    Subnet,
    Volume,
)

__all__ = [
    "to_action",
    "to_firewall",
    "to_image",
    "to_lb_service",
    "to_lb_target",
    "to_lib_firewall_resource",
    "to_lib_rule",
    "to_lib_service",
    "to_lib_subnet",
    "to_lib_target",
    "to_load_balancer",
    "to_network",
    "to_placement_group",
    "to_server",
    "to_ssh_key",
    "to_volume",
]


def _dm(obj: Any) -> Any:
    """The plain domain object behind a bound model (or the object itself)."""
    return getattr(obj, "data_model", obj)


def _name(obj: Any) -> str:
    return str(_dm(obj).name) if obj is not None else ""


def _id(obj: Any) -> int | None:
    return int(_dm(obj).id) if obj is not None else None


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


class _Identity(TypedDict):
    id: int
    name: str
    labels: dict[str, str]


def _identity(m: Any) -> _Identity:
    """``id``, ``name`` and ``labels`` of a domain object (labels may be None in it)."""
    return {"id": m.id, "name": m.name, "labels": dict(m.labels or {})}


def _public_ipv4(m: Any) -> str | None:
    """``public_net.ipv4.ip`` of a server or load balancer (None without a public IPv4)."""
    public = m.public_net
    return public.ipv4.ip if public is not None and public.ipv4 is not None else None


def _private_ips(m: Any) -> tuple[PrivateIP, ...]:
    """``private_net`` of a server or load balancer as (network id, IP) pairs."""
    return tuple(PrivateIP(int(_dm(p.network).id), p.ip) for p in m.private_net or () if p.network)


def _protected(m: Any) -> bool:
    """``protection.delete`` of a domain object (a dict in hcloud 2.27; absent -> False)."""
    protection = m.protection or {}
    return bool(protection.get("delete"))


def to_action(raw: dict[str, Any]) -> Action:
    """From the JSON of ``GET /actions`` (read raw: the batch call bypasses bound models)."""
    error = raw.get("error") or {}
    return Action(
        id=int(raw["id"]),
        command=str(raw.get("command", "")),
        status=raw.get("status", "running"),
        progress=int(raw.get("progress") or 0),
        error_code=error.get("code"),
        error_message=error.get("message"),
    )


def to_network(bound: Any) -> Network:
    m = _dm(bound)
    return Network(
        **_identity(m),
        ip_range=m.ip_range,
        subnets=tuple(
            Subnet(s.ip_range, s.network_zone, s.type, s.gateway) for s in m.subnets or ()
        ),
        server_ids=tuple(i for i in (_id(s) for s in m.servers or ()) if i is not None),
        protected=_protected(m),
    )


def to_lib_subnet(subnet: Subnet) -> NetworkSubnet:
    return NetworkSubnet(
        type=subnet.type, ip_range=subnet.ip_range, network_zone=subnet.network_zone
    )


def _to_rule(rule: Any) -> FirewallRule:
    return FirewallRule(
        direction=rule.direction,
        protocol=rule.protocol,
        port=rule.port,
        source_ips=tuple(rule.source_ips or ()),
        destination_ips=tuple(rule.destination_ips or ()),
        description=rule.description,
    )


def to_lib_rule(rule: FirewallRule) -> LibFirewallRule:
    return LibFirewallRule(
        direction=rule.direction,
        protocol=rule.protocol,
        source_ips=list(rule.source_ips),
        port=rule.port,
        destination_ips=list(rule.destination_ips),
        description=rule.description,
    )


def to_lib_firewall_resource(selector: str) -> FirewallResource:
    return FirewallResource(
        type="label_selector", label_selector=FirewallResourceLabelSelector(selector=selector)
    )


def to_firewall(bound: Any) -> Firewall:
    m = _dm(bound)
    selectors: list[str] = []
    servers: list[int] = []
    for res in m.applied_to or ():
        if res.type == "label_selector" and res.label_selector is not None:
            selectors.append(res.label_selector.selector)
            for applied in res.applied_to_resources or ():
                if applied.type == "server" and applied.server is not None:
                    servers.append(int(_dm(applied.server).id))
        elif res.type == "server" and res.server is not None:
            servers.append(int(_dm(res.server).id))
    return Firewall(
        **_identity(m),
        rules=tuple(_to_rule(r) for r in m.rules or ()),
        applied_selectors=tuple(selectors),
        applied_server_ids=tuple(sorted(set(servers))),
    )


def to_lb_service(service: Any) -> LBService:
    hc = service.health_check
    return LBService(
        protocol=service.protocol,
        listen_port=service.listen_port,
        destination_port=service.destination_port,
        health_check=HealthCheck(hc.protocol, hc.port, hc.interval, hc.timeout, hc.retries)
        if hc is not None
        else HealthCheck(),
        proxyprotocol=bool(service.proxyprotocol),
    )


def to_lib_service(service: LBService) -> LoadBalancerService:
    hc = service.health_check
    return LoadBalancerService(
        protocol=service.protocol,
        listen_port=service.listen_port,
        destination_port=service.destination_port,
        proxyprotocol=service.proxyprotocol,
        health_check=LoadBalancerHealthCheck(
            protocol=hc.protocol,
            port=hc.port,
            interval=hc.interval,
            timeout=hc.timeout,
            retries=hc.retries,
        ),
    )


def to_lb_target(target: Any) -> LBTarget:
    selector = target.label_selector.selector if target.label_selector is not None else None
    return LBTarget(
        type=target.type,
        label_selector=selector,
        server_id=_id(target.server),
        use_private_ip=bool(target.use_private_ip),
    )


def to_lib_target(target: LBTarget) -> LoadBalancerTarget:
    selector = (
        LoadBalancerTargetLabelSelector(selector=target.label_selector)
        if target.label_selector is not None
        else None
    )
    return LoadBalancerTarget(
        type=target.type, label_selector=selector, use_private_ip=target.use_private_ip
    )


def to_load_balancer(bound: Any) -> LoadBalancer:
    m = _dm(bound)
    return LoadBalancer(
        **_identity(m),
        type=_name(m.load_balancer_type),
        location=_name(m.location),
        public_ipv4=_public_ipv4(m),
        private_ips=_private_ips(m),
        services=tuple(to_lb_service(s) for s in m.services or ()),
        targets=tuple(to_lb_target(t) for t in m.targets or ()),
        protected=_protected(m),
    )


def to_placement_group(bound: Any) -> PlacementGroup:
    m = _dm(bound)
    return PlacementGroup(
        **_identity(m),
        type=m.type,
        server_ids=tuple(int(s) for s in m.servers or ()),
    )


def to_server(bound: Any) -> Server:
    m = _dm(bound)
    return Server(
        **_identity(m),
        status=m.status,
        server_type=_name(m.server_type),
        location=_name(m.location),
        image_id=_id(m.image),
        public_ipv4=_public_ipv4(m),
        private_ips=_private_ips(m),
        placement_group_id=_id(m.placement_group),
        rescue_enabled=bool(m.rescue_enabled),
        created=_iso(m.created),
        protected=_protected(m),
    )


def to_image(bound: Any) -> Image:
    m = _dm(bound)
    return Image(
        **_identity(m),
        type=m.type,
        status=m.status,
        architecture=m.architecture,
        description=m.description or "",
        created=_iso(m.created),
        protected=_protected(m),
    )


def to_ssh_key(bound: Any) -> SSHKey:
    m = _dm(bound)
    return SSHKey(**_identity(m), fingerprint=m.fingerprint, public_key=m.public_key)


def to_volume(bound: Any) -> Volume:
    m = _dm(bound)
    return Volume(
        **_identity(m),
        size=m.size,
        location=_name(m.location),
        server_id=_id(m.server),
        protected=_protected(m),
    )
