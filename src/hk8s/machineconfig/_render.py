"""Machine configs for one node, shaped like ``talosctl gen config`` output for its contract.

Starting from the reference ``gen-config/base-{controlplane,worker}.yaml`` of each Talos release
(minus ``persist``, which the v1alpha1 schema does not allow), hk8s sets what a Hetzner cluster
needs: the API endpoint, Kubernetes images, the install disk and Image Factory installer, no
CNI and no kube-proxy (Cilium replaces both), the external cloud provider (hcloud CCM), pool
labels and taints, the node's hostname, and ``kubelet.nodeIP.validSubnets`` set to the private
node subnet so kubelet registers the private IP, not the public one. User patches come last.
"""

from __future__ import annotations

import base64
import ipaddress
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import yaml

from hk8s.errors import ConfigError, ConfigProblem
from hk8s.machineconfig._check import check_documents
from hk8s.machineconfig._contract import Contract, contract_for
from hk8s.machineconfig._patch import Document, PatchError, apply_patch

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from hk8s.config import ClusterConfig, NodePool
    from hk8s.pki import CertAndKey, SecretsBundle

__all__ = [
    "apply_patches",
    "build_machine_config",
    "cluster_endpoint_url",
    "dump_documents",
    "installer_image",
    "render_machine_config",
]

KUBE_API_PORT = 6443
INSTALL_DISK = "/dev/sda"  # Hetzner Cloud servers boot from their one virtio-scsi disk
_CP_EXCLUDE_LB = "node.kubernetes.io/exclude-from-external-load-balancers"
_POD_SECURITY = {
    "name": "PodSecurity",
    "configuration": {
        "apiVersion": "pod-security.admission.config.k8s.io/v1alpha1",
        "defaults": {
            "audit": "restricted",
            "audit-version": "latest",
            "enforce": "baseline",
            "enforce-version": "latest",
            "warn": "restricted",
            "warn-version": "latest",
        },
        "exemptions": {"namespaces": ["kube-system"], "runtimeClasses": [], "usernames": []},
        "kind": "PodSecurityConfiguration",
    },
}
_AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "rules": [{"level": "Metadata"}],
}


def render_machine_config(
    cluster: ClusterConfig,
    secrets: SecretsBundle,
    pool: NodePool,
    *,
    endpoint: str,
    hostname: str,
    cert_sans: Sequence[str] = (),
    schematic: str | None = None,
) -> str:
    """The machine config (YAML, possibly several documents) for one node of ``pool``.

    ``endpoint`` is the API load balancer's IP or the first control plane's; ``cert_sans`` are
    extra names/IPs for the Talos and Kubernetes API certs (e.g. the LB's public IP);
    ``schematic`` overrides the config's (needed when the config lists extensions).

    >>> text = render_machine_config(cfg, bundle, cfg.pool("cp"), endpoint="203.0.113.10",
    ...                              hostname="demo-cp-1")
    """
    docs = build_machine_config(
        cluster,
        secrets,
        pool,
        endpoint=endpoint,
        hostname=hostname,
        cert_sans=cert_sans,
        schematic=schematic,
    )
    return dump_documents(docs)


def build_machine_config(
    cluster: ClusterConfig,
    secrets: SecretsBundle,
    pool: NodePool,
    *,
    endpoint: str,
    hostname: str,
    cert_sans: Sequence[str] = (),
    schematic: str | None = None,
) -> list[Document]:
    """The documents of :func:`render_machine_config`, patched, as plain data."""
    contract = contract_for(cluster.talos.version)
    docs = [
        _v1alpha1(
            cluster,
            secrets,
            pool,
            contract,
            endpoint=endpoint,
            hostname=hostname,
            cert_sans=cert_sans,
            installer=installer_image(cluster, schematic),
        )
    ]
    if contract.hostname_document:
        docs.append({"apiVersion": "v1alpha1", "kind": "HostnameConfig", "hostname": hostname})
    patches = cluster.talos.patches
    role_patches = patches.control_plane if pool.role == "control-plane" else patches.worker
    role_key = "control_plane" if pool.role == "control-plane" else "worker"
    docs = apply_patches(docs, patches.all, source="talos.patches.all", contract=contract)
    return apply_patches(docs, role_patches, source=f"talos.patches.{role_key}", contract=contract)


