"""What an installer image reference says: its schematic, its platform and its Talos version.

Pure functions of the reference string, shared by the fleet and the machine API (``Upgrade``).
"""

from __future__ import annotations

import re

__all__ = ["platform_of_image", "schematic_of_image", "version_of_image"]

_SCHEMATIC = re.compile(r"/[a-z-]*installer(?:-secureboot)?/([0-9a-f]{64}):")
_PLATFORM = re.compile(r"/(?:([a-z0-9]+)-)?installer(?:-secureboot)?[/:]")
_TAG = re.compile(r":(v\d+\.\d+\.\d+[^@/]*)(@sha256:[0-9a-f]+)?$")


def schematic_of_image(image: str) -> str | None:
    """``factory.talos.dev/hcloud-installer/<schematic>:v1.11.5`` -> the schematic id, else None."""
    match = _SCHEMATIC.search(image)
    return match.group(1) if match else None


def platform_of_image(image: str) -> str:
    """The platform an installer image installs: ``.../hcloud-installer/<id>:v1.12.0`` ->
    ``hcloud``; the bare ``installer`` (factory or ghcr.io) is the ``metal`` profile, whose
    UKI carries ``talos.platform=metal`` (what GRUB boots with ``grubUseUKICmdline``)."""
    match = _PLATFORM.search(image)
    return (match.group(1) or "metal") if match else "metal"


def version_of_image(image: str) -> str | None:
    """``ghcr.io/siderolabs/installer:v1.11.5`` (or a factory installer) -> ``v1.11.5``."""
    match = _TAG.search(image)
    return match.group(1) if match else None
