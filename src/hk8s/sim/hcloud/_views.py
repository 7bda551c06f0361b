"""Resources as JSON, in the shapes of openapi.json (every required key; hcloud 2.27 is strict)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hk8s.model.labels import LabelError, match_selector
from hk8s.sim.hcloud._catalog import datacenter_json

if TYPE_CHECKING:
    from hk8s.sim.hcloud._model import (
        Action,
        Firewall,
        Image,
        LoadBalancer,
        Network,
        PlacementGroup,
        PrimaryIP,
        Server,
        SSHKey,
        Volume,
    )
    from hk8s.sim.hcloud._state import HcloudState

__all__ = [
    "action_json",
    "effective_firewalls",
    "firewall_json",
    "image_json",
    "lb_json",
    "lb_target_servers",
    "network_json",
    "placement_group_json",
    "primary_ip_json",
    "server_json",
    "ssh_key_json",
    "volume_json",
]


def action_json(state: HcloudState, action: Action) -> dict[str, Any]:
    error = {"code": action.error[0], "message": action.error[1]} if action.error else None
    return {
        "id": action.id,
        "command": action.command,
        "status": action.status,
        "progress": state.progress(action),
        "started": state.iso(action.started),
        "finished": state.iso(action.finished),
        "resources": [{"id": rid, "type": kind} for rid, kind in action.resources],
        "error": error,
    }


def image_json(state: HcloudState, image: Image) -> dict[str, Any]:
    created_from = (
        {"id": image.created_from[0], "name": image.created_from[1]} if image.created_from else None
    )
    return {
        "id": image.id,
        "type": image.type,
        "status": image.status,
        "name": image.name,
        "description": image.description,
        "image_size": image.image_size,
        "disk_size": image.disk_size,
        "created": state.iso(image.created),
        "created_from": created_from,
        "bound_to": None,
        "os_flavor": image.os_flavor,
        "os_version": image.os_version,
        "rapid_deploy": image.type == "system",
        "protection": {"delete": image.protection_delete},
        "deprecated": None,
        "deleted": None,
        "labels": dict(image.labels),
        "architecture": image.architecture,
    }


def effective_firewalls(state: HcloudState, server: Server) -> list[int]:
    """Firewalls applied to a server directly or through a matching label selector."""
    ids: list[int] = []
    for fw in state.firewalls.values():
        for kind, target in fw.applied_to:
            hit = target == server.id if kind == "server" else _matches(str(target), server)
            if hit and fw.id not in ids:
                ids.append(fw.id)
    return ids


def _matches(selector: str, server: Server) -> bool:
    try:
        return match_selector(selector, server.labels)
    except LabelError:
        return False


def _firewall_status(state: HcloudState, firewall_id: int, server_id: int) -> str:
    # "A Firewall is applied to a resource once the related Action with command
    # apply_firewall successfully finished" (POST /firewalls/{id}/actions/apply_to_resources).
    for action in state.actions.values():
        if (
            action.status == "running"
            and action.command == "apply_firewall"
            and (firewall_id, "firewall") in action.resources
            and (server_id, "server") in action.resources
        ):
            return "pending"
    return "applied"


def placement_group_json(state: HcloudState, group: PlacementGroup) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "labels": dict(group.labels),
        "type": group.type,
        "created": state.iso(group.created),
        "servers": [s.id for s in state.servers_in_placement_group(group.id)],
    }


def server_json(state: HcloudState, server: Server) -> dict[str, Any]:
    ipv4 = None
    if server.public_ipv4 is not None:
        ipv4 = {
            "id": server.public_ipv4_id,
            "ip": server.public_ipv4,
            "blocked": False,
            "dns_ptr": f"static.{server.public_ipv4}.clients.your-server.de",
        }
    ipv6: dict[str, Any] | None = None
    if server.public_ipv6 is not None:
        ipv6 = {
            "id": server.public_ipv6_id,
            "ip": server.public_ipv6,
            "blocked": False,
            "dns_ptr": [],
        }
    group = state.placement_groups.get(server.placement_group_id or 0)
    lbs = [lb.id for lb in state.load_balancers.values() if server in lb_target_servers(state, lb)]
    return {
        "id": server.id,
        "name": server.name,
        "status": server.status,
        "created": state.iso(server.created),
        "public_net": {
            "ipv4": ipv4,
            "ipv6": ipv6,
            "floating_ips": [],
            "firewalls": [
                {"id": fid, "status": _firewall_status(state, fid, server.id)}
                for fid in effective_firewalls(state, server)
            ],
        },
        "private_net": [
            {
                "network": net_id,
                "ip": ip,
                "alias_ips": [],
                "mac_address": f"86:00:00:{server.id >> 16 & 0xFF:02x}:"
                f"{server.id >> 8 & 0xFF:02x}:{server.id & 0xFF:02x}",
            }
            for net_id, ip in server.private_net.items()
        ],
        "server_type": server.server_type.to_json(),
        "datacenter": datacenter_json(server.location),
        "location": server.location.to_json(),
        "image": image_json(state, server.image) if server.image else None,
        "iso": None,
        "rescue_enabled": server.rescue_enabled,
        "locked": server.locked,
        "backup_window": None,
        "outgoing_traffic": 0,
        "ingoing_traffic": 0,
        "included_traffic": 20 * 1024**4,
        "protection": {"delete": server.protection_delete, "rebuild": server.protection_rebuild},
        "labels": dict(server.labels),
        "volumes": [v.id for v in state.volumes_of(server.id)],
        "load_balancers": lbs,
        "primary_disk_size": server.server_type.disk,
        "placement_group": placement_group_json(state, group) if group else None,
    }


def network_json(state: HcloudState, network: Network) -> dict[str, Any]:
    return {
        "id": network.id,
        "name": network.name,
        "ip_range": network.ip_range,
        "subnets": [
            {
                "type": s.type,
                "ip_range": s.ip_range,
                "network_zone": s.network_zone,
                "gateway": s.gateway,
                "vswitch_id": s.vswitch_id,
            }
            for s in network.subnets
        ],
        "routes": [dict(r) for r in network.routes],
        "servers": [s.id for s in state.servers_in_network(network.id)],
        "load_balancers": [lb.id for lb in state.lbs_in_network(network.id)],
        "protection": {"delete": network.protection_delete},
        "labels": dict(network.labels),
        "created": state.iso(network.created),
        "expose_routes_to_vswitch": network.expose_routes_to_vswitch,
    }


def firewall_json(state: HcloudState, fw: Firewall) -> dict[str, Any]:
    applied: list[dict[str, Any]] = []
    for kind, target in fw.applied_to:
        if kind == "server":
            applied.append({"type": "server", "server": {"id": target}})
            continue
        matched = [s for s in state.servers.values() if _matches(str(target), s)]
        applied.append(
            {
                "type": "label_selector",
                "label_selector": {"selector": target},
                "applied_to_resources": [
                    {"type": "server", "server": {"id": s.id}} for s in matched
                ],
            }
        )
    return {
        "id": fw.id,
        "name": fw.name,
        "labels": dict(fw.labels),
        "created": state.iso(fw.created),
        "rules": [dict(rule) for rule in fw.rules],
        "applied_to": applied,
    }


def lb_target_servers(state: HcloudState, lb: LoadBalancer) -> list[Server]:
    servers: list[Server] = []
    for target in lb.targets:
        if target.type == "server" and target.server_id in state.servers:
            servers.append(state.servers[target.server_id])
        elif target.type == "label_selector" and target.selector is not None:
            servers += [s for s in state.servers.values() if _matches(target.selector, s)]
    unique: dict[int, Server] = {s.id: s for s in servers}
    return list(unique.values())


def _health(lb: LoadBalancer, server_id: int) -> list[dict[str, Any]]:
    return [
        {
            "listen_port": svc.listen_port,
            "status": lb.health.get((server_id, svc.listen_port), "unknown"),
        }
        for svc in lb.services
    ]


def lb_json(state: HcloudState, lb: LoadBalancer) -> dict[str, Any]:
    targets: list[dict[str, Any]] = []
    for target in lb.targets:
        if target.type == "server":
            targets.append(
                {
                    "type": "server",
                    "server": {"id": target.server_id},
                    "use_private_ip": target.use_private_ip,
                    "health_status": _health(lb, target.server_id or 0),
                }
            )
        elif target.type == "ip":
            targets.append({"type": "ip", "ip": {"ip": target.ip}, "health_status": []})
        else:
            matched = [s for s in state.servers.values() if _matches(target.selector or "", s)]
            targets.append(
                {
                    "type": "label_selector",
                    "label_selector": {"selector": target.selector},
                    "use_private_ip": target.use_private_ip,
                    "targets": [
                        {
                            "type": "server",
                            "server": {"id": s.id},
                            "use_private_ip": target.use_private_ip,
                            "health_status": _health(lb, s.id),
                        }
                        for s in matched
                    ],
                }
            )
    return {
        "id": lb.id,
        "name": lb.name,
        "public_net": {
            "enabled": lb.public_interface,
            "ipv4": {"ip": lb.public_ipv4, "dns_ptr": f"static.{lb.public_ipv4}.your-server.de"},
            "ipv6": {"ip": lb.public_ipv6, "dns_ptr": None},
        },
        "private_net": [{"network": nid, "ip": ip} for nid, ip in lb.private_net.items()],
        "location": lb.location.to_json(),
        "load_balancer_type": dict(lb.lb_type),
        "protection": {"delete": lb.protection_delete},
        "labels": dict(lb.labels),
        "created": state.iso(lb.created),
        "services": [
            {
                "protocol": svc.protocol,
                "listen_port": svc.listen_port,
                "destination_port": svc.destination_port,
                "proxyprotocol": svc.proxyprotocol,
                "health_check": svc.health_check,
                **({"http": svc.http} if svc.http is not None else {}),
            }
            for svc in lb.services
        ],
        "targets": targets,
        "algorithm": {"type": lb.algorithm},
        "outgoing_traffic": 0,
        "ingoing_traffic": 0,
        "included_traffic": int(lb.lb_type["prices"][0]["included_traffic"]),
    }


def ssh_key_json(state: HcloudState, key: SSHKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "fingerprint": key.fingerprint,
        "public_key": key.public_key,
        "labels": dict(key.labels),
        "created": state.iso(key.created),
    }


def primary_ip_json(state: HcloudState, pip: PrimaryIP) -> dict[str, Any]:
    return {
        "id": pip.id,
        "name": pip.name,
        "labels": dict(pip.labels),
        "created": state.iso(pip.created),
        "blocked": False,
        "datacenter": datacenter_json(pip.location),
        "location": pip.location.to_json(),
        "ip": pip.ip,
        "dns_ptr": [],
        "protection": {"delete": pip.protection_delete},
        "type": pip.type,
        "auto_delete": pip.auto_delete,
        "assignee_type": "server",
        "assignee_id": pip.assignee_id,
    }


def volume_json(state: HcloudState, volume: Volume) -> dict[str, Any]:
    return {
        "id": volume.id,
        "created": state.iso(volume.created),
        "name": volume.name,
        "server": volume.server_id,
        "location": volume.location.to_json(),
        "size": volume.size,
        # The device name the API reports (openapi.json example: scsi-0HC_Volume_4711).
        "linux_device": f"/dev/disk/by-id/scsi-0HC_Volume_{volume.id}",
        "protection": {"delete": volume.protection_delete},
        "labels": dict(volume.labels),
        "status": volume.status,
        "format": volume.format,
    }
