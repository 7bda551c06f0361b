"""What a real cluster gets from its machines, played against the real Kubernetes API server.

The control plane is upstream's (``hk8s.sim.k8s.ControlPlane``); around it the simulated
machines act as API clients, as their real counterparts do: kubelets (``Kubelets``: Node
registration, status and Leases, pod phases, container logs through each node's kubelet
API), a Helm installer Job (upstream Helm itself where the world has the chart's sources,
``_helmbin``; else ``_helm``: the chart's objects created through the API, release Secrets as
helm writes them), the cloud controller's node part (``CloudNodes``),
and etcd's keyspace for Talos' snapshot and restore (``EtcdKeyspace``). Talos' own part of the
cluster is here too: with ``kubernetesTalosAPIAccess`` the control planes' CRD and controller
for ``talos.dev`` ServiceAccounts (``TalosAccounts``); and the images the world plays as
programs (``programs``: talos-backup) run in their pods (``_programs``).

>>> machines = ClusterMachines(plane, clock, timings=Timings(), faults=HelmFaults(),
...                            instance=lambda node: CloudInstance(42, "cx23", "fsn1"))
>>> machines.start()                         # the watches and loops, as one task
>>> await machines.kubelets.register(KubeletNode("demo-cp-1", "10.0.1.1", "127.3.0.10", ...))
>>> await machines.close()
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from hk8s.sim.machines._api import Informer, Resources
from hk8s.sim.machines._ccm import CloudInstance, CloudNodes
from hk8s.sim.machines._charts import CATALOG, Chart
from hk8s.sim.machines._cloudside import CloudControllers
from hk8s.sim.machines._etcd import EtcdKeyspace
from hk8s.sim.machines._helm import HelmFaults
from hk8s.sim.machines._helmbin import find_helm
from hk8s.sim.machines._kubelets import Kubelets, Timings
from hk8s.sim.machines._nodes import KubeletNode
from hk8s.sim.machines._programs import PodRun, Program
from hk8s.sim.machines._talos_accounts import TalosAccess, TalosAccounts

if TYPE_CHECKING:
    from collections.abc import Callable

    from hk8s.model import Clock
    from hk8s.pki import CertAndKey
    from hk8s.sim.k8s import ControlPlane

__all__ = [
    "CATALOG",
    "Chart",
    "CloudControllers",
    "CloudInstance",
    "CloudNodes",
    "ClusterMachines",
    "EtcdKeyspace",
    "HelmFaults",
    "Informer",
    "KubeletNode",
    "Kubelets",
    "PodRun",
    "Program",
    "Resources",
    "TalosAccess",
    "TalosAccounts",
    "Timings",
]


class ClusterMachines:
    """One cluster's machines: one client, one set of controllers (not one per node)."""

    def __init__(
        self,
        plane: ControlPlane,
        ca: CertAndKey,
        clock: Clock,
        *,
        timings: Timings,
        faults: HelmFaults,
        instance: Callable[[str], CloudInstance | None],
        controllers: CloudControllers | None = None,
        programs: dict[str, Program] | None = None,
        talos_access: Callable[[], TalosAccess | None] = lambda: None,
    ) -> None:
        self.plane = plane
        self.api = plane.client()
        self.resources = Resources(self.api)
        self.controllers = controllers
        self.cloud = CloudNodes(self.api, instance, controllers)
        self.kubelets = Kubelets(
            self.api,
            self.resources,
            clock,
            ca,
            timings=timings,
            faults=faults,
            cloud=self.cloud,
            programs=programs,
            helm=replace(
                find_helm(),
                server=plane.url,
                ca_file=plane.file("pki/ca.crt"),
                home=plane.file("helm-home"),
            ),
        )
        self.talos_accounts = TalosAccounts(self.api, talos_access)
        self.etcd = EtcdKeyspace(plane.etcd_url)
        self._task: asyncio.Future[tuple[None, None]] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(
            asyncio.gather(self.kubelets.run(), self.talos_accounts.run())
        )

    async def close(self) -> None:
        """End the loops, the kubelet APIs and the client (the control plane is the caller's)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self.controllers is not None:
            await self.controllers.close()
        await self.kubelets.close()
        await self.api.close()
