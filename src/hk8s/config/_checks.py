"""Rules that relate several sections of cluster.yaml.

They run on whatever sections validated on their own, so a file with a bad Talos version and
overlapping CIDRs reports both at once instead of one per attempt.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from hk8s.config._constants import (
    DEFAULT_SERVER_TYPES,
    LOCATION_ZONES,
    SERVER_FAMILY_LOCATIONS,
)
from hk8s.config._fields import check_location, check_network_zone
from hk8s.config._matrix import version_problems
from hk8s.config._model import (
    AddonsConfig,
    ControlPlaneConfig,
    KubernetesConfig,
    LoadBalancerConfig,
    NetworkConfig,
    TalosConfig,
    WorkerPoolConfig,
    fill_derived_defaults,
)

if TYPE_CHECKING:
    from hk8s.config._yaml import Path

__all__ = ["Finding", "Sections", "cross_check", "enabled_charts", "pinned_addons"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class Finding:
    """One cross-section problem: where (as a YAML path), what, and what to do."""

    path: Path
    message: str
    hint: str | None = None


@dataclass
class Sections:
    """The sections of a config that are valid on their own; None when a section is broken."""

    location: str | None = None
    network_zone: str | None = None
    zone_given: bool = False
    network: NetworkConfig | None = None
    control_plane: ControlPlaneConfig | None = None
    workers: list[tuple[int, WorkerPoolConfig]] = field(default_factory=list)
    talos: TalosConfig | None = None
    kubernetes: KubernetesConfig | None = None
    load_balancer: LoadBalancerConfig | None = None
    # Chart versions of the enabled addons, by key; None when the addons section is broken.
    charts: dict[str, str] | None = None
    pinned_charts: frozenset[str] = frozenset()  # addons whose version the file sets

    @classmethod
    def partial(cls, raw: Any) -> Sections:
        """Validate each section of a raw document on its own, keeping the ones that pass."""
        if not isinstance(raw, dict):
            return cls()
        zone_given = "network_zone" in raw
        data = fill_derived_defaults(raw)
        workers_raw = data.get("workers", [])
        workers = []
        if isinstance(workers_raw, list):
            for index, item in enumerate(workers_raw):
                pool = _valid(WorkerPoolConfig, item)
                if pool is not None:
                    workers.append((index, pool))
        return cls(
            location=_valid_str(check_location, data.get("location")),
            network_zone=_valid_str(check_network_zone, data.get("network_zone")),
            zone_given=zone_given,
            network=_valid(NetworkConfig, data.get("network", {})),
            control_plane=_valid(ControlPlaneConfig, data.get("control_plane", {})),
            workers=workers,
            talos=_valid(TalosConfig, data.get("talos", {})),
            kubernetes=_valid(KubernetesConfig, data.get("kubernetes", {})),
            load_balancer=_valid(LoadBalancerConfig, data.get("load_balancer", {})),
            charts=enabled_charts(addons := _valid(AddonsConfig, data.get("addons", {}))),
            pinned_charts=pinned_addons(addons),
        )


def pinned_addons(addons: AddonsConfig | None) -> frozenset[str]:
    if addons is None:
        return frozenset()
    configured = addons.configured().items()
    return frozenset(name for name, addon in configured if "version" in addon.model_fields_set)


def enabled_charts(addons: AddonsConfig | None) -> dict[str, str] | None:
    if addons is None:
        return None
    return {name: addon.version for name, addon in addons.configured().items() if addon.enabled}


def _valid(model: type[_T], value: Any) -> _T | None:
    try:
        return TypeAdapter(model).validate_python({} if value is None else value)
    except ValidationError:
        return None


def _valid_str(check: Any, value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(check(value))
    except ValueError:
        return None


def cross_check(s: Sections) -> list[Finding]:
    """Every cross-section problem found in ``s``."""
    return [
        *_check_zone(s),
        *_check_network(s),
        *_check_pools(s),
        *_check_talos(s),
        *_check_versions(s),
    ]


def _check_zone(s: Sections) -> list[Finding]:
    findings: list[Finding] = []
    if s.location is None:
        return findings
    zone = LOCATION_ZONES[s.location]
    if s.zone_given and s.network_zone is not None and s.network_zone != zone:
        findings.append(
            Finding(
                ("network_zone",),
                f"location {s.location} is in network zone {zone}, not {s.network_zone}",
                f"set network_zone: {zone}, or leave it out (it is derived from location)",
            )
        )
    # A Hetzner network spans one network zone; servers elsewhere cannot join it
    # (Hetzner API reference, "Network Zones").
    same_zone = ", ".join(loc for loc, z in LOCATION_ZONES.items() if z == zone)
    located: list[tuple[Path, str | None]] = []
    if s.control_plane:
        located.append((("control_plane", "location"), s.control_plane.location))
    located.extend((("workers", i, "location"), w.location) for i, w in s.workers)
    if s.load_balancer:
        located.append((("load_balancer", "location"), s.load_balancer.location))
    for path, loc in located:
        if loc is not None and LOCATION_ZONES[loc] != zone:
            findings.append(
                Finding(
                    path,
                    f"{loc} is in network zone {LOCATION_ZONES[loc]}, the cluster is in {zone}",
                    f"a Hetzner network spans one zone; use one of: {same_zone}",
                )
            )
    return findings


def _check_network(s: Sections) -> list[Finding]:
    if s.network is None:
        return []
    n = s.network
    net = ipaddress.IPv4Network(n.cidr)
    subnet = ipaddress.IPv4Network(n.node_subnet)
    pods = ipaddress.IPv4Network(n.pod_cidr)
    services = ipaddress.IPv4Network(n.service_cidr)
    findings: list[Finding] = []
    # Hetzner: a network's ip_range must be RFC 1918 and at least a /24 (API reference,
    # POST /networks); 172.31.1.1 is the servers' public gateway and may not be in a subnet.
    private = [ipaddress.IPv4Network(c) for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
    if not any(net.subnet_of(p) for p in private):
        findings.append(
            Finding(
                ("network", "cidr"),
                f"{n.cidr} is not a private (RFC 1918) range",
                "use a range in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16",
            )
        )
    if net.prefixlen > 24:
        findings.append(
            Finding(("network", "cidr"), f"{n.cidr} is smaller than /24", "Hetzner needs >= /24")
        )
    if not subnet.subnet_of(net):
        findings.append(
            Finding(
                ("network", _blame(n, "node_subnet", "cidr")),
                f"node subnet {n.node_subnet} is not inside the network {n.cidr}",
                "pick a subnet of network.cidr, e.g. its first /24",
            )
        )
    if ipaddress.IPv4Address("172.31.1.1") in subnet:
        findings.append(
            Finding(
                ("network", "node_subnet"),
                f"{n.node_subnet} contains 172.31.1.1, Hetzner's public gateway",
                "pick a subnet that does not contain 172.31.1.1",
            )
        )
    for key, value in (("pod_cidr", pods), ("service_cidr", services)):
        if value.overlaps(net):
            findings.append(
                Finding(
                    ("network", key),
                    f"{key} {value} overlaps the network {net}",
                    "pods and services need ranges of their own, outside network.cidr",
                )
            )
    if pods.overlaps(services):
        findings.append(
            Finding(
                ("network", _blame(n, "service_cidr", "pod_cidr")),
                f"service_cidr {services} overlaps pod_cidr {pods}",
                "e.g. pod_cidr: 10.244.0.0/16 and service_cidr: 10.96.0.0/12",
            )
        )
    return findings


def _blame(network: NetworkConfig, preferred: str, other: str) -> str:
    """Of two conflicting fields, the one the user wrote (a default is never the culprit)."""
    written = network.model_fields_set
    return other if other in written and preferred not in written else preferred


def _check_pools(s: Sections) -> list[Finding]:
    findings: list[Finding] = []
    seen: dict[str, int] = {}
    for index, pool in s.workers:
        if pool.name in seen:
            findings.append(
                Finding(
                    ("workers", index, "name"),
                    f"worker pool name {pool.name!r} is already used by workers[{seen[pool.name]}]",
                    "pool names must be unique; they are part of the server names",
                )
            )
        seen.setdefault(pool.name, index)
    # Name lengths need no check: the cluster (<= 40) and pool (<= 15) limits keep
    # "<cluster>-<pool>-<n>" and "<cluster>-<pool>-pg-<k>" under 63 characters.
    typed: list[tuple[Path, str, str | None]] = []
    if s.control_plane:
        cp = s.control_plane
        typed.append((("control_plane", "server_type"), cp.server_type, cp.location))
    typed.extend((("workers", i, "server_type"), w.server_type, w.location) for i, w in s.workers)
    for path, server_type, loc in typed:
        where = loc or s.location
        for pattern, family, sold in SERVER_FAMILY_LOCATIONS:
            if where is None or not re.match(pattern, server_type) or where in sold:
                continue
            findings.append(
                Finding(
                    path,
                    f"server type {server_type} is not offered in {where}",
                    f"{family} servers are sold only in {', '.join(sorted(sold))}; "
                    f"in {where} use e.g. {' or '.join(DEFAULT_SERVER_TYPES[where])} "
                    "(the defaults there)",
                )
            )
    return findings


def _check_talos(s: Sections) -> list[Finding]:
    findings: list[Finding] = []
    if s.talos and s.talos.schematic and s.talos.extensions:
        findings.append(
            Finding(
                ("talos", "extensions"),
                "both a schematic and extensions are given",
                "a schematic id already fixes the extensions: keep one of the two",
            )
        )
    return findings


def _check_versions(s: Sections) -> list[Finding]:
    """Talos, Kubernetes and addon chart versions against the version matrix (``_versions``)."""
    return [
        Finding(p.path, p.message, p.hint)
        for p in version_problems(
            s.talos.version if s.talos else None,
            s.kubernetes.version if s.kubernetes else None,
            s.charts or {},
            pinned=s.pinned_charts,
        )
    ]
