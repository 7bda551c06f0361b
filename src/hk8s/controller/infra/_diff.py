"""Observe a cluster's infrastructure by label and diff it against the desired state.

Observation is four list calls whatever the cluster's size (design.md section 4): networks,
firewalls, load balancers and placement groups labelled ``cluster=<name>,managed-by=hk8s``.
The diff is pure: it returns ``Operation``s with a reason each, and the same comparison
functions drive the handlers when they adopt a resource a crashed run had created.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from hk8s.controller._plan import Change, Operation
from hk8s.errors import ConflictError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hk8s.controller.infra._desired import DesiredInfra
    from hk8s.model.resources import (
        Firewall,
        FirewallRule,
        FirewallSpec,
        LoadBalancer,
        LoadBalancerSpec,
        Network,
        NetworkSpec,
        PlacementGroup,
    )
    from hk8s.providers.hcloud import HcloudPort

__all__ = [
    "ObservedInfra",
    "diff_infra",
    "firewall_parts",
    "load_balancer_parts",
    "missing_labels",
    "network_parts",
    "observe_infra",
]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_N = TypeVar("_N", bound=_Named)


@dataclass(frozen=True)
class ObservedInfra:
    """Everything labelled as the cluster's infrastructure, as found."""

    networks: list[Network] = field(default_factory=list)
    firewalls: list[Firewall] = field(default_factory=list)
    load_balancers: list[LoadBalancer] = field(default_factory=list)
    placement_groups: list[PlacementGroup] = field(default_factory=list)

    def network(self, name: str) -> Network | None:
        return _one("network", name, self.networks)

    def firewall(self, name: str) -> Firewall | None:
        return _one("firewall", name, self.firewalls)

    def load_balancer(self, name: str) -> LoadBalancer | None:
        return _one("load balancer", name, self.load_balancers)


def _one(kind: str, name: str, found: Sequence[_N]) -> _N | None:
    same = [r for r in found if r.name == name]
    return same[0] if same else None


def _check_single(kind: str, component: str, found: list[object], cluster: str) -> None:
    # Two matches where one is expected is an error, never a guess (CAPH findNetwork).
    if len(found) > 1:
        names = ", ".join(sorted(getattr(r, "name", "?") for r in found))
        raise ConflictError(
            f"found {len(found)} {kind}s labelled cluster={cluster},component={component}: {names}",
            hint=f"delete or relabel the {kind}s hk8s should not manage",
        )


async def observe_infra(
    hcloud: HcloudPort, cluster: str, *, placement_groups: Sequence[PlacementGroup] | None = None
) -> ObservedInfra:
    """Four concurrent label-selector list calls; three when ``placement_groups`` (the
    cluster's, as this run already listed them with the same selector) are given."""
    selector = f"cluster={cluster},managed-by=hk8s"

    async def groups_of() -> Sequence[PlacementGroup]:
        if placement_groups is not None:
            return placement_groups
        return await hcloud.list_placement_groups(selector)

    networks, firewalls, lbs, groups = await asyncio.gather(
        hcloud.list_networks(selector),
        hcloud.list_firewalls(selector),
        hcloud.list_load_balancers(selector),
        groups_of(),
    )
    for kind, component, items in (
        ("network", "network", networks),
        ("firewall", "firewall", firewalls),
        ("load balancer", "load-balancer", lbs),
    ):
        tagged = [r for r in items if r.labels.get("component") == component]
        _check_single(kind, component, list(tagged), cluster)
    return ObservedInfra(list(networks), list(firewalls), list(lbs), list(groups))


def missing_labels(want: dict[str, str], have: dict[str, str]) -> dict[str, str] | None:
    """``have`` merged with ``want`` when a wanted label is missing or different, else None."""
    if all(have.get(k) == v for k, v in want.items()):
        return None
    return {**have, **want}


def network_parts(spec: NetworkSpec, current: Network) -> list[tuple[str, Change]]:
    """What to change on an existing network: missing subnets and labels."""
    if current.ip_range != spec.ip_range:
        raise ConflictError(
            f"network {current.name} has ip range {current.ip_range}, config says {spec.ip_range}",
            hint="hk8s does not change a live network's range; fix network.cidr in cluster.yaml",
        )
    parts: list[tuple[str, Change]] = []
    have = {s.ip_range for s in current.subnets}
    for subnet in spec.subnets:
        if subnet.ip_range not in have:
            parts.append((f"subnet {subnet.ip_range}", Change("subnets", sorted(have), subnet)))
    labels = missing_labels(spec.labels, current.labels)
    if labels is not None:
        parts.append(("labels", Change("labels", current.labels, labels)))
    return parts


def firewall_parts(spec: FirewallSpec, current: Firewall) -> list[tuple[str, Change]]:
    """Rules replaced only when they differ (order-insensitive); missing selectors applied."""
    parts: list[tuple[str, Change]] = []
    if sorted(r.key() for r in current.rules) != sorted(r.key() for r in spec.rules):
        parts.append(("rules", Change("rules", _rules(current.rules), _rules(spec.rules))))
    missing = [s for s in spec.apply_to_selectors if s not in current.applied_selectors]
    if missing:
        parts.append(("apply-to", Change("apply_to", list(current.applied_selectors), missing)))
    labels = missing_labels(spec.labels, current.labels)
    if labels is not None:
        parts.append(("labels", Change("labels", current.labels, labels)))
    return parts


