"""The simulated Talos Image Factory: schematics and small, real ``hcloud-<arch>.raw.xz`` images."""

from __future__ import annotations

from hk8s.sim.factory._images import (
    ARCHITECTURES,
    IMAGE_SIZE,
    TalosImage,
    build_image,
    raw_image,
    read_image,
)
from hk8s.sim.factory._schematic import (
    DEFAULT_SCHEMATIC_ID,
    Schematic,
    SchematicError,
    parse_schematic,
    schematic_id,
)
from hk8s.sim.factory._server import DEFAULT_VERSIONS, ImageFactory

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_SCHEMATIC_ID",
    "DEFAULT_VERSIONS",
    "IMAGE_SIZE",
    "ImageFactory",
    "Schematic",
    "SchematicError",
    "TalosImage",
    "build_image",
    "parse_schematic",
    "raw_image",
    "read_image",
    "schematic_id",
]
