"""The simulated world an image build needs: Hetzner API + rescue SSH + image factory.

Until ``hk8s.sim.world`` composes the simulator's parts, these tests wire the three the way the
world is specified to: a server that boots with rescue enabled serves SSH at
``<ip>:10022`` (``HK8S_PORT_MAP=22=10022``) with the keys passed to ``enable_rescue``; its
simulated disk persists across boots; ``create_image`` records what the disk holds in the
snapshot's metadata, and a server created from that snapshot starts with that disk.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.sim.factory import ImageFactory, raw_image
from hk8s.sim.hcloud import ThreadedSim, run_in_thread
from hk8s.sim.rescue import RESCUE_SSH_PORT, Machine, RescueServer, SimulatedDisk

if TYPE_CHECKING:
    from collections.abc import Iterator

    from hk8s.sim.hcloud import SimEvent

pytestmark = pytest.mark.e2e

SPEED = 100.0
PORT_MAP = f"22={RESCUE_SSH_PORT}"


@dataclass
class RescueWorld:
    """Listens to the simulated API and runs the rescue systems; records what it saw."""

    threaded: ThreadedSim
    factory: ImageFactory
    # When False, servers boot into a rescue system that never answers SSH.
    rescue_works: bool = True
    disks: dict[int, SimulatedDisk] = field(default_factory=dict)
    rescues: dict[int, RescueServer] = field(default_factory=dict)
    keys: dict[int, list[str]] = field(default_factory=dict)
    build_servers_alive: set[int] = field(default_factory=set)
    max_parallel_builds: int = 0

    @property
    def sim(self) -> Any:
        return self.threaded.sim

    def on_event(self, event: SimEvent) -> None:
        server = event.server
        if server is None:
            return
        kind = event.kind
        if kind == "server_created":
            self._created(server, event.image)
        elif kind == "rescue_enabled":
            self.keys[server.id] = [k.public_key for k in event.details.get("ssh_keys", [])]
        elif kind == "server_booted" and server.in_rescue and self.rescue_works:
            self._start_rescue(server)
        elif kind in {"server_powered_off", "server_rebooted", "server_reset", "server_deleted"}:
            self._stop_rescue(server.id)
            if kind == "server_deleted":
                self.build_servers_alive.discard(server.id)
        elif kind == "image_create_requested" and event.image is not None:
            disk = self.disks.get(server.id)
            event.image.metadata["talos"] = disk.image() if disk is not None else None

    def _created(self, server: Any, image: Any) -> None:
        talos = image.metadata.get("talos") if image is not None else None
        size = int(server.server_type.disk) * 10**9
        if talos is not None:
            self.disks[server.id] = SimulatedDisk(size, raw_image(talos))
        else:
            self.disks[server.id] = SimulatedDisk(size, os_name=image.name if image else None)
        if server.labels.get("hk8s/role") == "image-build":
            self.build_servers_alive.add(server.id)
            self.max_parallel_builds = max(self.max_parallel_builds, len(self.build_servers_alive))

    def _start_rescue(self, server: Any) -> None:
        self._stop_rescue(server.id)
        arch = "arm64" if server.architecture == "arm" else "amd64"
        machine = Machine(disk=self.disks[server.id], arch=arch, hostname=server.name)
        rescue = RescueServer(
            server.public_ipv4,
            RESCUE_SSH_PORT,
            machine,
            authorized_keys=self.keys.get(server.id, []),
            password=server.root_password,
        )
        self.rescues[server.id] = rescue.start()

    def _stop_rescue(self, server_id: int) -> None:
        rescue = self.rescues.pop(server_id, None)
        if rescue is not None:
            rescue.stop()

    # -- reading the simulated state from the test thread
    def leftovers(self) -> tuple[list[str], list[str]]:
        """Names of servers and SSH keys that still exist."""

        def read() -> tuple[list[str], list[str]]:
            state = self.sim.state
            servers = [s.name for s in state.servers.values()]
            return servers, [k.name for k in state.ssh_keys.values()]

        return self.threaded.call(read)

    def snapshots(self) -> list[Any]:
        return self.threaded.call(
            lambda: [i for i in self.sim.state.images.values() if i.type == "snapshot"]
        )

    def mutating_requests(self) -> int:
        return int(self.threaded.call(lambda: self.sim.stats.mutating))

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.sim.env(), "HK8S_PORT_MAP": PORT_MAP, **extra}


@pytest.fixture
def world() -> Iterator[RescueWorld]:
    with run_in_thread(speed=SPEED) as threaded:
        factory = threaded.run(ImageFactory().start("127.0.0.1", 0))
        rescue_world = RescueWorld(threaded, factory)
        threaded.call(lambda: threaded.sim.state.subscribe(rescue_world.on_event))
        try:
            yield rescue_world
        finally:
            for server_id in list(rescue_world.rescues):
                rescue_world._stop_rescue(server_id)
            with contextlib.suppress(Exception):
                threaded.run(factory.close())
