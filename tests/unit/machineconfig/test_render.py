from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import pytest
import yaml

import _reference
from hk8s.config import DEFAULT_KUBERNETES_VERSIONS
from hk8s.errors import ConfigError
from hk8s.machineconfig import (
    build_machine_config,
    cluster_endpoint_url,
    contract_for,
    installer_image,
    render_machine_config,
)
from hk8s.pki import generate_secrets

if TYPE_CHECKING:
    from collections.abc import Callable

    from jsonschema.protocols import Validator  # type: ignore[import-untyped]

    from hk8s.config import ClusterConfig
    from hk8s.pki import SecretsBundle

    Validators = dict[str, tuple[Validator, Validator]]

REFERENCE = _reference.REFERENCE / "talos"
CONTRACTS = ("1.11", "1.12", "1.13", "1.14")
# Releases whose config is one v1alpha1 document (+ HostnameConfig); 1.14: test_multidoc.py.
LEGACY = ("1.11", "1.12", "1.13")
ROLES = (("cp", "controlplane"), ("app", "worker"))


def _render(cfg: ClusterConfig, bundle: SecretsBundle, pool: str) -> list[dict[str, Any]]:
    text = render_machine_config(
        cfg,
        bundle,
        cfg.pool(pool),
        endpoint="10.0.1.254",
        hostname=f"demo-{pool}-1",
        cert_sans=["203.0.113.10"],
    )
    return list(yaml.safe_load_all(text))


def _validate(docs: list[dict[str, Any]], minor: str, validators: Validators) -> None:
    v1alpha1, anything = validators[minor]
    main = [d for d in docs if "kind" not in d]
    assert len(main) == 1
    errors = [e.message for e in v1alpha1.iter_errors(main[0])]
    assert errors == []
    for doc in docs:
        assert [e.message for e in anything.iter_errors(as_schema_names(doc))] == []


def as_schema_names(doc: dict[str, Any]) -> dict[str, Any]:
    """Upstream's v1.14 schema names the UnattendedInstallConfig document's kind
    "UnattendedInstall" (``schemaMeta: v1alpha1/UnattendedInstall`` in
    types/runtime/unattended_install.go), but the loader registers and the generator writes
    ``UnattendedInstallConfigKind = "UnattendedInstallConfig"``: hk8s writes what the node
    accepts, and the schema check reads it under the schema's name."""
    if doc.get("kind") == "UnattendedInstallConfig":
        return {**doc, "kind": "UnattendedInstall"}
    return doc


@pytest.mark.parametrize("minor", CONTRACTS)
@pytest.mark.parametrize(("pool", "role"), ROLES)
def test_configs_from_the_talosctl_example_validate(
    minor: str,
    pool: str,
    role: str,
    example_bundle: SecretsBundle,
    validators: Validators,
    make_config: Callable[..., ClusterConfig],
) -> None:
    docs = _render(make_config(minor), example_bundle, pool)
    _validate(docs, minor, validators)
    assert docs[0]["machine"]["type"] == role


@pytest.mark.parametrize("minor", CONTRACTS)
def test_configs_from_a_generated_bundle_validate(
    minor: str, validators: Validators, make_config: Callable[..., ClusterConfig]
) -> None:
    bundle = _generated_bundle()
    for pool, _ in ROLES:
        _validate(_render(make_config(minor), bundle, pool), minor, validators)


_BUNDLE: list[SecretsBundle] = []


def _generated_bundle() -> SecretsBundle:
    if not _BUNDLE:
        _BUNDLE.append(generate_secrets())
    return _BUNDLE[0]


def test_the_validator_rejects_what_talos_rejects(
    example_bundle: SecretsBundle, validators: Validators, make_config: Callable[..., ClusterConfig]
) -> None:
    """Guard against a schema check that cannot fail: ``persist`` is not in the schema."""
    docs = _render(make_config("1.12"), example_bundle, "cp")
    docs[0]["persist"] = True
    assert list(validators["1.12"][0].iter_errors(docs[0]))


