"""Talos 1.14's multi-document machine config against upstream's generator output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import yaml

from hk8s.config import DEFAULT_KUBERNETES_VERSIONS
from hk8s.errors import ConfigError
from hk8s.machineconfig import render_machine_config

from .test_render import reference_documents

if TYPE_CHECKING:
    from collections.abc import Callable

    from hk8s.config import ClusterConfig
    from hk8s.pki import SecretsBundle

KUBE = "v" + DEFAULT_KUBERNETES_VERSIONS["1.14"]


def render(cfg: ClusterConfig, bundle: SecretsBundle, pool: str) -> list[dict[str, Any]]:
    text = render_machine_config(
        cfg, bundle, cfg.pool(pool), endpoint="10.0.1.254", hostname=f"demo-{pool}-1",
        cert_sans=["203.0.113.10"],
    )  # fmt: skip
    return list(yaml.safe_load_all(text))


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(d.get("kind", "v1alpha1")) + ("/" + d["name"] if "name" in d else ""): d
            for d in docs}  # fmt: skip


def paths(value: object, prefix: str = "") -> set[str]:
    if not isinstance(value, dict) or prefix.endswith(("configuration", "config", "ca")):
        return set()
    out: set[str] = set()
    for key, item in value.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out |= {path} | paths(item, path)
    return out


# Where hk8s deliberately differs from `talosctl gen config` for 1.14 (see _multidoc.py).
INTENDED = {
    "v1alpha1": {"persist"},  # not in the v1alpha1 schema
    "HostnameConfig": {"auto"},  # hk8s names the node: hostname, not auto: stable
}


@pytest.mark.parametrize(("pool", "role"), [("cp", "controlplane"), ("app", "worker")])
def test_documents_are_the_generators_in_its_order(
    pool: str,
    role: str,
    example_bundle: SecretsBundle,
    make_config: Callable[..., ClusterConfig],
) -> None:
    ours = render(make_config("1.14"), example_bundle, pool)
    theirs = reference_documents("1.14", role)
    # The generator adds UnattendedInstallConfig after the discovery documents when given an
    # install disk (the reference had none); no CNI means no KubeFlannelCNIConfig.
    kinds = [d.get("kind") for d in theirs if d.get("kind") != "KubeFlannelCNIConfig"]
    kinds.insert(kinds.index("DiscoveryIdentityConfig") + 1, "UnattendedInstallConfig")
    assert [d.get("kind") for d in ours] == kinds
    mine = by_kind(ours)
    for key, doc in by_kind(theirs).items():
        if key == "KubeFlannelCNIConfig":
            continue
        missing = paths(doc) - paths(mine[key]) - INTENDED.get(key.split("/")[0], set())
        assert missing == set(), key


def test_control_plane_settings_live_in_their_documents(
    example_bundle: SecretsBundle, make_config: Callable[..., ClusterConfig]
) -> None:
    docs = render(make_config("1.14"), example_bundle, "cp")
    d = by_kind(docs)
    main = d["v1alpha1"]
    assert set(main["machine"]) == {"type", "token", "ca", "certSANs", "features"}
    assert main["machine"]["certSANs"] == ["10.0.1.254", "203.0.113.10"]
    assert set(main["cluster"]) == {"token", "etcd", "externalCloudProvider"}
    assert main["cluster"]["externalCloudProvider"] == {"enabled": True}
    # etcd advertises the private address: the lowest routed one may be public (firewalled).
    assert main["cluster"]["etcd"]["advertisedSubnets"] == ["10.0.1.0/24"]
    install = d["UnattendedInstallConfig"]
    # the platform installer: a bare installer/ is the metal profile (issue 14, finding 1)
    assert install["installer"]["image"].startswith("factory.talos.dev/hcloud-installer/")
    assert install["installer"]["image"].endswith(":v1.14.1")
    assert install["provisioning"] == {
        "diskSelector": {"match": 'disk.dev_path == "/dev/sda"'},
        "wipe": False,
    }
    assert d["HostnameConfig"] == {"apiVersion": "v1alpha1", "kind": "HostnameConfig",
                                   "hostname": "demo-cp-1"}  # fmt: skip
    assert d["KubeClusterConfig"]["endpoint"] == "https://10.0.1.254:6443"
    node = d["KubeNodeConfig"]
    assert node["nodeIP"] == {"validSubnets": ["10.0.1.0/24"]}
    assert node["labels"] == {
        "node-role.kubernetes.io/control-plane": "",
        "node.kubernetes.io/exclude-from-external-load-balancers": "",
        "role": "cp",
    }
    assert node["taints"] == {"node-role.kubernetes.io/control-plane": "NoSchedule"}
    assert d["KubeletConfig"]["image"] == f"ghcr.io/siderolabs/kubelet:{KUBE}"
    assert d["KubeAPIServerConfig"]["image"] == f"registry.k8s.io/kube-apiserver:{KUBE}"
    assert d["KubeAPIServerConfig"]["certExtraSANs"] == ["10.0.1.254", "203.0.113.10"]
    assert d["KubeProxyConfig"]["enabled"] is False  # Cilium replaces kube-proxy
    assert "KubeFlannelCNIConfig" not in d  # Cilium is the CNI
    ca = d["KubeAPIServerCAConfig"]["issuingCA"]
    assert ca["cert"] == example_bundle.k8s_ca.cert_pem.decode()
    assert ca["key"] == example_bundle.k8s_ca.key_pem.decode()
    encryption = d["KubeEtcdEncryptionConfig"]["config"]["resources"][0]
    assert encryption["resources"] == ["secrets"]
    assert encryption["providers"][0]["secretbox"]["keys"][0]["name"] == "key2"
    issuer = d["KubeServiceAccountConfig"]["issuer"]
    assert issuer["issuerURL"] == "https://10.0.1.254:6443"
    assert "PRIVATE KEY" in issuer["privateKey"]


def test_worker_gets_no_private_keys_and_no_control_plane_documents(
    example_bundle: SecretsBundle, make_config: Callable[..., ClusterConfig]
) -> None:
    cfg = make_config("1.14")
    text = render_machine_config(
        cfg, example_bundle, cfg.pool("app"), endpoint="10.0.1.254", hostname="demo-app-1"
    )
    d = by_kind(list(yaml.safe_load_all(text)))
    assert d["v1alpha1"]["machine"]["ca"]["key"] == ""
    assert set(d["v1alpha1"]["cluster"]) == {"token", "externalCloudProvider"}
    assert d["KubeAPIServerCAConfig"] == {
        "apiVersion": "v1alpha1",
        "kind": "KubeAPIServerCAConfig",
        "acceptedCAs": [example_bundle.k8s_ca.cert_pem.decode()],
    }
    for key in (example_bundle.os_ca.key_pem, example_bundle.k8s_ca.key_pem):
        assert key.decode().splitlines()[1] not in text
    assert not {
        "KubeAPIServerConfig",
        "KubeServiceAccountConfig",
        "KubeEtcdEncryptionConfig",
    } & set(d)
    node = d["KubeNodeConfig"]
    assert node["labels"] == {"tier": "app"}
    assert node["taints"] == {"dedicated": "gpu:NoSchedule", "spot": "NoExecute"}


def test_without_workers_control_planes_are_not_tainted(
    example_bundle: SecretsBundle, make_config: Callable[..., ClusterConfig]
) -> None:
    node = by_kind(render(make_config("1.14", workers=False), example_bundle, "cp"))
    assert "taints" not in node["KubeNodeConfig"]


def test_patches_reach_the_new_documents_and_moved_fields_are_refused(
    example_bundle: SecretsBundle, make_config: Callable[..., ClusterConfig]
) -> None:
    patched = make_config(
        "1.14",
        patches="""
all:
  - apiVersion: v1alpha1
    kind: KubeletConfig
    extraArgs: {max-pods: "150"}
""",
    )
    d = by_kind(render(patched, example_bundle, "app"))
    assert d["KubeletConfig"]["extraArgs"] == {"max-pods": "150"}
    assert d["KubeletConfig"]["image"] == f"ghcr.io/siderolabs/kubelet:{KUBE}"
    legacy = make_config("1.14", patches="all:\n  - machine: {install: {wipe: true}}\n")
    with pytest.raises(ConfigError) as info:
        render(legacy, example_bundle, "cp")
    (problem,) = info.value.problems
    assert problem.path == "talos.patches.all[0]"
    assert "machine.install: unknown field for the Talos 1.14 contract" in problem.message
