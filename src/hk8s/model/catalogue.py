"""What Hetzner sells, as the API says right now: server types, load balancer types, locations.

hk8s never trusts a catalogue frozen in code: ``plan``, ``create``, ``infra``, ``upgrade`` and
``image build`` read these from the API once per run (one list call each) and decide with them.

Since 2025-09-24 a server type's deprecation is per location (docs.hetzner.cloud changelog,
"Server Types now depend on Locations"); since 2026-04-01 so is its availability
(``ServerType.locations[].available`` replaces ``Datacenter.server_types``, hcloud-python
v2.18.0 changelog). openapi.json, ``GET /server_types``: a type is

- only supported in the locations listed;
- deprecated in a location when that entry's ``deprecation`` is set;
- permanently unavailable there once ``deprecation.unavailable_after`` is in the past;
- temporarily unavailable there (sold out) while ``available`` is false.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

__all__ = [
    "Catalogue",
    "Deprecation",
    "LoadBalancerType",
    "Location",
    "ServerType",
    "ServerTypeLocation",
]


@dataclass(frozen=True)
class Deprecation:
    """Hetzner's ``DeprecationInfo``: announced on one date, unorderable from another."""

    announced: datetime
    unavailable_after: datetime

    def over(self, now: datetime) -> bool:
        """True once the type (in that location) can no longer be ordered."""
        return now >= self.unavailable_after


@dataclass(frozen=True)
class ServerTypeLocation:
    """A server type in one location: sold there or not, and at what monthly net price."""

    name: str
    available: bool = True
    recommended: bool = False
    deprecation: Deprecation | None = None
    monthly_price: float | None = None

    def orderable(self, now: datetime) -> bool:
        """Can a server of this type be created here right now?"""
        return self.available and not (self.deprecation and self.deprecation.over(now))


@dataclass(frozen=True)
class ServerType:
    name: str
    architecture: str  # Hetzner's words: "x86" or "arm"
    cores: int
    memory: float
    disk: int
    locations: tuple[ServerTypeLocation, ...] = ()
    cpu_type: str = "shared"

    def offer(self, location: str) -> ServerTypeLocation | None:
        """This type's entry for ``location``; None where it is not supported at all."""
        return next((loc for loc in self.locations if loc.name == location), None)

    @property
    def location_names(self) -> tuple[str, ...]:
        return tuple(loc.name for loc in self.locations)

    @property
    def deprecated(self) -> bool:
        """Deprecated in every location it is listed in (what ``deprecated: true`` meant)."""
        return bool(self.locations) and all(loc.deprecation for loc in self.locations)

    def orderable_in(self, location: str, now: datetime) -> bool:
        offer = self.offer(location)
        return offer is not None and offer.orderable(now)


@dataclass(frozen=True)
class LoadBalancerType:
    name: str
    locations: tuple[str, ...] = ()  # where the API prices it
    deprecation: Deprecation | None = None


@dataclass(frozen=True)
class Location:
    name: str
    network_zone: str


@dataclass(frozen=True)
class Catalogue:
    """One reading of the three catalogue endpoints."""

    server_types: tuple[ServerType, ...]
    load_balancer_types: tuple[LoadBalancerType, ...]
    locations: tuple[Location, ...]

    def server_type(self, name: str) -> ServerType | None:
        return next((t for t in self.server_types if t.name == name), None)

    def load_balancer_type(self, name: str) -> LoadBalancerType | None:
        return next((t for t in self.load_balancer_types if t.name == name), None)

    def location(self, name: str) -> Location | None:
        return next((loc for loc in self.locations if loc.name == name), None)

    def zone_locations(self, zone: str) -> list[str]:
        return [loc.name for loc in self.locations if loc.network_zone == zone]
