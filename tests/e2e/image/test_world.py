"""``hk8s image build`` in the complete simulated world (``hk8s.sim.world``): the snapshot it
makes boots a Talos node that answers the Talos API in maintenance mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.model import Timing
from hk8s.model.resources import ServerSpec
from hk8s.providers.hcloud import HcloudProvider
from hk8s.providers.talos import TalosClient
from hk8s.sim.world import World

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from hk8s.sim.world import ThreadedWorld

pytestmark = pytest.mark.e2e

SPEED = 100.0
CONFIG = """\
name: mixed
location: nbg1
talos:
  version: v1.12.3
  image_factory: "{factory}"
control_plane:
  count: 1
  server_type: cx23
workers:
  - name: arm
    count: 1
    server_type: cax21
"""


@pytest.fixture
def threaded_world() -> Iterator[ThreadedWorld]:
    with World.start_in_thread(speed=SPEED) as threaded:
        yield threaded


def hk8s(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hk8s", *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


async def test_built_snapshots_boot_talos_in_maintenance_mode(
    threaded_world: ThreadedWorld, tmp_path: Path
) -> None:
    world = threaded_world.world
    config = tmp_path / "cluster.yaml"
    config.write_text(CONFIG.format(factory=world.factory_url))
    env = {**os.environ, **threaded_world.env, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    parallel: list[int] = []
    alive: set[int] = set()

    def track(event: Any) -> None:
        server = event.server
        if server is None or server.labels.get("hk8s/role") != "image-build":
            return
        if event.kind == "server_created":
            alive.add(server.id)
            parallel.append(len(alive))
        elif event.kind == "server_deleted":
            alive.discard(server.id)

    threaded_world.call(lambda: world.hcloud.state.subscribe(track))

    built = hk8s(env, "image", "build", "-f", str(config), "--output", "json")
    assert built.returncode == 0, built.stderr
    assert max(parallel) == 2  # one build server per architecture, at the same time
    state = world.hcloud.state
    assert threaded_world.call(lambda: (list(state.servers), list(state.ssh_keys))) == ([], [])

    # Each snapshot boots Talos: a server created from it answers in maintenance mode.
    rows = {r["arch"]: r for r in json.loads(built.stdout)["images"]}
    assert sorted(rows) == ["amd64", "arm64"]
    timing = Timing().scaled(SPEED)
    hc = HcloudProvider(world.hcloud.token, endpoint=world.hcloud.endpoint, timing=timing)
    try:
        for arch, server_type in (("amd64", "cx23"), ("arm64", "cax11")):
            spec = ServerSpec(f"boot-{arch}", server_type, rows[arch]["id"], "nbg1", {})
            server = await hc.create_server(spec)
            assert server.public_ipv4 is not None
            # talosctl get machinestatus / version --insecure
            talos = TalosClient(
                [server.public_ipv4], insecure=True, timing=timing, environ=threaded_world.env
            )
            try:
                status = await talos.get_resource(
                    "runtime", "MachineStatuses.runtime.talos.dev", "machine"
                )
                version = await talos.get_resource(
                    "runtime", "Versions.runtime.talos.dev", "version"
                )
            finally:
                await talos.aclose()
            assert status.spec["stage"] == "maintenance"
            assert version.spec["version"] == "v1.12.3"
            await hc.delete_server(server.id)
    finally:
        hc.close()

    # Building again changes nothing in the project.
    before = threaded_world.call(lambda: world.hcloud.stats.mutating)
    again = hk8s(env, "image", "build", "-f", str(config))
    assert again.returncode == 0, again.stderr
    assert threaded_world.call(lambda: world.hcloud.stats.mutating) == before
