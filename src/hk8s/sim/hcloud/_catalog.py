"""The fixed catalogue: locations, datacenters, server and load balancer types, system images.

Today's real catalogue (December 2026), so that hk8s' checks against the live API are tested
against what Hetzner really answers: the server types section below names the source of each
fact. Locations (ids, names, zones) and load balancer types are unchanged since 2023 (the
June 2026 price rise excluded load balancers, Hetzner's notice of 2026-05-28).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
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
US = ("ash", "hil")
ALL = tuple(LOCATIONS)

# ---------------------------------------------------------------------------- server types
# Hetzner's server type catalogue as GET /server_types answers in December 2026 (read
# 2026-12-07). Where each fact comes from:
#
# [changelog] docs.hetzner.cloud/changelog#2025-10-16-server-types-deprecated: cx22..cx52 and
#     cpx11..cpx51 deprecated on 2025-10-16; successors cx23..cx53 and cpx12..cpx62 (also
#     apricote/hcloud-upload-image#129, pulumi/pulumi-hcloud#939).
# [cli-2025-10] the hcloud tools' warning quoted in hcloud-talos/terraform-hcloud-talos#316
#     (2025-10-22): 'Server Type "cx42" is deprecated in all locations and will no longer be
#     available for order as of 2025-12-31'. Past that date a type is not returned by the
#     list endpoint (openapi.json, DeprecationInfo.unavailable_after): cx22..cx52 are absent.
# [tofu-2026-08] a terraform-provider-hcloud user, August 2026: 'Server Type "cpx11" is
#     unavailable in "nbg1" and can no longer be ordered', while /server_types still lists
#     cpx11 in nbg1 with a price and a top-level "deprecation": null (so it is not deprecated
#     in every location); cx43 and cx53 not orderable in nbg1 then (sold out); cpx12 is
#     1 vCPU / 2 GB / 40 GB; cax11, cpx12, cx23 orderable in nbg1.
# [api-2026-09-08] GET /server_types snapshot of 2026-09-08 (after the April/June 2026 price
#     rises), nbg1, EUR net per month: cx23 5.49, cx33 8.49, cx43 15.99, cx53 29.49, cpx22
#     19.49, cpx32 35.49, cpx42 69.49, cpx52 100.49, cpx62 129.99, ccx13 42.99, ccx23 85.99,
#     ccx33 138.49, ccx43 275.99, with the sizes used below.
# [plans-2026-09-03] hetzner.com plan pages and its price API, read 2026-09-03
#     (robhunter/agentdeals#1286): prices incl. EUR 0.50 for the primary IPv4, so minus 0.50
#     here: cax11 5.99, cax21 10.49, cax31 20.99, cax41 40.99, cpx12 11.49 (sin 15.49), cpx22
#     sin 26.49; CX and CAX have EU prices only, second-generation CPX EU and sin, not US.
# [families] CX and CAX are not sold in the US (trailofbits/algo#14562, Hetzner support);
#     first-generation CPX stays orderable in ash and hil, where the second generation is
#     not sold (hcloud-cloud-controller-manager#1057 moved its docs to cpx22; packer-plugin
#     #194: cpx11 "available in both US locations").
# Not found in any source, so chosen here and marked "assumed": the ids of the 2025 types,
# ccx53/ccx63 prices (ccx43 x2 and x3), first-generation CPX prices, and prices outside the
# EU other than those above (EU price reused; sin second-generation CPX scaled as cpx22).
# hk8s never reads ids, and prices only to break ties between equally small build types.
ANNOUNCED_2025 = "2025-10-16T00:00:00Z"  # [changelog]
UNORDERABLE_2025 = "2025-12-31T00:00:00Z"  # [cli-2025-10]
_SIN_CPX_FACTOR = 26.49 / 19.49  # [plans-2026-09-03] cpx22 sin / EU; other sin CPX assumed


SoldOut = Callable[[str, str], bool]


@dataclass(frozen=True)
class Offer:
    """A type in one location: its price, and whether it can be ordered there now."""

    monthly_eur: float
    available: bool = True
    deprecation: tuple[str, str] | None = None  # (announced, unavailable_after)

    def orderable(self, now: datetime) -> bool:
        if self.deprecation is None:
            return self.available
        return self.available and now < _parse(self.deprecation[1])


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


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
    offers: dict[str, Offer]

    @property
    def locations(self) -> tuple[str, ...]:
        return tuple(self.offers)

    def orderable_in(
        self, location: str, now: datetime | None = None, sold_out: SoldOut | None = None
    ) -> bool:
        offer = self.offers.get(location)
        if sold_out is not None and sold_out(self.name, location):
            return False
        return offer is not None and offer.orderable(now or datetime.now(UTC))

    def price(self, location: str) -> dict[str, Any]:
        return _price(location, self.offers[location].monthly_eur, 20 * 1024**4)

    def to_json(self, sold_out: SoldOut | None = None) -> dict[str, Any]:
        """The API's JSON; ``sold_out(type, location)`` marks injected sell-outs."""
        now = datetime.now(UTC)
        deprecations = [o.deprecation for o in self.offers.values()]
        everywhere = all(deprecations)
        return {
            "id": self.id,
            "name": self.name,
            "description": self.name.upper(),
            "cores": self.cores,
            "memory": self.memory,
            "disk": self.disk,
            # The type-level fields are set only when the type is deprecated in every
            # location ([tofu-2026-08]: cpx11 answers "deprecation": null).
            "deprecated": everywhere,
            "deprecation": _deprecation_json(deprecations[0]) if everywhere else None,
            "prices": [self.price(loc) for loc in self.offers],
            "storage_type": "local",
            "cpu_type": self.cpu_type,
            "category": self.category,
            "architecture": self.architecture,
            "locations": [
                {
                    "id": LOCATIONS[loc].id,
                    "name": loc,
                    "deprecation": _deprecation_json(offer.deprecation),
                    "recommended": self.orderable_in(loc, now, sold_out)
                    and offer.deprecation is None,
                    "available": self.orderable_in(loc, now, sold_out),
                }
                for loc, offer in self.offers.items()
            ],
        }


