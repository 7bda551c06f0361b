"""``World``: the Hetzner API's events drive disks, rescue systems, Talos nodes and Kubernetes."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from hk8s.model.net import PORT_MAP_ENV
from hk8s.sim._http import HTTPServer, Request, Response
from hk8s.sim.factory import ImageFactory, TalosImage, read_image
from hk8s.sim.hcloud import HcloudSim, SimEvent
from hk8s.sim.rescue import RESCUE_SSH_PORT, SimulatedDisk
from hk8s.sim.s3 import S3Store
from hk8s.sim.talos import TalosFleet
from hk8s.sim.world._blocks import claim_block
from hk8s.sim.world._faults import WorldFaults
from hk8s.sim.world._kubernetes import ClusterKube, Kubernetes
from hk8s.sim.world._rescue import Rescues

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine, Iterator

    from hk8s.sim.hcloud import Server
    from hk8s.sim.rescue import RescueServer
    from hk8s.sim.talos import KubeletInfo, TalosCluster

__all__ = [
    "IMAGE_FACTORY_ENV",
    "MY_IP_ENV",
    "S3_BUCKET_ENV",
    "S3_ENDPOINT_ENV",
    "ThreadedWorld",
    "World",
    "run_world",
]

log = logging.getLogger(__name__)

MY_IP_ENV = "HK8S_MY_IP_URL"
IMAGE_FACTORY_ENV = "HK8S_IMAGE_FACTORY"
# The simulated S3-compatible object storage (for backup: in cluster.yaml), like the factory
# URL only printed for the user to put in cluster.yaml; hk8s itself does not read these.
S3_ENDPOINT_ENV = "HK8S_S3_ENDPOINT"
S3_BUCKET_ENV = "HK8S_S3_BUCKET"
S3_BUCKET = "hk8s-backups"
# Wall seconds ``close`` lets Hetzner events under way finish (a node's listeners close
# within ~3 s: TCPForwarder 1 s, grpclib 2 s).
EVENT_GRACE = 5.0


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
        # One /16 per world, claimed (``_blocks``) so that worlds side by side on one machine
        # never answer each other's connections: servers get 127.<block>.0-127.x, load
        # balancers 127.<block>.128-255.x.
        self.address_block, self._block_claim = claim_block(address_block)
        self.hcloud = HcloudSim(
            speed=speed,
            faults=self.faults.hcloud,
            token=token,
            server_ips=f"127.{self.address_block}.0.0/17",
            lb_ips=f"127.{self.address_block}.128.0/17",
        )
        self.clock = self.hcloud.clock
        # The world's UTC time: now, running at the world's speed (CronJobs, S3 timestamps).
        epoch = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.clock.now())
        self.utcnow = lambda: epoch + dt.timedelta(seconds=self.clock.now())
        # Object storage for backups, with one access key and an empty bucket (S3_BUCKET).
        self.s3 = S3Store(
            now=self.utcnow,
            credentials={"HK8SSIM" + secrets.token_hex(6).upper(): secrets.token_urlsafe(30)},
        )
        self.s3.buckets[S3_BUCKET] = {}
        self.factory = ImageFactory(mount_prefix="/factory")
        self.fleet = TalosFleet(self.clock, faults=self.faults.talos_faults(), hooks=self)
        self.disks: dict[int, SimulatedDisk] = {}
        self.rescue = Rescues(self.hcloud.state, self.clock, self.disks)
        self.kubernetes = Kubernetes(
            self.hcloud.state,
            self.fleet,
            self.clock,
            failing_releases=dict(self.faults.kubernetes.failing_releases),
            speed=speed,
            hcloud_endpoint=lambda: self.hcloud.endpoint,
            utcnow=self.utcnow,
        )
        # What the disk looked like when the world last read it (bytes written, discards).
        self._disk_seen: dict[int, tuple[int, int]] = {}
        self._services: HTTPServer | None = None
        # Every task the world starts: Hetzner events being carried out, and the frontends'
        # reconciliation (``Kubernetes.run``). ``close`` ends them all.
        self._events: set[asyncio.Task[None]] = set()
        self._sync: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._closed = False

    @property
    def rescues(self) -> dict[int, RescueServer]:
        """Running rescue SSH servers by server id."""
        return self.rescue.servers

    @property
    def kubes(self) -> dict[str, ClusterKube]:
        """Each cluster's Kubernetes (control plane and machines), by cluster id."""
        return self.kubernetes.kubes

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
        await self.hcloud.serve(self.host, 0)
        self._services = await HTTPServer(self._handle_services).start(self.host, 0)
        s3_url = await self.s3.serve(self.host)
        self._unsubscribe = self.hcloud.state.subscribe(self._on_event)
        [(access_key, secret_key)] = self.s3.credentials.items()
        self.hcloud.extra_env.update(
            {
                PORT_MAP_ENV: f"22={RESCUE_SSH_PORT}",
                MY_IP_ENV: f"{self._services.url}/ip",
                IMAGE_FACTORY_ENV: self.factory_url,
                # Printed for backup: in cluster.yaml (endpoint, bucket) and the credentials
                # hk8s reads from the environment (backup.credentials' defaults).
                S3_ENDPOINT_ENV: s3_url,
                S3_BUCKET_ENV: S3_BUCKET,
                "AWS_ACCESS_KEY_ID": access_key,
                "AWS_SECRET_ACCESS_KEY": secret_key,
            }
        )
        self._sync = asyncio.ensure_future(self.kubernetes.run())

    @property
    def factory_url(self) -> str:
        """Where the image factory answers (``talos.image_factory`` in cluster.yaml)."""
        assert self._services is not None, "the world is not serving yet"
        return f"{self._services.url}/factory"

    def env(self) -> dict[str, str]:
        """Everything a client of this world exports (also printed by ``hk8s sim up``)."""
        return self.hcloud.env()

    async def close(self) -> None:
        """Stop every part and await every task the world started (none is left pending on
        the loop, so closing it prints nothing); a second call does nothing.

        Order matters: first no new Hetzner events, and the ones under way finish (a node
        half powered off would keep listening); then the Hetzner API and its actions stop,
        so nothing boots while the Talos fleet powers its nodes off; Kubernetes goes last
        (Talos' hooks tell it about nodes going down).
        """
        if self._closed:
            return
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        await self._finish_events()
        await self.hcloud.close()
        await self.fleet.close()
        await self.rescue.close()
        sync, self._sync = self._sync, None
        if sync is not None:
            sync.cancel()
            await asyncio.gather(sync, return_exceptions=True)
        await self.kubernetes.close()
        await self.s3.close()
        if self._services is not None:
            await self._services.close()
        self._block_claim.close()

    async def _finish_events(self) -> None:
        """Let events being handled complete (they only start and stop listeners, a few
        wall seconds at most); cancel what is still stuck after that."""
        while self._events:
            events = list(self._events)
            _, stuck = await asyncio.wait(events, timeout=EVENT_GRACE)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*events, return_exceptions=True)
            self._events.difference_update(events)

    async def _handle_services(self, request: Request) -> Response:
        if request.path == "/ip":
            # What's-my-IP for firewall source "current": the operator is this machine.
            return Response.text("127.0.0.1\n")
        return await self.factory.handle(request)

    # ------------------------------------------------------------------ Hetzner events
    def _on_event(self, event: SimEvent) -> None:
        """Each event is carried out in a task of the world's own (see ``close``)."""
        if self._closed or event.server is None:
            return
        task = asyncio.ensure_future(self._handle_event(event))
        self._events.add(task)
        task.add_done_callback(self._event_done)

    def _event_done(self, task: asyncio.Task[None]) -> None:
        self._events.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulated world failed on a Hetzner event", exc_info=task.exception())

    async def _handle_event(self, event: SimEvent) -> None:
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
            self.rescue.enabled(server.id, keys, event.details.get("root_password"))
        elif kind == "server_booted":
            await self._boot(server)
        elif kind in {"server_powered_off", "server_rebooted", "server_reset"}:
            self.rescue.stop(server.id)
            await self.fleet.power_off(server.id)
        elif kind == "server_deleted":
            self.rescue.stop(server.id)
            await self.kubernetes.server_deleted(server.id)
            await self.fleet.forget(server.id)
            self.disks.pop(server.id, None)
        elif kind == "image_create_requested" and event.image is not None:
            self._snapshot(server, event.image.metadata)
        elif kind == "server_attached":
            self.fleet.set_private_ips(server.id, list(server.private_net.values()))

    def _new_disk(self, server: Server, metadata: dict[str, Any]) -> None:
        """A disk from a snapshot holds its bytes; a stock system image is just named."""
        size = server.server_type.disk * 10**9
        stock = "disk_content" not in metadata and server.image is not None
        disk = SimulatedDisk(
            size,
            metadata.get("disk_content", b""),
            os_name=server.image.name if stock and server.image else None,
        )
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
            self.rescue.start(server, ip)
            return
        self._refresh_talos(server.id)
        await self.fleet.power_on(
            server.id,
            server.name,
            ip,
            list(server.private_net.values()),
            server.server_type.disk * 10**9,
        )

    # ------------------------------------------------------------------ FleetHooks
    def powered_off(self, server_id: int) -> None:
        """Talos shut the machine down: the Hetzner API shows the server off."""
        server = self.hcloud.state.servers.get(server_id)
        if server is not None and server.status != "off":
            server.status, server.in_rescue = "off", False
            self.hcloud.state.emit("server_powered_off", server=server)

    async def kube_api(self, cluster: TalosCluster, up: bool) -> None:
        await self.kubernetes.api(cluster, up)

    async def kubelet(self, cluster: TalosCluster, info: KubeletInfo, up: bool) -> None:
        await self.kubernetes.kubelet(cluster, info, up)

    async def cluster_gone(self, cluster: TalosCluster) -> None:
        await self.kubernetes.forget(cluster)


# The world for synchronous callers (a thread with its own loop) and for ``hk8s sim up``; here
# and not in a module of their own because ``World.start_in_thread`` returns one.
T = TypeVar("T")


class ThreadedWorld:
    """A ``World`` on its own loop in a daemon thread: ``env``, ``run(coro)``, ``call(fn)``.

    Touch the world's objects only through ``call``/``run`` while it runs: they belong to
    its loop.
    """

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
            try:
                # A thread of the default executor still blocked after 10 s is left behind
                # (a daemon, like this loop's): exiting the block matters more.
                with contextlib.suppress(TimeoutError):
                    self.run(_finish_loop(), timeout=10.0)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(5)
                if not self.loop.is_running():
                    self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        async def invoke() -> T:
            return fn()

        return self.run(invoke(), timeout)


async def _finish_loop() -> None:
    """What ``asyncio.run`` does before closing its loop: cancel what callers left running
    through ``run`` (the world's own tasks are gone after ``World.close``), finalize async
    generators, and join the default executor's threads (``asyncio.to_thread``)."""
    loop = asyncio.get_running_loop()
    leftovers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


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
