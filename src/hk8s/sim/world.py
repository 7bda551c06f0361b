"""The whole simulated world in one asyncio process: Hetzner, factory, rescue, Talos, Kubernetes.

One clock (``speed``) and one seeded fault spec drive every part. The Hetzner API's events
(``hk8s.sim.hcloud`` package docstring) move the rest: a server that boots into rescue gets an
SSH server at ``<ip>:10022``; a server whose disk holds a Talos image boots a Talos node at
``<ip>:50000``; ``create_image`` snapshots the disk; control planes bring up the cluster's
Kubernetes API at ``<cp-ip>:6443`` (and so behind the cluster's load balancer).

>>> async with World.start(speed=50) as world:
...     env = world.env()          # HCLOUD_ENDPOINT, HCLOUD_TOKEN, HK8S_TIME_SCALE, ...
>>> with World.start_in_thread(speed=50) as threaded:     # synchronous tests
...     subprocess.run(["hk8s", "image", "build"], env={**os.environ, **threaded.env})
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field

from hk8s.errors import ConfigError, ConfigProblem
from hk8s.model.net import PORT_MAP_ENV
from hk8s.sim._http import HTTPServer, Request, Response
from hk8s.sim._loadbalancer import KubeFrontends
from hk8s.sim.factory import ImageFactory, TalosImage, read_image
from hk8s.sim.hcloud import FaultSpec, HcloudSim, SimEvent
from hk8s.sim.rescue import RESCUE_SSH_PORT, Machine, RescueServer, SimulatedDisk
from hk8s.sim.talos import KubeletInfo, TalosCluster, TalosFaults, TalosFleet

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine, Iterator

    from hk8s.sim.hcloud import Server
    from hk8s.sim.kube import KubeAPI

__all__ = [
    "IMAGE_FACTORY_ENV",
    "MY_IP_ENV",
    "ThreadedWorld",
    "World",
    "WorldFaults",
    "run_world",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
MY_IP_ENV = "HK8S_MY_IP_URL"
IMAGE_FACTORY_ENV = "HK8S_IMAGE_FACTORY"
_CP_TAINT = "node-role.kubernetes.io/control-plane"
_SYNC_EVERY = 2.0  # simulated seconds between load-balancer/kube-apiserver reconciliations


class _TalosSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stuck_in_maintenance: list[str] = Field(default_factory=list)
    failed_upgrades: list[str] = Field(default_factory=list)
    slow_boots: list[str] = Field(default_factory=list)
    slow_boot_factor: float = 5.0


class _KubeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Helm release name -> the error its install Job fails with.
    failing_releases: dict[str, str] = Field(default_factory=dict)


class WorldFaults(BaseModel):
    """The world's fault file: the Hetzner keys (``FaultSpec``) plus ``talos`` and
    ``kubernetes`` sections. Server names are ``fnmatch`` patterns::

        seed: 7
        errors: [{path: "/servers", method: POST, rate: 0.2, code: 503}]
        talos: {stuck_in_maintenance: ["*-app-2"], failed_upgrades: ["*-cp-3"],
                slow_boots: ["*"], slow_boot_factor: 3}
        kubernetes: {failing_releases: {cilium: "INSTALLATION FAILED: timed out"}}
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    hcloud: FaultSpec = Field(default_factory=FaultSpec)
    talos: _TalosSpec = Field(default_factory=_TalosSpec)
    kubernetes: _KubeSpec = Field(default_factory=_KubeSpec)

    @classmethod
    def parse(cls, data: dict[str, Any], *, source: str = "faults") -> WorldFaults:
        rest = {k: v for k, v in data.items() if k not in {"talos", "kubernetes"}}
        try:
            return cls(
                hcloud=FaultSpec.parse(rest, source=source),
                talos=_TalosSpec.model_validate(data.get("talos") or {}),
                kubernetes=_KubeSpec.model_validate(data.get("kubernetes") or {}),
            )
        except ValueError as exc:
            raise ConfigError(source, [ConfigProblem("$", str(exc))]) from exc

    @classmethod
    def load(cls, path: str | Path) -> WorldFaults:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(str(path), [ConfigProblem("$", f"cannot read: {exc}")]) from exc
        return cls.parse(data, source=str(path))


