"""cluster.yaml: the pydantic model, its loader with line numbers, and the facts it checks.

config = load_config("cluster.yaml")   # raises ConfigError with every problem found
for pool in config.pools():            # control plane ("cp") first, then workers
    ...
"""

from __future__ import annotations

from hk8s.config._constants import (
    ADDON_CHARTS,
    DEFAULT_IMAGE_FACTORY,
    DEFAULT_KUBERNETES_VERSIONS,
    DEFAULT_TALOS_VERSION,
    LOCATION_ZONES,
    SUPPORTED_TALOS_MINORS,
    TALOS_KUBERNETES_SUPPORT,
    VANILLA_SCHEMATIC_ID,
    AddonChart,
)
from hk8s.config._fields import Taint, cluster_name_problem, parse_taint
from hk8s.config._loader import load_config, parse_config
from hk8s.config._model import (
    AddonConfig,
    AddonsConfig,
    ClusterConfig,
    ControlPlaneConfig,
    FirewallConfig,
    KubernetesConfig,
    LoadBalancerConfig,
    NetworkConfig,
    NodePool,
    TalosConfig,
    TalosPatches,
    WorkerPoolConfig,
)
from hk8s.config._schema import json_schema

__all__ = [
    "ADDON_CHARTS",
    "DEFAULT_IMAGE_FACTORY",
    "DEFAULT_KUBERNETES_VERSIONS",
    "DEFAULT_TALOS_VERSION",
    "LOCATION_ZONES",
    "SUPPORTED_TALOS_MINORS",
    "TALOS_KUBERNETES_SUPPORT",
    "VANILLA_SCHEMATIC_ID",
    "AddonChart",
    "AddonConfig",
    "AddonsConfig",
    "ClusterConfig",
    "ControlPlaneConfig",
    "FirewallConfig",
    "KubernetesConfig",
    "LoadBalancerConfig",
    "NetworkConfig",
    "NodePool",
    "Taint",
    "TalosConfig",
    "TalosPatches",
    "WorkerPoolConfig",
    "cluster_name_problem",
    "json_schema",
    "load_config",
    "parse_config",
    "parse_taint",
]
