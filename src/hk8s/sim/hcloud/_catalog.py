"""The fixed catalogue: locations, datacenters, server and load balancer types, system images.

Names, ids, sizes and availability follow the public Hetzner catalogue (GET /locations,
/server_types, /load_balancer_types of api.hetzner.cloud in 2025): shared Intel ``cx``
types and Ampere ``cax`` (arm) types only in the EU locations, AMD ``cpx`` and dedicated ``ccx``
everywhere. Prices are indicative; hk8s never reads them, but the client requires the keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "DATACENTERS",
    "LB_TYPES",
    "LOCATIONS",
    "SERVER_TYPES",
    "SYSTEM_IMAGES",
    "Location",
    "ServerType",
    "SystemImage",
    "find_datacenter",
    "find_location",
]


@dataclass(frozen=True)
class Location:
    id: int
    name: str
    description: str
    country: str
    city: str
    latitude: float
    longitude: float
    network_zone: str
    datacenter_id: int
    datacenter_name: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "country": self.country,
            "city": self.city,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "network_zone": self.network_zone,
        }


LOCATIONS: dict[str, Location] = {
    loc.name: loc
    for loc in (
        Location(
            1,
            "fsn1",
            "Falkenstein DC Park 1",
            "DE",
            "Falkenstein",
            50.47612,
            12.370071,
            "eu-central",
            4,
            "fsn1-dc14",
        ),
        Location(
            2,
            "nbg1",
            "Nuremberg DC Park 1",
            "DE",
            "Nuremberg",
            49.452102,
            11.076665,
            "eu-central",
            2,
            "nbg1-dc3",
        ),
        Location(
            3,
            "hel1",
            "Helsinki DC Park 1",
            "FI",
            "Helsinki",
            60.169855,
            24.938379,
            "eu-central",
            3,
            "hel1-dc2",
        ),
        Location(
            4,
            "ash",
            "Ashburn, VA",
            "US",
            "Ashburn, VA",
            39.045128,
            -77.487442,
            "us-east",
            5,
            "ash-dc1",
        ),
        Location(
            5,
            "hil",
            "Hillsboro, OR",
            "US",
            "Hillsboro, OR",
            45.54222,
            -122.951924,
            "us-west",
            6,
            "hil-dc1",
        ),
        Location(
            6,
            "sin",
            "Singapore",
            "SG",
            "Singapore",
            1.283333,
            103.833333,
            "ap-southeast",
            7,
            "sin-dc1",
        ),
    )
}

EU = ("fsn1", "nbg1", "hel1")
ALL = tuple(LOCATIONS)


@dataclass(frozen=True)
class ServerType:
    id: int
    name: str
    cores: int
    memory: float
    disk: int
    cpu_type: str
    architecture: str
    category: str
    monthly_eur: float
    locations: tuple[str, ...]

    def price(self, location: str) -> dict[str, Any]:
        return _price(location, self.monthly_eur, 20 * 1024**4)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.name.upper(),
            "cores": self.cores,
            "memory": self.memory,
            "disk": self.disk,
            "deprecated": False,
            "deprecation": None,
            "prices": [self.price(loc) for loc in self.locations],
            "storage_type": "local",
            "cpu_type": self.cpu_type,
            "category": self.category,
            "architecture": self.architecture,
            "locations": [
                {
                    "id": LOCATIONS[loc].id,
                    "name": loc,
                    "deprecation": None,
                    "recommended": True,
                    "available": True,
                }
                for loc in self.locations
            ],
        }


def _money(value: float) -> dict[str, str]:
    return {"net": f"{value:.10f}", "gross": f"{value * 1.19:.10f}"}


def _price(location: str, monthly: float, traffic: int) -> dict[str, Any]:
    return {
        "location": location,
        "price_hourly": _money(round(monthly / 730, 4)),
        "price_monthly": _money(monthly),
        "included_traffic": traffic,
        "price_per_tb_traffic": _money(1.0),
    }


def _types() -> dict[str, ServerType]:
    rows = [
        # name, id, cores, memory GB, disk GB, cpu, arch, category, EUR/month, locations
        ("cx22", 104, 2, 4, 40, "shared", "x86", "cost_optimized", 3.79, EU),
        ("cx32", 105, 4, 8, 80, "shared", "x86", "cost_optimized", 6.80, EU),
        ("cx42", 106, 8, 16, 160, "shared", "x86", "cost_optimized", 16.40, EU),
        ("cx52", 107, 16, 32, 320, "shared", "x86", "cost_optimized", 32.40, EU),
        ("cpx11", 22, 2, 2, 40, "shared", "x86", "regular_purpose", 4.35, ALL),
        ("cpx21", 23, 3, 4, 80, "shared", "x86", "regular_purpose", 7.55, ALL),
        ("cpx31", 24, 4, 8, 160, "shared", "x86", "regular_purpose", 13.60, ALL),
        ("cpx41", 25, 8, 16, 240, "shared", "x86", "regular_purpose", 25.20, ALL),
        ("cpx51", 26, 16, 32, 360, "shared", "x86", "regular_purpose", 54.90, ALL),
        ("cax11", 45, 2, 4, 40, "shared", "arm", "cost_optimized", 3.79, EU),
        ("cax21", 93, 4, 8, 80, "shared", "arm", "cost_optimized", 6.49, EU),
        ("cax31", 94, 8, 16, 160, "shared", "arm", "cost_optimized", 12.49, EU),
        ("cax41", 95, 16, 32, 320, "shared", "arm", "cost_optimized", 24.49, EU),
        ("ccx13", 96, 2, 8, 80, "dedicated", "x86", "general_purpose", 12.49, ALL),
        ("ccx23", 97, 4, 16, 160, "dedicated", "x86", "general_purpose", 24.49, ALL),
        ("ccx33", 98, 8, 32, 240, "dedicated", "x86", "general_purpose", 48.49, ALL),
        ("ccx43", 99, 16, 64, 360, "dedicated", "x86", "general_purpose", 96.49, ALL),
        ("ccx53", 100, 32, 128, 600, "dedicated", "x86", "general_purpose", 192.49, ALL),
        ("ccx63", 101, 48, 192, 960, "dedicated", "x86", "general_purpose", 288.49, ALL),
    ]
    return {
        name: ServerType(tid, name, cores, float(mem), disk, cpu, arch, cat, eur, locs)
        for name, tid, cores, mem, disk, cpu, arch, cat, eur, locs in rows
    }


SERVER_TYPES = _types()


def datacenter_json(location: Location) -> dict[str, Any]:
    ids = [t.id for t in SERVER_TYPES.values() if location.name in t.locations]
    return {
        "id": location.datacenter_id,
        "name": location.datacenter_name,
        "description": f"{location.city} DC",
        "location": location.to_json(),
        "server_types": {"supported": ids, "available": ids, "available_for_migration": ids},
    }


DATACENTERS: dict[str, Location] = {loc.datacenter_name: loc for loc in LOCATIONS.values()}


def find_location(value: object) -> Location | None:
    """openapi.json: ``location`` is "ID or name of Location", a string or an integer."""
    if isinstance(value, bool):
        return None
    for location in LOCATIONS.values():
        if value in (location.name, location.id, str(location.id)):
            return location
    return None


def find_datacenter(value: object) -> Location | None:
    """``datacenter``, "ID or name of Datacenter": its location."""
    if isinstance(value, bool):
        return None
    for location in LOCATIONS.values():
        if value in (location.datacenter_name, location.datacenter_id, str(location.datacenter_id)):
            return location
    return None


def _lb_types() -> dict[str, dict[str, Any]]:
    rows = [
        ("lb11", 1, 10000, 5, 25, 10, 5.39),
        ("lb21", 2, 20000, 15, 75, 25, 16.40),
        ("lb31", 3, 40000, 30, 150, 50, 32.40),
    ]
    return {
        name: {
            "id": tid,
            "name": name,
            "description": name.upper(),
            "max_connections": conns,
            "max_services": services,
            "max_targets": targets,
            "max_assigned_certificates": certs,
            "deprecated": None,
            "prices": [_price(loc, eur, 1024**4) for loc in ALL],
        }
        for name, tid, conns, services, targets, certs, eur in rows
    }


LB_TYPES = _lb_types()


@dataclass(frozen=True)
class SystemImage:
    id: int
    name: str
    os_flavor: str
    os_version: str
    architecture: str


SYSTEM_IMAGES = (
    SystemImage(114690387, "debian-12", "debian", "12", "x86"),
    SystemImage(114690389, "debian-12", "debian", "12", "arm"),
    SystemImage(161547269, "ubuntu-24.04", "ubuntu", "24.04", "x86"),
    SystemImage(161547270, "ubuntu-24.04", "ubuntu", "24.04", "arm"),
)
