"""A whole cluster.yaml (pydantic v2): the sections of ``_model`` and the rules across them.

Apart from the sections so that the cross-section rules (``_checks``), which validate each
section on its own, import the sections without importing the whole model that runs them.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, ValidationInfo, model_validator

from hk8s.config._backup import BackupConfig  # noqa: TC001 (pydantic reads it at runtime)
from hk8s.config._checks import Sections, cross_check, enabled_charts, pinned_addons
from hk8s.config._fields import invalid, parse_taint
from hk8s.config._model import (
    DEFER_CHECKS,
    AddonsConfig,
    ControlPlaneConfig,
    FirewallConfig,
    KubernetesConfig,
    LoadBalancerConfig,
    NetworkConfig,
    NodePool,
    TalosConfig,
    WorkerPoolConfig,
    _Model,
    fill_derived_defaults,
)
from hk8s.config._types import (
    NETWORK_ZONE_SCHEMA,
    ClusterName,
    Location,
    NetworkZone,
    derived_default,
)

__all__ = ["ClusterConfig", "sections_of"]


class ClusterConfig(_Model):
    """A whole cluster.yaml. ``name`` and ``location`` are required; the rest has defaults."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        # No coercion: `count: '3'` or `count: true` is a mistake to report, not to guess at.
        strict=True,
        title="hk8s cluster.yaml",
    )

    name: ClusterName = Field(description="Cluster name, prefix of every resource name.")
    location: Location = Field(description="Hetzner location: fsn1, nbg1, hel1, ash, hil, sin.")
    network_zone: NetworkZone = Field(
        default="eu-central",
        json_schema_extra=derived_default(**NETWORK_ZONE_SCHEMA),
        description="Derived from `location`; if given it must match.",
    )
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    control_plane: ControlPlaneConfig = Field(default_factory=ControlPlaneConfig)
    workers: list[WorkerPoolConfig] = Field(default_factory=list)
    talos: TalosConfig = Field(default_factory=TalosConfig)
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)
    load_balancer: LoadBalancerConfig = Field(default_factory=LoadBalancerConfig)
    firewall: FirewallConfig = Field(default_factory=FirewallConfig)
    addons: AddonsConfig = Field(default_factory=AddonsConfig)
    backup: BackupConfig | None = Field(
        default=None, description="Scheduled etcd backups to S3-compatible storage (talos-backup)."
    )
    protection: bool = Field(
        default=False, description="Refuse destroy and disable Hetzner deletes."
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_derived_defaults(cls, data: Any) -> Any:
        return fill_derived_defaults(data)

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> ClusterConfig:
        if isinstance(info.context, dict) and info.context.get(DEFER_CHECKS):
            return self
        problems = cross_check(sections_of(self))
        if problems:
            raise invalid("; ".join(f"{p.path}: {p.message}" for p in problems))
        return self

    def pools(self) -> list[NodePool]:
        """The control plane (pool ``cp``) followed by the worker pools, in config order."""
        cp = self.control_plane
        pools = [
            NodePool(
                cluster=self.name,
                name="cp",
                role="control-plane",
                count=cp.count,
                server_type=cp.server_type,
                location=cp.location or self.location,
                labels=dict(cp.labels),
                taints=tuple(parse_taint(t) for t in cp.taints),
            )
        ]
        pools.extend(
            NodePool(
                cluster=self.name,
                name=w.name,
                role="worker",
                count=w.count,
                server_type=w.server_type,
                location=w.location or self.location,
                labels=dict(w.labels),
                taints=tuple(parse_taint(t) for t in w.taints),
            )
            for w in self.workers
        )
        return pools

    def pool(self, name: str) -> NodePool:
        """The pool called ``name`` (``cp`` is the control plane); KeyError if absent."""
        for pool in self.pools():
            if pool.name == name:
                return pool
        raise KeyError(name)

    @property
    def load_balancer_location(self) -> str:
        return self.load_balancer.location or self.location

    @property
    def architectures(self) -> list[str]:
        """The CPU architectures the pools need Talos images for, sorted."""
        return sorted({pool.arch for pool in self.pools()})


def sections_of(config: ClusterConfig) -> Sections:
    """The sections of a config that validated as a whole (all of them), for ``cross_check``."""
    return Sections(
        location=config.location,
        network_zone=config.network_zone,
        zone_given="network_zone" in config.model_fields_set,
        network=config.network,
        control_plane=config.control_plane,
        workers=list(enumerate(config.workers)),
        talos=config.talos,
        kubernetes=config.kubernetes,
        load_balancer=config.load_balancer,
        charts=enabled_charts(config.addons),
        pinned_charts=pinned_addons(config.addons),
    )
