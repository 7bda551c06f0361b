"""Each cluster's Kubernetes API in the world, and its nodes' kubelets.

The API starts once etcd is bootstrapped (Talos' hook ``kube_api``), with the cluster's
Kubernetes CA from a control plane's machine config, listening on the endpoint's host;
``KubeFrontends`` exposes it at ``<cp-ip>:6443`` of every control plane that serves it, which
is what the Hetzner load balancer health-checks and routes to. Kubelets register their Node
with the labels and taints of the machine config; the cloud controller's part (the server
behind a node, deleting the Node of a deleted server) is played here too.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hk8s.sim._loadbalancer import KubeFrontends
from hk8s.sim.world._talos_backup import TALOS_BACKUP_REPOSITORY, TalosBackup

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Sequence

    from hk8s.model import Clock
    from hk8s.model.etcd_snapshot import KeyValue
    from hk8s.sim.hcloud import HcloudState
    from hk8s.sim.kube import CloudInstance, KubeAPI, TalosAccess
    from hk8s.sim.talos import KubeletInfo, TalosCluster, TalosFleet
    from hk8s.sim.talos._node import TalosNode

__all__ = ["Kubernetes"]

_CP_TAINT = "node-role.kubernetes.io/control-plane"
SYNC_EVERY = 2.0  # simulated seconds between load-balancer/kube-apiserver reconciliations


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _restore(kube: KubeAPI, keys: Sequence[KeyValue]) -> None:
    """Refill the API's objects from a restored etcd keyspace (values are the objects' JSON,
    ``Store.keyspace``)."""
    objects = []
    for kv in keys:
        obj = json.loads(kv.value)
        objects.append((kube.cluster.rt(obj["apiVersion"], obj["kind"]), obj))
    kube.store.restore(objects)


class Kubernetes:
    def __init__(
        self,
        state: HcloudState,
        fleet: TalosFleet,
        clock: Clock,
        *,
        failing_releases: dict[str, str],
        utcnow: Callable[[], dt.datetime],
    ) -> None:
        self.state = state
        self.utcnow = utcnow
        self.fleet = fleet
        self.clock = clock
        self.failing_releases = failing_releases
        self.kubes: dict[str, KubeAPI] = {}
        self._frontends: dict[str, KubeFrontends] = {}
        # server id -> (cluster, Node name): what the cloud controller deletes with the server.
        self._names: dict[int, tuple[str, str]] = {}

    async def api(self, cluster: TalosCluster, up: bool) -> None:
        kube = self.kubes.get(cluster.key)
        if up and kube is None:
            kube = await self._new(cluster)
        if kube is not None:
            kube.available = up
        await self.sync(cluster)

    async def kubelet(self, cluster: TalosCluster, info: KubeletInfo, up: bool) -> None:
        kube = self.kubes.get(cluster.key)
        if kube is None:
            return
        self._names[info.server_id] = (cluster.key, info.name)
        if up:
            kube.register_node(
                info.name,
                info.internal_ip,
                info.external_ip,
                role="control-plane" if info.control_plane else "worker",
                labels=info.labels,
                taints=info.taints,
                kubelet_version=info.kubernetes_version,
                os_image=f"Talos ({info.talos_version})",
                # The node's taints already say whether control planes take workloads.
                control_plane_taint=any(t["key"] == _CP_TAINT for t in info.taints),
            )
        elif info.name in kube.cluster.nodes:
            kube.set_node_ready(info.name, False)

    async def server_deleted(self, server_id: int) -> None:
        """The CCM deletes the Node of a server that no longer exists."""
        cluster_key, name = self._names.pop(server_id, ("", ""))
        kube = self.kubes.get(cluster_key)
        if kube is not None:
            kube.remove_node(name)

    async def _new(self, cluster: TalosCluster) -> KubeAPI:
        from hk8s.sim.kube import KubeAPI

        config = next(
            n.config for n in self.fleet.running_nodes(cluster)
            if n.config and n.config.k8s_ca_key is not None
        )  # fmt: skip
        assert config.k8s_ca_crt is not None and config.k8s_ca_key is not None
        kube = KubeAPI(
            config.k8s_ca_crt,
            config.k8s_ca_key,
            self.clock,
            kubernetes_version=config.kubernetes_version or "1.34.1",
            cloud_instance=self._cloud_instance,
        )
        kube.faults.failing_releases.update(self.failing_releases)
        kube.cluster.talos_access = lambda: self._talos_access(cluster)
        kube.cluster.programs[TALOS_BACKUP_REPOSITORY] = TalosBackup(
            lambda host: self._resolve(cluster, host), self.utcnow
        )
        host = urlsplit(cluster.endpoint).hostname or ""
        if not _is_ip(host):  # a DNS name: nothing resolves it here, serve the first CP
            host = next(n.ip for n in self.fleet.running_nodes(cluster) if n.config is config)
        served = await kube.serve(host, 0)
        self.kubes[cluster.key] = kube
        cluster.keyspace = kube.store.keyspace
        cluster.wipe_keyspace = kube.store.wipe
        cluster.restore_keyspace = lambda keys: _restore(kube, keys)
        self._frontends[cluster.key] = KubeFrontends((host, served.port))
        return kube

    def _control_planes(self, cluster: TalosCluster) -> list[TalosNode]:
        return [
            n for n in self.fleet.running_nodes(cluster)
            if n.config is not None and n.config.control_plane
        ]  # fmt: skip

    def _talos_access(self, cluster: TalosCluster) -> TalosAccess | None:
        """kubernetesTalosAPIAccess as the running control planes' configs grant it."""
        from hk8s.sim.kube import TalosAccess

        for node in self._control_planes(cluster):
            config = node.config
            if config is not None and config.talos_api_access and config.os_ca_key:
                roles, namespaces = config.talos_api_access
                return TalosAccess(roles, namespaces, config.os_ca_crt, config.os_ca_key)
        return None

    def _resolve(self, cluster: TalosCluster, host: str) -> list[str]:
        """Names inside the cluster: ``talos.default`` is Talos' Service in front of the
        control planes' apid (only while the feature is on); IPs are themselves."""
        if _is_ip(host):
            return [host]
        if host.split(":")[0] in ("talos.default", "talos.default.svc"):
            if self._talos_access(cluster) is None:
                return []
            return [n.ip for n in self._control_planes(cluster)]
        return []

    def _cloud_instance(self, name: str) -> CloudInstance | None:
        from hk8s.sim.kube import CloudInstance

        servers = self.state.servers
        server = next((s for s in servers.values() if s.name == name), None)
        node = self.fleet.node_by_address(name)
        if server is None and node is not None:
            server = servers.get(node.server_id)
        if server is None:
            return None
        return CloudInstance(server.id, server.server_type.name, server.location.name)

    async def sync(self, cluster: TalosCluster) -> None:
        frontends = self._frontends.get(cluster.key)
        if frontends is not None:
            nodes = self.fleet.running_nodes(cluster)
            await frontends.sync({n.ip for n in nodes if n.serves_kube_api})

    async def run(self) -> None:
        """Keep every cluster's :6443 frontends in step with its control planes."""
        while True:
            for cluster in list(self.fleet.clusters.values()):
                with contextlib.suppress(Exception):
                    await self.sync(cluster)
            await self.clock.sleep(SYNC_EVERY)

    async def forget(self, cluster: TalosCluster) -> None:
        """The cluster's machines are all gone: its API, objects and frontends go too."""
        frontends = self._frontends.pop(cluster.key, None)
        if frontends is not None:
            await frontends.close()
        kube = self.kubes.pop(cluster.key, None)
        if kube is not None:
            await kube.stop()
        self._names = {k: v for k, v in self._names.items() if v[0] != cluster.key}

    async def close(self) -> None:
        for frontends in self._frontends.values():
            await frontends.close()
        for kube in self.kubes.values():
            await kube.stop()
