"""``hk8s plan``'s view of the addons: the charts ``create`` would install or move.

It also plans the etcd backup CronJob of ``backup:`` (``_backup``), read over the same API.
``create`` converges addons by running a Helm Job whenever a chart's version or values change
(``_addons``). For ``plan`` to say so beforehand, this component reads what Helm has deployed
(its release Secrets, through the cluster's Kubernetes API) and compares each enabled addon's
chart version with the pin in cluster.yaml (or hk8s' default, ``hk8s version --matrix``). A
cluster without servers yet has nothing deployed to compare: its addons come with ``create``
and are not listed. A cluster whose API cannot be read gets a warning, not a guess.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hk8s.config import ADDON_CHARTS
from hk8s.controller._backup import backup_operations, observe_backup
from hk8s.controller._plan import Change, Operation
from hk8s.errors import Hk8sError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hk8s.config import ClusterConfig
    from hk8s.controller._backup import ObservedBackup
    from hk8s.controller._executor import Handler
    from hk8s.controller._report import Reporter
    from hk8s.providers.k8s import KubernetesAPI

__all__ = ["AddonsComponent", "read_deployed_charts"]


async def read_deployed_charts(kube: KubernetesAPI) -> dict[str, str]:
    """Helm release name -> chart version deployed, from the addons' namespaces' release
    Secrets (``plan``'s addon diff and ``doctor``'s version check read the same thing)."""
    # The Kubernetes side is imported only for a cluster that exists: `hk8s plan` of a new
    # one needs no Kubernetes client (tests/unit/cli/test_startup.py).
    from hk8s.providers.k8s import DEPLOYED_RELEASES, deployed_chart_versions

    secrets = []
    for namespace in sorted({c.namespace for c in ADDON_CHARTS.values()}):
        secrets += await kube.list(
            "v1", "Secret", namespace=namespace, label_selector=DEPLOYED_RELEASES
        )
    return deployed_chart_versions(secrets)


class AddonsComponent:
    """Chart versions deployed vs. pinned; plans only (``create`` installs addons itself).

    ``connect`` opens the cluster's Kubernetes API, or returns None when the cluster has no
    servers yet; the component closes what it opened.
    """

    def __init__(
        self, config: ClusterConfig, connect: Callable[[], Awaitable[KubernetesAPI | None]]
    ) -> None:
        self.config = config
        self._connect = connect
        self._deployed: dict[str, str] | None = None
        self._backup: ObservedBackup = None
        self._warnings: list[str] = []

    async def observe(self) -> None:
        try:
            kube = await self._connect()
            if kube is None:
                return
            try:
                self._deployed = await read_deployed_charts(kube)
                self._backup = await observe_backup(kube)
            finally:
                await kube.close()
        except Hk8sError as exc:
            self._warnings.append(f"addons not checked: {exc.message}")

    def diff(self) -> list[Operation]:
        if self._deployed is None:
            return []
        ops = backup_operations(self.config, self._backup)
        for name, addon in self.config.addons.configured().items():
            if not addon.enabled:
                continue
            chart = ADDON_CHARTS[name]
            want = self.config.addons.configured()[name].version
            have = self._deployed.get(chart.release)
            if have is None:
                ops.append(
                    Operation("create", "addon", name,
                              reason=f"chart {chart.chart} {want} is not installed",
                              changes=(Change("chart version", None, want),))
                )  # fmt: skip
            elif have != want:
                ops.append(
                    Operation("update", "addon", name,
                              reason=f"chart {chart.chart} {have} is installed, {want} is pinned",
                              changes=(Change("chart version", have, want),))
                )  # fmt: skip
        return ops

    def handlers(self, reporter: Reporter) -> dict[str, Handler]:
        return {}  # `create` installs addons after the servers (_addons.install_addons)

    def warnings(self) -> list[str]:
        return list(self._warnings)