def _paths(value: object, prefix: str = "") -> set[str]:
    if not isinstance(value, dict):
        return set()
    out: set[str] = set()
    for key, item in value.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out.add(path)
        # Free-form blobs (admission plugin config, audit policy) are compared as a whole.
        if key not in ("admissionControl", "auditPolicy", "ca", "aggregatorCA", "etcd"):
            out |= _paths(item, path)
    return out


# Where hk8s deliberately differs from `talosctl gen config` (see _render.py docstring).
_INTENDED_DIFFERENCES = {
    "persist",  # not in the v1alpha1 schema
    "cluster.proxy.image",  # kube-proxy is disabled: Cilium replaces it
    "machine.network.hostname",  # 1.11 only; 1.12+ gets a HostnameConfig document
}


@pytest.mark.parametrize("minor", LEGACY)
@pytest.mark.parametrize(("pool", "role"), ROLES)
def test_shape_matches_gen_config(
    minor: str,
    pool: str,
    role: str,
    example_bundle: SecretsBundle,
    make_config: Callable[..., ClusterConfig],
) -> None:
    ours = _render(make_config(minor), example_bundle, pool)
    theirs = reference_documents(minor, role)
    assert [d.get("kind") for d in ours] == [d.get("kind") for d in theirs]
    missing = _paths(theirs[0]) - _paths(ours[0]) - _INTENDED_DIFFERENCES
    assert missing == set()
    if minor != "1.11":
        assert ours[1] == {
            "apiVersion": "v1alpha1",
            "kind": "HostnameConfig",
            "hostname": ours_host(pool),
        }


def ours_host(pool: str) -> str:
    return f"demo-{pool}-1"


def reference_documents(minor: str, role: str) -> list[dict[str, Any]]:
    path = REFERENCE / f"v{minor}" / "gen-config" / f"base-{role}.yaml"
    return list(yaml.safe_load_all(path.read_text()))


@pytest.mark.parametrize("minor", LEGACY)
def test_control_plane_settings(
    minor: str, example_bundle: SecretsBundle, make_config: Callable[..., ClusterConfig]
) -> None:
    docs = _render(make_config(minor), example_bundle, "cp")
    machine, cluster = docs[0]["machine"], docs[0]["cluster"]
    assert cluster["controlPlane"]["endpoint"] == "https://10.0.1.254:6443"
    assert cluster["clusterName"] == "demo"
    assert cluster["network"]["cni"] == {"name": "none"}
    assert cluster["network"]["podSubnets"] == ["10.244.0.0/16"]
    assert cluster["network"]["serviceSubnets"] == ["10.96.0.0/12"]
    assert cluster["proxy"] == {"disabled": True}
    assert cluster["externalCloudProvider"] == {"enabled": True}
    assert cluster["discovery"]["enabled"] is True
    kube = "v" + DEFAULT_KUBERNETES_VERSIONS[minor]
    assert cluster["apiServer"]["image"] == f"registry.k8s.io/kube-apiserver:{kube}"
    assert (
        cluster["controllerManager"]["image"] == f"registry.k8s.io/kube-controller-manager:{kube}"
    )
    assert cluster["scheduler"]["image"] == f"registry.k8s.io/kube-scheduler:{kube}"
    assert machine["kubelet"]["image"] == f"ghcr.io/siderolabs/kubelet:{kube}"
    assert machine["kubelet"]["nodeIP"] == {"validSubnets": ["10.0.1.0/24"]}
    assert machine["install"]["disk"] == "/dev/sda"
    version = {"1.11": "v1.11.3", "1.12": "v1.12.0", "1.13": "v1.13.0"}[minor]
    assert machine["install"]["image"].startswith("factory.talos.dev/hcloud-installer/")
    assert machine["install"]["image"].endswith(f":{version}")
    assert machine["certSANs"] == ["10.0.1.254", "203.0.113.10"]
    assert cluster["apiServer"]["certSANs"] == ["10.0.1.254", "203.0.113.10"]
    assert machine["nodeLabels"] == {
        "node.kubernetes.io/exclude-from-external-load-balancers": "",
        "role": "cp",
    }
    assert "nodeTaints" not in machine
    assert "allowSchedulingOnControlPlanes" not in cluster
    # The control plane carries every secret, as talosctl's controlplane.yaml does.
    assert base64.b64decode(machine["ca"]["key"]).startswith(b"-----BEGIN ED25519 PRIVATE KEY")
    assert cluster["secretboxEncryptionSecret"] == example_bundle.secretbox_encryption_secret
    assert cluster["token"] == example_bundle.bootstrap_token
    assert machine["token"] == example_bundle.trustd_token
    assert cluster["id"] == example_bundle.cluster_id
    assert base64.b64decode(cluster["serviceAccount"]["key"]) == (
        example_bundle.service_account_key_pem
    )
    assert cluster["etcd"]["ca"]["key"]
    # etcd advertises the private address: the lowest routed one may be public (firewalled).
    assert cluster["etcd"]["advertisedSubnets"] == ["10.0.1.0/24"]


