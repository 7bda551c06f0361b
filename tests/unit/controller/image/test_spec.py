"""Snapshot labels, factory URLs, build server choice, boot disk discovery."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from hk8s.controller import ImageTarget, build_site, image_url, pick_boot_disk
from hk8s.controller.image._spec import build_labels, needed_architectures
from hk8s.errors import NotFoundError
from hk8s.model.catalogue import Deprecation
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


NOW = datetime(2026, 12, 7, tzinfo=UTC)
EU_ZONE = ("fsn1", "nbg1", "hel1")


@pytest.mark.parametrize(
    ("arch", "location", "zone", "expected"),
    [
        # the cheapest of the smallest disks: cx23 (5.49) beats cpx12 (11.49), both 40 GB
        ("amd64", "fsn1", EU_ZONE, ("cx23", "fsn1")),
        ("amd64", "ash", ("ash",), ("cpx11", "ash")),
        ("arm64", "nbg1", EU_ZONE, ("cax11", "nbg1")),
    ],
)
def test_build_site_takes_the_smallest_cheapest_type_sold_there(
    types: list[ServerType], arch: str, location: str, zone: tuple[str, ...], expected: object
) -> None:
    server_type, where = build_site(types, arch, location, zone, NOW)  # type: ignore[arg-type]
    assert (server_type.name, where) == expected


def _with(types: list[ServerType], name: str, location: str, **changes: object) -> list[ServerType]:
    """``types`` with ``name``'s entry for ``location`` changed (sold out, deprecated)."""
    out = []
    for t in types:
        if t.name == name:
            offers = tuple(
                dataclasses.replace(o, **changes) if o.name == location else o  # type: ignore[arg-type]
                for o in t.locations
            )
            t = dataclasses.replace(t, locations=offers)
        out.append(t)
    return out


def test_build_site_skips_what_is_sold_out_or_past_its_date_right_now(
    types: list[ServerType],
) -> None:
    sold_out = _with(types, "cx23", "fsn1", available=False)
    assert build_site(sold_out, "amd64", "fsn1", EU_ZONE, NOW)[0].name == "cpx12"
    gone = Deprecation(datetime(2025, 10, 16, tzinfo=UTC), datetime(2025, 12, 31, tzinfo=UTC))
    past = _with(types, "cx23", "fsn1", deprecation=gone)
    assert build_site(past, "amd64", "fsn1", EU_ZONE, NOW)[0].name == "cpx12"
    # deprecated but still orderable: used only when nothing current fits
    later = Deprecation(gone.announced, datetime(2027, 6, 30, tzinfo=UTC))
    only = [t for t in _with(types, "cx23", "fsn1", deprecation=later) if t.name == "cx23"]
    assert build_site(only, "amd64", "fsn1", EU_ZONE, NOW)[0].name == "cx23"


def test_build_site_falls_back_to_the_network_zone_then_anywhere(
    types: list[ServerType],
) -> None:
    cax_sold_out_in_fsn1 = _with(
        _with(types, "cax11", "fsn1", available=False), "cax21", "fsn1", available=False
    )
    # the same type at the same price elsewhere in the zone: the zone's order (the API's)
    server_type, where = build_site(cax_sold_out_in_fsn1, "arm64", "fsn1", EU_ZONE, NOW)
    assert (server_type.name, where) == ("cax11", "nbg1")
    # cheaper in hel1 than in nbg1: the cheapest of the smallest wins within the zone
    cheaper = _with(cax_sold_out_in_fsn1, "cax11", "hel1", monthly_price=4.99)
    server_type, where = build_site(cheaper, "arm64", "fsn1", EU_ZONE, NOW)
    assert (server_type.name, where) == ("cax11", "hel1")
    # arm64 is sold in no US location: snapshots are per project, so build in the EU
    server_type, where = build_site(types, "arm64", "ash", ("ash",), NOW)
    assert (server_type.name, where) == ("cax11", "fsn1")
    with pytest.raises(NotFoundError, match="sells no arm64 server type in any location"):
        build_site([t for t in types if t.architecture == "x86"], "arm64", "ash", ("ash",), NOW)


def test_needed_architectures_come_from_the_api_types(types: list[ServerType]) -> None:
    catalogue = {t.name: t for t in types}
    assert needed_architectures(["cx23", "cx33"], catalogue) == ["amd64"]
    assert needed_architectures(["cax21", "cx23"], catalogue) == ["amd64", "arm64"]
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
