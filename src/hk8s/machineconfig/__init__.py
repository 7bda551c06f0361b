"""Talos machine configs per contract (1.11, 1.12, 1.13) from ``cluster.yaml``, with patches.

>>> from hk8s.machineconfig import render_machine_config
>>> text = render_machine_config(cfg, bundle, cfg.pool("cp"), endpoint="203.0.113.10",
...                              hostname="demo-cp-1")
"""

from __future__ import annotations

from hk8s.machineconfig._contract import SUPPORTED_CONTRACTS, Contract, contract_for
from hk8s.machineconfig._patch import PatchError, apply_patch, json_merge_patch
from hk8s.machineconfig._render import (
    apply_patches,
    build_machine_config,
    dump_documents,
    render_machine_config,
)
from hk8s.machineconfig._v1alpha1 import (
    INSTALL_DISK,
    INSTALLER_PLATFORM,
    KUBE_API_PORT,
    cluster_endpoint_url,
    installer_image,
)
from hk8s.machineconfig._validate import check_machine_configs

__all__ = [
    "INSTALLER_PLATFORM",
    "INSTALL_DISK",
    "KUBE_API_PORT",
    "SUPPORTED_CONTRACTS",
    "Contract",
    "PatchError",
    "apply_patch",
    "apply_patches",
    "build_machine_config",
    "check_machine_configs",
    "cluster_endpoint_url",
    "contract_for",
    "dump_documents",
    "installer_image",
    "json_merge_patch",
    "render_machine_config",
]