class World:
    """Every part of the simulated world, wired together on one event loop."""

    def __init__(
        self,
        *,
        speed: float = 1.0,
        faults: WorldFaults | None = None,
        token: str | None = None,
        host: str = "127.0.0.1",
        address_block: int | None = None,
    ) -> None:
        self.speed = speed
        self.faults = faults or WorldFaults()
        self.host = host
        self.hcloud = HcloudSim(speed=speed, faults=self.faults.hcloud, token=token)
        self.address_block = address_block or random.SystemRandom().randrange(16, 250)
        _use_address_block(self.hcloud, self.address_block)
        self.clock = self.hcloud.clock
        self.factory = ImageFactory(mount_prefix="/factory")
        spec = self.faults.talos
        self.fleet = TalosFleet(
            self.clock,
            faults=TalosFaults(
                list(spec.stuck_in_maintenance),
                list(spec.failed_upgrades),
                list(spec.slow_boots),
                spec.slow_boot_factor,
            ),
            hooks=self,
        )
        self.disks: dict[int, SimulatedDisk] = {}
        self.rescues: dict[int, RescueServer] = {}
        self.kubes: dict[str, KubeAPI] = {}
        self._frontends: dict[str, KubeFrontends] = {}
        self._rescue_logins: dict[int, tuple[list[str], str | None]] = {}
        # server id -> (cluster, Node name): what the cloud controller deletes with the server.
        self._kube_names: dict[int, tuple[str, str]] = {}
        self._disk_seen: dict[int, tuple[int, int]] = {}
        self._services: HTTPServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ running
    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, **kwargs: Any) -> AsyncIterator[World]:
        world = cls(**kwargs)
        await world.serve()
        try:
            yield world
        finally:
            await world.close()

    @classmethod
    @contextlib.contextmanager
    def start_in_thread(cls, **kwargs: Any) -> Iterator[ThreadedWorld]:
        """The world on its own event loop in a daemon thread, for synchronous callers."""
        threaded = ThreadedWorld(cls(**kwargs))
        with threaded:
            yield threaded

    async def serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.hcloud.serve(self.host, 0)
        self._services = await HTTPServer(self._handle_services).start(self.host, 0)
        self.hcloud.state.subscribe(self._on_event)
        self.hcloud.extra_env.update(self._extra_env())
        self.hcloud.add_task(self._sync_loop())

    def _extra_env(self) -> dict[str, str]:
        assert self._services is not None
        return {
            PORT_MAP_ENV: f"22={RESCUE_SSH_PORT}",
            MY_IP_ENV: f"{self._services.url}/ip",
            IMAGE_FACTORY_ENV: self.factory_url,
        }

    @property
    def factory_url(self) -> str:
        """Where the image factory answers (``talos.image_factory`` in cluster.yaml)."""
        assert self._services is not None
        return f"{self._services.url}/factory"

    def env(self) -> dict[str, str]:
        """Everything a client of this world exports (also printed by ``hk8s sim up``)."""
        return self.hcloud.env()

    async def close(self) -> None:
        await self.fleet.close()
        for rescue in list(self.rescues.values()):
            rescue.stop()
        self.rescues.clear()
        for frontends in self._frontends.values():
            await frontends.close()
        for kube in self.kubes.values():
            await kube.stop()
        await self.hcloud.close()
        if self._services is not None:
            await self._services.close()

    async def _handle_services(self, request: Request) -> Response:
        if request.path == "/ip":
            # What's-my-IP for firewall source "current": the operator is this machine.
            return Response.text("127.0.0.1\n")
        return await self.factory.handle(request)

    # ------------------------------------------------------------------ Hetzner events
    async def _on_event(self, event: SimEvent) -> None:
        server = event.server
        if server is None:
            return
        kind = event.kind
        if kind == "server_created":
            self._new_disk(server, event.image.metadata if event.image else {})
        elif kind == "server_rebuilt":
            await self.fleet.forget(server.id)
            self._new_disk(server, event.image.metadata if event.image else {})
        elif kind == "rescue_enabled":
            keys = [key.public_key for key in event.details.get("ssh_keys", [])]
            self._rescue_logins[server.id] = (keys, event.details.get("root_password"))
        elif kind == "server_booted":
            await self._boot(server)
        elif kind in {"server_powered_off", "server_rebooted", "server_reset"}:
            self._stop_rescue(server.id)
            await self.fleet.power_off(server.id)
        elif kind == "server_deleted":
            self._stop_rescue(server.id)
            await self._remove_kube_node(server.id)
            await self.fleet.forget(server.id)
            self.disks.pop(server.id, None)
        elif kind == "image_create_requested" and event.image is not None:
            self._snapshot(server, event.image.metadata)
        elif kind == "server_attached":
            self.fleet.set_private_ips(server.id, list(server.private_net.values()))

    def _new_disk(self, server: Server, metadata: dict[str, Any]) -> None:
        size = server.server_type.disk * 10**9
        content = metadata.get("disk_content", b"")
        os_name = (
            None if "disk_content" in metadata else (server.image.name if server.image else None)
        )
        disk = SimulatedDisk(size, content, os_name=os_name)
        self.disks[server.id] = disk
        talos = metadata.get("talos")
        if isinstance(talos, dict):
            self.fleet.install(server.id, TalosImage(**talos))
        self._disk_seen[server.id] = (disk.bytes_written, disk.discards)

    def _snapshot(self, server: Server, metadata: dict[str, Any]) -> None:
        """What ``create_image`` records: the disk's bytes and the Talos it boots, if any."""
        disk = self.disks.get(server.id)
        if disk is None:
            return
        self._refresh_talos(server.id)
        metadata["disk_content"] = disk.content
        machine = self.fleet.disks.get(server.id)
        if machine is not None:
            image = machine.image
            metadata["talos"] = {
                "version": image.version,
                "arch": image.arch,
                "schematic": image.schematic,
            }

    def _refresh_talos(self, server_id: int) -> None:
        """A rescue system wrote the disk: what boots from it now is what it holds."""
        disk = self.disks.get(server_id)
        if disk is None or self._disk_seen.get(server_id) == (disk.bytes_written, disk.discards):
            return
        self._disk_seen[server_id] = (disk.bytes_written, disk.discards)
        self.fleet.disks.pop(server_id, None)
        image = read_image(disk.content[:256])
        if image is not None:
            self.fleet.install(server_id, image)

    async def _boot(self, server: Server) -> None:
        ip = server.public_ipv4
        if ip is None:
            return
        if server.in_rescue:
            self._start_rescue(server, ip)
            return
        self._refresh_talos(server.id)
        await self.fleet.power_on(
            server.id,
            server.name,
            ip,
            list(server.private_net.values()),
            server.server_type.disk * 10**9,
        )

    # ------------------------------------------------------------------ rescue
    def _start_rescue(self, server: Server, ip: str) -> None:
        self._stop_rescue(server.id)
        keys, password = self._rescue_logins.pop(server.id, ([], None))
        disk = self.disks.setdefault(server.id, SimulatedDisk(server.server_type.disk * 10**9))
        loop = self._loop
        assert loop is not None

        def on_power(kind: str) -> None:  # called from the SSH thread
            loop.call_soon_threadsafe(
                lambda: asyncio.ensure_future(self._rescue_power(server, kind))
            )

        machine = Machine(
            disk=disk,
            arch="amd64" if server.architecture == "x86" else "arm64",
            hostname="rescue",
            http_get=_loopback_get,
            on_power=on_power,
        )
        try:
            self.rescues[server.id] = RescueServer(
                ip, RESCUE_SSH_PORT, machine, authorized_keys=keys, password=password
            ).start()
        except OSError as exc:
            log.warning("rescue system of %s cannot listen on %s: %s", server.name, ip, exc)

    def _stop_rescue(self, server_id: int) -> None:
        rescue = self.rescues.pop(server_id, None)
        if rescue is not None:
            rescue.stop()

    async def _rescue_power(self, server: Server, kind: str) -> None:
        """``poweroff``/``reboot`` typed in the rescue shell: Hetzner sees the server go off."""
        await self.clock.sleep(2.0)
        state = self.hcloud.state
        if server.id not in state.servers:
            return
        self._stop_rescue(server.id)
        if kind == "poweroff":
            server.status, server.in_rescue = "off", False
            state.emit("server_powered_off", server=server)
            return
        state.emit("server_rebooted", server=server)
        await self.clock.sleep(state.durations.reboot)
        # As the API's boot(): rescue was consumed by the previous boot, the disk boots now.
        server.in_rescue, server.rescue_enabled = server.rescue_enabled, False
        server.status = "running"
        state.emit("server_booted", server=server)

    # ------------------------------------------------------------------ FleetHooks
    def powered_off(self, server_id: int) -> None:
        server = self.hcloud.state.servers.get(server_id)
        if server is not None and server.status != "off":
            server.status, server.in_rescue = "off", False
            self.hcloud.state.emit("server_powered_off", server=server)

    async def kube_api(self, cluster: TalosCluster, up: bool) -> None:
        kube = self.kubes.get(cluster.key)
        if up and kube is None:
            kube = await self._new_kube(cluster)
        if kube is not None:
            kube.available = up
        await self._sync_kube(cluster)

    async def kubelet(self, cluster: TalosCluster, info: KubeletInfo, up: bool) -> None:
        kube = self.kubes.get(cluster.key)
        if kube is None:
            return
        self._kube_names[info.server_id] = (cluster.key, info.name)
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

    async def _new_kube(self, cluster: TalosCluster) -> KubeAPI:
        from hk8s.sim.kube import CloudInstance, KubeAPI

        config = next(
            n.config for n in self.fleet.running_nodes(cluster)
            if n.config and n.config.k8s_ca_key is not None
        )  # fmt: skip
        assert config.k8s_ca_crt is not None and config.k8s_ca_key is not None
        servers = self.hcloud.state.servers

        def cloud_instance(name: str) -> CloudInstance | None:
            server = next((s for s in servers.values() if s.name == name), None)
            node = self.fleet.node_by_address(name)
            if server is None and node is not None:
                server = servers.get(node.server_id)
            if server is None:
                return None
            return CloudInstance(server.id, server.server_type.name, server.location.name)

        kube = KubeAPI(
            config.k8s_ca_crt,
            config.k8s_ca_key,
            self.clock,
            kubernetes_version=config.kubernetes_version or "1.34.1",
            cloud_instance=cloud_instance,
        )
        kube.faults.failing_releases.update(self.faults.kubernetes.failing_releases)
        host = urlsplit(cluster.endpoint).hostname or self.host
        served = await kube.serve(host, 0)
        self.kubes[cluster.key] = kube
        self._frontends[cluster.key] = KubeFrontends((host, served.port))
        return kube

    async def _sync_kube(self, cluster: TalosCluster) -> None:
        frontends = self._frontends.get(cluster.key)
        if frontends is not None:
            nodes = self.fleet.running_nodes(cluster)
            await frontends.sync({n.ip for n in nodes if n.serves_kube_api})

    async def _sync_loop(self) -> None:
        while True:
            for cluster in list(self.fleet.clusters.values()):
                with contextlib.suppress(Exception):
                    await self._sync_kube(cluster)
            await self.clock.sleep(_SYNC_EVERY)

    async def _remove_kube_node(self, server_id: int) -> None:
        """The CCM deletes the Node of a server that no longer exists."""
        cluster_key, name = self._kube_names.pop(server_id, ("", ""))
        kube = self.kubes.get(cluster_key)
        if kube is not None:
            kube.remove_node(name)