def apply_patches(
    documents: list[Document],
    patches: Sequence[object],
    *,
    source: str,
    contract: Contract,
) -> list[Document]:
    """Apply ``patches`` in order; ``ConfigError`` names each failing patch by index.

    Every patch is checked on its own (a failing patch is skipped so that later ones are still
    checked), so one run reports every bad patch.
    """
    problems: list[ConfigProblem] = []
    machine_type = documents[0].get("machine", {}).get("type")
    for index, patch in enumerate(patches):
        where = f"{source}[{index}]"
        try:
            patched = apply_patch(documents, patch)
            check_documents(patched, contract, machine_type=machine_type)
        except PatchError as exc:
            problems.append(ConfigProblem(path=where, message=str(exc), hint=_hint(exc)))
            continue
        documents = patched
    if problems:
        raise ConfigError("machine config patches", problems)
    return documents


def dump_documents(documents: Sequence[Mapping[str, Any]]) -> str:
    """YAML in talosctl's style (4-space indents, indented lists), ``---`` between documents."""
    return "---\n".join(
        yaml.dump(dict(doc), Dumper=_TalosDumper, sort_keys=False, indent=4, width=1 << 20)
        for doc in documents
    )


def installer_image(cluster: ClusterConfig, schematic: str | None = None) -> str:
    """``factory.talos.dev/installer/<schematic>:v1.12.0``, host from ``talos.image_factory``."""
    chosen = schematic or cluster.talos.effective_schematic
    if not chosen:
        raise ConfigError(
            "talos.schematic",
            [
                ConfigProblem(
                    path="talos.schematic",
                    message="no schematic id to build the installer image from",
                    hint="the schematic for talos.extensions must be created first",
                )
            ],
        )
    host = urlparse(cluster.talos.image_factory).netloc
    version = "v" + cluster.talos.version.removeprefix("v")
    return f"{host}/installer/{chosen}:{version}"


def cluster_endpoint_url(endpoint: str) -> str:
    """``https://<endpoint>:6443``; IPv6 addresses get brackets."""
    try:
        is_v6 = ipaddress.ip_address(endpoint).version == 6
    except ValueError:
        is_v6 = False
    host = f"[{endpoint}]" if is_v6 else endpoint
    return f"https://{host}:{KUBE_API_PORT}"


