"""One simulated Talos node: its boot sequence, its services and its apid listener.

Life of a node (durations in ``TalosTimings``, clock-scaled): power on -> ``boot`` seconds ->
apid answers at ``<ip>:50000``, in maintenance mode when the disk holds no config, else
configured (mTLS). Configured control planes run trustd at once and etcd once the cluster is
bootstrapped (joining the existing members); every node's kubelet registers once the
cluster's Kubernetes API is up. Reboots, upgrades and resets go down and boot again.
Workers need a control plane: their apid cert comes from trustd (the CA key lives only on
control planes), so a worker's apid stays down until one runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
import logging
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from google.protobuf import any_pb2
from grpclib.server import Server

from hk8s.pki import CertAndKey
from hk8s.sim._loadbalancer import TCPForwarder
from hk8s.sim.talos._machine import KubeletInfo
from hk8s.sim.talos._tls import maintenance_context, mtls_server_context
from hk8s.talosapi.common import common_pb2
from hk8s.talosapi.machine import machine_pb2

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    from hk8s.model import Clock
    from hk8s.sim.talos._cluster import TalosCluster
    from hk8s.sim.talos._config import MachineConfig
    from hk8s.sim.talos._machine import FleetHooks, MachineDisk, TalosFaults, TalosTimings

__all__ = ["REPLY_ACTIONS", "Fleet", "TalosNode"]


class Fleet(Protocol):
    """What a node and the services it serves need of the fleet that runs it
    (``_fleet.TalosFleet``): named here so that the node, which every service module types
    against, imports none of them."""

    clock: Clock
    timings: TalosTimings
    faults: TalosFaults
    hooks: FleetHooks
    port: int
    versions: set[str]
    pulled: set[str]

    def track(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None: ...
    def spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...
    def node_by_address(self, address: str) -> TalosNode | None: ...
    async def start_kube_api(self, cluster: TalosCluster) -> None: ...
    def cluster_for(self, config: MachineConfig) -> TalosCluster: ...
    def running_nodes(self, cluster: TalosCluster) -> list[TalosNode]: ...
    async def cluster_changed(self, cluster: TalosCluster) -> None: ...
    def services_for(self, node: TalosNode) -> list[Any]: ...


# Wall seconds a reply needs to reach a client on this machine before its node may go down.
REPLY_WALL_GRACE = 0.25
# What to start once the reply of the RPC being served has been sent (set by the gateway).
REPLY_ACTIONS: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "REPLY_ACTIONS", default=None
)

log = logging.getLogger(__name__)
Stage = machine_pb2.MachineStatusEvent.MachineStage
_SEQ = machine_pb2.SequenceEvent
_CP_SERVICES = ("apid", "containerd", "cri", "etcd", "kubelet", "machined", "trustd", "udevd")
_WORKER_SERVICES = ("apid", "containerd", "cri", "kubelet", "machined", "udevd")


class TalosNode:
    """A server running Talos. ``phase``: off, booting, maintenance, running, rebooting, ..."""

    def __init__(
        self,
        fleet: Fleet,
        server_id: int,
        name: str,
        ip: str,
        private_ips: list[str],
        disk: MachineDisk,
        disk_size: int,
    ) -> None:
        self.fleet = fleet
        self.server_id = server_id
        self.server_name = name
        self.ip = ip
        self.private_ips = private_ips
        self.disk = disk
        self.disk_size = disk_size
        self.phase = "off"
        self.stage: int = Stage.UNKNOWN
        self.services: dict[str, tuple[str, bool | None, str]] = {}
        self.events: list[machine_pb2.Event] = []
        self.event_signal = asyncio.Event()
        self.kubelet_registered = False
        self.booted_at = 0.0
        # Clock time the configured boot began: CRI and time sync count from here.
        self.configured_at = 0.0
        # The actor id of the API action (reboot, upgrade, ...) the node is carrying out.
        self.actor = ""
        self._sequence = ""
        self._server: Server | None = None
        self._front: TCPForwarder | None = None
        self._lifecycle: asyncio.Task[None] | None = None
        self._helpers: set[asyncio.Task[None]] = set()
        # An etcd snapshot uploaded with EtcdRecover, for Bootstrap(recover_etcd=True).
        self.recovery_snapshot: bytes | None = None

    # ---------------------------------------------------------------------------- views
    @property
    def config(self) -> MachineConfig | None:
        return self.disk.config if self.phase == "running" else None

    @property
    def maintenance(self) -> bool:
        return self.phase == "maintenance"

    @property
    def apid_in_maintenance(self) -> bool:
        """Talos 1.13+ has no separate maintenance service: apid serves maintenance mode,
        with the Reader role for callers without a certificate (see ``_gateway``)."""
        parts = self.disk.version.lstrip("v").split(".")
        try:
            return (int(parts[0]), int(parts[1])) >= (1, 13)
        except (IndexError, ValueError):
            return False

    @property
    def hostname(self) -> str:
        config = self.disk.config
        return config.hostname if config and config.hostname else self.server_name

    @property
    def cluster(self) -> TalosCluster | None:
        config = self.config
        return self.fleet.cluster_for(config) if config else None

    @property
    def addresses(self) -> list[str]:
        return [self.ip, *self.private_ips]

    @property
    def serves_kube_api(self) -> bool:
        """A control plane whose kube-apiserver answers (the LB health check's view)."""
        cluster = self.cluster
        return bool(
            self.config and self.config.control_plane and cluster and cluster.kube_api_up
            and self.services.get("etcd", ("", None, ""))[0] == "Running"
        )  # fmt: skip

    def etcd_address(self) -> str:
        """The address etcd advertises (internal/app/machined/pkg/controllers/etcd/spec.go):
        without ``advertisedSubnets`` the first routed address, and node addresses are kept
        sorted, lowest first (IPv4 before IPv6); with them, the first address they match
        (``!cidr`` excludes)."""
        addresses = sorted(
            (ipaddress.ip_address(a) for a in self.addresses), key=lambda a: (a.version, a)
        )
        config = self.disk.config
        subnets = config.etcd_advertised_subnets if config else ()
        if not subnets:
            return str(addresses[0])
        include = [ipaddress.ip_network(c, strict=False) for c in subnets if c[:1] != "!"]
        exclude = [ipaddress.ip_network(c[1:], strict=False) for c in subnets if c[:1] == "!"]
        for address in addresses:
            if any(address in n for n in include) and not any(address in n for n in exclude):
                return str(address)
        return ""

    def kubelet_info(self) -> KubeletInfo:
        config = self.disk.config
        assert config is not None
        labels = dict(config.node_labels)
        taints = list(config.node_taints)
        if config.control_plane and not config.node_document:
            labels.setdefault("node-role.kubernetes.io/control-plane", "")
            if not config.allow_scheduling_on_control_planes:
                taints.append(
                    {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
                )
        return KubeletInfo(
            name=self.hostname,
            server_id=self.server_id,
            internal_ip=self.private_ips[0] if self.private_ips else self.ip,
            external_ip=self.ip,
            control_plane=config.control_plane,
            labels=labels,
            taints=taints,
            talos_version=self.disk.version,
            arch=self.disk.image.arch,
            kubernetes_version=config.kubernetes_version,
        )

    # ------------------------------------------------------------------------ lifecycle
    def run(self, coro: Coroutine[Any, Any, None]) -> None:
        """Replace what the node is doing (booting, rebooting, ...) with ``coro``.

        The task is the fleet's too (``TalosFleet.track``): a replaced lifecycle is only
        cancelled here, and the fleet's close awaits it; a closed fleet starts nothing.
        """
        task = self.fleet.track(coro)
        if task is None:
            return
        if self._lifecycle is not None and not self._lifecycle.done():
            self._lifecycle.cancel()
        self._lifecycle = task
        task.add_done_callback(self._report_failure)

    def _report_failure(self, task: asyncio.Task[None]) -> None:
        # A boot that cannot bind its address (taken by another process) must not fail silently.
        if not task.cancelled() and task.exception() is not None:
            log.error("Talos node %s (%s) stopped: %r", self.server_name, self.ip, task.exception())

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """A background activity that ends when the node goes down (etcd join, kubelet)."""
        task = self.fleet.track(coro)
        if task is not None:
            self._helpers.add(task)
            task.add_done_callback(self._helpers.discard)

    def power_on(self) -> None:
        self.run(self.boot())

    async def power_off(self) -> None:
        """The power is cut (Hetzner poweroff/delete): nothing graceful happens."""
        if self._lifecycle is not None and self._lifecycle is not asyncio.current_task():
            self._lifecycle.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._lifecycle
        await self._go_down("off")

    def after_reply(self, action: Callable[[], Awaitable[None]]) -> None:
        """Act once the current RPC's reply has gone out (Talos acts asynchronously too).

        Inside a call the gateway runs ``action`` after sending the reply's trailers (see
        ``REPLY_ACTIONS``); a node that went down before its reply left would make the client
        retry a call that already took effect.
        """

        async def later() -> None:
            # Delivery of the reply takes real time however fast the simulated clock runs
            # (the client's loop reads it a few milliseconds later): wait for both.
            await asyncio.gather(
                self.fleet.clock.sleep(self.fleet.timings.grace), asyncio.sleep(REPLY_WALL_GRACE)
            )
            await action()

        pending = REPLY_ACTIONS.get()
        if pending is not None:
            pending.append(lambda: self.run(later()))
        else:
            self.run(later())

    async def boot(self) -> None:
        timings = self.fleet.timings
        self._set_phase("booting", Stage.BOOTING)
        if self.disk.staged is not None:
            self.disk.config, self.disk.staged = self.disk.staged, None
        await self.fleet.clock.sleep(timings.boot * self.fleet.faults.boot_factor(self.server_name))
        self.booted_at = time.time()
        config = self.disk.config
        if config is None or self.fleet.faults.stuck(self.server_name):
            await self._serve(maintenance_context(self.ip, self.hostname))
            self._set_phase("maintenance", Stage.MAINTENANCE)
            self.services = {"apid": ("Running", True, "")}
            return
        await self._start_configured(config)

    async def _start_configured(self, config: MachineConfig) -> None:
        self.configured_at = self.fleet.clock.now()
        cluster = self.fleet.cluster_for(config)
        os_ca = self._os_ca(config, cluster)
        while os_ca is None:  # a worker asks trustd on a control plane for its certificate
            await self.fleet.clock.sleep(self.fleet.timings.retry)
            os_ca = self._os_ca(config, cluster)
        await self._serve(
            mtls_server_context(os_ca, config.os_ca_crt, self.addresses, self.hostname)
        )
        self._set_phase("running", Stage.RUNNING)
        names = _CP_SERVICES if config.control_plane else _WORKER_SERVICES
        self.services = {name: ("Running", True, "") for name in names}
        if config.control_plane:
            self.services["etcd"] = ("Preparing", None, "Running pre state")
            self.spawn(self._run_etcd(cluster))
        self.services["kubelet"] = ("Running", None, "Waiting for the API server")
        self.spawn(self._run_kubelet(cluster))

    def _os_ca(self, config: MachineConfig, cluster: TalosCluster) -> CertAndKey | None:
        if config.os_ca_key is not None:
            ca = CertAndKey.from_pem(config.os_ca_crt, config.os_ca_key)
            cluster.os_ca = ca
            return ca
        trustd = [
            n
            for n in self.fleet.running_nodes(cluster)
            if n.disk.config and n.disk.config.control_plane
        ]
        if cluster.os_ca is None or not any(
            n.disk.config and n.disk.config.token == config.token for n in trustd
        ):
            return None
        return cluster.os_ca

    async def _run_etcd(self, cluster: TalosCluster) -> None:
        timings = self.fleet.timings
        member = cluster.member_for(self.ip)
        if member is not None and self.disk.etcd_data:
            cluster.set_started(self.ip, True)
        else:
            while not cluster.bootstrapped:
                self.services["etcd"] = ("Preparing", None, "Waiting for etcd to be bootstrapped")
                await self.fleet.clock.sleep(timings.retry)
            await self.fleet.clock.sleep(timings.etcd_join)
            while cluster.member_for(self.ip) is None:  # else bootstrapped here meanwhile
                advertised = self.etcd_address()
                blocked = self._peers_unreachable(cluster, advertised)
                if blocked:
                    self.services["etcd"] = ("Preparing", None, blocked)
                    await self.fleet.clock.sleep(timings.retry)
                    continue
                try:
                    cluster.join(self.hostname, self.ip, advertised)
                    break
                except Exception:  # no quorum to add a member: etcd retries
                    await self.fleet.clock.sleep(timings.retry)
            self.disk.etcd_data = True
        self.services["etcd"] = ("Running", True, "")
        self.emit_service("etcd", machine_pb2.ServiceStateEvent.RUNNING)

    def _peers_unreachable(self, cluster: TalosCluster, advertised: str) -> str:
        """Why this node's etcd cannot reach its peers, or "". The cluster's firewall opens
        only 6443 and 50000 on public addresses, so etcd's peer traffic (2380) flows only
        over the private network: a member that advertises a public address is unreachable."""
        if not advertised:
            return "no address matches cluster.etcd.advertisedSubnets"
        public = [(m.hostname, m.address) for m in cluster.members.values()
                  if m.started and m.address == m.ip]  # fmt: skip
        if advertised == self.ip:
            public.append((self.hostname, advertised))
        if not public:
            return ""
        names = ", ".join(f"{name} ({address})" for name, address in public)
        return f"etcd peers unreachable: {names} advertise a public address, 2380 is firewalled"

    async def _run_kubelet(self, cluster: TalosCluster) -> None:
        timings = self.fleet.timings
        while not cluster.kube_api_up:
            await self.fleet.clock.sleep(timings.retry)
        await self.fleet.clock.sleep(timings.kubelet)
        await self.fleet.hooks.kubelet(cluster, self.kubelet_info(), True)
        self.kubelet_registered = True
        self.services["kubelet"] = ("Running", True, "")
        self.emit_service("kubelet", machine_pb2.ServiceStateEvent.RUNNING)

    async def _serve(self, context: Any) -> None:
        # grpclib serves on an ephemeral port of the node's IP; the forwarder on :50000 lets
        # _go_down cut established connections too, as a machine that goes away does.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.ip, 0))
        internal = (self.ip, int(sock.getsockname()[1]))
        server = Server(self.fleet.services_for(self))
        await server.start(sock=sock, ssl=context)
        self._server = server
        self._front = await TCPForwarder(lambda: internal).start(self.ip, self.fleet.port)

    async def _go_down(self, phase: str, stage: int = Stage.SHUTTING_DOWN) -> None:
        """Stop apid, etcd and the kubelet; ``phase`` is what the node is doing meanwhile."""
        for task in list(self._helpers):
            task.cancel()
        config, cluster = self.disk.config, None
        was_running = self.phase == "running"
        if config is not None:
            cluster = self.fleet.cluster_for(config)
        self._set_phase(phase, stage)
        self.services = {}
        front, self._front = self._front, None
        if front is not None:
            await front.close()
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        if cluster is not None and was_running:
            cluster.set_started(self.ip, False)
            if self.kubelet_registered:
                self.kubelet_registered = False
                await self.fleet.hooks.kubelet(cluster, self.kubelet_info(), False)
            await self.fleet.cluster_changed(cluster)

    async def reboot(self, then: Callable[[], None] | None = None) -> None:
        await self._go_down("rebooting", Stage.REBOOTING)
        await self.fleet.clock.sleep(self.fleet.timings.shutdown)
        if then is not None:
            then()
        await self.boot()

    async def shutdown(self) -> None:
        await self._go_down("shutting_down")
        await self.fleet.clock.sleep(self.fleet.timings.shutdown)
        self._set_phase("off", Stage.SHUTTING_DOWN)
        self.fleet.hooks.powered_off(self.server_id)

    # --------------------------------------------------------------------------- events
    def start_action(self, sequence: str) -> str:
        """An API call starts a sequence (reboot, shutdown, reset, upgrade): its actor id."""
        self.actor = str(uuid.uuid4())
        self.emit(machine_pb2.SequenceEvent(sequence=sequence, action=_SEQ.START))
        self._sequence = sequence
        return self.actor

    def fail_action(self, message: str) -> None:
        """The action's sequence failed; the node carries on as it was."""
        error = common_pb2.Error(code=common_pb2.FATAL, message=message)
        self.emit(machine_pb2.SequenceEvent(sequence=self._sequence, action=_SEQ.STOP, error=error))
        self.actor = ""

    def _set_phase(self, phase: str, stage: int) -> None:
        self.phase = phase
        if self.actor and phase in {"running", "maintenance", "off"}:
            # The node is back (or down for good): the action's sequence is over.
            self.emit(machine_pb2.SequenceEvent(sequence=self._sequence, action=_SEQ.STOP))
            self.actor = ""
        if stage != self.stage:
            self.stage = stage
            ready = phase in {"running", "maintenance"}
            status = machine_pb2.MachineStatusEvent.MachineStatus(ready=ready)
            self.emit(machine_pb2.MachineStatusEvent(stage=stage, status=status))  # type: ignore[arg-type]

    def emit_service(self, service: str, action: int) -> None:
        self.emit(machine_pb2.ServiceStateEvent(service=service, action=action))  # type: ignore[arg-type]

    def emit(self, payload: Any, actor_id: str | None = None) -> None:
        """Record an event; it carries the actor id of the action in progress, as in Talos
        (``talosctl reboot --wait`` follows a reboot by its actor id)."""
        data = any_pb2.Any(
            type_url=f"talos/runtime/{payload.DESCRIPTOR.full_name}",
            value=payload.SerializeToString(),
        )
        event_id = f"{time.time_ns():x}{len(self.events):04x}"
        actor = self.actor if actor_id is None else actor_id
        self.events.append(machine_pb2.Event(data=data, id=event_id, actor_id=actor))
        del self.events[:-500]
        self.event_signal.set()
        self.event_signal = asyncio.Event()
