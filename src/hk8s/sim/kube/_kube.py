"""``KubeAPI``: the simulated Kubernetes API server and control plane of one cluster."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import ssl
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hk8s.pki import CertAndKey, issue_kube_apiserver_cert, to_pkcs8_pem
from hk8s.sim._http import HTTPServer
from hk8s.sim.kube._bootstrap import bootstrap_objects
from hk8s.sim.kube._cluster import CloudInstance, Cluster, NodeRuntime, Timings
from hk8s.sim.kube._cronjobs import reconcile_cronjobs, reconcile_talos_accounts
from hk8s.sim.kube._kubelet import evict_for_taints, run_kubelets, schedule
from hk8s.sim.kube._nodes import cni_nodes, reconcile_nodes, register_node
from hk8s.sim.kube._server import Router
from hk8s.sim.kube._store import Store
from hk8s.sim.kube._verbs import Verbs
from hk8s.sim.kube._workloads import reconcile_workloads

if TYPE_CHECKING:
    from collections.abc import Callable

    from hk8s.model import Clock
    from hk8s.sim.kube._helm import HelmFaults

__all__ = ["KubeAPI"]

_log = logging.getLogger(__name__)


class KubeAPI:
    """One cluster's API server (serve it at one or more addresses) and its control plane.

    ``ca_cert_pem``/``ca_key_pem`` are the cluster's Kubernetes CA (secrets bundle ``certs.k8s``):
    the serving certificate is issued from it, and client certificates must chain to it.
    ``cloud_instance(node_name)`` plays the Hetzner CCM's lookup: the server id (or a
    ``CloudInstance``) behind a node, or None while it has none.
    """

    def __init__(
        self,
        ca_cert_pem: bytes | str,
        ca_key_pem: bytes | str,
        clock: Clock,
        *,
        kubernetes_version: str = "1.34.1",
        cloud_instance: Callable[[str], CloudInstance | int | None] | None = None,
        external_cloud_provider: bool = True,
        timings: Timings | None = None,
        seed: int | None = None,
        watch_history: int = 20_000,
    ) -> None:
        def raw(value: bytes | str) -> bytes:
            return value.encode() if isinstance(value, str) else value

        self.ca = CertAndKey.from_pem(raw(ca_cert_pem), raw(ca_key_pem))
        self.clock = clock
        # watch_history: how many events a watch can replay (the watch cache); older
        # resourceVersions answer 410 Expired.
        self.store = Store(clock, history=watch_history)
        self.verbs = Verbs(self.store, seed=seed)
        self.cluster = Cluster(
            store=self.store,
            verbs=self.verbs,
            clock=clock,
            timings=timings or Timings(),
            cloud_instance=cloud_instance,
            kubernetes_version=kubernetes_version.lstrip("v"),
        )
        self.external_cloud_provider = external_cloud_provider
        major, minor, *_ = self.cluster.kubernetes_version.split(".")
        self.router = Router(
            self.cluster,
            {
                "major": major,
                "minor": minor,
                "gitVersion": f"v{self.cluster.kubernetes_version}",
                "gitCommit": "0" * 40,
                "gitTreeState": "clean",
                "buildDate": "2025-09-09T19:44:50Z",
                "goVersion": "go1.24.6",
                "compiler": "gc",
                "platform": "linux/amd64",
            },
        )
        self._servers: list[HTTPServer] = []
        self._loop: asyncio.Task[None] | None = None
        for rt, obj in bootstrap_objects(self.cluster.kubernetes_version):
            self.verbs.create(
                rt, obj["metadata"].get("namespace", ""), obj, manager="kube-apiserver"
            )

    # -- serving --------------------------------------------------------------------------
    @property
    def faults(self) -> HelmFaults:
        """Helm Job faults: ``failing_releases``, ``slow_releases``, ``unknown_versions``."""
        return self.cluster.faults

    @property
    def available(self) -> bool:
        return self.router.available

    @available.setter
    def available(self, value: bool) -> None:
        """False: every request answers 503 ServiceUnavailable (and ``/readyz`` too)."""
        self.router.available = value

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self._servers]

    async def serve(self, host: str, port: int = 6443) -> HTTPServer:
        """Listen at ``host:port`` (more than once for several endpoints); starts the control
        loop with the first call."""
        context = self._tls_context(host)
        server = await HTTPServer(self.router.handle, ssl_context=context).start(host, port)
        self._servers.append(server)
        if not self.router.server_address:
            self.router.server_address = f"{host}:{server.port}"
        if self._loop is None:
            self._loop = asyncio.create_task(self._control_loop(), name="kube-control-loop")
        return server

    async def stop(self) -> None:
        """Stop listening and stop the control loop (objects are kept; ``serve`` resumes)."""
        for server in self._servers:
            await server.close()
        self._servers.clear()
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.cancel()
            # gather, not suppress(CancelledError): cancelling stop() itself must still
            # cancel its caller.
            await asyncio.gather(loop, return_exceptions=True)

    def _tls_context(self, host: str) -> ssl.SSLContext:
        ips: list[str] = []
        names: list[str] = []
        try:
            ips.append(str(ipaddress.ip_address(host)))
        except ValueError:
            names.append(host)
        cert = issue_kube_apiserver_cert(
            self.ca,
            now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
            ip_addresses=ips,
            dns_names=names,
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as tmp:
            cert_file, key_file = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
            cert_file.write_bytes(cert.cert_pem)
            key_file.write_bytes(to_pkcs8_pem(cert.key_pem))
            context.load_cert_chain(cert_file, key_file)
        context.load_verify_locations(cadata=self.ca.cert_pem.decode())
        # Verify a client certificate when one is presented, like kube-apiserver's
        # --client-ca-file (tls.VerifyClientCertIfGiven); a request without one is anonymous.
        context.verify_mode = ssl.CERT_OPTIONAL
        return context

    # -- the world's side -----------------------------------------------------------------
    def register_node(
        self,
        name: str,
        internal_ip: str,
        external_ip: str | None = None,
        *,
        role: str = "worker",
        labels: dict[str, str] | None = None,
        taints: list[dict[str, Any]] | None = None,
        provider_id: str | None = None,
        kubelet_version: str | None = None,
        os_image: str = "Talos (v1.11.5)",
        control_plane_taint: bool = True,
    ) -> dict[str, Any]:
        """A kubelet registers (or re-registers after a reboot/upgrade) its Node.

        ``taints`` are the kubelet's ``registerWithTaints``. A control plane also gets Talos'
        default ``node-role.kubernetes.io/control-plane:NoSchedule`` (once) unless
        ``control_plane_taint`` is False (``cluster.allowSchedulingOnControlPlanes``).
        """
        # A (re-)registering kubelet is up: a node marked down by set_node_ready comes back.
        runtime = NodeRuntime(name, internal_ip, external_ip, role == "control-plane")
        node = register_node(
            self.cluster,
            runtime,
            labels=labels or {},
            taints=taints or [],
            provider_id=provider_id,
            external_cloud_provider=self.external_cloud_provider,
            control_plane_taint=control_plane_taint,
            os_image=os_image,
            kubelet_version=kubelet_version or self.cluster.kubernetes_version,
        )
        self._kick()
        return node

    def set_node_ready(self, name: str, ready: bool) -> None:
        """The node's kubelet is up (True) or stopped posting status (False: reboot, crash)."""
        runtime = self.cluster.nodes.get(name)
        if runtime is None:
            raise KeyError(f"node {name} was never registered")
        runtime.kubelet_ready = ready
        self._kick()

    def remove_node(self, name: str) -> None:
        """The machine is gone: its kubelet stops and its Node object is deleted (pods follow)."""
        self.cluster.nodes.pop(name, None)
        rt = self.cluster.rt("v1", "Node")
        if self.store.get(rt, "", name) is not None:
            self.verbs.delete(rt, "", name)
        self._kick()

    # -- the control loop -----------------------------------------------------------------
    def reconcile(self) -> None:
        """One pass of every controller, scheduler and kubelet."""
        cluster = self.cluster
        pods, nodes = cluster.rt("v1", "Pod"), cluster.rt("v1", "Node")
        reconcile_nodes(cluster)
        evict_for_taints(cluster, self.store.peek(pods), self.store.peek(nodes))
        schedule(cluster, self.store.peek(pods), self.store.peek(nodes))
        run_kubelets(cluster, self.store.peek(pods), self.store.peek(nodes), cni_nodes(cluster))
        reconcile_workloads(cluster, self.ca.cert_pem.decode())
        reconcile_cronjobs(cluster)
        reconcile_talos_accounts(cluster)

    def _kick(self) -> None:
        self.store.changed.set()

    async def _control_loop(self) -> None:
        tick = self.cluster.timings.tick
        while True:
            self.store.changed.clear()
            try:
                self.reconcile()
            except Exception:  # a controller bug must not stop the simulated cluster
                _log.exception("simulated control plane pass failed")
            if self.store.changed.is_set():
                # Something was written: the next pass may follow at once (a short clock
                # step, so a flapping controller cannot spin the event loop).
                await self.clock.sleep(tick / 20)
                continue
            waiter = asyncio.ensure_future(self.store.changed.wait())
            sleeper = asyncio.ensure_future(self.clock.sleep(tick))
            try:
                await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                # Also when stop() cancels the loop here: asyncio.wait leaves both running,
                # and a waiter left pending on the Event is what "Task was destroyed but it
                # is pending! ... Event.wait()" reported when the world's loop closed.
                waiter.cancel()
                sleeper.cancel()
                await asyncio.gather(waiter, sleeper, return_exceptions=True)
