"""The infra component: network + subnet, firewall, placement groups, API load balancer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hk8s.controller.infra._apply import InfraHandlers
from hk8s.controller.infra._desired import (
    CURRENT_IP,
    DesiredInfra,
    InfraIntent,
    LoadBalancerIntent,
    PoolIntent,
    desired_infra,
    resolve_sources,
)
from hk8s.controller.infra._diff import ObservedInfra, diff_infra, observe_infra
from hk8s.model.resources import LoadBalancer, Network

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from hk8s.config import ClusterConfig
    from hk8s.controller._executor import Handler
    from hk8s.controller._plan import Operation
    from hk8s.controller._report import Reporter
    from hk8s.model.resources import Firewall, PlacementGroup
    from hk8s.providers.hcloud import HcloudPort

__all__ = ["LB_FIREWALL_WARNING", "InfraComponent", "infra_intent", "needs_public_ip"]

# Hetzner Cloud Firewalls apply to servers only; a load balancer's public interface is not
# filtered by them (Hetzner docs, "Firewalls: FAQ").
LB_FIREWALL_WARNING = (
    "the Kubernetes API load balancer is not covered by the Hetzner firewall: port 6443 on its "
    "public IP is reachable from anywhere (the API still requires client certificates)"
)


class InfraComponent:
    """Plans and applies a cluster's base infrastructure (``hk8s infra``)."""

    def __init__(self, hcloud: HcloudPort, intent: InfraIntent) -> None:
        self.hcloud = hcloud
        self.intent = intent
        self.desired: DesiredInfra = desired_infra(intent)
        self.observed = ObservedInfra()
        self._groups: list[PlacementGroup] | None = None

    def listed_placement_groups(self, groups: Sequence[PlacementGroup]) -> None:
        """The cluster's placement groups as this run already listed them (``create``'s
        claim lists them all): the next ``observe`` takes them instead of listing again."""
        self._groups = list(groups)

    async def observe(self) -> None:
        groups, self._groups = self._groups, None
        self.observed = await observe_infra(
            self.hcloud, self.intent.cluster, placement_groups=groups
        )

    def diff(self) -> list[Operation]:
        return diff_infra(self.desired, self.observed)

    def handlers(self, reporter: Reporter) -> dict[str, Handler]:
        return InfraHandlers(self.hcloud, self.intent.cluster, self.observed, reporter).handlers()

    def warnings(self) -> list[str]:
        return [LB_FIREWALL_WARNING] if self.desired.load_balancer is not None else []

    def network_now(self, results: Mapping[str, object]) -> Network | None:
        """The cluster network after ``apply(results)``: as this run created, changed or
        deleted it (handlers return the resource as it is afterwards), else as observed."""
        key = f"network/{self.desired.network.name}"
        if key in results:
            found = results[key]
            return found if isinstance(found, Network) else None
        return self.observed.network(self.desired.network.name)

    def load_balancer_now(self, results: Mapping[str, object]) -> LoadBalancer | None:
        """The API load balancer after ``apply(results)``, as ``network_now``; None when there
        is none (the config has none, or this run deleted it). ``create`` names the cluster
        endpoint and converges protection from this instead of listing it again."""
        name = f"{self.intent.cluster}-api"
        key = f"load-balancer/{name}"
        if key in results:
            found = results[key]
            return found if isinstance(found, LoadBalancer) else None
        return self.observed.load_balancer(name)

    def summary(self, results: Mapping[str, object]) -> dict[str, Any]:
        """What exists after ``apply`` (results of this run, else as observed), as data."""
        d, o = self.desired, self.observed

        def pick(kind: str, name: str, observed: object) -> Any:
            return results.get(f"{kind}/{name}") or observed

        network: Network | None = pick("network", d.network.name, o.network(d.network.name))
        firewall: Firewall | None = pick("firewall", d.firewall.name, o.firewall(d.firewall.name))
        data: dict[str, Any] = {
            "cluster": self.intent.cluster,
            "network": {
                "name": d.network.name,
                "id": network.id if network else None,
                "ip_range": d.network.ip_range,
                "subnets": [s.ip_range for s in d.network.subnets],
            },
            "firewall": {
                "name": d.firewall.name,
                "id": firewall.id if firewall else None,
                "kube_api_sources": list(self.intent.kube_api_sources),
                "talos_api_sources": list(self.intent.talos_api_sources),
            },
            "placement_groups": [g.name for g in d.placement_groups],
            "load_balancer": None,
        }
        if d.load_balancer is not None:
            name = d.load_balancer.name
            lb: LoadBalancer | None = pick("load-balancer", name, o.load_balancer(name))
            data["load_balancer"] = {
                "name": name,
                "id": lb.id if lb else None,
                "type": d.load_balancer.type,
                "public_ipv4": lb.public_ipv4 if lb else None,
                "private_ips": [p.ip for p in lb.private_ips] if lb else [],
            }
        return data


def needs_public_ip(config: ClusterConfig) -> bool:
    """Whether a firewall source is ``current`` (then the CLI looks the IP up)."""
    fw = config.firewall
    return CURRENT_IP in (*fw.kube_api_sources, *fw.talos_api_sources)


def infra_intent(config: ClusterConfig, my_ip: str | None) -> InfraIntent:
    """The slice of ``cluster.yaml`` the infra planner needs, sources resolved."""
    lb = config.load_balancer
    return InfraIntent(
        cluster=config.name,
        location=config.location,
        network_zone=config.network_zone,
        network_cidr=str(config.network.cidr),
        node_subnet=str(config.network.node_subnet),
        pools=tuple(PoolIntent(p.name, p.count, p.role) for p in config.pools()),
        kube_api_sources=resolve_sources(config.firewall.kube_api_sources, my_ip),
        talos_api_sources=resolve_sources(config.firewall.talos_api_sources, my_ip),
        load_balancer=LoadBalancerIntent(lb.type, config.load_balancer_location)
        if lb.enabled
        else None,
    )
