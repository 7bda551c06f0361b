"""``hk8s status``: the cluster as it is, on one screen, read-only, also when parts are down.

Each source is asked on its own and its failure becomes a line in ``problems`` instead of
ending the command: the Hetzner API (servers, load balancer; without it there is nothing to
show), each node's Talos API (version; a powered-off or booting node says so), etcd membership
from the first control plane that answers, the Kubernetes API (nodes, kubelet versions,
readiness, and the addons' deployed chart versions read from Helm's release records), and the
plan ``create`` would carry out. Talos and Kubernetes are asked with clients that try once
(``retry_attempts=1``), so a node that is down costs one timeout, not a backoff schedule.
The addons' chart versions are read as ``plan`` and ``doctor`` read them
(``read_deployed_charts``: Helm's release Secrets, ``hk8s.providers.k8s._releases``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from hk8s.controller._addons import enabled_addons
from hk8s.controller._addons_plan import read_deployed_charts
from hk8s.controller._nodes import observe_endpoint, pair_nodes
from hk8s.controller._secrets import load_cluster_secrets
from hk8s.controller._servers import desired_servers, server_selector
from hk8s.errors import Hk8sError
from hk8s.pki import generate_admin_kubeconfig
from hk8s.providers.k8s import render_addon_manifests

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from pathlib import Path

    from hk8s.config import ClusterConfig
    from hk8s.controller._plan import Plan
    from hk8s.model.resources import Server
    from hk8s.pki import SecretsBundle
    from hk8s.providers.hcloud import HcloudPort
    from hk8s.providers.k8s import KubernetesAPI
    from hk8s.providers.talos import TalosNodeAPI

__all__ = ["ClusterStatus", "ServerStatus", "StatusPorts", "observe_status"]


@dataclass
class ServerStatus:
    name: str
    pool: str
    role: str
    server_type: str
    location: str
    hetzner: str  # the server's Hetzner status: running, off, initializing, ...
    public_ipv4: str | None
    private_ipv4: str | None
    in_config: bool = True  # False: ``create`` would remove it
    talos: str | None = None  # Talos version tag
    talos_error: str | None = None
    kubernetes: str | None = None  # kubelet version
    ready: bool | None = None  # None: not known (API down, node not registered)
    etcd_member: bool | None = None  # control planes only; None: not known

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ClusterStatus:
    cluster: str
    servers: list[ServerStatus] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the config, not on Hetzner
    endpoint: str | None = None
    load_balancer: dict[str, Any] | None = None
    etcd_members: list[str] | None = None
    addons: dict[str, dict[str, str | None]] = field(default_factory=dict)
    plan: Plan | None = None
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "endpoint": self.endpoint,
            "load_balancer": self.load_balancer,
            "servers": [s.to_dict() for s in self.servers],
            "missing": self.missing,
            "etcd_members": self.etcd_members,
            "addons": self.addons,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "problems": self.problems,
        }


@dataclass
class StatusPorts:
    """``talos(bundle)``: a Talos client that tries once; ``kube(kubeconfig)`` likewise;
    ``plan()``: what ``create`` would change (``hk8s plan``'s reconciler)."""

    hcloud: HcloudPort
    talos: Callable[[SecretsBundle], TalosNodeAPI]
    kube: Callable[[Mapping[str, Any]], KubernetesAPI]
    plan: Callable[[], Awaitable[Plan]]


def _server_status(server: Server, in_config: bool) -> ServerStatus:
    labels = server.labels
    private = next((p.ip for p in server.private_ips), None)
    return ServerStatus(
        name=server.name,
        pool=labels.get("pool", "?"),
        role=labels.get("role", "?"),
        server_type=server.server_type,
        location=server.location,
        hetzner=server.status,
        public_ipv4=server.public_ipv4,
        private_ipv4=private,
        in_config=in_config,
    )


async def observe_status(
    config: ClusterConfig, ports: StatusPorts, secrets_path: Path
) -> ClusterStatus:
    """Everything ``hk8s status`` shows; never raises for a part of the cluster that is down."""
    status = ClusterStatus(config.name)
    servers = await ports.hcloud.list_servers(server_selector(config.name))
    try:
        status.plan = await ports.plan()
    except Hk8sError as exc:
        status.problems.append(f"plan: {exc.message}")
    if not servers:
        status.problems.append(f"cluster {config.name} has no servers (create it: hk8s create)")
        return status
    desired = desired_servers(config, cluster_id="")
    wanted = {d.name for d in desired}
    status.servers = [_server_status(s, s.name in wanted) for s in servers]
    status.servers.sort(key=lambda s: (s.role != "control-plane", s.pool, _index(s.name)))
    status.missing = sorted(wanted - {s.name for s in servers}, key=_index)
    nodes = pair_nodes(desired, servers)
    try:
        endpoint = await observe_endpoint(ports.hcloud, config, nodes)
        status.endpoint = endpoint.url
    except Hk8sError as exc:
        status.problems.append(f"endpoint: {exc.message}")
        endpoint = None
    await _load_balancer(config, ports.hcloud, status)
    try:
        bundle = load_cluster_secrets(secrets_path, servers, config.name)
    except Hk8sError as exc:
        status.problems.append(f"Talos and Kubernetes not asked: {exc.message}")
        return status
    talos = ports.talos(bundle)
    await _talos(talos, status)
    if endpoint is not None:
        kubeconfig = generate_admin_kubeconfig(config.name, bundle.k8s_ca, endpoint.url)
        kube = ports.kube(yaml.safe_load(kubeconfig))
        try:
            await _kubernetes(kube, config, status)
        finally:
            await kube.close()
    return status


def _index(name: str) -> tuple[str, int]:
    head, _, tail = name.rpartition("-")
    return (head, int(tail)) if tail.isdigit() else (name, 0)


async def _load_balancer(config: ClusterConfig, hcloud: HcloudPort, status: ClusterStatus) -> None:
    if not config.load_balancer.enabled:
        return
    found = await hcloud.list_load_balancers(name=f"{config.name}-api")
    if not found:
        status.problems.append(f"load balancer {config.name}-api does not exist")
        return
    lb = found[0]
    status.load_balancer = {
        "name": lb.name,
        "type": lb.type,
        "location": lb.location,
        "public_ipv4": lb.public_ipv4,
        "targets": [t.label_selector or t.server_id for t in lb.targets],
    }


async def _talos(talos: TalosNodeAPI, status: ClusterStatus) -> None:
    async def version(server: ServerStatus) -> None:
        if server.hetzner != "running" or not server.public_ipv4:
            server.talos_error = f"server is {server.hetzner}"
            return
        try:
            server.talos = (await talos.version(server.public_ipv4)).tag
        except Hk8sError as exc:
            server.talos_error = exc.message

    await asyncio.gather(*(version(s) for s in status.servers))
    for server in status.servers:
        if server.talos_error:
            status.problems.append(f"{server.name}: Talos API: {server.talos_error}")
    control_planes = [s for s in status.servers if s.role == "control-plane" and s.talos]
    for server in control_planes:
        assert server.public_ipv4 is not None
        try:
            members = await talos.etcd_members(server.public_ipv4)
        except Hk8sError:
            continue
        status.etcd_members = sorted(m.hostname for m in members)
        break
    if status.etcd_members is None:
        status.problems.append("etcd: no control plane answered for its members")
        return
    for server in status.servers:
        if server.role == "control-plane":
            server.etcd_member = server.name in status.etcd_members


async def _kubernetes(kube: KubernetesAPI, config: ClusterConfig, status: ClusterStatus) -> None:
    try:
        nodes = {n.name: n for n in await kube.list_nodes(retry=False)}
        deployed = await read_deployed_charts(kube)
    except Hk8sError as exc:
        status.problems.append(f"Kubernetes API at {status.endpoint}: {exc.message}")
        return
    for server in status.servers:
        node = nodes.get(server.name)
        if node is None:
            status.problems.append(f"{server.name}: not a Kubernetes node (yet)")
            continue
        server.kubernetes, server.ready = node.kubelet_version, node.ready
        if not node.ready:
            status.problems.append(f"{server.name}: Kubernetes node not Ready")
    for name in enabled_addons(config):
        install = render_addon_manifests(config, name)
        running = deployed.get(install.release)
        status.addons[name] = {"chart": install.chart, "wanted": install.version,
                               "deployed": running}  # fmt: skip
        if running is None:
            status.problems.append(f"addon {name}: not installed")
