"""Talos 1.14's machine config: a small v1alpha1 document plus one document per concern.

Talos 1.14's version contract turns on ``MultidocKubernetesConfigSupported``,
``UnattendedInstallConfig``, ``DiscoveryIdentityMultidocConfig`` and friends, and its generator
(siderolabs/talos ``pkg/machinery/config/generate`` at release-1.14: ``init.go``,
``worker.go``, ``kubernetes.go``, ``block.go``, ``security_profile.go``, ``network.go``)
leaves in v1alpha1 only the machine identity (type, token, Talos CA, cert SANs, features)
and ``cluster.{token, etcd, externalCloudProvider}``; everything else is its own document, in
this order: discovery service and identity, unattended install (when an install disk is
given), host DNS resolver, EPHEMERAL volume and filesystem trim, security profile, hostname,
then the Kubernetes documents (cluster, node, kubelet, network, API server CA, KubePrism; on
control planes also aggregator CA, admission, audit, authentication, authorizers, etcd
encryption, service account, the four control-plane components, CoreDNS). See the reference
``gen-config/base-*.yaml`` of v1.14.

What hk8s sets on top is what it sets for older releases, in 1.14's places: no CNI (no
``KubeFlannelCNIConfig``: Cilium is an addon), ``KubeProxyConfig.enabled: false`` (Cilium
replaces kube-proxy), the hcloud external cloud provider, the Image Factory installer and
install disk, pool labels and taints in ``KubeNodeConfig`` (where 1.14 also writes the
control-plane role label and ``NoSchedule`` taint itself, unless pods may run on control
planes), ``nodeIP.validSubnets`` = the private node subnet, and the node's hostname.
Certificates are PEM text in these documents, not base64 as in v1alpha1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# The same PodSecurity and audit defaults, CA encoding and endpoint as older releases.
from hk8s.machineconfig._v1alpha1 import (
    _AUDIT_POLICY,
    _POD_SECURITY,
    INSTALL_DISK,
    _pair,
    cluster_endpoint_url,
    talos_api_access,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hk8s.config import ClusterConfig, NodePool
    from hk8s.machineconfig._patch import Document
    from hk8s.pki import SecretsBundle

__all__ = ["multidoc_documents"]

_CONTROL_PLANE_ROLE = "node-role.kubernetes.io/control-plane"
_EXCLUDE_LB = "node.kubernetes.io/exclude-from-external-load-balancers"
# constants.DefaultDiscoveryServiceEndpoint, DefaultKubePrismPort,
# DefaultFilesystemTrimInterval (168h, written by Go's time.Duration as "168h0m0s").
_DISCOVERY_ENDPOINT = "https://discovery.talos.dev/"
_KUBEPRISM_PORT = 7445
_TRIM_INTERVAL = "168h0m0s"


def _doc(kind: str, **fields: Any) -> Document:
    return {"apiVersion": "v1alpha1", "kind": kind, **fields}


def multidoc_documents(
    cluster: ClusterConfig,
    secrets: SecretsBundle,
    pool: NodePool,
    *,
    endpoint: str,
    hostname: str,
    cert_sans: Sequence[str],
    installer: str,
) -> list[Document]:
    """Every document of one node's Talos 1.14 machine config, v1alpha1 first."""
    control_plane = pool.role == "control-plane"
    kube = "v" + cluster.kubernetes.version.removeprefix("v")
    sans = list(dict.fromkeys([endpoint, *cert_sans]))
    url = cluster_endpoint_url(endpoint)

    cluster_doc: Document = {"token": secrets.bootstrap_token}
    if control_plane:
        # As for 1.11-1.13 (_v1alpha1): without advertisedSubnets etcd advertises the lowest
        # routed address, which can be the public one the firewall closes to peer traffic.
        cluster_doc["etcd"] = {
            "ca": _pair(secrets.etcd_ca, with_key=True),
            "advertisedSubnets": [cluster.network.node_subnet],
        }
    # Every kubelet needs --cloud-provider=external for the hcloud CCM, workers included.
    cluster_doc["externalCloudProvider"] = {"enabled": True}
    v1alpha1: Document = {
        "version": "v1alpha1",
        "debug": False,
        "machine": {
            "type": "controlplane" if control_plane else "worker",
            "token": secrets.trustd_token,
            "ca": _pair(secrets.os_ca, with_key=control_plane),
            "certSANs": sans,
            "features": {"diskQuotaSupport": True},
        },
        "cluster": cluster_doc,
    }
    docs = [
        v1alpha1,
        _doc("DiscoveryServiceConfig", name="default", endpoint=_DISCOVERY_ENDPOINT),
        _doc(
            "DiscoveryIdentityConfig",
            clusterID=secrets.cluster_id,
            clusterSecret=secrets.cluster_secret,
        ),
        # generate.unattendedInstallConfig: the install disk as a CEL disk selector.
        _doc(
            "UnattendedInstallConfig",
            installer={"image": installer},
            provisioning={
                "diskSelector": {"match": f'disk.dev_path == "{INSTALL_DISK}"'},
                "wipe": False,
            },
        ),
        _doc("ResolverConfig", hostDNS={"enabled": True, "forwardKubeDNSToHost": True}),
        _doc("VolumeConfig", name="EPHEMERAL", mount={"secure": True}),
        _doc("FilesystemTrimConfig", interval=_TRIM_INTERVAL),
        _doc("SecurityProfileConfig", workloadIsolation=True),
        _doc("HostnameConfig", hostname=hostname),
        _doc("KubeClusterConfig", clusterName=cluster.name, endpoint=url),
        _node_document(cluster, pool),
        _doc(
            "KubeletConfig",
            image=f"ghcr.io/siderolabs/kubelet:{kube}",
            config={},
            defaultRuntimeSeccompProfileEnabled=True,
        ),
        _doc(
            "KubeNetworkConfig",
            dnsDomain="cluster.local",
            podSubnets=[cluster.network.pod_cidr],
            serviceSubnets=[cluster.network.service_cidr],
        ),
        _doc("KubeAPIServerCAConfig", **_k8s_ca(secrets, control_plane=control_plane)),
        _doc("KubePrismConfig", port=_KUBEPRISM_PORT),
    ]
    if control_plane:
        docs.extend(_control_plane_documents(secrets, kube=kube, url=url, sans=sans))
        if cluster.backup is not None:
            docs.append(_doc("KubeTalosAPIAccessConfig", **talos_api_access()))
    return docs


