"""Hetzner delete protection for what ``hk8s create`` made, following the config's ``protection``.

design.md section 5: destroy respects ``protection``. The config flag alone only stops
``hk8s destroy`` run with that config; Hetzner's own delete protection (``change_protection``)
also stops ``destroy --name``, the console, the CLI and every other tool. So with
``protection: true`` ``create`` protects the cluster's servers, its API load balancer and its
network (the resources whose loss loses the cluster; firewalls, placement groups and SSH keys
cannot be protected), and with ``protection: false`` it lifts what it finds protected: that is
how the protection is lifted before ``hk8s destroy``.

Converging is idempotent: a resource already as wanted gets no request, so a re-run of
``create`` changes nothing. Servers a scale-down is about to remove are never protected (the
removal would fail on them): their protection is lifted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hk8s.controller._report import NullReporter, ProgressEvent, Reporter

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from hk8s.config import ClusterConfig
    from hk8s.model.resources import LoadBalancer, Network, Server
    from hk8s.providers.hcloud import HcloudPort, ProtectableKind

__all__ = ["ProtectionChange", "converge_delete_protection"]


@dataclass(frozen=True)
class ProtectionChange:
    """One resource whose delete protection is switched."""

    kind: ProtectableKind
    id: int
    name: str
    protected: bool

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def _owned(labels: dict[str, str], cluster: str, component: str | None = None) -> bool:
    return (
        labels.get("cluster") == cluster
        and labels.get("managed-by") == "hk8s"
        and (component is None or labels.get("component") == component)
    )


async def converge_delete_protection(
    hcloud: HcloudPort,
    config: ClusterConfig,
    servers: Sequence[Server],
    *,
    keep: Collection[str],
    reporter: Reporter | None = None,
    infra: tuple[LoadBalancer | None, Network | None] | None = None,
) -> list[ProtectionChange]:
    """Make delete protection match ``config.protection``; returns what was switched.

    ``servers`` are the cluster's servers as listed now, ``keep`` the names of those the
    config wants (any other is about to be removed and is left, or made, unprotected).
    ``infra``: the API load balancer (``<name>-api``) and the network (``<name>``) as this run
    found or made them (``create`` has both after its apply); without it they are looked up
    here. Either way only resources labelled as this cluster's are switched.
    """
    reporter = reporter or NullReporter()
    want = config.protection
    name = config.name
    lbs: Sequence[LoadBalancer]
    networks: Sequence[Network]
    if infra is None:
        selector = f"cluster={name},managed-by=hk8s"
        lbs, networks = await asyncio.gather(
            hcloud.list_load_balancers(selector, name=f"{name}-api"),
            hcloud.list_networks(selector, name=name),
        )
    else:
        lbs = [lb for lb in infra[:1] if lb is not None and lb.name == f"{name}-api"]
        networks = [n for n in infra[1:] if n is not None and n.name == name]
    changes: list[ProtectionChange] = []
    for server in servers:
        wanted = want and server.name in keep
        if _owned(server.labels, name) and server.protected != wanted:
            changes.append(ProtectionChange("server", server.id, server.name, wanted))
    for lb in lbs:
        if _owned(lb.labels, name, "load-balancer") and lb.protected != want:
            changes.append(ProtectionChange("load-balancer", lb.id, lb.name, want))
    for network in networks:
        if _owned(network.labels, name, "network") and network.protected != want:
            changes.append(ProtectionChange("network", network.id, network.name, want))
    if not changes:
        return []

    async def switch(change: ProtectionChange) -> None:
        key = f"protection/{change.kind}/{change.name}"
        verb = "on" if change.protected else "off"
        reporter.emit(ProgressEvent("started", key, f"delete protection {verb}: {change}"))
        await hcloud.set_delete_protection(change.kind, change.id, change.protected)
        reporter.emit(ProgressEvent("done", key, f"delete protection {verb}: {change}"))

    await asyncio.gather(*(switch(c) for c in changes))
    return changes
