"""ParamikoShell against the simulated Hetzner rescue system (``hk8s.sim.rescue``): the
commands ``hk8s image build`` runs, through HK8S_PORT_MAP, with progress and real failures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from hk8s.model import ScaledClock, Timing
from hk8s.providers.ssh import CommandFailedError, ParamikoShell, generate_ed25519_key
from hk8s.sim.factory import DEFAULT_SCHEMATIC_ID, ImageFactory, TalosImage, raw_image
from hk8s.sim.rescue import Machine, RescueServer, SimulatedDisk

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

KEY = generate_ed25519_key("hk8s-build-demo-amd64")


class Rescue:
    def __init__(self, server: RescueServer, disk: SimulatedDisk, factory: str) -> None:
        self.server, self.disk, self.factory = server, disk, factory
        self.power: list[str] = []


@pytest.fixture
async def rescue() -> AsyncIterator[Rescue]:
    factory = await ImageFactory().start("127.0.0.1", 0)
    disk = SimulatedDisk(40 * 10**9, os_name="ubuntu-24.04")
    power: list[str] = []
    machine = Machine(disk=disk, on_power=power.append)
    server = RescueServer("127.0.0.1", 0, machine, authorized_keys=[KEY.public_openssh]).start()
    world = Rescue(server, disk, factory.url)
    world.power = power
    yield world
    server.stop()
    await factory.close()


def shell(rescue: Rescue) -> ParamikoShell:
    return ParamikoShell(
        clock=ScaledClock(),
        timing=Timing(request_timeout=5.0),
        environ={"HK8S_PORT_MAP": f"22={rescue.server.port}"},
    )


async def test_image_build_commands_through_the_port_map(rescue: Rescue) -> None:
    image = TalosImage("v1.11.3", "amd64", DEFAULT_SCHEMATIC_ID)
    url = f"{rescue.factory}/image/{DEFAULT_SCHEMATIC_ID}/v1.11.3/hcloud-amd64.raw.xz"
    remote = shell(rescue)
    await remote.connect("127.0.0.1", KEY, timeout=30)
    disks = await remote.run("lsblk -d -n -o NAME,SIZE,TYPE", timeout=30)
    assert disks.stdout == "sda 37.3G disk\n"
    progress: list[str] = []
    written = await remote.stream(
        f"set -euo pipefail; wget -q -O - {url} | xz -d | dd of=/dev/sda bs=4M && sync",
        timeout=300,
        on_output=progress.append,
    )
    assert written.ok and rescue.disk.image() == image
    assert any("records out" in line for line in progress)  # dd's summary, line by line
    size = len(raw_image(image))
    check = await remote.run(f"head -c {size} /dev/sda | sha256sum", timeout=30)
    assert len(check.stdout.split()[0]) == 64
    await remote.run("shutdown -h now", timeout=30)
    await remote.close()
    assert rescue.power == ["poweroff"]


async def test_missing_image_is_a_command_failure_with_curls_error(rescue: Rescue) -> None:
    missing = f"{rescue.factory}/image/{DEFAULT_SCHEMATIC_ID}/v9.9.9/hcloud-amd64.raw.xz"
    remote = shell(rescue)
    await remote.connect("127.0.0.1", KEY, timeout=30)
    with pytest.raises(CommandFailedError) as info:
        await remote.run(
            f"set -o pipefail; curl -fsSL {missing} | xz -d | dd of=/dev/sda", timeout=60
        )
    await remote.close()
    assert info.value.status != 0
    assert "404" in str(info.value)
    assert rescue.disk.image() is None