def test_hostname_per_contract(
    example_bundle: SecretsBundle, make_config: Callable[..., ClusterConfig]
) -> None:
    docs = _render(make_config("1.11"), example_bundle, "cp")
    assert docs[0]["machine"]["network"] == {"hostname": "demo-cp-1"}
    assert len(docs) == 1
    docs = _render(make_config("1.13"), example_bundle, "cp")
    assert "network" not in docs[0]["machine"]
    assert docs[1]["hostname"] == "demo-cp-1" and "auto" not in docs[1]


def test_worker_gets_no_private_keys(
    example_bundle: SecretsBundle, make_config: Callable[..., ClusterConfig]
) -> None:
    text = render_machine_config(
        make_config("1.12"), example_bundle, make_config("1.12").pool("app"),
        endpoint="10.0.1.254", hostname="demo-app-1",
    )  # fmt: skip
    assert 'key: ""' in text
    doc = yaml.safe_load_all(text).__next__()
    machine, cluster = doc["machine"], doc["cluster"]
    assert machine["ca"]["key"] == "" and cluster["ca"]["key"] == ""
    for secret in ("aggregatorCA", "serviceAccount", "etcd", "secretboxEncryptionSecret"):
        assert secret not in cluster
    for pem in (example_bundle.os_ca.key_pem, example_bundle.k8s_ca.key_pem):
        assert base64.b64encode(pem).decode() not in text
    assert machine["nodeLabels"] == {"tier": "app"}
    assert machine["nodeTaints"] == {"dedicated": "gpu:NoSchedule", "spot": "NoExecute"}
    assert cluster["externalCloudProvider"] == {"enabled": True}
    assert cluster["clusterName"] == "demo"


def test_control_planes_schedule_pods_without_workers(
    example_bundle: SecretsBundle, make_config: Callable[..., ClusterConfig]
) -> None:
    docs = _render(make_config("1.12", workers=False), example_bundle, "cp")
    assert docs[0]["cluster"]["allowSchedulingOnControlPlanes"] is True


def test_installer_defaults_to_the_vanilla_schematic(
    make_config: Callable[..., ClusterConfig],
) -> None:
    cfg = make_config("1.13")
    schematic = cfg.talos.effective_schematic
    assert installer_image(cfg) == f"factory.talos.dev/hcloud-installer/{schematic}:v1.13.0"
    assert (
        installer_image(cfg, "b" * 64) == f"factory.talos.dev/hcloud-installer/{'b' * 64}:v1.13.0"
    )