def _node_document(cluster: ClusterConfig, pool: NodePool) -> Document:
    labels: dict[str, str] = {}
    taints: dict[str, str] = {}
    if pool.role == "control-plane":
        labels = {_CONTROL_PLANE_ROLE: "", _EXCLUDE_LB: ""}
        # No worker pods anywhere: let them run on the control planes (1.14 has no
        # allowSchedulingOnControlPlanes; the generator simply leaves the taint out).
        if any(p.count for p in cluster.pools() if p.role == "worker"):
            taints[_CONTROL_PLANE_ROLE] = "NoSchedule"
    labels.update(pool.labels)
    # Talos' value syntax is "value:Effect" or just "Effect" (machinery/labels/taints.go).
    taints.update({t.key: f"{t.value}:{t.effect}" if t.value else t.effect for t in pool.taints})
    node: Document = _doc("KubeNodeConfig", nodeIP={"validSubnets": [cluster.network.node_subnet]})
    if labels:
        node["labels"] = labels
    if taints:
        node["taints"] = taints
    return node


def _pem(data: bytes) -> str:
    return data.decode("ascii")


def _k8s_ca(secrets: SecretsBundle, *, control_plane: bool) -> dict[str, Any]:
    ca = secrets.k8s_ca
    if control_plane:
        return {"issuingCA": {"cert": _pem(ca.cert_pem), "key": _pem(ca.key_pem)}}
    return {"acceptedCAs": [_pem(ca.cert_pem)]}


def _control_plane_documents(
    secrets: SecretsBundle, *, kube: str, url: str, sans: list[str]
) -> list[Document]:
    aggregator = secrets.k8s_aggregator_ca
    return [
        _doc(
            "KubeAggregatorCAConfig",
            issuingCA={"cert": _pem(aggregator.cert_pem), "key": _pem(aggregator.key_pem)},
        ),
        _doc("KubeAdmissionControlConfig", **_POD_SECURITY),
        _doc("KubeAuditPolicyConfig", configuration=_AUDIT_POLICY),
        # k8s.DefaultAuthenticationConfig: anonymous access to the health endpoints only.
        _doc(
            "KubeAuthenticationConfig",
            configuration={
                "anonymous": {
                    "conditions": [{"path": "/livez"}, {"path": "/readyz"}, {"path": "/healthz"}],
                    "enabled": True,
                },
                "jwt": [],
            },
        ),
        # k8s.DefaultAuthorizationConfig: the Node then the RBAC authorizer.
        _doc("KubeAuthorizerConfig", name="node", type="Node"),
        _doc("KubeAuthorizerConfig", name="rbac", type="RBAC"),
        _doc(
            "KubeEtcdEncryptionConfig",
            config={
                "resources": [
                    {"providers": _encryption_providers(secrets), "resources": ["secrets"]}
                ]
            },
        ),
        _doc(
            "KubeServiceAccountConfig",
            issuer={"privateKey": _pem(secrets.service_account_key_pem), "issuerURL": url},
        ),
        _doc(
            "KubeAPIServerConfig",
            image=f"registry.k8s.io/kube-apiserver:{kube}",
            certExtraSANs=sans,
        ),
        _doc(
            "KubeControllerManagerConfig", image=f"registry.k8s.io/kube-controller-manager:{kube}"
        ),
        _doc("KubeSchedulerConfig", image=f"registry.k8s.io/kube-scheduler:{kube}", config={}),
        # Cilium replaces kube-proxy.
        _doc(
            "KubeProxyConfig", enabled=False, image=f"registry.k8s.io/kube-proxy:{kube}", config={}
        ),
        _doc("KubeCoreDNSConfig", enabled=True),
    ]


def _encryption_providers(secrets: SecretsBundle) -> list[dict[str, Any]]:
    """kubernetes.go: secretbox ``key2``, then the aescbc secret as secretbox ``key1`` (names
    and order kept from the pre-1.14 kube-apiserver template so old secrets still decrypt)."""
    providers: list[dict[str, Any]] = []
    for name, secret in (
        ("key2", secrets.secretbox_encryption_secret),
        ("key1", secrets.aescbc_encryption_secret),
    ):
        if secret:
            providers.append({"secretbox": {"keys": [{"name": name, "secret": secret}]}})
    return providers
