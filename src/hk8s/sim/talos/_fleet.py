"""Every simulated Talos node of the world, their disks, and the clusters they form.

The world tells the fleet about servers (``install`` when a server is created from a Talos
snapshot, ``power_on``/``power_off``/``forget`` as Hetzner powers it); the fleet runs a
``TalosNode`` per powered-on Talos server and keeps what outlives a boot in ``MachineDisk``.
apid's ``nodes`` proxying finds its targets here by address (``node_by_address``).

>>> fleet = TalosFleet(ScaledClock(50))
>>> fleet.install(42, TalosImage("v1.11.3", "amd64"))
>>> await fleet.power_on(42, "demo-cp-1", "127.1.0.5", ["10.0.1.2"])
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from hk8s.sim.factory import DEFAULT_VERSIONS
from hk8s.sim.talos._cluster import TalosCluster
from hk8s.sim.talos._grpc import services_for
from hk8s.sim.talos._machine import MachineDisk, NullHooks, TalosFaults, TalosTimings
from hk8s.sim.talos._node import TalosNode

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterable

    from hk8s.model import Clock
    from hk8s.sim.factory import TalosImage
    from hk8s.sim.talos._config import MachineConfig
    from hk8s.sim.talos._machine import FleetHooks

__all__ = [
    "TALOS_API_PORT",
    "TalosFleet",
]

TALOS_API_PORT = 50000


class TalosFleet:
    def __init__(
        self,
        clock: Clock,
        *,
        timings: TalosTimings | None = None,
        faults: TalosFaults | None = None,
        hooks: FleetHooks | None = None,
        versions: Iterable[str] = DEFAULT_VERSIONS,
        port: int = TALOS_API_PORT,
    ) -> None:
        self.clock = clock
        self.timings = timings or TalosTimings()
        self.faults = faults or TalosFaults()
        self.hooks: FleetHooks = hooks or NullHooks()
        self.versions = set(versions)
        self.port = port
        self.disks: dict[int, MachineDisk] = {}
        self.nodes: dict[int, TalosNode] = {}
        self.clusters: dict[str, TalosCluster] = {}
        # Installer images pulled once already (the factory has built them).
        self.pulled: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def services_for(self, node: TalosNode) -> list[Any]:
        """The gRPC services a node serves (machined's, behind apid)."""
        return services_for(node)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background; ``close`` cancels whatever still runs."""
        self.track(coro)

    def track(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        """``coro`` as a task the fleet owns (its nodes' lifecycles and helpers, quorum
        watches): ``close`` cancels and awaits every one. None once closed (``coro`` is
        discarded): a node going down during close must not start new work."""
        if self._closed:
            coro.close()
            return None
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ server events
    def install(self, server_id: int, image: TalosImage) -> None:
        """The server's disk now holds ``image`` (created or rebuilt from a Talos snapshot)."""
        self.disks[server_id] = MachineDisk(image)

    def has_talos(self, server_id: int) -> bool:
        return server_id in self.disks

    async def power_on(
        self,
        server_id: int,
        name: str,
        ip: str,
        private_ips: list[str] | None = None,
        disk_size: int = 40 * 10**9,
    ) -> TalosNode | None:
        """Boot the server's Talos; None when its disk holds no Talos (nothing answers) or
        the fleet is closed."""
        disk = self.disks.get(server_id)
        if disk is None or self._closed:
            return None
        await self.power_off(server_id)
        node = TalosNode(self, server_id, name, ip, list(private_ips or []), disk, disk_size)
        self.nodes[server_id] = node
        node.power_on()
        return node

    async def power_off(self, server_id: int) -> None:
        node = self.nodes.pop(server_id, None)
        if node is not None:
            await node.power_off()

    async def forget(self, server_id: int) -> None:
        """The server was deleted (or rebuilt): its node stops and its disk is gone.

        etcd's state lives on the control planes' disks only: once the last disk holding a
        cluster's etcd data is gone, so is the cluster. A new cluster created with the same
        secrets (create -> destroy -> create from one directory) bootstraps a fresh etcd, as
        on real machines, instead of meeting the members of the deleted one ("no leader").
        """
        disk = self.disks.get(server_id)
        key = disk.config.cluster_key() if disk is not None and disk.config else None
        await self.power_off(server_id)
        self.disks.pop(server_id, None)
        if key is None or key not in self.clusters:
            return
        remaining = [
            d for d in self.disks.values() if d.config is not None and d.config.cluster_key() == key
        ]
        if not any(d.etcd_data for d in remaining):
            cluster = self.clusters[key]
            if not any(n.cluster is cluster for n in self.nodes.values()):
                del self.clusters[key]
                await self.hooks.cluster_gone(cluster)

    def set_private_ips(self, server_id: int, private_ips: list[str]) -> None:
        node = self.nodes.get(server_id)
        if node is not None:
            node.private_ips = list(private_ips)

    async def close(self) -> None:
        """Power every node off, then cancel and await every task the fleet tracks, so
        that nothing is left pending when the world's loop closes."""
        self._closed = True  # nodes going down must not start new background work
        for server_id in list(self.nodes):
            with contextlib.suppress(Exception):
                await self.power_off(server_id)
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            # gather, not suppress(CancelledError) per task: cancelling close() itself must
            # still cancel its caller.
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)

    # --------------------------------------------------------------------- lookups
    def node_by_address(self, address: str) -> TalosNode | None:
        """The node with this public/private IP or hostname (apid's ``nodes`` targets)."""
        for node in self.nodes.values():
            if address in node.addresses or address == node.hostname:
                return node
        return None

    def cluster_for(self, config: MachineConfig) -> TalosCluster:
        key = config.cluster_key()
        cluster = self.clusters.get(key)
        if cluster is None:
            cluster = TalosCluster(key, config.endpoint, config.cluster_name)
            self.clusters[key] = cluster
        return cluster

    def running_nodes(self, cluster: TalosCluster) -> list[TalosNode]:
        return [n for n in self.nodes.values() if n.cluster is cluster]

    async def cluster_changed(self, cluster: TalosCluster) -> None:
        """A control plane went down: without any serving one the Kubernetes API is gone."""
        if not cluster.kube_api_up:
            return
        serving = [n for n in self.running_nodes(cluster) if n.config and n.config.control_plane]
        if not serving or not cluster.quorum():
            cluster.kube_api_up = False
            await self.hooks.kube_api(cluster, False)
            self.watch_for_quorum(cluster)

    async def destroy_etcd(self, cluster: TalosCluster) -> None:
        """A disaster for tests: every control plane's etcd data is lost at once (disk
        failure, a bad wipe). etcd stops everywhere; the Kubernetes API goes with it."""
        for node in self.running_nodes(cluster):
            if node.config is not None and node.config.control_plane:
                node.disk.etcd_data = False
                node.services["etcd"] = ("Failed", False, "etcd data directory is empty")
                cluster.data_wiped(node.ip)
        await self.cluster_changed(cluster)

    def watch_for_quorum(self, cluster: TalosCluster) -> None:
        """Bring the API back once etcd has quorum again (control planes rebooted)."""

        async def wait() -> None:
            while not (cluster.quorum() and self.running_nodes(cluster)):
                await self.clock.sleep(self.timings.retry)
            if not cluster.kube_api_up:
                await self.clock.sleep(self.timings.kube_api)
                cluster.kube_api_up = True
                await self.hooks.kube_api(cluster, True)

        self.spawn(wait())

    async def start_kube_api(self, cluster: TalosCluster) -> None:
        """After bootstrap: static pods come up, then the API answers at the endpoint."""
        await self.clock.sleep(self.timings.kube_api)
        if cluster.bootstrapped and not cluster.kube_api_up:
            cluster.kube_api_up = True
            await self.hooks.kube_api(cluster, True)
