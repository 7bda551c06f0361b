"""The simulated node's reboot decision against upstream's CanApplyImmediate list."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from hk8s.sim.talos._immediate import can_apply_immediately

BASE: dict[str, Any] = {
    "version": "v1alpha1",
    "debug": False,
    "machine": {
        "type": "controlplane",
        "token": "abcdef.0123456789abcdef",
        "ca": {"crt": "Y3J0", "key": "a2V5"},
        "kubelet": {"image": "ghcr.io/siderolabs/kubelet:v1.34.1"},
        "install": {"disk": "/dev/sda", "image": "f/hcloud-installer/x:v1.11.3"},
        "features": {"rbac": True, "kubePrism": {"enabled": True, "port": 7445}},
    },
    "cluster": {"clusterName": "demo", "controlPlane": {"endpoint": "https://x:6443"}},
}


def _with(path: str, value: Any) -> bytes:
    doc = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    extra = {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "hostname": "other"}
    return yaml.safe_dump_all([doc, extra]).encode()


@pytest.mark.parametrize(
    "path",
    [
        "debug",
        "cluster.clusterName",
        "machine.ca",  # Talos applies CA changes live
        "machine.certSANs",
        "machine.install.image",
        "machine.kubelet.image",
        "machine.network",
        "machine.sysctls",
        "machine.nodeLabels",
        "machine.nodeTaints",
        "machine.features.kubePrism",
        "machine.features.hostDNS",
    ],
)
def test_live_changes(path: str) -> None:
    assert can_apply_immediately(_with("debug", False), _with(path, {"changed": "1"}))


@pytest.mark.parametrize(
    "path",
    [
        "machine.token",  # the trustd token
        "machine.files",
        "machine.env",
        "machine.udev",
        "machine.features.rbac",  # feature flags other than the five live ones
        "machine.features.diskQuotaSupport",
        "machine.type",
    ],
)
def test_changes_that_need_a_reboot(path: str) -> None:
    assert not can_apply_immediately(_with("debug", False), _with(path, {"changed": "1"}))


def test_live_feature_fields_need_features_on_both_sides() -> None:
    # CanApplyImmediate copies the live feature fields only when both configs have features.
    without = copy.deepcopy(BASE)
    del without["machine"]["features"]
    assert not can_apply_immediately(yaml.safe_dump(without).encode(), _with("debug", False))
