"""The cloud side of a cluster the world runs: what the addon pods do once they run.

hk8s installs hcloud-cloud-controller-manager, the hcloud CSI driver and metrics-server as Helm
charts; ``_charts`` renders their workloads and the kubelets run their pods. What those
programs then do is played by ``hk8s.sim.k8s``'s controllers, started here when their pod
runs, as the real program starts when its container does:

- the CCM's pod: ``LoadBalancerController`` (Services of ``type: LoadBalancer`` become Hetzner
  load balancers), configured from the pod's environment as the real CCM reads it
  (``HCLOUD_LOAD_BALANCERS_LOCATION``/``_NETWORK_ZONE``/``_TYPE``,
  hcloud-cloud-controller-manager ``internal/config/config.go``); its node part is
  ``CloudNodes``, which calls ``reconcile`` here on each of its passes, so the CCM is one hook;
- the CSI controller's pod: ``CsiDriver`` (the chart's CSIDriver object, then provisioning
  and attaching), with the volume labels of ``HCLOUD_VOLUME_EXTRA_LABELS`` (the chart's
  ``controller.volumeExtraLabels``, csi-driver ``internal/driver`` ``volumeExtraLabels``);
- the metrics-server pod: ``MetricsServer``, its APIService and Service registered as the
  chart does, and the pod's address routed (``ClusterNetwork``) to where it listens, so the
  API server's aggregator reaches it at the pod IP the EndpointSlice names.

The controllers run on the world's event loop until ``close`` (the cluster or world goes).
A pod that stops running does not stop its controller: the real controllers' work outlives a
restart of their pod, and the world has no use for a cloud that pauses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from hk8s.sim.k8s import CsiDriver, LoadBalancerController, MetricsServer

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterable

    from hk8s.model import Clock
    from hk8s.sim.k8s import ClusterNetwork, ControlPlane

__all__ = ["METRICS_PORT", "CloudControllers"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]
METRICS_PORT = 10250  # the chart's containerPort (--secure-port=10250), named https
_CCM = "hcloud-cloud-controller-manager"


def _running(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _pods(pods: Iterable[Obj], labels: dict[str, str]) -> list[Obj]:
    return [
        p
        for p in pods
        if p["metadata"].get("namespace") == "kube-system"
        and not p["metadata"].get("deletionTimestamp")
        and labels.items() <= (p["metadata"].get("labels") or {}).items()
        and _running(p)
    ]


def container_env(pod: Obj) -> dict[str, str]:
    """The literal ``value`` entries of the pod's first container's environment."""
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return {e["name"]: str(e["value"]) for e in containers[0].get("env") or [] if "value" in e}


def parse_labels(text: str) -> dict[str, str]:
    """``HCLOUD_VOLUME_EXTRA_LABELS``: ``key=value`` pairs separated by commas.

    >>> parse_labels("cluster=demo,team=a")
    {'cluster': 'demo', 'team': 'a'}
    """
    pairs = (part.split("=", 1) for part in text.split(",") if "=" in part)
    return {k.strip(): v.strip() for k, v in pairs if k.strip()}


class CloudControllers:
    """Starts each addon's controller when its pod runs; ``close`` stops them all."""

    def __init__(
        self,
        plane: ControlPlane,
        network: ClusterNetwork,
        hcloud_endpoint: Callable[[], str],
        clock: Clock,
    ) -> None:
        self.plane, self.network, self.endpoint, self.clock = plane, network, hcloud_endpoint, clock
        self.ccm: LoadBalancerController | None = None
        self.csi: CsiDriver | None = None
        self.metrics: MetricsServer | None = None
        self._routes: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("simulated %s failed", what)

        task = asyncio.ensure_future(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reconcile(self, pods: Iterable[Obj]) -> None:
        if self._closed:
            return
        pods = list(pods)
        ccm = _pods(pods, {"app.kubernetes.io/name": _CCM})
        if ccm and self.ccm is None:
            env = container_env(ccm[0])
            self.ccm = LoadBalancerController(
                self.plane.client(),
                self.endpoint(),
                clock=self.clock,
                location=env.get("HCLOUD_LOAD_BALANCERS_LOCATION") or None,
                network_zone=env.get("HCLOUD_LOAD_BALANCERS_NETWORK_ZONE") or None,
                lb_type=env.get("HCLOUD_LOAD_BALANCERS_TYPE") or None,
            )
            self._spawn(self.ccm.run(), "hcloud CCM load balancer controller")
        csi = _pods(pods, {"app.kubernetes.io/name": "hcloud-csi",
                           "app.kubernetes.io/component": "controller"})  # fmt: skip
        if csi and self.csi is None:
            labels = parse_labels(container_env(csi[0]).get("HCLOUD_VOLUME_EXTRA_LABELS", ""))
            self.csi = CsiDriver(
                self.plane.client(), self.endpoint(), clock=self.clock, extra_labels=labels
            )
            self._spawn(self._csi(self.csi), "hcloud CSI driver")
        metrics = _pods(pods, {"app.kubernetes.io/name": "metrics-server"})
        if metrics and self.metrics is None:
            self.metrics = MetricsServer(
                self.plane.client(), self.plane.secrets.aggregator_ca.cert_pem, clock=self.clock
            )
            self._spawn(self._metrics(self.metrics), "metrics-server")
        if self.metrics is not None and self.metrics.port:
            self._route({p["status"]["podIP"] for p in metrics if p["status"].get("podIP")})

    async def _csi(self, csi: CsiDriver) -> None:
        await csi.install()  # the chart's CSIDriver (attachRequired) and StorageClass
        await csi.run()

    async def _metrics(self, metrics: MetricsServer) -> None:
        run = asyncio.ensure_future(metrics.run())
        try:
            await metrics.started()
            await metrics.register()
            await run
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)

    def _route(self, addresses: set[str]) -> None:
        """Route the running metrics-server pods' addresses, and only theirs."""
        assert self.metrics is not None
        for gone in self._routes - addresses:
            self.network.unroute(gone, METRICS_PORT)
        for address in addresses:
            self.network.route(address, METRICS_PORT, (self.metrics.host, self.metrics.port))
        self._routes = addresses

    async def close(self) -> None:
        self._closed = True
        parts = [p for p in (self.ccm, self.csi, self.metrics) if p is not None]
        for part in parts:
            with contextlib.suppress(Exception):
                await part.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for part in parts:
            with contextlib.suppress(Exception):
                await part.api.close()
