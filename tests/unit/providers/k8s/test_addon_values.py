"""hk8s' default addon values that other commands rely on."""

from __future__ import annotations

from typing import Any

from hk8s.config import parse_config
from hk8s.providers.k8s import addon_values


def cluster(extra: str = "") -> Any:
    return parse_config("name: demo\nlocation: fsn1\n" + extra, source="cluster.yaml")


def test_csi_volumes_are_labelled_with_the_cluster_for_destroy() -> None:
    # hk8s destroy finds leftover CSI volumes by cluster=<name> (controller.volumeExtraLabels).
    values = addon_values(cluster(), "hcloud_csi")
    assert values["controller"]["volumeExtraLabels"] == {"cluster": "demo"}


def test_user_values_add_volume_labels_without_losing_the_cluster() -> None:
    config = cluster(
        "addons: {hcloud_csi: {values: {controller: {volumeExtraLabels: {env: prod},"
        " replicaCount: 2}}}}\n"
    )
    controller = addon_values(config, "hcloud_csi")["controller"]
    assert controller["volumeExtraLabels"] == {"cluster": "demo", "env": "prod"}
    assert controller["replicaCount"] == 2
