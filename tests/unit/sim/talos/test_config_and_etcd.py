"""Machine-config reading (v1alpha1 and Talos 1.12+ documents) and the shared etcd model."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest

from hk8s.sim.talos import ConfigRejected, EtcdError, TalosCluster, parse_machine_config
from hk8s.sim.talos._config import _multierror

if TYPE_CHECKING:
    from .conftest import Env  # type: ignore[import-not-found]


def test_reads_what_the_node_acts_on(env: Env) -> None:
    env.endpoint = "127.9.0.2"
    config = parse_machine_config(env.config("app", "demo-app-1"))
    assert config.type == "worker" and not config.control_plane
    assert config.endpoint == "https://127.9.0.2:6443"
    assert config.hostname == "demo-app-1"
    assert config.node_labels["tier"] == "app"
    assert config.os_ca_key is None and config.k8s_ca_key is None
    assert config.kubernetes_version is not None
    cp = parse_machine_config(env.config("cp", "demo-cp-1"))
    assert cp.control_plane and cp.etcd_ca and cp.os_ca_key is not None
    assert cp.cluster_key() == config.cluster_key()  # both join the same cluster


def test_talos_112_documents_and_taints(env: Env) -> None:
    crt = base64.b64encode(env.bundle.os_ca.cert_pem)
    text = b"""version: v1alpha1
machine:
  type: worker
  token: abcdef.0123456789abcdef
  ca: {crt: CRT}
  nodeTaints: {dedicated: "gpu:NoSchedule", spot: NoExecute}
  kubelet: {image: "ghcr.io/siderolabs/kubelet:v1.34.1"}
cluster:
  controlPlane: {endpoint: "https://demo.example:6443"}
---
apiVersion: v1alpha1
kind: HostnameConfig
hostname: demo-w-7
"""
    config = parse_machine_config(text.replace(b"CRT", crt))
    assert config.hostname == "demo-w-7"
    assert config.kubernetes_version == "1.34.1"
    assert config.node_taints == [
        {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
        {"key": "spot", "effect": "NoExecute"},
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"version: v1alpha2\n", "not registered"),
        (b"apiVersion: v1alpha1\nkind: HostnameConfig\n", "doesn't contain v1alpha1 config"),
        (b"apiVersion: v1alpha1\n", "missing kind"),
        (b"version: v1alpha1\n", "machine instructions are required"),
        (b"version: v1alpha1\nmachine: {type: worker}\n", "cluster instructions are required"),
    ],
)
def test_rejections(data: bytes, message: str) -> None:
    with pytest.raises(ConfigRejected, match=message):
        parse_machine_config(data)


def test_multierror_format_matches_go_multierror() -> None:
    assert _multierror(["a", "b"]) == "2 errors occurred:\n\t* a\n\t* b\n\n"


def test_etcd_membership_quorum_and_leadership() -> None:
    cluster = TalosCluster("id", "https://127.9.0.2:6443", "demo")
    with pytest.raises(EtcdError, match="not bootstrapped"):
        cluster.require_quorum()
    first = cluster.bootstrap("cp-1", "127.9.0.3")
    second = cluster.join("cp-2", "127.9.0.4")
    third = cluster.join("cp-3", "127.9.0.5")
    assert cluster.leader == first.id
    assert cluster.join("cp-2", "127.9.0.4") is second  # a rebooted member re-joins as itself
    cluster.set_started("127.9.0.3", False)  # the leader goes down: a new one is elected
    assert cluster.leader in {second.id, third.id} and cluster.quorum()
    cluster.set_started("127.9.0.4", False)  # 1 of 3 up: no quorum, no leader
    assert not cluster.quorum() and cluster.leader == 0
    with pytest.raises(EtcdError, match="no leader"):
        cluster.remove(third.id)
    cluster.set_started("127.9.0.3", True)
    new_leader = cluster.forfeit(cluster.members[cluster.leader].ip)
    assert new_leader in {"cp-1", "cp-3"}
    with pytest.raises(EtcdError, match="member not found"):
        cluster.remove(12345)
