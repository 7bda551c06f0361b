"""The v1alpha1 document of a node's machine config, as ``talosctl gen config`` writes it.

Starting from the reference ``gen-config/base-{controlplane,worker}.yaml`` of each Talos release
(minus ``persist``, which the v1alpha1 schema does not allow), hk8s sets what a Hetzner cluster
needs: the API endpoint, Kubernetes images, the install disk and Image Factory installer, no
CNI and no kube-proxy (Cilium replaces both), the external cloud provider (hcloud CCM), pool
labels and taints, the node's hostname (1.11), and ``kubelet.nodeIP.validSubnets`` and
``cluster.etcd.advertisedSubnets`` set to the private node subnet, so that kubelet registers
and etcd advertises the private IP, not the public one.
"""

from __future__ import annotations

import base64
import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from hk8s.config import BACKUP_NAMESPACE
from hk8s.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hk8s.config import ClusterConfig, NodePool
    from hk8s.machineconfig._contract import Contract
    from hk8s.machineconfig._patch import Document
    from hk8s.pki import CertAndKey, SecretsBundle

__all__ = [
    "INSTALLER_PLATFORM",
    "INSTALL_DISK",
    "KUBE_API_PORT",
    "cluster_endpoint_url",
    "installer_image",
    "talos_api_access",
    "v1alpha1_document",
]

KUBE_API_PORT = 6443
# The Talos API role that may take etcd snapshots (talos/pkg/machinery/role: os:etcd:backup).
ETCD_BACKUP_ROLE = "os:etcd:backup"
INSTALLER_PLATFORM = "hcloud"  # Talos' platform name for Hetzner Cloud (talos.platform=hcloud)
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


def installer_image(cluster: ClusterConfig, schematic: str | None = None) -> str:
    """``factory.talos.dev/hcloud-installer/<schematic>:v1.12.0``, host from
    ``talos.image_factory``.

    The platform installer, not the bare ``installer`` path: that one is the legacy ``metal``
    profile, and Talos bakes ``talos.platform=`` into the installer's UKI, which GRUB boots
    with ``grubUseUKICmdline: true``; after an upgrade with it a node would lose the hcloud
    platform (metadata networking, hostname). The Image Factory serves one installer per
    platform as ``<platform>-installer`` (siderolabs/image-factory README, "Container
    Registry"; Talos docs, "Boot Assets": "use the <platform>-installer image")."""
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
    return f"{host}/{INSTALLER_PLATFORM}-installer/{chosen}:{version}"


def cluster_endpoint_url(endpoint: str) -> str:
    """``https://<endpoint>:6443``; IPv6 addresses get brackets."""
    try:
        is_v6 = ipaddress.ip_address(endpoint).version == 6
    except ValueError:
        is_v6 = False
    host = f"[{endpoint}]" if is_v6 else endpoint
    return f"https://{host}:{KUBE_API_PORT}"


def talos_api_access() -> Document:
    """The Talos API access talos-backup's pod needs: the ``os:etcd:backup`` role, granted
    through a ``talos.dev/v1alpha1 ServiceAccount`` in the backup namespace only.

    Talos serves it from control planes (apid there answers the pods' ``talos.default``
    endpoint), so only their configs carry it; upstream: talos-backup's README and Talos'
    "Talos API access from Kubernetes" guide. 1.11-1.13: ``machine.features.
    kubernetesTalosAPIAccess``; 1.14: the ``KubeTalosAPIAccessConfig`` document.
    """
    return {
        "allowedRoles": [ETCD_BACKUP_ROLE],
        "allowedKubernetesNamespaces": [BACKUP_NAMESPACE],
    }


def v1alpha1_document(
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
    if control_plane and cluster.backup is not None:
        features["kubernetesTalosAPIAccess"] = {"enabled": True, **talos_api_access()}
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
        # Without advertisedSubnets etcd advertises the node's lowest routed address, which
        # on Hetzner can be the public one (5.x, 49.x below 10.x; any public IP below a
        # 172.16/12 or 192.168/16 network), where the firewall drops etcd's peer traffic.
        cluster_doc["etcd"] = {
            "ca": _pair(secrets.etcd_ca, with_key=True),
            "advertisedSubnets": [network.node_subnet],
        }
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
