"""The simulated image factory, driven over HTTP like hk8s and the rescue system drive it."""

from __future__ import annotations

import asyncio
import json
import lzma
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest

from hk8s.sim.factory import (
    DEFAULT_SCHEMATIC_ID,
    IMAGE_SIZE,
    ImageFactory,
    TalosImage,
    read_image,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
async def factory() -> AsyncIterator[ImageFactory]:
    server = await ImageFactory().start("127.0.0.1", 0)
    yield server
    await server.close()


async def fetch(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    def run() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(url, data=data, timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    return await asyncio.to_thread(run)


async def test_image_is_real_xz_identifying_version_arch_schematic(factory: ImageFactory) -> None:
    url = f"{factory.url}/image/{DEFAULT_SCHEMATIC_ID}/v1.11.3/hcloud-arm64.raw.xz"
    status, body = await fetch(url)
    assert status == 200
    assert body.startswith(b"\xfd7zXZ\x00")  # the xz magic: `xz -d` accepts it
    raw = lzma.decompress(body)
    assert len(raw) == IMAGE_SIZE
    assert read_image(raw) == TalosImage("v1.11.3", "arm64", DEFAULT_SCHEMATIC_ID)


@pytest.mark.parametrize(
    "path",
    [
        f"/image/{'0' * 64}/v1.11.3/hcloud-amd64.raw.xz",  # unknown schematic
        f"/image/{DEFAULT_SCHEMATIC_ID}/v9.9.9/hcloud-amd64.raw.xz",  # unknown version
        f"/image/{DEFAULT_SCHEMATIC_ID}/v1.11.3/hcloud-riscv64.raw.xz",  # unknown arch
        f"/image/{DEFAULT_SCHEMATIC_ID}/v1.11.3/metal-amd64.iso",  # not an hcloud image
    ],
)
async def test_unknown_images_are_404(factory: ImageFactory, path: str) -> None:
    status, _ = await fetch(factory.url + path)
    assert status == 404


async def test_schematic_ids_match_factory_talos_dev(factory: ImageFactory) -> None:
    # Ids from factory.talos.dev: the empty schematic and qemu-guest-agent's well-known one.
    status, body = await fetch(f"{factory.url}/schematics", b"customization: {}\n")
    assert (status, json.loads(body)["id"]) == (201, DEFAULT_SCHEMATIC_ID)
    doc = {
        "customization": {
            "systemExtensions": {"officialExtensions": ["siderolabs/qemu-guest-agent"]}
        }
    }
    status, body = await fetch(f"{factory.url}/schematics", json.dumps(doc).encode())
    sid = json.loads(body)["id"]
    assert sid == "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"
    # The new schematic's images are now served.
    status, body = await fetch(f"{factory.url}/image/{sid}/v1.12.0/hcloud-amd64.raw.xz")
    assert status == 200
    assert read_image(lzma.decompress(body)) == TalosImage("v1.12.0", "amd64", sid)


async def test_bad_schematic_is_400(factory: ImageFactory) -> None:
    status, body = await fetch(f"{factory.url}/schematics", b"customization:\n  bogus: 1\n")
    assert status == 400
    assert b"bogus" in body


async def test_factory_mounted_under_a_prefix() -> None:
    factory = await ImageFactory(mount_prefix="/factory").start("127.0.0.1", 0)
    try:
        assert factory.url.endswith("/factory")
        url = f"{factory.url}/image/{DEFAULT_SCHEMATIC_ID}/v1.11.3/hcloud-amd64.raw.xz"
        assert (await fetch(url))[0] == 200
        assert (await fetch(url.replace("/factory", "")))[0] == 404
    finally:
        await factory.close()
