"""What a Talos snapshot is: its labels, its source URL, the build server that makes it.

A snapshot is found by labels, never by name (design.md section 3): ``os=talos``,
``arch=amd64|arm64``, ``talos-version``, ``schematic`` and ``managed-by=hk8s``. Hetzner label
values are at most 63 characters (docs.hetzner.cloud, "Labels") and a schematic id is a
64-character SHA-256, so the ``schematic`` label holds the id cut to 63 characters; the full id
is in the snapshot's description (``Talos v1.12.0 amd64 schematic <id>``).

>>> sid = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
>>> target = ImageTarget("amd64", "v1.12.0", sid)
>>> target.labels()["schematic"]
'376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4b'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hk8s.controller._ownership import (
    BUILD_FOR_LABEL,
    BUILD_ROLE,
    BUILD_ROLE_LABEL,
    TALOS_SNAPSHOT_LABELS,
)
from hk8s.errors import NotFoundError
from hk8s.model.labels import format_selector, sanitize_label_value

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from hk8s.model.resources import Image, ServerType

__all__ = [
    "ARCHITECTURES",
    "BUILD_ID_LABEL",
    "CREATED_LABEL",
    "SNAPSHOT_SELECTOR",
    "Arch",
    "ImageTarget",
    "build_labels",
    "build_site",
    "hetzner_arch",
    "hk8s_arch",
    "image_url",
    "needed_architectures",
]

Arch = Literal["amd64", "arm64"]
ARCHITECTURES: tuple[Arch, ...] = ("amd64", "arm64")

# Hetzner names architectures "x86" and "arm" (openapi.json, ServerType.architecture);
# Talos and the Image Factory say "amd64" and "arm64".
_TO_HK8S: dict[str, Arch] = {"x86": "amd64", "arm": "arm64", "amd64": "amd64", "arm64": "arm64"}

# Every snapshot hk8s built, whatever its version: what ``image list``/``prune`` look at.
SNAPSHOT_SELECTOR = format_selector(TALOS_SNAPSHOT_LABELS)

# Build servers and their SSH keys carry ``hk8s/role=image-build`` (``_ownership``),
# ``hk8s/build=<id>`` and ``hk8s/created=<unix seconds>``, so a run that was killed can be
# cleaned up by a later one.
BUILD_ID_LABEL = "hk8s/build"
CREATED_LABEL = "hk8s/created"


def hk8s_arch(hetzner: str) -> Arch:
    """``"x86"`` -> ``"amd64"``, ``"arm"`` -> ``"arm64"``."""
    try:
        return _TO_HK8S[hetzner]
    except KeyError:
        raise NotFoundError(f"unknown server architecture {hetzner!r}") from None


def hetzner_arch(arch: Arch) -> str:
    return "x86" if arch == "amd64" else "arm"


@dataclass(frozen=True)
class ImageTarget:
    """One snapshot hk8s wants: Talos ``version`` built from ``schematic`` for ``arch``."""

    arch: Arch
    version: str
    schematic: str

    @property
    def name(self) -> str:
        """Human and plan key: ``talos-v1.12.0-amd64-376567988ad3``."""
        return f"talos-{self.version}-{self.arch}-{self.schematic[:12]}"

    @property
    def description(self) -> str:
        return f"Talos {self.version} {self.arch} schematic {self.schematic}"

    def labels(self) -> dict[str, str]:
        return {
            "os": "talos",
            "arch": self.arch,
            "talos-version": sanitize_label_value(self.version),
            "schematic": sanitize_label_value(self.schematic),
            "managed-by": "hk8s",
        }

    def selector(self) -> str:
        return format_selector(self.labels())

    def matches(self, image: Image) -> bool:
        wanted = self.labels()
        return image.type == "snapshot" and all(image.labels.get(k) == v for k, v in wanted.items())


def image_url(factory: str, target: ImageTarget) -> str:
    """The Image Factory's Hetzner disk image (siderolabs/image-factory, "hcloud" platform)."""
    base = factory.rstrip("/")
    return f"{base}/image/{target.schematic}/{target.version}/hcloud-{target.arch}.raw.xz"


def build_labels(
    build_id: str, arch: Arch, created: float, cluster: str | None = None
) -> dict[str, str]:
    """Labels of a build's temporary server and SSH key (found again by ``hk8s/build``)."""
    labels = {
        "managed-by": "hk8s",
        BUILD_ROLE_LABEL: BUILD_ROLE,
        BUILD_ID_LABEL: build_id,
        CREATED_LABEL: str(int(created)),
        "arch": arch,
    }
    if cluster:
        labels[BUILD_FOR_LABEL] = cluster
    return labels


def _build_key(server_type: ServerType, location: str) -> tuple[bool, int, float, float, str]:
    """Not deprecated there, then the smallest disk (a snapshot boots only on types with at
    least its disk), then the cheapest there, then the least memory."""
    offer = server_type.offer(location)
    deprecated = offer is not None and offer.deprecation is not None
    price = offer.monthly_price if offer and offer.monthly_price is not None else math.inf
    return (deprecated, server_type.disk, price, server_type.memory, server_type.name)


def build_site(
    types: Sequence[ServerType],
    arch: Arch,
    location: str,
    zone_locations: Sequence[str],
    now: datetime,
) -> tuple[ServerType, str]:
    """The server type and location that build ``arch``: what the API says can be ordered
    right now in ``location``, else in another location of its network zone (snapshots
    belong to the project, not a location), else anywhere (arm64 ``cax`` is EU-only). In
    each tier the best type wins wherever it is sold (``_build_key``), ties going to the
    zone's order as the API lists it.

    Raises ``NotFoundError`` when no location sells a type of that architecture now.
    """
    everywhere = sorted({loc for t in types for loc in t.location_names})
    tiers = [[location], [z for z in zone_locations if z != location], everywhere]
    for tier in tiers:
        # Within a tier, the best type wherever it is sold (cheapest of the smallest disks).
        usable = [
            (_build_key(t, where), where, t)
            for where in tier
            for t in types
            if _TO_HK8S.get(t.architecture) == arch and t.orderable_in(where, now)
        ]
        if usable:
            _, where, best = min(usable, key=lambda item: (item[0], tier.index(item[1])))
            return best, where
    raise NotFoundError(
        f"Hetzner sells no {arch} server type in any location right now",
        hint="try again later, or check `hcloud server-type list` for availability",
        location=location,
    )


def needed_architectures(
    server_types: Sequence[str], catalogue: Mapping[str, ServerType]
) -> list[Arch]:
    """The architectures of the named server types, per the API (``cax11`` -> ``arm64``)."""
    found: set[Arch] = set()
    for name in server_types:
        server_type = catalogue.get(name)
        if server_type is None:
            raise NotFoundError(
                f"server type {name!r} does not exist",
                hint="pick a type from `hcloud server-type list` in cluster.yaml",
                server_type=name,
            )
        found.add(hk8s_arch(server_type.architecture))
    return [a for a in ARCHITECTURES if a in found]
