"""The disk images the simulated factory serves, and how a written disk is recognised.

A real ``hcloud-amd64.raw.xz`` is a ~100 MiB xz of a GPT disk. Ours is a real xz file of a
small raw image whose first line says what it is; the rest is zero padding so that the
compressed and raw sizes differ like the real thing. The simulated rescue system writes the
decompressed bytes to its disk, and ``read_image`` finds the header there again when Hetzner
snapshots the disk, so a server created from that snapshot knows which Talos it boots.

>>> image = TalosImage("v1.11.3", "amd64", DEFAULT_SCHEMATIC_ID)
>>> read_image(lzma.decompress(build_image(image))) == image
True
"""

from __future__ import annotations

import functools
import lzma
import re
from dataclasses import dataclass

from hk8s.sim.factory._schematic import DEFAULT_SCHEMATIC_ID

__all__ = ["ARCHITECTURES", "IMAGE_SIZE", "TalosImage", "build_image", "raw_image", "read_image"]

ARCHITECTURES = ("amd64", "arm64")
# Raw (decompressed) size of every simulated image: 1 MiB.
IMAGE_SIZE = 1 << 20
_MAGIC = b"HK8S-SIM-TALOS-IMAGE"
_HEADER = re.compile(
    rb"^HK8S-SIM-TALOS-IMAGE version=(v\d+\.\d+\.\d+\S*) arch=(amd64|arm64) "
    rb"schematic=([0-9a-f]{64})\n"
)


@dataclass(frozen=True)
class TalosImage:
    """What a disk holds: which Talos release, for which CPU, built from which schematic."""

    version: str
    arch: str
    schematic: str = DEFAULT_SCHEMATIC_ID

    def header(self) -> bytes:
        return b"%s version=%s arch=%s schematic=%s\n" % (
            _MAGIC,
            self.version.encode(),
            self.arch.encode(),
            self.schematic.encode(),
        )


def raw_image(image: TalosImage) -> bytes:
    """The decompressed disk image: the header line, then zeros up to ``IMAGE_SIZE``."""
    header = image.header()
    return header + bytes(IMAGE_SIZE - len(header))


@functools.lru_cache(maxsize=64)
def build_image(image: TalosImage) -> bytes:
    """The ``.raw.xz`` file the factory serves for ``image`` (cached: xz is slow-ish)."""
    return lzma.compress(raw_image(image), format=lzma.FORMAT_XZ, preset=1)


def read_image(disk: bytes) -> TalosImage | None:
    """The Talos image at the start of ``disk``, or None (empty, wiped or foreign disk)."""
    match = _HEADER.match(disk[:256])
    if match is None:
        return None
    version, arch, schematic = (group.decode() for group in match.groups())
    return TalosImage(version, arch, schematic)
