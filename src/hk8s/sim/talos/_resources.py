"""The COSI resources a simulated node publishes (read-only, like ``talosctl get``).

Types and namespaces are Talos' (``pkg/machinery/resources``); specs are sent as YAML in
``spec.yaml_spec``. ``MachineConfigs`` is sensitive: Talos' access filter
(``internal/app/resources/access.go``) hides it from callers without ``os:admin``, and
maintenance-mode callers never have that role.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from google.protobuf import timestamp_pb2

from hk8s.talosapi.cosi import resource_pb2
from hk8s.talosapi.machine import machine_pb2

if TYPE_CHECKING:
    from hk8s.sim.talos._node import TalosNode

__all__ = ["SENSITIVE_TYPES", "NodeResource", "node_resources"]

SENSITIVE_TYPES = {"MachineConfigs.config.talos.dev"}
_STAGES: dict[int, str] = {
    int(v): k.lower() for k, v in machine_pb2.MachineStatusEvent.MachineStage.items()
}


@dataclass(frozen=True)
class NodeResource:
    namespace: str
    type: str
    id: str
    spec: Any

    def to_proto(self, version: int = 1) -> resource_pb2.Resource:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromSeconds(int(time.time()))
        meta = resource_pb2.Metadata(
            namespace=self.namespace,
            type=self.type,
            id=self.id,
            version=str(version),
            owner="",
            phase="running",
            created=stamp,
            updated=stamp,
        )
        text = (
            self.spec if isinstance(self.spec, str) else yaml.safe_dump(self.spec, sort_keys=True)
        )
        return resource_pb2.Resource(metadata=meta, spec=resource_pb2.Spec(yaml_spec=text))


def node_resources(node: TalosNode) -> list[NodeResource]:
    """Everything the node publishes right now."""
    ready = node.phase in {"running", "maintenance"}
    stage = _STAGES.get(node.stage, "unknown")
    out = [
        NodeResource("runtime", "MachineStatuses.runtime.talos.dev", "machine",
                     {"stage": stage, "status": {"ready": ready, "unmetConditions": []}}),
        NodeResource("network", "HostnameStatuses.net.talos.dev", "hostname",
                     {"hostname": node.hostname, "domainname": ""}),
        NodeResource("network", "NodeAddresses.net.talos.dev", "current",
                     {"addresses": [f"{ip}/32" for ip in node.addresses]}),
        NodeResource("block", "Disks.block.talos.dev", "sda",
                     {"size": node.disk_size, "model": "QEMU HARDDISK", "transport": "virtio",
                      "rotational": False, "readonly": False, "dev_path": "/dev/sda"}),
        NodeResource("runtime", "Versions.runtime.talos.dev", "version",
                     {"version": node.disk.version}),
    ]  # fmt: skip
    for name, (state, healthy, _) in sorted(node.services.items()):
        spec = {"running": state == "Running", "healthy": bool(healthy), "unknown": healthy is None}
        out.append(NodeResource("runtime", "Services.v1alpha1.talos.dev", name, spec))
    config = node.config
    if config is None:
        return out
    out.append(NodeResource("config", "MachineTypes.config.talos.dev", "machine-type", config.type))
    out.append(
        NodeResource("config", "MachineConfigs.config.talos.dev", "v1alpha1", config.raw.decode())
    )
    cluster = node.cluster
    if cluster is None:
        return out
    member = cluster.member_for(node.ip)
    if member is not None:
        out.append(
            NodeResource(
                "etcd", "EtcdMembers.etcd.talos.dev", "local", {"memberID": f"{member.id:x}"}
            )
        )
    for peer in node.fleet.running_nodes(cluster):
        if peer.config is None:
            continue
        member_spec: dict[str, Any] = {
            "nodeId": str(peer.server_id),
            "addresses": peer.addresses,
            "hostname": peer.hostname,
            "machineType": peer.config.type,
            "operatingSystem": f"Talos ({peer.disk.version})",
        }
        out.append(NodeResource("cluster", "Members.cluster.talos.dev", peer.hostname, member_spec))
    return out