def _deprecation_json(deprecation: tuple[str, str] | None) -> dict[str, str] | None:
    if deprecation is None:
        return None
    return {"announced": deprecation[0], "unavailable_after": deprecation[1]}


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


def _everywhere(eur: float, where: tuple[str, ...], **overrides: Offer) -> dict[str, Offer]:
    offers = {loc: Offer(eur) for loc in where}
    offers.update(overrides)
    return offers


def _first_generation_cpx(eur: float) -> dict[str, Offer]:
    """Deprecated and unorderable where the second generation is sold (observed for nbg1
    [tofu-2026-08]; fsn1, hel1 and sin inferred), still sold in ash and hil ([families])."""
    gone = (ANNOUNCED_2025, UNORDERABLE_2025)
    offers = {loc: Offer(eur, available=False, deprecation=gone) for loc in (*EU, "sin")}
    offers.update({loc: Offer(eur) for loc in US})  # prices assumed (see above)
    return offers


def _second_generation_cpx(eur: float, sin: float | None = None) -> dict[str, Offer]:
    """Germany, Finland and Singapore; not the US ([plans-2026-09-03])."""
    return _everywhere(eur, EU, sin=Offer(sin or round(eur * _SIN_CPX_FACTOR, 2)))


def _types() -> dict[str, ServerType]:
    cx, cax, cpx, ccx = "cost_optimized", "cost_optimized", "regular_purpose", "general_purpose"
    rows: list[tuple[str, int, int, int, int, str, str, str, dict[str, Offer]]] = [
        # name, id (assumed for the 2025 types), cores, memory GB, disk GB, cpu, arch,
        # category, offers per location (EUR net per month); cx43 and cx53 are sold out in
        # nbg1 ([tofu-2026-08])
        ("cx23", 114, 2, 4, 40, "shared", "x86", cx, _everywhere(5.49, EU)),
        ("cx33", 115, 4, 8, 80, "shared", "x86", cx, _everywhere(8.49, EU)),
        ("cx43", 116, 8, 16, 160, "shared", "x86", cx,
         _everywhere(15.99, EU, nbg1=Offer(15.99, available=False))),
        ("cx53", 117, 16, 32, 320, "shared", "x86", cx,
         _everywhere(29.49, EU, nbg1=Offer(29.49, available=False))),
        ("cpx11", 22, 2, 2, 40, "shared", "x86", cpx, _first_generation_cpx(4.99)),
        ("cpx21", 23, 3, 4, 80, "shared", "x86", cpx, _first_generation_cpx(8.99)),
        ("cpx31", 24, 4, 8, 160, "shared", "x86", cpx, _first_generation_cpx(15.99)),
        ("cpx41", 25, 8, 16, 240, "shared", "x86", cpx, _first_generation_cpx(29.99)),
        ("cpx51", 26, 16, 32, 360, "shared", "x86", cpx, _first_generation_cpx(64.99)),
        ("cpx12", 108, 1, 2, 40, "shared", "x86", cpx, _second_generation_cpx(11.49, 15.49)),
        ("cpx22", 109, 2, 4, 80, "shared", "x86", cpx, _second_generation_cpx(19.49, 26.49)),
        ("cpx32", 110, 4, 8, 160, "shared", "x86", cpx, _second_generation_cpx(35.49)),
        ("cpx42", 111, 8, 16, 320, "shared", "x86", cpx, _second_generation_cpx(69.49)),
        ("cpx52", 112, 12, 24, 480, "shared", "x86", cpx, _second_generation_cpx(100.49)),
        ("cpx62", 113, 16, 32, 640, "shared", "x86", cpx, _second_generation_cpx(129.99)),
        ("cax11", 45, 2, 4, 40, "shared", "arm", cax, _everywhere(5.99, EU)),
        ("cax21", 93, 4, 8, 80, "shared", "arm", cax, _everywhere(10.49, EU)),
        ("cax31", 94, 8, 16, 160, "shared", "arm", cax, _everywhere(20.99, EU)),
        ("cax41", 95, 16, 32, 320, "shared", "arm", cax, _everywhere(40.99, EU)),
        ("ccx13", 96, 2, 8, 80, "dedicated", "x86", ccx, _everywhere(42.99, ALL)),
        ("ccx23", 97, 4, 16, 160, "dedicated", "x86", ccx, _everywhere(85.99, ALL)),
        ("ccx33", 98, 8, 32, 240, "dedicated", "x86", ccx, _everywhere(138.49, ALL)),
        ("ccx43", 99, 16, 64, 360, "dedicated", "x86", ccx, _everywhere(275.99, ALL)),
        ("ccx53", 100, 32, 128, 600, "dedicated", "x86", ccx, _everywhere(551.98, ALL)),
        ("ccx63", 101, 48, 192, 960, "dedicated", "x86", ccx, _everywhere(827.97, ALL)),
    ]  # fmt: skip
    return {
        name: ServerType(tid, name, cores, float(mem), disk, cpu, arch, cat, offers)
        for name, tid, cores, mem, disk, cpu, arch, cat, offers in rows
    }


SERVER_TYPES = _types()


def datacenter_json(location: Location, sold_out: SoldOut | None = None) -> dict[str, Any]:
    # Deprecated since 2026-04-01 in favour of server_types[].locations[].available
    # (hcloud-python v2.18.0 changelog), still answered; the same facts.
    ids = [t.id for t in SERVER_TYPES.values() if location.name in t.locations]
    sold = [t.id for t in SERVER_TYPES.values() if t.orderable_in(location.name, None, sold_out)]
    return {
        "id": location.datacenter_id,
        "name": location.datacenter_name,
        "description": f"{location.city} DC",
        "location": location.to_json(),
        "server_types": {"supported": ids, "available": sold, "available_for_migration": sold},
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