def test_installer_host_follows_image_factory(example_bundle: SecretsBundle) -> None:
    from hk8s.config import parse_config

    cfg = parse_config(
        f"""
name: demo
location: fsn1
talos:
  version: v1.12.1
  image_factory: http://127.0.5.5:8080
  schematic: "{"c" * 64}"
"""
    )
    assert installer_image(cfg) == f"127.0.5.5:8080/hcloud-installer/{'c' * 64}:v1.12.1"


def test_extensions_need_a_schematic(example_bundle: SecretsBundle) -> None:
    from hk8s.config import parse_config

    cfg = parse_config(
        """
name: demo
location: fsn1
talos:
  version: v1.12.1
  extensions: [siderolabs/qemu-guest-agent]
"""
    )
    with pytest.raises(ConfigError, match="1 problem") as info:
        build_machine_config(
            cfg, example_bundle, cfg.pool("cp"), endpoint="10.0.1.254", hostname="demo-cp-1"
        )
    assert "schematic" in str(info.value)
    docs = build_machine_config(
        cfg, example_bundle, cfg.pool("cp"), endpoint="10.0.1.254", hostname="demo-cp-1",
        schematic="d" * 64,
    )  # fmt: skip
    assert docs[0]["machine"]["install"]["image"].endswith(f"/hcloud-installer/{'d' * 64}:v1.12.1")


def test_unsupported_contract_is_a_clear_error() -> None:
    with pytest.raises(ConfigError) as info:
        contract_for("v1.15.0")
    assert "no machine-config contract for Talos v1.15.0" in str(info.value)
    assert "v1.14.x" in str(info.value.problems[0].hint)
    assert contract_for("1.12.9").minor == "1.12"


def test_endpoint_urls() -> None:
    assert cluster_endpoint_url("203.0.113.10") == "https://203.0.113.10:6443"
    assert cluster_endpoint_url("2001:db8::1") == "https://[2001:db8::1]:6443"
    assert cluster_endpoint_url("api.example.com") == "https://api.example.com:6443"


BACKUP = """
backup:
  schedule: "0 * * * *"
  endpoint: https://fsn1.your-objectstorage.com
  bucket: demo-backups
  region: fsn1
  age_public_key: age1v4k20f9e4yk722p9230qe66rhtqzy4xfa56jtsy7l2h9f3j9vvhqvejghl
"""


def _api_access(docs: list[dict[str, Any]]) -> Any:
    """The Talos API access a config grants pods: 1.11-1.13's feature, 1.14's document."""
    feature = docs[0]["machine"]["features"].get("kubernetesTalosAPIAccess")
    document = [d for d in docs if d.get("kind") == "KubeTalosAPIAccessConfig"]
    return feature, document


@pytest.mark.parametrize("minor", CONTRACTS)
def test_backups_grant_the_etcd_backup_role_on_control_planes_only(
    minor: str,
    example_bundle: SecretsBundle,
    validators: Validators,
    make_config: Callable[..., ClusterConfig],
) -> None:
    """talos-backup's pod needs os:etcd:backup through a Talos ServiceAccount in kube-system;
    nothing else is granted, and nothing at all without ``backup:``."""
    cfg = make_config(minor, extra=BACKUP)
    cp, worker = _render(cfg, example_bundle, "cp"), _render(cfg, example_bundle, "app")
    _validate(cp, minor, validators)
    grant = {"allowedRoles": ["os:etcd:backup"], "allowedKubernetesNamespaces": ["kube-system"]}
    feature, document = _api_access(cp)
    if minor == "1.14":
        assert feature is None
        assert document == [{"apiVersion": "v1alpha1", "kind": "KubeTalosAPIAccessConfig",
                             **grant}]  # fmt: skip
    else:
        assert feature == {"enabled": True, **grant} and document == []
    assert _api_access(worker) == (None, [])
    assert _api_access(_render(make_config(minor), example_bundle, "cp")) == (None, [])
