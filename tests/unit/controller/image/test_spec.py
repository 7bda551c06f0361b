"""Snapshot labels, factory URLs, build server choice, boot disk discovery."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from hk8s.controller import ImageTarget, build_server_type, image_url, pick_boot_disk
from hk8s.controller._image_spec import build_labels, build_location, needed_architectures
from hk8s.errors import NotFoundError
from hk8s.model.labels import validate_labels
from hk8s.sim.factory import DEFAULT_SCHEMATIC_ID

if TYPE_CHECKING:
    from hk8s.model.resources import ServerType

SID = DEFAULT_SCHEMATIC_ID


def test_schematic_label_is_cut_to_hetzner_label_rules_and_description_keeps_the_id() -> None:
    target = ImageTarget("arm64", "v1.12.0", SID)
    labels = target.labels()
    validate_labels(labels)  # raises on any Hetzner label rule broken
    assert len(SID) == 64
    assert labels == {
        "os": "talos",
        "arch": "arm64",
        "talos-version": "v1.12.0",
        "schematic": SID[:63],
        "managed-by": "hk8s",
    }
    assert target.description == f"Talos v1.12.0 arm64 schematic {SID}"
    assert target.selector() == (
        f"arch=arm64,managed-by=hk8s,os=talos,schematic={SID[:63]},talos-version=v1.12.0"
    )


def test_build_labels_are_valid_and_carry_id_and_creation_time() -> None:
    labels = build_labels("ab12cd34", "amd64", 1_800_000_123.9)
    validate_labels(labels)
    assert labels["hk8s/build"] == "ab12cd34"
    assert labels["hk8s/created"] == "1800000123"
    assert labels["hk8s/role"] == "image-build"


def test_image_url_follows_the_image_factory_layout() -> None:
    target = ImageTarget("amd64", "v1.11.3", SID)
    assert image_url("https://factory.talos.dev/", target) == (
        f"https://factory.talos.dev/image/{SID}/v1.11.3/hcloud-amd64.raw.xz"
    )


@pytest.mark.parametrize(
    ("arch", "location", "expected"),
    [("amd64", "fsn1", "cx22"), ("amd64", "ash", "cpx11"), ("arm64", "nbg1", "cax11")],
)
def test_build_server_type_prefers_the_small_types(
    types: list[ServerType], arch: str, location: str, expected: str
) -> None:
    assert build_server_type(types, arch, location).name == expected  # type: ignore[arg-type]


def test_build_server_type_falls_back_to_the_smallest_of_the_arch(types: list[ServerType]) -> None:
    assert (
        build_server_type([t for t in types if t.name != "cax11"], "arm64", "fsn1").name == "cax21"
    )
    with pytest.raises(NotFoundError, match="no arm64 server type is available in ash"):
        build_server_type(types, "arm64", "ash")


def test_arm64_builds_move_to_a_location_that_offers_arm(types: list[ServerType]) -> None:
    assert build_location(types, "arm64", "ash") == "fsn1"
    assert build_location(types, "amd64", "ash") == "ash"


def test_needed_architectures_come_from_the_api_types(types: list[ServerType]) -> None:
    catalogue = {t.name: t for t in types}
    assert needed_architectures(["cx22", "cx32"], catalogue) == ["amd64"]
    assert needed_architectures(["cax21", "cx22"], catalogue) == ["amd64", "arm64"]
    with pytest.raises(NotFoundError, match="'cx99' does not exist"):
        needed_architectures(["cx99"], catalogue)


def _lsblk(*devices: dict[str, object]) -> str:
    return json.dumps({"blockdevices": list(devices)})


def test_boot_disk_is_sda_among_writable_whole_disks() -> None:
    text = _lsblk(
        {"name": "loop0", "type": "loop", "ro": True},
        {"name": "sdb", "path": "/dev/sdb", "type": "disk", "ro": False, "rm": False, "size": 10},
        {"name": "sda", "path": "/dev/sda", "type": "disk", "ro": False, "rm": False, "size": 9},
    )
    assert pick_boot_disk(text) == "/dev/sda"


def test_boot_disk_is_never_an_empty_device() -> None:
    # An empty virtual drive (size 0) listed before the real disk.
    text = _lsblk(
        {"name": "sda", "path": "/dev/sda", "type": "disk", "size": 0},
        {"name": "vdb", "path": "/dev/vdb", "type": "disk", "size": "40960000000"},
    )
    assert pick_boot_disk(text) == "/dev/vdb"


def test_boot_disk_ignores_what_a_login_shell_prints_around_the_output() -> None:
    # A chatty .bashrc (motd, fortune) used to turn into "no writable disk found".
    disk = {"name": "sda", "path": "/dev/sda", "type": "disk", "size": 9}
    text = f"Welcome to the rescue system!\n--hk8s-begin--\n{_lsblk(disk)}\n--hk8s-end--\nbye\n"
    assert pick_boot_disk(text) == "/dev/sda"


def test_boot_disk_accepts_old_util_linux_output() -> None:
    # util-linux < 2.33: no PATH column, RO/RM as "0"/"1" strings.
    text = _lsblk({"name": "vda", "type": "disk", "ro": "0", "rm": "0", "size": "42"})
    assert pick_boot_disk(text) == "/dev/vda"


@pytest.mark.parametrize(
    "text",
    [
        _lsblk(),
        _lsblk({"name": "sr0", "type": "rom", "ro": False}),
        _lsblk({"name": "sda", "type": "disk", "ro": True}),
        _lsblk({"name": "sdc", "type": "disk", "ro": False, "rm": True}),
        "lsblk: garbage",
    ],
)
def test_no_boot_disk(text: str) -> None:
    assert pick_boot_disk(text) is None
