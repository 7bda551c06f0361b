"""What a cluster's base infrastructure should look like, from its config (pure).

``InfraIntent`` is the slice of ``cluster.yaml`` the infra planner reads, with firewall sources
already resolved (``current`` -> the operator's IP). ``desired_infra`` turns it into the specs
of design.md section 3: names are deterministic and every resource carries ``cluster``,
``managed-by=hk8s`` and ``component`` labels, so a later run finds it by label.

>>> intent = InfraIntent(cluster="demo", location="fsn1", network_zone="eu-central",
...     network_cidr="10.0.0.0/16", node_subnet="10.0.1.0/24",
...     pools=(PoolIntent("cp", 3, "control-plane"),),
...     kube_api_sources=("203.0.113.7/32",), talos_api_sources=("203.0.113.7/32",))
>>> desired_infra(intent).firewall.name
'demo-fw'
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hk8s.controller._ownership import PLACEMENT_GROUP_SIZE, cluster_labels
from hk8s.errors import UsageError
from hk8s.model.resources import (
    FirewallRule,
    FirewallSpec,
    HealthCheck,
    LBService,
    LBTarget,
    LoadBalancerSpec,
    NetworkSpec,
    PlacementGroupSpec,
    Subnet,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "CURRENT_IP",
    "KUBE_API_PORT",
    "TALOS_API_PORT",
    "DesiredInfra",
    "InfraIntent",
    "LoadBalancerIntent",
    "PoolIntent",
    "desired_infra",
    "placement_group_names",
    "resolve_sources",
]

KUBE_API_PORT = 6443
TALOS_API_PORT = 50000
CURRENT_IP = "current"


@dataclass(frozen=True)
class PoolIntent:
    name: str
    count: int
    role: Literal["control-plane", "worker"]


@dataclass(frozen=True)
class LoadBalancerIntent:
    type: str = "lb11"
    location: str | None = None


@dataclass(frozen=True)
class InfraIntent:
    cluster: str
    location: str
    network_zone: str
    network_cidr: str
    node_subnet: str
    pools: tuple[PoolIntent, ...]
    kube_api_sources: tuple[str, ...]
    talos_api_sources: tuple[str, ...]
    load_balancer: LoadBalancerIntent | None = None


@dataclass(frozen=True)
class DesiredInfra:
    network: NetworkSpec
    firewall: FirewallSpec
    placement_groups: tuple[PlacementGroupSpec, ...]
    load_balancer: LoadBalancerSpec | None


def resolve_sources(sources: Iterable[str], my_ip: str | None) -> tuple[str, ...]:
    """Firewall sources as canonical CIDRs; ``current`` becomes ``my_ip``/32 (or /128).

    >>> resolve_sources(["current", "10.1.2.3/8"], "203.0.113.7")
    ('10.0.0.0/8', '203.0.113.7/32')
    """
    result: set[str] = set()
    for source in sources:
        if source == CURRENT_IP:
            if my_ip is None:
                raise UsageError(
                    "firewall source 'current' needs the operator's public IP",
                    hint="list CIDRs in firewall sources, or let hk8s look the IP up",
                )
            address = ipaddress.ip_address(my_ip.strip())
            result.add(f"{address}/{address.max_prefixlen}")
        else:
            try:
                result.add(str(ipaddress.ip_network(source, strict=False)))
            except ValueError as exc:
                raise UsageError(f"firewall source {source!r} is not a CIDR") from exc
    return tuple(sorted(result))


def placement_group_names(cluster: str, pool: str, count: int) -> list[str]:
    """One spread group per ``PLACEMENT_GROUP_SIZE`` servers: ``<cluster>-<pool>-pg-<k>``."""
    groups = max(1, math.ceil(count / PLACEMENT_GROUP_SIZE)) if count > 0 else 0
    return [f"{cluster}-{pool}-pg-{k}" for k in range(1, groups + 1)]


def firewall_rules(intent: InfraIntent) -> tuple[FirewallRule, ...]:
    """Inbound 6443 (Kubernetes API) and 50000 (Talos API) from the configured sources only."""
    rules = []
    if intent.kube_api_sources:
        rules.append(
            FirewallRule(
                "in",
                "tcp",
                str(KUBE_API_PORT),
                source_ips=intent.kube_api_sources,
                description="hk8s: Kubernetes API",
            )
        )
    if intent.talos_api_sources:
        rules.append(
            FirewallRule(
                "in",
                "tcp",
                str(TALOS_API_PORT),
                source_ips=intent.talos_api_sources,
                description="hk8s: Talos API",
            )
        )
    return tuple(rules)


def desired_infra(intent: InfraIntent) -> DesiredInfra:
    name = intent.cluster
    network = NetworkSpec(
        name=name,
        ip_range=intent.network_cidr,
        labels=cluster_labels(name, component="network"),
        subnets=(Subnet(ip_range=intent.node_subnet, network_zone=intent.network_zone),),
    )
    firewall = FirewallSpec(
        name=f"{name}-fw",
        labels=cluster_labels(name, component="firewall"),
        rules=firewall_rules(intent),
        apply_to_selectors=(f"cluster={name},managed-by=hk8s",),
    )
    groups = tuple(
        PlacementGroupSpec(
            name=group,
            labels=cluster_labels(name, component="placement-group", pool=pool.name),
        )
        for pool in intent.pools
        for group in placement_group_names(name, pool.name, pool.count)
    )
    lb = None
    if intent.load_balancer is not None:
        lb = LoadBalancerSpec(
            name=f"{name}-api",
            type=intent.load_balancer.type,
            location=intent.load_balancer.location or intent.location,
            labels=cluster_labels(name, component="load-balancer"),
            services=(
                LBService("tcp", KUBE_API_PORT, KUBE_API_PORT, HealthCheck("tcp", KUBE_API_PORT)),
            ),
            targets=(
                LBTarget(
                    "label_selector",
                    label_selector=f"cluster={name},role=control-plane",
                    use_private_ip=True,
                ),
            ),
        )
    return DesiredInfra(network, firewall, groups, lb)