def _v1alpha1(
    cluster: ClusterConfig,
    secrets: SecretsBundle,
    pool: NodePool,
    contract: Contract,
    *,
    endpoint: str,
    hostname: str,
    cert_sans: Sequence[str],
    installer: str,
) -> Document:
    control_plane = pool.role == "control-plane"
    kube = "v" + cluster.kubernetes.version.removeprefix("v")
    sans = list(dict.fromkeys([endpoint, *cert_sans]))

    machine: Document = {
        "type": "controlplane" if control_plane else "worker",
        "token": secrets.trustd_token,
        "ca": _pair(secrets.os_ca, with_key=control_plane),
        "certSANs": sans,
        "kubelet": {
            "image": f"ghcr.io/siderolabs/kubelet:{kube}",
            "defaultRuntimeSeccompProfileEnabled": True,
            "disableManifestsDirectory": True,
            "nodeIP": {"validSubnets": [cluster.network.node_subnet]},
        },
    }
    if contract.machine_network:
        machine["network"] = {} if contract.hostname_document else {"hostname": hostname}
    machine["install"] = {"disk": INSTALL_DISK, "image": installer, "wipe": False}
    if contract.grub_uki_cmdline:
        machine["install"]["grubUseUKICmdline"] = True
    features: Document = {}
    if contract.legacy_fields:
        features.update(rbac=True, stableHostname=True, apidCheckExtKeyUsage=True)
    features["diskQuotaSupport"] = True
    features["kubePrism"] = {"enabled": True, "port": 7445}
    features["hostDNS"] = {"enabled": True, "forwardKubeDNSToHost": True}
    machine["features"] = features
    labels = {_CP_EXCLUDE_LB: ""} if control_plane else {}
    labels.update(pool.labels)
    if labels:
        machine["nodeLabels"] = labels
    if pool.taints:
        # Talos' value syntax is "value:Effect" or just "Effect" (machinery/labels/taints.go).
        machine["nodeTaints"] = {
            t.key: f"{t.value}:{t.effect}" if t.value else t.effect for t in pool.taints
        }

    network = cluster.network
    cluster_doc: Document = {
        "id": secrets.cluster_id,
        "secret": secrets.cluster_secret,
        "controlPlane": {"endpoint": cluster_endpoint_url(endpoint)},
        "clusterName": cluster.name,
        "network": {
            "cni": {"name": "none"},  # Cilium is installed as an addon
            "dnsDomain": "cluster.local",
            "podSubnets": [network.pod_cidr],
            "serviceSubnets": [network.service_cidr],
        },
        "token": secrets.bootstrap_token,
    }
    if control_plane:
        _control_plane_secrets(cluster_doc, secrets)
    cluster_doc["ca"] = _pair(secrets.k8s_ca, with_key=control_plane)
    if control_plane:
        cluster_doc["aggregatorCA"] = _pair(secrets.k8s_aggregator_ca, with_key=True)
        cluster_doc["serviceAccount"] = {"key": _b64(secrets.service_account_key_pem)}
        api_server: Document = {"image": f"registry.k8s.io/kube-apiserver:{kube}"}
        api_server["certSANs"] = sans
        if contract.legacy_fields:
            api_server["disablePodSecurityPolicy"] = True
        api_server["admissionControl"] = [_POD_SECURITY]
        api_server["auditPolicy"] = _AUDIT_POLICY
        cluster_doc["apiServer"] = api_server
        cluster_doc["controllerManager"] = {
            "image": f"registry.k8s.io/kube-controller-manager:{kube}"
        }
        cluster_doc["proxy"] = {"disabled": True}  # Cilium's kube-proxy replacement
        cluster_doc["scheduler"] = {"image": f"registry.k8s.io/kube-scheduler:{kube}"}
    cluster_doc["discovery"] = {
        "enabled": True,
        "registries": {"kubernetes": {"disabled": True}, "service": {}},
    }
    if control_plane:
        cluster_doc["etcd"] = {"ca": _pair(secrets.etcd_ca, with_key=True)}
    # Every kubelet needs --cloud-provider=external for the hcloud CCM, workers included.
    cluster_doc["externalCloudProvider"] = {"enabled": True}
    if control_plane and not any(p.count for p in cluster.pools() if p.role == "worker"):
        cluster_doc["allowSchedulingOnControlPlanes"] = True  # no workers: run pods on the CPs
    return {"version": "v1alpha1", "debug": False, "machine": machine, "cluster": cluster_doc}


def _control_plane_secrets(cluster_doc: Document, secrets: SecretsBundle) -> None:
    if secrets.aescbc_encryption_secret:
        cluster_doc["aescbcEncryptionSecret"] = secrets.aescbc_encryption_secret
    if secrets.secretbox_encryption_secret:
        cluster_doc["secretboxEncryptionSecret"] = secrets.secretbox_encryption_secret


def _pair(pair: CertAndKey, *, with_key: bool) -> dict[str, str]:
    # Workers get the CA certificate only; talosctl writes an empty key for them.
    return {"crt": _b64(pair.cert_pem), "key": _b64(pair.key_pem) if with_key else ""}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _hint(exc: PatchError) -> str:
    if "expected" in exc.message:
        return "the patch must have the same shape as the machine config at that path"
    return "see https://www.talos.dev/latest/talos-guides/configuration/patching/"


class _TalosDumper(yaml.SafeDumper):
    """Indents list items under their key, as Go's yaml encoder (and talosctl) does."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Go writes the empty worker CA keys as "" rather than ''.
    style = '"' if value == "" else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_TalosDumper.add_representer(str, _represent_str)