def _use_address_block(sim: HcloudSim, block: int) -> None:
    """Give this world's servers 127.<block>.0-127.x and its load balancers
    127.<block>.128-255.x, so that worlds running side by side on one machine (parallel test
    runs, a demo next to a test) never answer each other's connections. The Hetzner sim's
    default pools (127.1/16, 127.2/16) are the same in every process.
    """

    def hosts(cidr: str) -> Iterator[str]:
        for host in ipaddress.ip_network(cidr).hosts():
            if int(host) & 0xFF not in (0, 1, 255):
                yield str(host)

    servers, lbs = hosts(f"127.{block}.0.0/17"), hosts(f"127.{block}.128.0/17")
    # Instance attributes shadow the methods: the state's allocators are its only IP source.
    sim.state.allocate_server_ip = lambda: next(servers)  # type: ignore[method-assign]
    sim.state.allocate_lb_ip = lambda: next(lbs)  # type: ignore[method-assign]


def _loopback_get(url: str) -> tuple[int, bytes]:
    from hk8s.sim.rescue import loopback_http_get

    return loopback_http_get(url)


class ThreadedWorld:
    """A ``World`` on its own loop in a daemon thread: ``env``, ``run(coro)``, ``call(fn)``."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sim-world", daemon=True)
        self.env: dict[str, str] = {}

    def __enter__(self) -> ThreadedWorld:
        self._thread.start()
        self.run(self.world.serve())
        self.env = self.world.env()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.world.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        async def invoke() -> T:
            return fn()

        return self.run(invoke(), timeout)


async def run_world(
    *,
    speed: float = 1.0,
    faults: WorldFaults | None = None,
    token: str | None = None,
    host: str = "127.0.0.1",
    ready: Callable[[World], None] | None = None,
) -> None:
    """Run the world until cancelled (``hk8s sim up``); ``ready(world)`` once it serves."""
    async with World.start(speed=speed, faults=faults, token=token, host=host) as world:
        if ready is not None:
            ready(world)
        await asyncio.Event().wait()
