"""cluster.yaml: the pydantic model, its loader with line numbers, and the facts it checks.

config = load_config("cluster.yaml")   # raises ConfigError with every problem found
for pool in config.pools():            # control plane ("cp") first, then workers
    ...
"""

from __future__ import annotations

from hk8s.config._backup import (
    BACKUP_NAMESPACE,
    BackupConfig,
    BackupCredentials,
    BackupRetention,
    parse_duration,
)
from hk8s.config._cluster import ClusterConfig
from hk8s.config._constants import LOCATION_ZONES
from hk8s.config._fields import Taint, cluster_name_problem, parse_taint
from hk8s.config._loader import load_config, parse_config
from hk8s.config._matrix import (
    VersionProblem,
    chart_line,
    matrix_data,
    parse_semver,
    talos_release,
    talos_upgrade_problem,
    version_problems,
)
from hk8s.config._model import (
    AddonConfig,
    AddonsConfig,
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
from hk8s.config._versions import (
    ADDON_CHARTS,
    CHART_LINES,
    DEFAULT_IMAGE_FACTORY,
    DEFAULT_KUBERNETES_VERSIONS,
    DEFAULT_TALOS_VERSION,
    HELM_IMAGE,
    PROVIDER_MINIMUMS,
    SUPPORTED_TALOS_MINORS,
    TALOS_BACKUP_IMAGE,
    TALOS_KUBERNETES_SUPPORT,
    TALOS_RELEASES,
    VANILLA_SCHEMATIC_ID,
    AddonChart,
    ChartLine,
    KubeRange,
    ProviderMinimum,
    TalosRelease,
)

__all__ = [
    "ADDON_CHARTS",
    "BACKUP_NAMESPACE",
    "CHART_LINES",
    "DEFAULT_IMAGE_FACTORY",
    "DEFAULT_KUBERNETES_VERSIONS",
    "DEFAULT_TALOS_VERSION",
    "HELM_IMAGE",
    "LOCATION_ZONES",
    "PROVIDER_MINIMUMS",
    "SUPPORTED_TALOS_MINORS",
    "TALOS_BACKUP_IMAGE",
    "TALOS_KUBERNETES_SUPPORT",
    "TALOS_RELEASES",
    "VANILLA_SCHEMATIC_ID",
    "AddonChart",
    "AddonConfig",
    "AddonsConfig",
    "BackupConfig",
    "BackupCredentials",
    "BackupRetention",
    "ChartLine",
    "ClusterConfig",
    "ControlPlaneConfig",
    "FirewallConfig",
    "KubeRange",
    "KubernetesConfig",
    "LoadBalancerConfig",
    "NetworkConfig",
    "NodePool",
    "ProviderMinimum",
    "Taint",
    "TalosConfig",
    "TalosPatches",
    "TalosRelease",
    "VersionProblem",
    "WorkerPoolConfig",
    "chart_line",
    "cluster_name_problem",
    "json_schema",
    "load_config",
    "matrix_data",
    "parse_config",
    "parse_duration",
    "parse_semver",
    "parse_taint",
    "talos_release",
    "talos_upgrade_problem",
    "version_problems",
]
