"""One snapshot build against the stateful fake: the steps, and cleanup in every outcome."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.config import parse_config
from hk8s.controller import (
    BootDiskNotFoundError,
    ImageDownloadError,
    ImageVerifyError,
    RescueUnreachableError,
)
from hk8s.controller.image._build import run_shielded
from hk8s.errors import ActionFailedError, ConflictError, Hk8sError, TransientAPIError
from hk8s.providers.ssh import CommandResult
from hk8s.sim.factory import DEFAULT_SCHEMATIC_ID, TalosImage

if TYPE_CHECKING:
    from hk8s.config import ClusterConfig

CONFIG = """
name: demo
location: fsn1
talos: {version: v1.12.0, image_factory: "http://127.0.0.1:9/factory"}
control_plane: {count: 1, server_type: cx23}
"""


@pytest.fixture
def config() -> ClusterConfig:
    return parse_config(CONFIG)


def assert_no_build_leftovers(harness: Any) -> None:
    assert harness.fake.servers == {}
    assert harness.fake.ssh_keys == {}


async def test_build_writes_the_factory_image_and_snapshots_it(harness: Any, config: Any) -> None:
    images = await harness.builds().ensure(config)

    image = images["amd64"]
    assert image.labels == {
        "os": "talos",
        "arch": "amd64",
        "talos-version": "v1.12.0",
        "schematic": DEFAULT_SCHEMATIC_ID[:63],
        "managed-by": "hk8s",
        "hk8s/build": "b000",
    }
    assert image.description == f"Talos v1.12.0 amd64 schematic {DEFAULT_SCHEMATIC_ID}"
    (shell,) = harness.shells
    assert shell.machine.disk.image() == TalosImage("v1.12.0", "amd64", DEFAULT_SCHEMATIC_ID)
    assert shell.closed
    assert_no_build_leftovers(harness)
    # The server was created stopped, with labels, rescue enabled before it was powered on.
    calls = [name for name, _ in harness.fake.calls if not name.startswith(("list_", "get_"))]
    assert calls[:7] == [
        "server_types",
        "locations",
        "create_ssh_key",
        "create_server",
        "enable_rescue",
        "power_on",
        "shutdown",
    ]
    spec = next(args[0] for name, args in harness.fake.calls if name == "create_server")
    assert spec.start_after_create is False
    assert spec.server_type == "cx23"
    assert spec.image == "debian-12"
    assert spec.labels["hk8s/role"] == "image-build"
    assert spec.labels["hk8s/created"] == "1800000000"
    # Rescue was enabled with exactly the key SSH then used.
    key = next(args[0] for name, args in harness.fake.calls if name == "create_ssh_key")
    assert shell.connected_with.public_openssh == key.public_key


async def test_progress_goes_to_the_reporter(harness: Any, config: Any) -> None:
    await harness.builds().ensure(config)
    events = harness.reporter.events
    key = f"image/talos-v1.12.0-amd64-{DEFAULT_SCHEMATIC_ID[:12]}"
    assert [e.kind for e in events if e.key == key][:2] == ["planned", "started"]
    assert [e.kind for e in events if e.key == key][-1] == "done"
    details = " | ".join(e.detail or "" for e in events)
    for step in ("creating build server", "waiting for SSH", "writing the image to /dev/sda"):
        assert step in details


FAULTS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("create_ssh_key", {}, TransientAPIError, "injected"),
    ("create_server", {}, ConflictError, "injected"),
    # The server was created but the answer was lost: found again by its build label.
    ("create_server", {"after": True}, TransientAPIError, "injected"),
    ("enable_rescue", {}, ActionFailedError, "injected"),
    ("power_on", {"after": True}, TransientAPIError, "injected"),
    ("shutdown", {}, TransientAPIError, "injected"),
    ("create_snapshot", {}, ActionFailedError, "injected"),
    # The snapshot was requested, then its action failed: the half-made image goes too.
    ("create_snapshot", {"after": True}, ActionFailedError, "injected"),
]


@pytest.mark.parametrize(("method", "how", "error", "text"), FAULTS)
async def test_an_api_failure_at_any_step_leaves_no_server_or_key(
    harness: Any, config: Any, method: str, how: dict[str, Any], error: type[Exception], text: str
) -> None:
    harness.fake.fail(method, error(text), **how)
    with pytest.raises(error, match=text):
        await harness.builds().ensure(config)
    assert_no_build_leftovers(harness)
    assert harness.fake.images == {}


async def test_rescue_never_answering_is_a_clear_error(harness: Any, config: Any) -> None:
    harness.shell_options["unreachable"] = True
    with pytest.raises(RescueUnreachableError) as info:
        await harness.builds().ensure(config)
    assert "timed out after 600s waiting for SSH on the rescue system" in str(info.value)
    assert info.value.hint and "re-run" in info.value.hint
    assert_no_build_leftovers(harness)


async def test_unknown_version_is_a_download_error(harness: Any) -> None:
    config = parse_config(CONFIG.replace("v1.12.0", "v1.12.9"))
    with pytest.raises(ImageDownloadError) as info:
        await harness.builds().ensure(config)
    assert "no Talos v1.12.9 amd64 image" in str(info.value)
    assert info.value.hint == "check talos.version and talos.schematic in cluster.yaml"
    assert_no_build_leftovers(harness)


async def test_no_disk_is_a_clear_error(harness: Any, config: Any) -> None:
    harness.shell_options["overrides"] = {
        "lsblk": CommandResult(0, '{"blockdevices": [{"name": "loop0", "type": "loop"}]}', "")
    }
    with pytest.raises(BootDiskNotFoundError, match="no writable disk found"):
        await harness.builds().ensure(config)
    assert_no_build_leftovers(harness)


async def test_a_disk_that_reads_back_wrong_fails_verification(harness: Any, config: Any) -> None:
    bad = "0" * 64 + "  -\n" + "1" * 64 + "  -\n"
    harness.shell_options["overrides"] = {"sha256sum": CommandResult(0, bad, "")}
    with pytest.raises(ImageVerifyError, match="does not hold the downloaded image"):
        await harness.builds().ensure(config)
    assert_no_build_leftovers(harness)


async def test_ctrl_c_during_the_rescue_boot_still_cleans_up(harness: Any, config: Any) -> None:
    gate = asyncio.Event()
    harness.shell_options["gate"] = gate
    task = asyncio.create_task(harness.builds().ensure(config))
    while not harness.shells or not harness.shells[0].host:
        await asyncio.sleep(0)
    assert len(harness.fake.servers) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_no_build_leftovers(harness)
    assert harness.shells[0].closed


async def test_cleanup_problems_are_warnings_not_lost_snapshots(harness: Any, config: Any) -> None:
    harness.fake.fail("delete_server", TransientAPIError("api down"))
    images = await harness.builds().ensure(config)
    assert images["amd64"].status == "available"
    warnings = [e.detail for e in harness.reporter.events if e.kind == "warning"]
    assert warnings and "hk8s/build=b000" in str(warnings[0])
    # The server is left for the sweep of a later run (see test_ensure).
    assert len(harness.fake.servers) == 1


def test_errors_are_hk8s_errors() -> None:
    classes = (RescueUnreachableError, ImageDownloadError, BootDiskNotFoundError, ImageVerifyError)
    assert all(issubclass(cls, Hk8sError) for cls in classes)


async def test_cleanup_survives_a_second_ctrl_c() -> None:
    release = asyncio.Event()
    finished: list[str] = []

    async def cleanup() -> None:
        await release.wait()
        finished.append("cleanup")

    task = asyncio.create_task(run_shielded(cleanup()))
    for _ in range(3):
        await asyncio.sleep(0)
        task.cancel()  # Ctrl-C, and again while cleaning up
    await asyncio.sleep(0)
    assert not task.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished == ["cleanup"]


@pytest.mark.parametrize("method", ["create_ssh_key", "create_server"])
async def test_a_create_retried_after_a_lost_answer_adopts_its_own_resource(
    harness: Any, config: Any, method: str
) -> None:
    # The first POST went through, the provider's retry hit the name: uniqueness_error.
    taken = ConflictError("name is already used", code="uniqueness_error")
    harness.fake.fail(method, taken, after=True)
    images = await harness.builds().ensure(config)
    assert images["amd64"].status == "available"
    assert [name for name, _ in harness.fake.calls].count(method) == 1
    assert_no_build_leftovers(harness)


async def test_a_name_taken_by_someone_else_is_not_adopted(harness: Any, config: Any) -> None:
    harness.fake.fail("create_server", ConflictError("taken", code="uniqueness_error"))
    with pytest.raises(ConflictError, match="taken"):
        await harness.builds().ensure(config)
    assert_no_build_leftovers(harness)
