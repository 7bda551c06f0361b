"""The world's wiring, seen from outside: exports, what boots where, rescue logins, faults."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request
from typing import TYPE_CHECKING

import pytest
from hcloud.images import Image
from hcloud.server_types import ServerType

from hk8s.model.net import rewrite_port
from hk8s.providers.talos import ApplyMode, MaintenanceModeError, TalosClient
from hk8s.sim.world import World, WorldFaults

from .conftest import (  # type: ignore[import-not-found]
    SPEED,
    create_server,
    eventually,
    hcloud_client,
    run,
    ssh,
    talos_config,
    wait_action,
)

if TYPE_CHECKING:
    from hk8s.sim.world import ThreadedWorld

pytestmark = pytest.mark.e2e


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


def test_threaded_world_exports_what_a_client_needs() -> None:
    with World.start_in_thread(speed=SPEED) as threaded:
        env = threaded.env
        assert env["HK8S_TIME_SCALE"] == f"{SPEED:g}"
        assert env["HK8S_PORT_MAP"] == "22=10022"
        assert env["HCLOUD_ENDPOINT"].endswith("/v1") and env["HCLOUD_TOKEN"]
        assert _get(env["HK8S_MY_IP_URL"]) == b"127.0.0.1\n"
        assert "v1.11.3" in json.loads(_get(env["HK8S_IMAGE_FACTORY"] + "/versions"))
        # The Hetzner API answers the official client with the exported token.
        client = hcloud_client(threaded.world)
        assert any(t.name == "cx23" for t in client.server_types.get_all())


def _refused(ip: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(rewrite_port(ip, port, {})) != 0


async def test_only_talos_disks_boot_talos(world: World) -> None:
    client = hcloud_client(world)
    server = await create_server(
        client, name="plain", server_type=ServerType(name="cx23"), image=Image(name="debian-12")
    )
    ip = server.public_net.ipv4.ip
    # Rescue with the root password the API returns (no SSH key), then wipe the disk.
    rescue = await asyncio.to_thread(server.enable_rescue, type="linux64")
    await wait_action(rescue.action)
    await wait_action(await asyncio.to_thread(server.reboot))
    shell = await eventually(world, lambda: ssh(world, ip, password=rescue.root_password), "rescue")
    with shell:
        assert (await run(shell, "lsblk -n -o NAME"))[1].startswith("sda\n├─sda1")  # debian
        assert (await run(shell, "blkdiscard /dev/sda && reboot"))[0] == 0
    await world.clock.sleep(60)
    assert _refused(ip, 50000)  # a wiped disk boots nothing
    image = await asyncio.to_thread(server.create_image, type="snapshot", description="empty")
    await wait_action(image.action)
    from_empty = await create_server(
        client,
        name="from-empty",
        server_type=ServerType(name="cx23"),
        image=Image(id=image.image.id),
    )
    await world.clock.sleep(60)
    assert _refused(from_empty.public_net.ipv4.ip, 50000)
    assert _refused(ip, 10022)  # rescue was consumed by the boot that used it


def test_fault_file_reaches_talos_and_kubernetes(tmp_path: object) -> None:
    faults = WorldFaults.parse(
        {
            "seed": 3,
            "talos": {"stuck_in_maintenance": ["stuck-*"]},
            "kubernetes": {"failing_releases": {"cilium": "INSTALLATION FAILED: boom"}},
        }
    )
    assert faults.hcloud.seed == 3
    assert faults.kubernetes.failing_releases == {"cilium": "INSTALLATION FAILED: boom"}
    with World.start_in_thread(speed=SPEED, faults=faults) as threaded:
        assert threaded.world.fleet.faults.stuck("stuck-cp-1")
        _stuck_node_stays_in_maintenance(threaded)


def _stuck_node_stays_in_maintenance(threaded: ThreadedWorld) -> None:
    from hk8s.model import Timing
    from hk8s.sim.factory import TalosImage

    world = threaded.world
    client = hcloud_client(world)

    async def scenario() -> None:
        server = await create_server(
            client,
            name="stuck-cp-1",
            server_type=ServerType(name="cx23"),
            image=Image(name="debian-12"),
        )
        ip = server.public_net.ipv4.ip
        # Talos on its disk, as a snapshot would put it there; then a power cycle boots it.
        world.fleet.install(server.id, TalosImage("v1.11.3", "amd64"))
        await wait_action(await asyncio.to_thread(server.power_off))
        await wait_action(await asyncio.to_thread(server.power_on))
        async with TalosClient([ip], insecure=True, timing=Timing().scaled(SPEED)) as talos:
            [applied] = await talos.apply_configuration(
                talos_config(ip, "stuck-cp-1"), ApplyMode.AUTO
            )
            assert applied.ok  # accepted...
            await world.clock.sleep(120)
            assert (await talos.disks())[0].ok  # ...but still in maintenance mode
            with pytest.raises(MaintenanceModeError):
                await talos.version()

    threaded.run(scenario(), timeout=120)