def _rules(rules: tuple[FirewallRule, ...]) -> list[str]:
    """Rules as short sorted strings: ``in tcp/6443 from 203.0.113.7/32``."""
    return sorted(
        f"{r.direction} {r.protocol}/{r.port} from {','.join(sorted(r.source_ips))}" for r in rules
    )


def load_balancer_parts(
    spec: LoadBalancerSpec, current: LoadBalancer, network_id: int | None
) -> list[tuple[str, Change]]:
    """Type, network attachment, services and targets that differ from ``spec``."""
    parts: list[tuple[str, Change]] = []
    if current.type != spec.type:
        parts.append(("type", Change("type", current.type, spec.type)))
    attached = {p.network_id for p in current.private_ips}
    if network_id is None or network_id not in attached:
        parts.append(("network", Change("network", sorted(attached), network_id)))
    services = {s.listen_port: s for s in current.services}
    for service in spec.services:
        have = services.get(service.listen_port)
        if have != service:
            parts.append((f"service {service.listen_port}", Change("service", have, service)))
    for target in spec.targets:
        if target not in current.targets:
            parts.append((f"target {target.label_selector}", Change("targets", None, target)))
    labels = missing_labels(spec.labels, current.labels)
    if labels is not None:
        parts.append(("labels", Change("labels", current.labels, labels)))
    return parts


def diff_infra(desired: DesiredInfra, observed: ObservedInfra) -> list[Operation]:
    """The operations that turn ``observed`` into ``desired``. Pure.

    One operation per resource and verb; an update lists every change it makes, and its
    handler applies them in order (concurrent actions on one resource would only be ``locked``).
    """
    ops: list[Operation] = []
    net_spec = desired.network
    network = observed.network(net_spec.name)
    if network is None:
        ops.append(
            Operation("create", "network", net_spec.name, "does not exist", desired=net_spec)
        )
    else:
        parts = network_parts(net_spec, network)
        for part, change in parts:
            if part.startswith("subnet"):
                subnet = change.new
                ops.append(
                    Operation(
                        "create",
                        "subnet",
                        str(getattr(subnet, "ip_range", part)),
                        f"missing in network {network.name}",
                        changes=(change,),
                        desired=subnet,
                        current=network,
                    )
                )
        rest = [(p, c) for p, c in parts if not p.startswith("subnet")]
        if rest:
            ops.append(_update("network", net_spec.name, rest, net_spec, network))

    fw_spec = desired.firewall
    firewall = observed.firewall(fw_spec.name)
    if firewall is None:
        ops.append(Operation("create", "firewall", fw_spec.name, "does not exist", desired=fw_spec))
    elif parts := firewall_parts(fw_spec, firewall):
        ops.append(_update("firewall", fw_spec.name, parts, fw_spec, firewall))

    wanted = {g.name: g for g in desired.placement_groups}
    for spec in desired.placement_groups:
        if not any(g.name == spec.name for g in observed.placement_groups):
            ops.append(
                Operation("create", "placement-group", spec.name, "does not exist", desired=spec)
            )
    for group in observed.placement_groups:
        if group.name in wanted or group.labels.get("component") != "placement-group":
            continue
        if group.server_ids:
            continue  # still holds servers: removed once the pool's servers are gone
        reason = "no pool needs it and it is empty"
        ops.append(Operation("delete", "placement-group", group.name, reason, current=group))

    lb_spec = desired.load_balancer
    for lb in observed.load_balancers:
        if lb.labels.get("component") == "load-balancer" and (
            lb_spec is None or lb.name != lb_spec.name
        ):
            reason = "the API load balancer is disabled in the config"
            ops.append(Operation("delete", "load-balancer", lb.name, reason, current=lb))
    if lb_spec is not None:
        current_lb = observed.load_balancer(lb_spec.name)
        if current_lb is None:
            ops.append(
                Operation(
                    "create", "load-balancer", lb_spec.name, "does not exist", desired=lb_spec
                )
            )
        else:
            net_id = network.id if network else None
            if parts := load_balancer_parts(lb_spec, current_lb, net_id):
                ops.append(_update("load-balancer", lb_spec.name, parts, lb_spec, current_lb))
    return ops


def _update(
    kind: str, name: str, parts: list[tuple[str, Change]], desired: object, current: object
) -> Operation:
    reason = "; ".join(_reason(part, change) for part, change in parts)
    return Operation(
        "update",
        kind,
        name,
        reason,
        changes=tuple(change for _, change in parts),
        desired=desired,
        current=current,
        params={"parts": [part for part, _ in parts]},
    )


def _reason(part: str, change: Change) -> str:
    if change.old in (None, [], {}):
        return f"{part} missing"
    return f"{part} differ" if part.endswith("s") else f"{part} differs"
