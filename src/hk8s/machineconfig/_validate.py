"""Render every pool's machine config before anything exists, to find bad patches early.

A patch is only applied when a config is rendered, and ``create`` renders once servers exist:
``configs/production.yaml``'s ``machine.time`` patch (a field Talos 1.12 moved to its own
``TimeSyncConfig`` document) used to pass ``config validate`` and stop ``create`` after eight
servers were built. ``check_machine_configs`` renders each pool with a throwaway secrets
bundle and placeholder addresses, so ``config validate`` and the start of ``create`` report
every patch problem for the configured Talos version while nothing has been changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hk8s.errors import ConfigError, ConfigProblem
from hk8s.machineconfig._render import build_machine_config
from hk8s.pki import KeyAlgorithm, generate_secrets

if TYPE_CHECKING:
    from hk8s.config import ClusterConfig

__all__ = ["check_machine_configs"]

# Documentation addresses (RFC 5737) and a well-formed schematic id: only their shape matters.
_ENDPOINT = "192.0.2.10"
_SCHEMATIC = "0" * 64


def check_machine_configs(cluster: ClusterConfig) -> None:
    """Raise ``ConfigError`` listing every problem rendering any pool's machine config."""
    # ECDSA instead of RSA-4096 for the service-account key: the bundle is thrown away, and
    # the key algorithm does not change the config's structure.
    bundle = generate_secrets(service_account_algorithm=KeyAlgorithm.ECDSA_P256)
    problems: list[ConfigProblem] = []
    for pool in cluster.pools():
        try:
            build_machine_config(
                cluster,
                bundle,
                pool,
                endpoint=_ENDPOINT,
                hostname=pool.server_name(1),
                cert_sans=[_ENDPOINT],
                schematic=cluster.talos.effective_schematic or _SCHEMATIC,
            )
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        unique = list(dict.fromkeys(problems))
        raise ConfigError(f"machine configs for Talos {cluster.talos.version}", unique)
