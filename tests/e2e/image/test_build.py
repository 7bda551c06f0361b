"""Image builds in the simulated world: Hetzner API, rescue systems, image factory."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.config import parse_config
from hk8s.controller import (
    ImageBuilds,
    ImageDownloadError,
    RecordingReporter,
    RescueUnreachableError,
    SchematicResolver,
)
from hk8s.errors import ActionFailedError, Hk8sError
from hk8s.model import Timing
from hk8s.model.resources import ServerSpec, SSHKeySpec
from hk8s.providers.hcloud import HcloudProvider
from hk8s.providers.ssh import generate_ed25519_key
from hk8s.sim.factory import DEFAULT_SCHEMATIC_ID, Schematic, TalosImage, schematic_id
from hk8s.sim.hcloud import ActionFault, ErrorFault, FaultSpec

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

SPEED = 100.0
MIXED = """
name: mixed
location: fsn1
talos: {{version: v1.12.3, image_factory: "{factory}"{extra}}}
control_plane: {{count: 1, server_type: cx23}}
workers:
  - {{name: arm, count: 1, server_type: cax21}}
"""


def config_for(world: Any, extra: str = "") -> Any:
    return parse_config(MIXED.format(factory=world.factory_url, extra=extra))


@pytest.fixture
def provider(world: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[HcloudProvider]:
    monkeypatch.setenv("HK8S_PORT_MAP", "22=10022")
    sim = world.sim
    # Two simulated minutes for the rescue system to answer (it boots in seconds here), so the
    # "SSH never answers" case gives up quickly.
    timing = Timing(boot_timeout=120.0).scaled(SPEED)
    hc = HcloudProvider(sim.token, endpoint=sim.endpoint, timing=timing)
    yield hc
    hc.close()


def builds_for(provider: HcloudProvider, reporter: RecordingReporter | None = None) -> ImageBuilds:
    return ImageBuilds(
        provider,
        clock=provider.clock,
        timing=provider.timing,
        reporter=reporter or RecordingReporter(),
        resolver=SchematicResolver(),
    )


async def test_both_architectures_build_in_parallel_boot_and_rerun_without_changes(
    world: Any, provider: HcloudProvider
) -> None:
    config = config_for(world)
    images = await builds_for(provider).ensure(config)

    assert sorted(images) == ["amd64", "arm64"]
    assert world.max_parallel_builds == 2  # both build servers existed at the same time
    assert world.leftovers() == ([], [])
    for arch, image in images.items():
        expected = TalosImage("v1.12.3", arch, DEFAULT_SCHEMATIC_ID)
        assert image.status == "available"
        assert image.description == f"Talos v1.12.3 {arch} schematic {DEFAULT_SCHEMATIC_ID}"
        [snapshot] = [s for s in world.snapshots() if s.id == image.id]
        talos = snapshot.metadata["talos"]
        assert TalosImage(talos["version"], talos["arch"], talos["schematic"]) == expected

    # The snapshot is what servers boot: a server created from it has a Talos disk.
    spec = ServerSpec("boot-test", "cax11", images["arm64"].id, "fsn1", {"test": "boot"})
    server = await provider.create_server(spec)
    disk = world.call(lambda: world.world.disks[server.id])
    assert disk.image() == TalosImage("v1.12.3", "arm64", DEFAULT_SCHEMATIC_ID)
    await provider.delete_server(server.id)

    # A second run finds both snapshots by label and changes nothing.
    before = world.mutating_requests()
    again = await builds_for(provider).ensure(config)
    assert {a: i.id for a, i in again.items()} == {a: i.id for a, i in images.items()}
    assert world.mutating_requests() == before


FAILURES = [
    ("create-server", FaultSpec(errors=[ErrorFault(method="POST", path="/servers", code=500)])),
    ("enable-rescue", FaultSpec(actions=[ActionFault(command="enable_rescue")])),
    ("ssh", None),
    ("download-404", None),
    ("create-image", FaultSpec(actions=[ActionFault(command="create_image")])),
]


@pytest.mark.parametrize(("step", "faults"), FAILURES, ids=[f[0] for f in FAILURES])
async def test_a_failure_at_any_step_leaves_no_server_or_key(
    world: Any, provider: HcloudProvider, step: str, faults: FaultSpec | None
) -> None:
    extra = ""
    expected: type[Exception] = Hk8sError
    if faults is not None:
        world.threaded.call(lambda: world.sim.set_faults(faults))
        expected = ActionFailedError if step != "create-server" else Hk8sError
    if step == "ssh":
        world.rescue_works = False
        expected = RescueUnreachableError
    if step == "download-404":
        extra = ', schematic: "' + "0" * 64 + '"'
        expected = ImageDownloadError
    reporter = RecordingReporter()

    with pytest.raises(expected):
        await builds_for(provider, reporter).ensure(config_for(world, extra), archs=["amd64"])

    assert world.leftovers() == ([], [])
    assert [s.id for s in world.snapshots()] == []
    assert any(e.kind == "failed" for e in reporter.events)


async def test_a_later_run_removes_build_leftovers_older_than_an_hour(
    world: Any, provider: HcloudProvider
) -> None:
    # What a build killed with SIGKILL leaves: a server and key, labelled, and a younger one
    # that may belong to a build running right now.
    now = int(time.time())
    for name, age in (("hk8s-build-amd64-dead", 3 * 3600), ("hk8s-build-amd64-busy", 60)):
        labels = {
            "managed-by": "hk8s",
            "hk8s/role": "image-build",
            "hk8s/build": name.rsplit("-", 1)[-1],
            "hk8s/created": str(now - age),
        }
        key = await provider.create_ssh_key(
            SSHKeySpec(name, generate_ed25519_key().public_openssh, labels)
        )
        await provider.create_server(
            ServerSpec(name, "cx23", "debian-12", "fsn1", labels, ssh_key_ids=(key.id,))
        )
    builds = ImageBuilds(
        provider,
        clock=provider.clock,
        timing=provider.timing,
        resolver=SchematicResolver(),
        leftover_age=3600.0,
    )
    await builds.ensure(config_for(world), archs=["amd64"])
    servers, keys = world.leftovers()
    assert servers == ["hk8s-build-amd64-busy"]
    assert keys == ["hk8s-build-amd64-busy"]


async def test_extensions_become_the_factory_schematic(
    world: Any, provider: HcloudProvider, tmp_path: Path
) -> None:
    extensions = ["siderolabs/qemu-guest-agent", "siderolabs/iscsi-tools"]
    config = config_for(world, extra=", extensions: [" + ", ".join(extensions) + "]")
    resolver = SchematicResolver(cache_file=tmp_path / "schematics.json")
    builds = ImageBuilds(provider, clock=provider.clock, timing=provider.timing, resolver=resolver)
    images = await builds.ensure(config, archs=["amd64"])

    expected = schematic_id(Schematic(extensions=tuple(extensions)))
    assert images["amd64"].labels["schematic"] == expected[:63]
    assert images["amd64"].description.endswith(expected)
    assert world.world.factory.downloads == [TalosImage("v1.12.3", "amd64", expected)]
    # The next run answers from the cache file, without asking the factory.
    again = SchematicResolver(cache_file=tmp_path / "schematics.json")
    assert await again.resolve(config.talos) == expected
    assert again.requests == 0


async def test_a_build_converges_through_flaky_api_responses(
    world: Any, provider: HcloudProvider
) -> None:
    flaky = FaultSpec(
        seed=7,
        errors=[
            ErrorFault(rate=0.15, code=503),
            ErrorFault(path="/servers/*", rate=0.1, code="locked"),
        ],
    )
    world.call(lambda: world.sim.set_faults(flaky))
    images = await builds_for(provider).ensure(config_for(world), archs=["amd64"])
    assert images["amd64"].status == "available"
    assert world.leftovers() == ([], [])
    assert world.call(lambda: world.sim.stats.by_status[503]) > 0
