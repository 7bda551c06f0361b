"""Which machine-config changes a running node applies without a reboot, as Talos decides.

``Runtime.CanApplyImmediate`` (internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_runtime.go,
the same list in v1.11.6, v1.12.11 and v1.13.9) copies the fields that may change live from
the current v1alpha1 document into the new one and then compares the two whole documents:
any other difference needs a reboot. Documents other than v1alpha1 (Talos 1.12+'s
``HostnameConfig``, ...) are applied by their controllers and never ask for one.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

__all__ = ["can_apply_immediately"]

# .debug, .cluster, and these parts of .machine (CanApplyImmediate's list).
_LIVE_ROOT = ("debug", "cluster")
_LIVE_MACHINE = (
    "ca", "acceptedCAs", "time", "certSANs", "install", "network", "sysfs", "sysctls",
    "logging", "controlPlane", "kubelet", "kernel", "registries", "pods", "seccompProfiles",
    "nodeAnnotations", "nodeLabels", "nodeTaints",
)  # fmt: skip
# .machine.features.*, copied only when both documents have a features section.
_LIVE_FEATURES = (
    "kubernetesTalosAPIAccess", "kubePrism", "hostDNS", "imageCache", "nodeAddressSortAlgorithm",
)  # fmt: skip


def _v1alpha1(data: bytes) -> dict[str, Any]:
    for doc in yaml.safe_load_all(data.decode()):
        if isinstance(doc, dict) and "version" in doc and "kind" not in doc:
            return doc
    return {}


def _copy_field(new: dict[str, Any], current: dict[str, Any], key: str) -> None:
    if key in current:
        new[key] = copy.deepcopy(current[key])
    else:
        new.pop(key, None)


def can_apply_immediately(current: bytes, new: bytes) -> bool:
    """True when ``new`` differs from ``current`` only where Talos applies changes live."""
    was, will = _v1alpha1(current), copy.deepcopy(_v1alpha1(new))
    for key in _LIVE_ROOT:
        _copy_field(will, was, key)
    was_machine, will_machine = was.get("machine"), will.get("machine")
    if isinstance(was_machine, dict) and isinstance(will_machine, dict):
        for key in _LIVE_MACHINE:
            _copy_field(will_machine, was_machine, key)
        was_features, will_features = was_machine.get("features"), will_machine.get("features")
        if isinstance(was_features, dict) and isinstance(will_features, dict):
            for key in _LIVE_FEATURES:
                _copy_field(will_features, was_features, key)
    return bool(will == was)
