"""ensure/list/prune over the fake: idempotence, --force, pending snapshots, leftover sweeping,
schematics from extensions."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.config import parse_config
from hk8s.controller import ImageTarget, RescueUnreachableError, SchematicResolver
from hk8s.model.resources import Image, Server, SSHKey
from hk8s.sim.factory import DEFAULT_SCHEMATIC_ID

if TYPE_CHECKING:
    from pathlib import Path

FACTORY = "http://127.0.0.1:9/factory"
MIXED = f"""
name: mixed
location: fsn1
talos: {{version: v1.12.0, image_factory: "{FACTORY}"}}
control_plane: {{count: 1, server_type: cx23}}
workers:
  - {{name: arm, count: 2, server_type: cax21}}
  - {{name: big, count: 1, server_type: cx33}}
"""
SID63 = DEFAULT_SCHEMATIC_ID[:63]


def snapshot(
    image_id: int, arch: str, version: str = "v1.12.0", status: str = "available"
) -> Image:
    target = ImageTarget(arch, version, DEFAULT_SCHEMATIC_ID)  # type: ignore[arg-type]
    x86 = "x86" if arch == "amd64" else "arm"
    return Image(image_id, None, "snapshot", status, x86, target.description, target.labels())


async def test_both_architectures_are_built_and_a_second_run_changes_nothing(
    harness: Any,
) -> None:
    config = parse_config(MIXED)
    first = await harness.builds().ensure(config)
    assert sorted(first) == ["amd64", "arm64"]
    assert first["arm64"].architecture == "arm"
    assert first["amd64"].architecture == "x86"
    specs = [args[0] for name, args in harness.fake.calls if name == "create_server"]
    assert sorted(s.server_type for s in specs) == ["cax11", "cx23"]

    harness.fake.calls.clear()
    again = await harness.builds().ensure(config)
    assert again == first
    assert harness.fake.mutations() == []
    assert len(harness.fake.images) == 2


async def test_arch_option_limits_the_build(harness: Any) -> None:
    images = await harness.builds().ensure(parse_config(MIXED), archs=["arm64"])
    assert list(images) == ["arm64"]


async def test_force_rebuilds_and_replaces_the_old_snapshot(harness: Any) -> None:
    config = parse_config(MIXED)
    harness.fake.images[500] = snapshot(500, "amd64")
    harness.fake.images[501] = snapshot(501, "arm64")
    plan = (await harness.builds().observe(await harness.builds().targets(config))).plan
    assert plan.empty

    images = await harness.builds().ensure(config, archs=["amd64"], force=True)
    assert images["amd64"].id not in {500, 501}
    assert set(harness.fake.images) == {images["amd64"].id, 501}


async def test_a_failed_forced_rebuild_keeps_the_old_snapshot(harness: Any) -> None:
    harness.fake.images[500] = snapshot(500, "amd64")
    harness.shell_options["unreachable"] = True
    config = parse_config(MIXED)
    with pytest.raises(RescueUnreachableError):
        await harness.builds().ensure(config, archs=["amd64"], force=True)
    assert set(harness.fake.images) == {500}


async def test_a_snapshot_still_being_created_is_waited_for_not_duplicated(harness: Any) -> None:
    harness.fake.images[700] = snapshot(700, "amd64", status="creating")
    config = parse_config(MIXED)

    async def finish_later() -> None:
        await harness.clock.sleep(30)
        harness.fake.images[700] = dataclasses.replace(harness.fake.images[700], status="available")

    later = asyncio.create_task(finish_later())
    images = await harness.builds().ensure(config, archs=["amd64"])
    await later
    assert images["amd64"].id == 700
    assert "create_server" not in [name for name, _ in harness.fake.calls]


def _leftover(harness: Any, rid: int, age: float) -> dict[str, str]:
    created = str(int(harness.clock.now() - age))
    return {"managed-by": "hk8s", "hk8s/role": "image-build", "hk8s/created": created}


async def test_leftovers_older_than_an_hour_are_swept(harness: Any) -> None:
    fake = harness.fake
    fake.servers[1] = Server(
        1, "hk8s-build-amd64-old", "running", "cx23", "fsn1", _leftover(harness, 1, 3700)
    )
    fake.servers[2] = Server(
        2, "hk8s-build-amd64-new", "running", "cx23", "fsn1", _leftover(harness, 2, 600)
    )
    fake.servers[3] = Server(3, "demo-cp-1", "running", "cx23", "fsn1", {"cluster": "demo"})
    fake.ssh_keys[4] = SSHKey(
        4, "hk8s-build-amd64-old", "fp", "ssh-ed25519 A", _leftover(harness, 4, 7200)
    )
    fake.ssh_keys[5] = SSHKey(
        5, "hk8s-build-amd64-new", "fp", "ssh-ed25519 B", _leftover(harness, 5, 10)
    )

    removed = await harness.builds().sweep_leftovers()
    assert sorted(removed) == ["hk8s-build-amd64-old", "hk8s-build-amd64-old"]
    assert set(fake.servers) == {2, 3}
    assert set(fake.ssh_keys) == {5}

    # An hour later the younger build's leftovers go too.
    harness.clock.advance(3600)
    await harness.builds().sweep_leftovers()
    assert set(fake.servers) == {3}
    assert fake.ssh_keys == {}


async def test_list_and_prune_keep_referenced_and_running_snapshots(harness: Any) -> None:
    fake = harness.fake
    fake.images[10] = snapshot(10, "amd64", "v1.12.0")
    fake.images[11] = snapshot(11, "amd64", "v1.11.3")
    fake.images[12] = snapshot(12, "arm64", "v1.11.3")
    fake.images[13] = snapshot(13, "amd64", "v1.12.0")
    fake.images[13] = dataclasses.replace(
        fake.images[13], labels={**fake.images[13].labels, "talos-version": "v1.10.0"}
    )
    fake.servers[20] = Server(20, "old-cp-1", "running", "cx23", "fsn1", {}, image_id=12)
    fake.images[14] = snapshot(14, "arm64", "v1.11.3", status="creating")
    builds = harness.builds()
    assert [i.id for i in await builds.list_snapshots()] == [10, 11, 12, 13, 14]

    unused, busy = await builds.unreferenced([parse_config(MIXED)])
    assert [i.id for i in unused] == [11, 13]
    assert [i.id for i in busy] == [12, 14]
    await builds.delete(unused)
    assert set(fake.images) == {10, 12, 14}


class CountingFactory:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def create_schematic(self, factory: str, body: bytes) -> str:
        self.bodies.append(body)
        return "ab" * 32


async def test_extensions_resolve_through_the_factory_once_per_content(tmp_path: Path) -> None:
    config = parse_config(
        "name: x\nlocation: fsn1\ntalos:\n  extensions: [siderolabs/qemu-guest-agent]\n"
    )
    client = CountingFactory()
    cache = tmp_path / "hk8s" / "schematics.json"
    resolver = SchematicResolver(client, cache)
    assert await resolver.resolve(config.talos) == "ab" * 32
    assert await resolver.resolve(config.talos) == "ab" * 32
    assert len(client.bodies) == 1
    assert json.loads(client.bodies[0]) == {
        "customization": {
            "systemExtensions": {"officialExtensions": ["siderolabs/qemu-guest-agent"]}
        }
    }
    # Another run (a new resolver) reads the cache file instead of asking again.
    again = SchematicResolver(client, cache)
    assert await again.resolve(config.talos) == "ab" * 32
    assert len(client.bodies) == 1
    # Other extensions are other content.
    other = parse_config(
        "name: x\nlocation: fsn1\ntalos:\n  extensions: [siderolabs/iscsi-tools]\n"
    )
    await again.resolve(other.talos)
    assert len(client.bodies) == 2


async def test_a_configured_schematic_is_used_as_is() -> None:
    sid = "cd" * 32
    config = parse_config(f"name: x\nlocation: fsn1\ntalos:\n  schematic: {sid}\n")
    assert await SchematicResolver(CountingFactory()).resolve(config.talos) == sid


async def test_two_runs_needing_the_same_snapshot_build_it_once(harness: Any) -> None:
    """Two or three clusters created together used to build identical snapshots each. The
    build's SSH key name is the claim; the second run waits for the first one's snapshot."""
    gate = asyncio.Event()
    harness.shell_options["gate"] = gate  # the first build holds at its SSH connect
    config = parse_config(MIXED)
    first = asyncio.create_task(harness.builds().ensure(config, archs=["amd64"]))
    while "create_server" not in [name for name, _ in harness.fake.calls]:
        await asyncio.sleep(0)
    other_ids = iter(f"z{i:03d}" for i in range(10))
    second = asyncio.create_task(
        harness.builds(new_id=lambda: next(other_ids)).ensure(config, archs=["amd64"])
    )
    for _ in range(20):
        await asyncio.sleep(0)
    gate.set()
    one, two = await asyncio.gather(first, second)
    assert one["amd64"].id == two["amd64"].id
    assert len(harness.fake.images) == 1
    assert [n for n, _ in harness.fake.calls].count("create_server") == 1
    assert harness.fake.servers == {} and harness.fake.ssh_keys == {}
