"""Machine-config reading (v1alpha1 and Talos 1.12+ documents) and the shared etcd model."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest

from hk8s.config import DEFAULT_KUBERNETES_VERSIONS, parse_config
from hk8s.machineconfig import render_machine_config
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


def _talos_114(env: Env, pool: str, workers: int = 1) -> bytes:
    cluster = parse_config(
        "name: demo\nlocation: fsn1\ntalos:\n  version: v1.14.1\n"
        f"control_plane:\n  count: 3\nworkers:\n  - name: app\n    count: {workers}\n"
        "    labels: {tier: app}\n"
    )
    text = render_machine_config(
        cluster, env.bundle, cluster.pool(pool), endpoint=env.endpoint, hostname=f"demo-{pool}-1"
    )
    return text.encode()


def test_talos_114_documents_are_read_by_a_114_node(env: Env) -> None:
    env.endpoint = "127.9.0.3"
    worker = parse_machine_config(_talos_114(env, "app"), "v1.14.1")
    assert worker.endpoint == "https://127.9.0.3:6443" and worker.cluster_name == "demo"
    assert worker.hostname == "demo-app-1"
    assert worker.cluster_id == env.bundle.cluster_id  # from DiscoveryIdentityConfig
    assert worker.install_image is not None and worker.install_image.endswith(":v1.14.1")
    assert worker.node_labels == {"tier": "app"} and worker.node_document
    assert worker.k8s_ca_key is None
    cp = parse_machine_config(_talos_114(env, "cp"), "v1.14.1")
    assert cp.control_plane and cp.etcd_ca and cp.k8s_ca_key is not None
    assert cp.node_taints == [{"key": "node-role.kubernetes.io/control-plane",
                               "effect": "NoSchedule"}]  # fmt: skip
    assert cp.kubernetes_version == DEFAULT_KUBERNETES_VERSIONS["1.14"]
    assert cp.cluster_key() == worker.cluster_key()
    # Without workers the generator leaves the control-plane taint out, and so does the node.
    untainted = parse_machine_config(_talos_114(env, "cp", workers=0), "v1.14.1")
    assert untainted.node_taints == []


def test_talos_114_documents_are_refused_by_older_nodes(env: Env) -> None:
    env.endpoint = "127.9.0.4"
    with pytest.raises(ConfigRejected) as info:
        parse_machine_config(_talos_114(env, "app"), "v1.13.9")
    assert str(info.value) == (
        "error decoding document v1alpha1/DiscoveryServiceConfig/default: "
        '"DiscoveryServiceConfig" "v1alpha1": not registered'
    )


def test_a_114_config_cannot_install_two_ways(env: Env) -> None:
    env.endpoint = "127.9.0.5"
    data = _talos_114(env, "app").replace(
        b"machine:\n", b"machine:\n    install: {disk: /dev/sda}\n", 1
    )
    with pytest.raises(
        ConfigRejected, match=r"incompatible with v1alpha1 config \(.machine.install\)"
    ):
        parse_machine_config(data, "v1.14.1")


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


@pytest.mark.parametrize("release", ["v1.13.9", "v1.14.1"])
def test_a_control_plane_carries_the_kubernetes_components_secrets(env: Env, release: str) -> None:
    """What the world's control plane is started with, from the v1alpha1 layout (1.13:
    ``cluster.aggregatorCA``, base64) and from 1.14's documents (PEM text) alike."""
    env.endpoint = "127.9.0.4"
    cluster = parse_config(
        f"name: demo\nlocation: fsn1\ntalos:\n  version: {release}\n"
        "control_plane:\n  count: 1\nworkers:\n  - name: app\n    count: 1\n"
    )
    text = render_machine_config(
        cluster, env.bundle, cluster.pool("cp"), endpoint=env.endpoint, hostname="demo-cp-1"
    )
    cp = parse_machine_config(text.encode(), release)
    assert cp.aggregator_ca_crt == env.bundle.k8s_aggregator_ca.cert_pem
    assert cp.aggregator_ca_key == env.bundle.k8s_aggregator_ca.key_pem
    assert cp.service_account_key == env.bundle.service_account_key_pem
    assert cp.secretbox == env.bundle.secretbox_encryption_secret
    assert (cp.service_subnet, cp.pod_subnet) == ("10.96.0.0/12", "10.244.0.0/16")
