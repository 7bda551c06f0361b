"""Fakes for image-build unit tests: FakeHcloud with server types, and a RemoteShell that runs
commands in the simulator's rescue shell against a simulated disk (in-process, no SSH)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.controller import ImageBuilds, RecordingReporter, SchematicResolver
from hk8s.errors import WaitTimeoutError
from hk8s.model import ManualClock, Timing
from hk8s.model.catalogue import Location, ServerType, ServerTypeLocation
from hk8s.providers.hcloud.fake import FakeHcloud
from hk8s.providers.ssh import CommandFailedError, CommandResult, generate_ed25519_key
from hk8s.sim.factory import DEFAULT_SCHEMATIC_ID, TalosImage, build_image
from hk8s.sim.rescue import Machine, SimulatedDisk, rescue_shell

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from hk8s.providers.ssh import SSHKeyPair

FACTORY = "http://127.0.0.1:9/factory"
EU = ("fsn1", "nbg1", "hel1")
US = ("ash", "hil")


def sold(*where: str, price: float) -> tuple[ServerTypeLocation, ...]:
    return tuple(ServerTypeLocation(loc, monthly_price=price) for loc in where)


TYPES = [
    ServerType("cx23", "x86", 2, 4.0, 40, locations=sold(*EU, price=5.49)),
    ServerType("cx33", "x86", 4, 8.0, 80, locations=sold(*EU, price=8.49)),
    ServerType("cpx12", "x86", 1, 2.0, 40, locations=sold(*EU, price=11.49)),
    ServerType("cpx11", "x86", 2, 2.0, 40, locations=sold(*US, price=4.99)),
    ServerType("cax11", "arm", 2, 4.0, 40, locations=sold(*EU, price=5.99)),
    ServerType("cax21", "arm", 4, 8.0, 80, locations=sold(*EU, price=10.49)),
]
LOCATIONS = [
    Location("fsn1", "eu-central"),
    Location("nbg1", "eu-central"),
    Location("hel1", "eu-central"),
    Location("ash", "us-east"),
    Location("hil", "us-west"),
]
VERSIONS = {"v1.11.3", "v1.12.0"}
_URL = re.compile(r"/image/([0-9a-f]{64})/(v[^/]+)/hcloud-(amd64|arm64)\.raw\.xz$")


def factory_get(url: str) -> tuple[int, bytes]:
    """What the Image Factory answers: the image, or 404 for an unknown version/schematic."""
    match = _URL.search(url)
    if not url.startswith(FACTORY) or match is None:
        return 404, b'{"error": "not found"}'
    schematic, version, arch = match.groups()
    if version not in VERSIONS or schematic != DEFAULT_SCHEMATIC_ID:
        return 404, b'{"error": "version or schematic not found"}'
    return 200, build_image(TalosImage(version, arch, schematic))


@dataclass
class MachineShell:
    """``RemoteShell`` on an in-process simulated rescue system.

    ``unreachable`` makes ``connect`` time out; ``gate`` (an Event) holds ``connect`` until set;
    ``overrides`` replaces the result of commands containing a key.
    """

    arch: str = "amd64"
    unreachable: bool = False
    gate: asyncio.Event | None = None
    overrides: dict[str, CommandResult] = field(default_factory=dict)
    machine: Machine = field(init=False)
    host: str = ""
    commands: list[str] = field(default_factory=list)
    connected_with: SSHKeyPair | None = None
    closed: bool = False

    def __post_init__(self) -> None:
        disk = SimulatedDisk(40 * 10**9, os_name="debian-12")
        self.machine = Machine(disk=disk, arch=self.arch, http_get=factory_get)

    async def connect(
        self, host: str, key: SSHKeyPair, *, timeout: float, port: int = 22, user: str = "root"
    ) -> None:
        self.host = host
        if self.gate is not None:
            await self.gate.wait()
        if self.unreachable:
            raise WaitTimeoutError(f"SSH on {host}:{port}", timeout, last_error="refused")
        self.connected_with = key

    async def run(self, command: str, *, timeout: float, check: bool = True) -> CommandResult:
        self.commands.append(command)
        fixed = [result for part, result in self.overrides.items() if part in command]
        if fixed:
            result = fixed[0]
        else:
            raw = rescue_shell(self.machine).run(command)
            result = CommandResult(raw.code, raw.stdout.decode(), raw.stderr.decode())
        if check and not result.ok:
            raise CommandFailedError(command, result, host=self.host)
        return result

    async def stream(
        self, command: str, *, timeout: float, on_output: Callable[[str], None], check: bool = True
    ) -> CommandResult:
        return await self.run(command, timeout=timeout, check=check)

    async def close(self) -> None:
        self.closed = True


@dataclass
class Harness:
    fake: FakeHcloud
    clock: ManualClock
    reporter: RecordingReporter
    shells: list[MachineShell]
    shell_options: dict[str, Any]

    def builds(self, **options: Any) -> ImageBuilds:
        def new_shell() -> MachineShell:
            shell = MachineShell(**self.shell_options)
            self.shells.append(shell)
            return shell

        ids = iter(f"b{i:03d}" for i in range(1000))
        defaults: dict[str, Any] = {
            "clock": self.clock,
            "timing": Timing(),
            "reporter": self.reporter,
            "resolver": SchematicResolver(client=None),
            "shell_factory": new_shell,
            "key_factory": generate_ed25519_key,
            "wall": self.clock.now,
            "new_id": lambda: next(ids),
        }
        return ImageBuilds(self.fake, **{**defaults, **options})


@pytest.fixture
def types() -> list[ServerType]:
    return list(TYPES)


@pytest.fixture
def harness() -> Harness:
    fake = FakeHcloud(types=list(TYPES), catalogue_locations=list(LOCATIONS))
    # Wall time for the leftover sweep: a ManualClock started at a plausible UNIX time.
    clock = ManualClock(start=1_800_000_000.0)
    return Harness(fake, clock, RecordingReporter(), [], {})
