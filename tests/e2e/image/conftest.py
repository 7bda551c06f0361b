"""The simulated world (``hk8s.sim.world``) an image build runs in, with what tests look at.

``BuildWorld`` wraps a ``ThreadedWorld``: it counts build servers alive at once (parallel
builds), can make rescue systems unreachable (a rescue boot whose SSH never answers), and
reads the simulated project (servers, keys, snapshots, mutating requests) from the test thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from hk8s.sim.world import World

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from hk8s.sim.hcloud import SimEvent
    from hk8s.sim.world import ThreadedWorld

pytestmark = pytest.mark.e2e

SPEED = 100.0
T = TypeVar("T")


@dataclass
class BuildWorld:
    threaded: ThreadedWorld
    # When False, a server booting into rescue gets no SSH server (it never answers).
    rescue_works: bool = True
    build_servers_alive: set[int] = field(default_factory=set)
    max_parallel_builds: int = 0
    # (server type, location) of every build server created
    build_sites: list[tuple[str, str]] = field(default_factory=list)

    @property
    def world(self) -> World:
        return self.threaded.world

    @property
    def sim(self) -> Any:
        return self.world.hcloud

    @property
    def factory_url(self) -> str:
        return self.world.factory_url

    async def on_event(self, event: SimEvent) -> None:
        # A coroutine listener runs as a task after the world's own (also a task), so the
        # world has started the rescue SSH server by the time this one may stop it.
        server = event.server
        if server is None:
            return
        if event.kind == "server_booted" and server.in_rescue and not self.rescue_works:
            rescue = self.world.rescues.pop(server.id, None)
            if rescue is not None:
                rescue.stop()
        if server.labels.get("hk8s/role") != "image-build":
            return
        if event.kind == "server_created":
            self.build_sites.append((server.server_type.name, server.location.name))
            self.build_servers_alive.add(server.id)
            self.max_parallel_builds = max(self.max_parallel_builds, len(self.build_servers_alive))
        elif event.kind == "server_deleted":
            self.build_servers_alive.discard(server.id)

    def call(self, fn: Callable[[], T]) -> T:
        return self.threaded.call(fn)

    def leftovers(self) -> tuple[list[str], list[str]]:
        """Names of the servers and SSH keys that exist."""
        state = self.sim.state
        return self.call(
            lambda: (
                [s.name for s in state.servers.values()],
                [k.name for k in state.ssh_keys.values()],
            )
        )

    def snapshots(self) -> list[Any]:
        state = self.sim.state
        return self.call(lambda: [i for i in state.images.values() if i.type == "snapshot"])

    def mutating_requests(self) -> int:
        return int(self.call(lambda: self.sim.stats.mutating))

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.threaded.env, **extra}


@pytest.fixture
def world() -> Iterator[BuildWorld]:
    with World.start_in_thread(speed=SPEED) as threaded:
        build_world = BuildWorld(threaded)
        threaded.call(lambda: threaded.world.hcloud.state.subscribe(build_world.on_event))
        yield build_world
