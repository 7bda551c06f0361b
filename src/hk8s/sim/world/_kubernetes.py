"""Each cluster's Kubernetes in the world: the real control plane, and its machines' side.

The control plane (``hk8s.sim.k8s.ControlPlane``: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler) starts once etcd is bootstrapped (Talos' hook ``kube_api``), with the PKI of a
control plane's machine config, listening on an ephemeral port of the endpoint's host; its
serving certificate names the endpoint host and every control plane's addresses, reissued as
control planes come and go. ``KubeFrontends`` exposes it at ``<cp-ip>:6443`` of every control
plane that serves it, which is what the Hetzner load balancer health-checks and routes to.
``hk8s.sim.machines`` plays the machines: kubelets register their Node with the labels and
taints of the machine config, the Helm Job's effect, the cloud controller's node part, Talos'
ServiceAccount controller (as the control planes' ``kubernetesTalosAPIAccess`` grants it),
talos-backup's program in its pods (``_talos_backup``, reaching ``talos.default``: the control
planes' apid), and (``CloudControllers``) the addons' cloud side once their pods run: the
CCM's load balancers, the CSI driver's volumes, metrics-server. The API server reaches the
simulated pods through its egress selector (``ClusterNetwork``, one per cluster): pods have
pod-CIDR addresses, which kube-apiserver accepts in EndpointSlices, routed to where the pod
really listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hk8s.pki import CertAndKey, KeyAlgorithm, create_ca
from hk8s.sim._loadbalancer import KubeFrontends
from hk8s.sim.k8s import ClusterNetwork, ClusterSecrets, ControlPlane, find_binaries
from hk8s.sim.machines import (
    CloudControllers,
    CloudInstance,
    ClusterMachines,
    HelmFaults,
    KubeletNode,
    TalosAccess,
    Timings,
)
from hk8s.sim.world._talos_backup import TALOS_BACKUP_REPOSITORY, TalosBackup

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from hk8s.model import Clock
    from hk8s.model.etcd_snapshot import KeyValue
    from hk8s.sim.hcloud import HcloudState
    from hk8s.sim.k8s import KubeClient
    from hk8s.sim.talos import KubeletInfo, TalosCluster, TalosFleet
    from hk8s.sim.talos._config import MachineConfig
    from hk8s.sim.talos._node import TalosNode

__all__ = ["ClusterKube", "Kubernetes"]

log = logging.getLogger(__name__)

SYNC_EVERY = 2.0  # simulated seconds between load-balancer/kube-apiserver reconciliations
# The controllers' client rate limits (20 and 50 requests/s by default) would make a simulated
# minute of a 100-node cluster's rollout last many wall seconds: the world runs faster than
# real time, so its controllers may talk faster too. For the same reason the node lifecycle
# controller looks at the nodes every wall second, not every 5 (--node-monitor-period): it lifts
# the not-ready taints on its next pass after a node is Ready again: a wait every upgrade and
# reboot pays per node, up to 5 real seconds on a real cluster, which at 5 wall seconds would
# be up to 5 x speed simulated seconds here.
EXTRA_ARGS = {
    name: ["--kube-api-qps=300", "--kube-api-burst=600"]
    for name in ("kube-controller-manager", "kube-scheduler")
}
EXTRA_ARGS["kube-controller-manager"].append("--node-monitor-period=1s")
# What the API server's audit log keeps (Talos enables one by default): evictions and Node
# updates, so a test can see what hk8s asked the real server to do (cordons, drains).
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Request
  verbs: [create]
  resources: [{group: "", resources: [pods/eviction]}]
- level: Request
  verbs: [patch, update]
  resources: [{group: "", resources: [nodes]}]
- level: None
"""
LEASE_WALL = 5.0  # wall seconds between Lease renewals (kube-controller-manager's grace: 40)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass
class ClusterKube:
    """One cluster's control plane, its machines and its :6443 frontends."""

    plane: ControlPlane
    machines: ClusterMachines
    frontends: KubeFrontends
    network: ClusterNetwork | None = None
    folder: Path | None = field(default=None, repr=False)  # the egress socket and config

    @property
    def api(self) -> KubeClient:
        """A client with the machines' identity (system:masters), for tests and tools."""
        return self.machines.api


