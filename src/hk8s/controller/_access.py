"""How to reach an existing cluster: its secrets, its nodes as they are, its endpoint.

``hk8s kubeconfig``, ``talosconfig`` and ``health`` work from the Hetzner API (observed IPs)
plus the secrets bundle, so they still work when the files ``create`` wrote are lost: a client
certificate is issued locally from the bundle's CAs, never fetched from a node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hk8s.controller._nodes import observe_endpoint, pair_nodes
from hk8s.controller._secrets import load_cluster_secrets
from hk8s.controller._servers import desired_servers, server_selector
from hk8s.errors import NotFoundError
from hk8s.pki import generate_admin_kubeconfig, generate_talosconfig

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from hk8s.config import ClusterConfig
    from hk8s.controller._nodes import ClusterEndpoint, Node
    from hk8s.model.resources import Server
    from hk8s.pki import SecretsBundle, Talosconfig
    from hk8s.providers.hcloud import HcloudPort

__all__ = ["ClusterAccess", "observe_access"]


@dataclass(frozen=True)
class ClusterAccess:
    config: ClusterConfig
    bundle: SecretsBundle
    nodes: list[Node]
    endpoint: ClusterEndpoint

    @property
    def control_planes(self) -> list[Node]:
        return [n for n in self.nodes if n.desired.control_plane]

    def kubeconfig(self) -> str:
        """An admin kubeconfig (client cert from the bundle's Kubernetes CA)."""
        return generate_admin_kubeconfig(self.config.name, self.bundle.k8s_ca, self.endpoint.url)

    def talosconfig(self) -> Talosconfig:
        """A talosconfig whose endpoints are the control planes' public IPs."""
        return generate_talosconfig(
            self.config.name,
            self.bundle.os_ca,
            endpoints=[n.address for n in self.control_planes],
        )


async def observe_access(
    hcloud: HcloudPort,
    config: ClusterConfig,
    secrets_path: Path,
    *,
    servers: Sequence[Server] | None = None,
) -> ClusterAccess:
    """The cluster as it exists; ``NotFoundError`` if it has no servers. ``servers``: the
    cluster's servers, when the caller has just listed them (one list call less)."""
    if servers is None:
        servers = await hcloud.list_servers(server_selector(config.name))
    if not servers:
        raise NotFoundError(
            f"cluster {config.name} has no servers",
            hint="create it with `hk8s create -f <config>`",
        )
    bundle = load_cluster_secrets(secrets_path, servers, config.name)
    nodes = pair_nodes(desired_servers(config, cluster_id=bundle.cluster_id), servers)
    if not any(n.desired.control_plane for n in nodes):
        raise NotFoundError(f"cluster {config.name} has no control plane server")
    endpoint = await observe_endpoint(hcloud, config, nodes)
    return ClusterAccess(config, bundle, nodes, endpoint)
