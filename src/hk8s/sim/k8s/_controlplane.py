"""One cluster's real Kubernetes control plane, on loopback.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler run as the upstream binaries
(``make kube``), configured as Talos configures them on a control-plane node
(``internal/app/machined/pkg/controllers/k8s/control_plane.go``): client-certificate
authentication against the cluster CA, ``Node,RBAC`` authorization, the NodeRestriction and
PodSecurity admission plugins (``baseline`` enforced, ``kube-system`` exempt), service accounts
signed with the cluster's key and issued for the control-plane endpoint, Secrets encrypted at
rest with the cluster's secretbox key, the aggregation layer with the cluster's aggregator CA.

Deviations the simulated world needs (``docs/simulator.md``): one API server per cluster, not
one per control-plane node (the world's :6443 frontends route to it while a control plane
serves); etcd without TLS on loopback and one member; kubelets reached at their ExternalIP
(the loopback address a simulated node serves on), aggregated APIs at their endpoints.

>>> plane = ControlPlane(find_binaries(), secrets, host="127.3.0.10", sans=["127.3.0.10"])
>>> await plane.start()            # ~5-15 s: etcd, then the API server, then the controllers
>>> plane.url                      # https://127.3.0.10:<port>
>>> await plane.stop()             # processes ended, the folder with its keys removed
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import shutil
import socket
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hk8s.sim.k8s._client import KubeClient
from hk8s.sim.k8s._pki import rewrite_serving_cert, write_pki

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from hk8s.sim.k8s._binaries import Binaries
    from hk8s.sim.k8s._pki import ClusterSecrets

__all__ = ["ControlPlane", "ControlPlaneFailed"]

log = logging.getLogger(__name__)

START_TIMEOUT = 180.0  # wall seconds; the API server's post-start hooks take ~5 s idle
_STOP_GRACE = 10.0
CONTROLLERS = ("kube-controller-manager", "kube-scheduler")
_LOG_TAIL = 2_000


class ControlPlaneFailed(RuntimeError):
    """A component did not start; the message carries the end of its log."""


_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_PORT = 10000


def free_port(host: str) -> int:
    """A port free on ``host`` now, below the kernel's ephemeral range. The components take
    numbers, not sockets, so the port is only checked, then bound by the component a moment
    later; a port from the ephemeral range (what binding port 0 gives) could be handed in
    between to any outgoing connection on the machine as its source port (seen: etcd's
    "bind: address already in use" while Helm and the e2e tests' clients connected). A clash
    that still happens is reported with the component's log."""
    try:
        low = int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(64):
        if low - _LOWEST_PORT < 1024:
            break  # a machine whose ephemeral range leaves nothing below it
        port = random.randrange(_LOWEST_PORT, low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ControlPlane:
    def __init__(
        self,
        binaries: Binaries,
        secrets: ClusterSecrets,
        *,
        host: str,
        sans: Sequence[str] = (),
        folder: Path | None = None,
        extra_args: Mapping[str, Sequence[str]] | None = None,
        audit_policy: str | None = None,
        egress_selector: Path | None = None,
    ) -> None:
        self.binaries = binaries
        # An EgressSelectorConfiguration (``ClusterNetwork.write_config``): how the API server
        # dials pods, Services' endpoints and kubelets; None dials them directly.
        self.egress_selector = egress_selector
        self.secrets = secrets
        self.host = host
        self.sans = list(dict.fromkeys([host, *sans]))
        self._own_folder = folder is None
        self.folder = folder or Path(tempfile.mkdtemp(prefix="hk8s-kube-"))
        self.port = 0
        # Extra flags per component ("kube-controller-manager": ["--node-monitor-period=2s"]).
        self.extra_args = {k: list(v) for k, v in (extra_args or {}).items()}
        # An audit.k8s.io/v1 Policy (YAML): the API server logs what it selects to
        # audit.log, read back with audit_events() (Talos logs audit events by default too).
        self.audit_policy = audit_policy
        self.etcd_url = ""  # etcd's client URL (plain HTTP on loopback), once started
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        # While etcd's keyspace is gone: "etcd" and the controllers killed meanwhile.
        self._halted: set[str] = set()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def file(self, name: str) -> str:
        return str(self.folder / name)

    def client(self) -> KubeClient:
        """A client with the simulated machines' identity (``system:masters``)."""
        pki = self.folder / "pki"
        return KubeClient(
            self.url,
            ca=str(pki / "ca.crt"),
            cert=str(pki / "machines.crt"),
            key=str(pki / "machines.key"),
            online=lambda: not self._halted,
        )

    async def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start every component and return once the API server is ready."""
        deadline = time.monotonic() + timeout
        self.port = free_port(self.host)
        pki = self.folder / "pki"
        await asyncio.to_thread(
            write_pki, pki, self.secrets, server=self.url, ip_addresses=self.sans
        )
        client, peer = free_port("127.0.0.1"), free_port("127.0.0.1")
        etcd_url = self.etcd_url = f"http://127.0.0.1:{client}"
        await self._spawn("etcd", self.binaries.etcd, self._etcd_args(client, peer))
        await self._wait("etcd", f"{etcd_url}/health", deadline, tls=False)
        await self._spawn("kube-apiserver", self.binaries.apiserver, self._apiserver_args(etcd_url))
        await self._wait("kube-apiserver", f"{self.url}/readyz", deadline, tls=True)
        for name in CONTROLLERS:
            await self._spawn(name, *self._controller(name))

    def _controller(self, name: str) -> tuple[Path, list[str]]:
        if name == "kube-scheduler":
            return self.binaries.scheduler, self._scheduler_args()
        return self.binaries.controller_manager, self._controller_manager_args()

    def halt_controllers(self) -> None:
        """etcd lost its keyspace (every member wiped, as before ``bootstrap --recover-from``).
        On a real control plane every client loses the API server with etcd, and the kubelet
        restarts the controllers once it is back; none acts on an empty store. Here the API
        server keeps serving, so the machines' clients (``client()``) refuse to connect until
        ``resume_controllers``, and the controllers are killed at once: the garbage collector
        in particular remembers owners it saw missing and would delete their dependents once
        restored."""
        self._halted.add("etcd")
        for name in CONTROLLERS:
            proc = self._procs.get(name)
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                self._halted.add(name)

    async def resume_controllers(self) -> None:
        """Start the controllers ``halt_controllers`` ended (etcd is back): fresh processes
        with fresh caches, as the kubelet's restarts give."""
        self._halted.discard("etcd")
        while self._halted:
            name = self._halted.pop()
            await self._procs[name].wait()
            await self._spawn(name, *self._controller(name))

    def _etcd_args(self, client: int, peer: int) -> list[str]:
        return [
            "--name=etcd",
            f"--data-dir={self.folder / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=etcd=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync",  # a simulated disk: speed over durability
            "--log-level=warn",
        ]

    def _apiserver_args(self, etcd_url: str) -> list[str]:
        pki = self.folder / "pki"
        args = [
            f"--etcd-servers={etcd_url}",
            f"--bind-address={self.host}",
            f"--advertise-address={self.host}",
            f"--secure-port={self.port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--authentication-config={pki / 'authentication.yaml'}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true",
            f"--service-cluster-ip-range={self.secrets.service_cidr}",
            f"--service-account-issuer={self.secrets.issuer}",
            f"--api-audiences={self.secrets.issuer}",
            f"--service-account-key-file={pki / 'service-account.key'}",
            f"--service-account-signing-key-file={pki / 'service-account.key'}",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=ExternalIP,InternalIP",
            f"--requestheader-client-ca-file={pki / 'aggregator-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-username-headers=X-Remote-User",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
            "--enable-aggregator-routing=true",
            "--profiling=false",
            "--v=0",
        ]
        if self.audit_policy:
            (self.folder / "audit-policy.yaml").write_text(self.audit_policy)
            args += [
                f"--audit-policy-file={self.folder / 'audit-policy.yaml'}",
                f"--audit-log-path={self.folder / 'audit.log'}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
            ]
        if self.egress_selector is not None:
            args.append(f"--egress-selector-config-file={self.egress_selector}")
        if (pki / "encryption.yaml").exists():
            args.append(f"--encryption-provider-config={pki / 'encryption.yaml'}")
        return args

    def _controller_manager_args(self) -> list[str]:
        pki = self.folder / "pki"
        kubeconfig = pki / "kube-controller-manager.kubeconfig"
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-account-private-key-file={pki / 'service-account.key'}",
            f"--service-cluster-ip-range={self.secrets.service_cidr}",
            f"--cluster-cidr={self.secrets.cluster_cidr}",
            "--allocate-node-cidrs=true",
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            "--profiling=false",
        ]

    def _scheduler_args(self) -> list[str]:
        kubeconfig = self.folder / "pki" / "kube-scheduler.kubeconfig"
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
            "--profiling=false",
        ]

    def audit_events(self) -> list[dict[str, Any]]:
        """The audit log's events so far, oldest first (``audit_policy`` selects them)."""
        try:
            text = (self.folder / "audit.log").read_text()
        except OSError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    async def set_sans(self, sans: Sequence[str]) -> None:
        """Reissue the serving certificate for ``host`` and ``sans`` (control planes came or
        went). kube-apiserver watches its certificate files and serves the new one."""
        wanted = list(dict.fromkeys([self.host, *sans]))
        if wanted == self.sans:
            return
        self.sans = wanted
        await asyncio.to_thread(
            rewrite_serving_cert, self.folder / "pki", self.secrets, ip_addresses=self.sans
        )

    async def _spawn(self, name: str, binary: Path, args: list[str]) -> None:
        args = [*args, *self.extra_args.get(name, [])]
        out = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        try:
            self._procs[name] = await asyncio.create_subprocess_exec(
                str(binary), *args, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
            )
        finally:
            out.close()

    def log_tail(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        try:
            return path.read_text(errors="replace")[-_LOG_TAIL:]
        except OSError:
            return ""

    async def _wait(self, name: str, url: str, deadline: float, *, tls: bool) -> None:
        context: ssl.SSLContext | None = None
        if tls:
            context = ssl.create_default_context(cafile=self.file("pki/ca.crt"))
        while True:
            proc = self._procs[name]
            if proc.returncode is not None:
                raise ControlPlaneFailed(
                    f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}"
                )
            if await asyncio.to_thread(_answers_ok, url, context):
                return
            if time.monotonic() > deadline:
                raise ControlPlaneFailed(f"{name} not ready in time:\n{self.log_tail(name)}")
            await asyncio.sleep(0.2)

    def running(self) -> dict[str, bool]:
        return {name: proc.returncode is None for name, proc in self._procs.items()}

    async def stop(self) -> None:
        """End the components (the controllers first, etcd last) and remove the folder."""
        for name in reversed(list(self._procs)):
            proc = self._procs.pop(name)
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), _STOP_GRACE)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
        if self._own_folder:
            await asyncio.to_thread(shutil.rmtree, self.folder, True)


def _answers_ok(url: str, context: ssl.SSLContext | None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0, context=context) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False