def _secrets(config: MachineConfig, endpoint: str) -> ClusterSecrets:
    assert config.k8s_ca_crt is not None and config.k8s_ca_key is not None
    if config.aggregator_ca_crt and config.aggregator_ca_key:
        aggregator = CertAndKey.from_pem(config.aggregator_ca_crt, config.aggregator_ca_key)
    else:  # a config without one (hand-written): Talos would refuse; a fresh CA serves
        aggregator = create_ca(algorithm=KeyAlgorithm.ECDSA_P256, now=dt.datetime.now(dt.UTC))
    service_account = config.service_account_key
    if service_account is None:
        from hk8s.pki import generate_secrets

        service_account = generate_secrets().service_account_key_pem
    return ClusterSecrets(
        CertAndKey.from_pem(config.k8s_ca_crt, config.k8s_ca_key),
        aggregator,
        service_account,
        issuer=endpoint,
        service_cidr=config.service_subnet,
        cluster_cidr=config.pod_subnet,
        secretbox=config.secretbox,
    )


class Kubernetes:
    def __init__(
        self,
        state: HcloudState,
        fleet: TalosFleet,
        clock: Clock,
        *,
        failing_releases: dict[str, str],
        speed: float = 1.0,
        hcloud_endpoint: Callable[[], str] | None = None,
        utcnow: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.state = state
        self.utcnow = utcnow
        self.fleet = fleet
        self.clock = clock
        self.speed = speed
        # Where the addons' cloud side reaches the Hetzner API (None: no cloud side).
        self.hcloud_endpoint = hcloud_endpoint
        self.faults = HelmFaults(failing_releases=dict(failing_releases))
        self.kubes: dict[str, ClusterKube] = {}
        self._starting: dict[str, asyncio.Task[ClusterKube | None]] = {}
        # server id -> (cluster, Node name): what the cloud controller deletes with the server.
        self._names: dict[int, tuple[str, str]] = {}
        self._closed = False

    async def api(self, cluster: TalosCluster, up: bool) -> None:
        if up and cluster.key not in self._starting and not self._closed:
            self._starting[cluster.key] = asyncio.ensure_future(self._new(cluster))
        await self._ready(cluster)
        await self.sync(cluster)

    async def _ready(self, cluster: TalosCluster) -> ClusterKube | None:
        task = self._starting.get(cluster.key)
        if task is None:
            return None
        return await asyncio.shield(task)

    async def kubelet(self, cluster: TalosCluster, info: KubeletInfo, up: bool) -> None:
        kube = await self._ready(cluster)
        if kube is None:
            return
        self._names[info.server_id] = (cluster.key, info.name)
        kubelets = kube.machines.kubelets
        if not up:
            await kubelets.stop(info.name)
            return
        await kubelets.register(
            KubeletNode(
                name=info.name,
                internal_ip=info.internal_ip,
                external_ip=info.external_ip,
                control_plane=info.control_plane,
                labels=dict(info.labels),
                taints=[dict(t) for t in info.taints],
                kubelet_version=info.kubernetes_version or self._version(kube),
                os_image=f"Talos ({info.talos_version})",
                arch=info.arch,
            )
        )

    def _version(self, kube: ClusterKube) -> str:
        return kube.plane.binaries.release.lstrip("v")

    async def server_deleted(self, server_id: int) -> None:
        """The CCM deletes the Node of a server that no longer exists."""
        cluster_key, name = self._names.pop(server_id, ("", ""))
        kube = self.kubes.get(cluster_key)
        if kube is not None:
            await kube.machines.kubelets.stop(name)
            kube.machines.kubelets.nodes.pop(name, None)
            await kube.machines.cloud.server_deleted(name)

    def _control_planes(self, cluster: TalosCluster) -> list[str]:
        return sorted(
            {
                address
                for n in self.fleet.running_nodes(cluster)
                if n.config is not None and n.config.control_plane
                for address in n.addresses
            }
        )

    async def _new(self, cluster: TalosCluster) -> ClusterKube | None:
        config = next(
            n.config for n in self.fleet.running_nodes(cluster)
            if n.config and n.config.k8s_ca_key is not None
        )  # fmt: skip
        host = urlsplit(cluster.endpoint).hostname or ""
        if not _is_ip(host):  # a DNS name: nothing resolves it here, serve the first CP
            host = next(n.ip for n in self.fleet.running_nodes(cluster) if n.config is config)
        secrets = _secrets(config, cluster.endpoint)
        # A short path: a Unix socket's name has at most 107 bytes.
        folder = Path(tempfile.mkdtemp(prefix="hk8s-net-"))
        network = ClusterNetwork(folder / "egress.sock")
        plane = ControlPlane(
            find_binaries(),
            secrets,
            host=host,
            sans=self._control_planes(cluster),
            extra_args=EXTRA_ARGS,
            audit_policy=AUDIT_POLICY,
            egress_selector=network.write_config(folder / "egress.yaml"),
        )
        try:
            await network.start()
            await plane.start()
        except BaseException:
            await plane.stop()
            await network.stop()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        controllers = None
        if self.hcloud_endpoint is not None:
            controllers = CloudControllers(plane, network, self.hcloud_endpoint, self.clock)
        machines = ClusterMachines(
            plane,
            secrets.kubernetes_ca,
            self.clock,
            timings=Timings(lease_renew=LEASE_WALL * self.speed),
            faults=self.faults,
            instance=self._cloud_instance,
            controllers=controllers,
            programs={
                TALOS_BACKUP_REPOSITORY: TalosBackup(
                    lambda host: self._resolve(cluster, host), self.utcnow
                )
            },
            talos_access=lambda: self._talos_access(cluster),
        )
        machines.start()
        kube = ClusterKube(plane, machines, KubeFrontends((host, plane.port)), network, folder)
        self.kubes[cluster.key] = kube
        cluster.keyspace = machines.etcd.keys
        cluster.wipe_keyspace = lambda: self._wipe(kube)
        cluster.restore_keyspace = lambda keys: self._restore(kube, keys)
        return kube

    def _wipe(self, kube: ClusterKube) -> None:
        """Every etcd member lost its data: the controllers go with the keyspace."""
        kube.plane.halt_controllers()
        kube.machines.etcd.wipe()

    async def _restore(self, kube: ClusterKube, keys: Sequence[KeyValue]) -> None:
        """etcd starts from a snapshot: the keyspace comes back (blocking requests, in a
        thread), then the controllers."""
        await asyncio.to_thread(kube.machines.etcd.restore, keys)
        self.fleet.spawn(kube.plane.resume_controllers())

    def _control_plane_nodes(self, cluster: TalosCluster) -> list[TalosNode]:
        return [
            n for n in self.fleet.running_nodes(cluster)
            if n.config is not None and n.config.control_plane
        ]  # fmt: skip

    def _talos_access(self, cluster: TalosCluster) -> TalosAccess | None:
        """kubernetesTalosAPIAccess as the running control planes' configs grant it."""
        for node in self._control_plane_nodes(cluster):
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
            return [n.ip for n in self._control_plane_nodes(cluster)]
        return []

    def _cloud_instance(self, name: str) -> CloudInstance | None:
        servers = self.state.servers
        server = next((s for s in servers.values() if s.name == name), None)
        node = self.fleet.node_by_address(name)
        if server is None and node is not None:
            server = servers.get(node.server_id)
        if server is None:
            return None
        return CloudInstance(server.id, server.server_type.name, server.location.name)

    async def sync(self, cluster: TalosCluster) -> None:
        kube = self.kubes.get(cluster.key)
        if kube is not None:
            nodes = self.fleet.running_nodes(cluster)
            await kube.frontends.sync({n.ip for n in nodes if n.serves_kube_api})
            await kube.plane.set_sans(self._control_planes(cluster))

    async def run(self) -> None:
        """Keep every cluster's :6443 frontends in step with its control planes."""
        while True:
            for cluster in list(self.fleet.clusters.values()):
                with contextlib.suppress(Exception):
                    await self.sync(cluster)
            await self.clock.sleep(SYNC_EVERY)

    async def forget(self, cluster: TalosCluster) -> None:
        """The cluster's machines are all gone: its control plane and frontends go too."""
        task = self._starting.pop(cluster.key, None)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        kube = self.kubes.pop(cluster.key, None)
        if kube is not None:
            await _stop(kube)
        self._names = {k: v for k, v in self._names.items() if v[0] != cluster.key}

    async def close(self) -> None:
        """Stop every control plane: no process outlives the world."""
        self._closed = True
        starting = list(self._starting.values())
        self._starting.clear()
        await asyncio.gather(*starting, return_exceptions=True)
        kubes = list(self.kubes.values())
        self.kubes.clear()
        await asyncio.gather(*(_stop(k) for k in kubes), return_exceptions=True)


async def _stop(kube: ClusterKube) -> None:
    await kube.frontends.close()
    await kube.machines.close()
    await kube.plane.stop()
    if kube.network is not None:
        await kube.network.stop()
    if kube.folder is not None:
        shutil.rmtree(kube.folder, ignore_errors=True)
