"""Simulated Talos nodes: apid at ``<server-ip>:50000``, maintenance mode, mTLS, etcd, upgrades.

``TalosFleet`` runs one ``TalosNode`` per powered-on server whose disk holds a Talos image;
nodes of one cluster share a ``TalosCluster`` (etcd membership, the Kubernetes API's state).
The world connects the fleet to Hetzner power state and the Kubernetes API via ``FleetHooks``.
"""

from __future__ import annotations

from hk8s.sim.talos._cluster import EtcdError, EtcdMember, TalosCluster
from hk8s.sim.talos._config import ConfigRejected, MachineConfig, parse_machine_config
from hk8s.sim.talos._fleet import TALOS_API_PORT, TalosFleet
from hk8s.sim.talos._installer import version_of_image
from hk8s.sim.talos._machine import (
    FleetHooks,
    KubeletInfo,
    MachineDisk,
    NullHooks,
    TalosFaults,
    TalosTimings,
)
from hk8s.sim.talos._node import TalosNode

__all__ = [
    "TALOS_API_PORT",
    "ConfigRejected",
    "EtcdError",
    "EtcdMember",
    "FleetHooks",
    "KubeletInfo",
    "MachineConfig",
    "MachineDisk",
    "NullHooks",
    "TalosCluster",
    "TalosFaults",
    "TalosFleet",
    "TalosNode",
    "TalosTimings",
    "parse_machine_config",
    "version_of_image",
]
