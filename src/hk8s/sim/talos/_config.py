"""Machine configs as a simulated Talos node reads and validates them.

Talos parses the YAML documents (``configloader.NewFromBytes``) and validates the v1alpha1
document (``pkg/machinery/config/types/v1alpha1/v1alpha1_validation.go``); a bad config is
refused with ``InvalidArgument`` and the collected messages, in hashicorp/go-multierror's
format. We check the rules a cluster's life depends on, with upstream's messages, and read
the fields the simulated node acts on. Separate documents are honoured: ``HostnameConfig``
(1.12+) and Talos 1.14's Kubernetes, discovery and install documents (``KubeClusterConfig``,
``KubeNodeConfig``, ``KubeletConfig``, ``KubeAPIServerCAConfig``, ``DiscoveryIdentityConfig``,
``UnattendedInstallConfig``, ...); a node older than 1.14 refuses those kinds as its loader
would (they are not registered before 1.14).

>>> cfg = parse_machine_config(data)       # raises ConfigRejected(message)
>>> cfg.type, cfg.endpoint, cfg.hostname
('controlplane', 'https://127.2.0.1:6443', 'demo-cp-1')
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml
from cryptography import x509

__all__ = ["ConfigRejected", "MachineConfig", "parse_machine_config"]

# pkg/machinery/config/types/v1alpha1: the trustd token format (kubeadm bootstrap token).
_TOKEN = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")  # fmt: skip
_EFFECTS = {"NoSchedule", "PreferNoSchedule", "NoExecute"}


# Document kinds registered from Talos 1.14 on: the ``Kind`` constants under
# pkg/machinery/config/types/ at release-1.14 that release-1.13 does not have.
_KINDS_SINCE_1_14 = frozenset(
    {
        "DiscoveryServiceConfig", "DiscoveryIdentityConfig", "UnattendedInstallConfig",
        "FilesystemTrimConfig", "FilesystemScrubConfig", "SecurityProfileConfig",
        "KubeClusterConfig", "KubeNodeConfig", "KubeletConfig", "KubeNetworkConfig",
        "KubeAPIServerCAConfig", "KubePrismConfig", "KubeAggregatorCAConfig",
        "KubeAdmissionControlConfig", "KubeAuditPolicyConfig", "KubeAuthenticationConfig",
        "KubeAuthorizerConfig", "KubeEtcdEncryptionConfig", "KubeServiceAccountConfig",
        "KubeAPIServerConfig", "KubeControllerManagerConfig", "KubeSchedulerConfig",
        "KubeProxyConfig", "KubeCoreDNSConfig", "KubeFlannelCNIConfig", "SysctlConfig",
        "KubeTalosAPIAccessConfig",
    }
)  # fmt: skip


class ConfigRejected(ValueError):
    """The node refuses the config; ``str()`` is the message Talos would send."""


@dataclass(frozen=True)
class MachineConfig:
    """The parts of a machine config the simulated node acts on, plus the raw bytes."""

    raw: bytes
    type: str
    token: str
    os_ca_crt: bytes
    os_ca_key: bytes | None
    endpoint: str
    cluster_name: str
    cluster_id: str
    k8s_ca_crt: bytes | None
    k8s_ca_key: bytes | None
    etcd_ca: bool
    hostname: str | None
    install_image: str | None
    node_labels: dict[str, str] = field(default_factory=dict)
    node_taints: list[dict[str, str]] = field(default_factory=list)
    allow_scheduling_on_control_planes: bool = False
    # From machine.kubelet.image's tag (ghcr.io/siderolabs/kubelet:v1.34.1 -> "1.34.1").
    kubernetes_version: str | None = None
    # Talos 1.14 layout: KubeNodeConfig holds every node label and taint, the control-plane
    # role's included (the generator writes them; nothing is added implicitly).
    node_document: bool = False
    # cluster.etcd.advertisedSubnets: where etcd picks the address it advertises from.
    etcd_advertised_subnets: tuple[str, ...] = ()
    # What a control plane's Kubernetes components run with (``cluster.aggregatorCA``,
    # ``cluster.serviceAccount.key``, ``cluster.secretboxEncryptionSecret``,
    # ``cluster.network``; Talos 1.14: ``KubeAggregatorCAConfig``, ``KubeServiceAccountConfig``,
    # ``KubeEtcdEncryptionConfig``, ``KubeNetworkConfig``).
    aggregator_ca_crt: bytes | None = None
    aggregator_ca_key: bytes | None = None
    service_account_key: bytes | None = None
    secretbox: str | None = None
    service_subnet: str = "10.96.0.0/12"
    pod_subnet: str = "10.244.0.0/16"
    # Talos API access from Kubernetes (1.11-1.13 machine.features.kubernetesTalosAPIAccess,
    # 1.14 KubeTalosAPIAccessConfig): (allowed roles, allowed namespaces), None when off.
    talos_api_access: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    @property
    def control_plane(self) -> bool:
        return self.type in {"controlplane", "init"}

    def cluster_key(self) -> str:
        """Which simulated cluster this node belongs to: its id, else its endpoint."""
        return self.cluster_id or self.endpoint


def _multierror(problems: list[str]) -> str:
    # hashicorp/go-multierror ListFormatFunc, which Talos' validation errors are printed with.
    noun = "error" if len(problems) == 1 else "errors"
    items = "".join(f"\t* {p}\n" for p in problems)
    return f"{len(problems)} {noun} occurred:\n{items}\n"


def _pem(value: Any) -> bytes | None:
    """base64 of PEM, as machine.ca.crt holds it; None when absent or empty."""
    if not value:
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return b"not base64"


def _valid_cert(pem: bytes) -> bool:
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError:
        return False
    return True


def _documents(
    data: bytes, release: tuple[int, int] | None
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    try:
        docs = [d for d in yaml.safe_load_all(data.decode()) if d is not None]
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigRejected(f"failed to parse config: {exc}") from None
    v1alpha1: dict[str, Any] | None = None
    extra: dict[str, dict[str, Any]] = {}
    for index, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise ConfigRejected(f"failed to parse config: expected a document at index {index}")
        if "version" in doc and "kind" not in doc:
            if doc["version"] != "v1alpha1":
                raise ConfigRejected(f"error decoding document /{doc['version']}/: not registered")
            if v1alpha1 is not None:
                raise ConfigRejected("duplicate document v1alpha1/v1alpha1/ is not allowed")
            v1alpha1 = doc
        elif "kind" not in doc:
            raise ConfigRejected(f"error decoding document at index {index}: missing kind")
        elif "apiVersion" not in doc:
            raise ConfigRejected(f"error decoding document /{doc['kind']}/: missing apiVersion")
        else:
            kind = str(doc["kind"])
            if release is not None and release < (1, 14) and kind in _KINDS_SINCE_1_14:
                # configloader's decoder wrapping registry.ErrNotRegistered (line omitted).
                raise ConfigRejected(
                    f"error decoding document {doc['apiVersion']}/{kind}/{doc.get('name', '')}: "
                    f'"{kind}" "{doc["apiVersion"]}": not registered'
                )
            extra[kind] = doc
    if v1alpha1 is None:
        raise ConfigRejected("the applied machine configuration doesn't contain v1alpha1 config")
    return v1alpha1, extra


def _section(doc: dict[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name)
    return value if isinstance(value, dict) else {}


def parse_machine_config(data: bytes, release: str | None = None) -> MachineConfig:
    """Parse and validate like Talos ``release`` (``v1.13.9``; None: the newest) would;
    raises ``ConfigRejected`` with Talos' messages."""
    match = re.match(r"v?(\d+)\.(\d+)", release or "")
    doc, extra = _documents(data, (int(match[1]), int(match[2])) if match else None)
    problems: list[str] = []
    machine, cluster = doc.get("machine"), doc.get("cluster")
    if not isinstance(machine, dict):
        raise ConfigRejected(_multierror(["machine instructions are required"]))
    kind = str(machine.get("type", ""))
    control_plane = kind in {"controlplane", "init"}
    if kind not in {"controlplane", "init", "worker"}:
        problems.append(f'unknown machine type "{kind}"')
    ca = _section(machine, "ca")
    os_crt, os_key = _pem(ca.get("crt")), _pem(ca.get("key"))
    if os_crt is None:
        problems.append(
            "issuing CA or some accepted CAs are required (.machine.ca, machine.acceptedCAs)"
        )
    elif not _valid_cert(os_crt):
        problems.append("certificate is invalid")
    if control_plane and os_key is None:
        problems.append("issuing CA key is required for controlplane nodes (.machine.ca.key)")
    if kind == "worker" and os_key is not None:
        problems.append(
            "issuing Talos API CA key is not allowed on non-controlplane nodes (.machine.ca)"
        )
    token = str(machine.get("token", ""))
    if not _TOKEN.match(token):
        problems.append("trustd token is invalid")
    if not isinstance(cluster, dict):
        raise ConfigRejected(_multierror([*problems, "cluster instructions are required"]))
    kube_cluster = extra.get("KubeClusterConfig", {})
    endpoint = str(
        _section(cluster, "controlPlane").get("endpoint") or kube_cluster.get("endpoint") or ""
    )
    if not endpoint:
        problems.append("cluster controlplane endpoint is required")
    else:
        url = urlsplit(endpoint)
        if url.scheme not in {"https", "http"} or not url.hostname:
            problems.append(f'invalid controlplane endpoint: parse "{endpoint}": invalid URL')
    k8s_ca = _section(cluster, "ca")
    k8s_crt, k8s_key = _pem(k8s_ca.get("crt")), _pem(k8s_ca.get("key"))
    issuing = _section(extra.get("KubeAPIServerCAConfig", {}), "issuingCA")
    if k8s_crt is None and issuing.get("cert"):
        k8s_crt = str(issuing["cert"]).encode()
        k8s_key = str(issuing.get("key") or "").encode() or None
    if kind == "worker" and k8s_key is not None:
        problems.append("cluster CA key is not allowed on non-controlplane nodes (.cluster.ca)")
    if control_plane and (k8s_crt is None or k8s_key is None):
        problems.append("key/cert combination should not be empty (.cluster.ca)")
    etcd_doc = _section(cluster, "etcd")
    etcd = _section(etcd_doc, "ca")
    if kind == "worker" and etcd:
        problems.append("etcd config is only allowed on control plane machines")
    install = _section(machine, "install")
    unattended = extra.get("UnattendedInstallConfig")
    if install and unattended is not None:
        # runtime.UnattendedInstallConfigV1Alpha1.V1Alpha1ConflictValidate.
        problems.append(
            "UnattendedInstallConfig config is incompatible with v1alpha1 config (.machine.install)"
        )
    install_image = install.get("image") or _section(unattended or {}, "installer").get("image")
    labels, taints = _node_labels_and_taints(machine, extra, problems)
    if problems:
        raise ConfigRejected(_multierror(problems))
    kube_secrets = _kube_secrets(cluster, extra)
    hostname_doc = extra.get("HostnameConfig", {})
    hostname = _section(machine, "network").get("hostname") or hostname_doc.get("hostname")
    assert os_crt is not None
    return MachineConfig(
        raw=data,
        type=kind,
        token=token,
        os_ca_crt=os_crt,
        os_ca_key=os_key,
        endpoint=endpoint,
        cluster_name=str(cluster.get("clusterName") or kube_cluster.get("clusterName") or ""),
        cluster_id=str(
            cluster.get("id") or extra.get("DiscoveryIdentityConfig", {}).get("clusterID") or ""
        ),
        k8s_ca_crt=k8s_crt,
        k8s_ca_key=k8s_key,
        etcd_ca=bool(etcd.get("crt")),
        hostname=str(hostname) if hostname else None,
        install_image=str(install_image) if install_image else None,
        node_labels=labels,
        node_taints=taints,
        allow_scheduling_on_control_planes=bool(cluster.get("allowSchedulingOnControlPlanes")),
        kubernetes_version=_kubelet_version(machine, extra),
        node_document="KubeNodeConfig" in extra,
        etcd_advertised_subnets=tuple(str(c) for c in etcd_doc.get("advertisedSubnets") or ()),
        talos_api_access=_api_access(machine, extra),
        **kube_secrets,
    )


def _kube_secrets(cluster: dict[str, Any], extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The aggregator CA, service-account key, secretbox secret and subnets, from either
    layout: v1alpha1 ``cluster.*`` (base64 PEM) or the 1.14 documents (PEM as text)."""
    out: dict[str, Any] = {}
    aggregator = _section(cluster, "aggregatorCA")
    issuing = _section(extra.get("KubeAggregatorCAConfig", {}), "issuingCA")
    if aggregator.get("crt"):
        out["aggregator_ca_crt"] = _pem(aggregator.get("crt"))
        out["aggregator_ca_key"] = _pem(aggregator.get("key"))
    elif issuing.get("cert"):
        out["aggregator_ca_crt"] = str(issuing["cert"]).encode()
        out["aggregator_ca_key"] = str(issuing.get("key") or "").encode() or None
    account = _section(cluster, "serviceAccount")
    issuer = _section(extra.get("KubeServiceAccountConfig", {}), "issuer")
    if account.get("key"):
        out["service_account_key"] = _pem(account.get("key"))
    elif issuer.get("privateKey"):
        out["service_account_key"] = str(issuer["privateKey"]).encode()
    secretbox = cluster.get("secretboxEncryptionSecret")
    if not secretbox:
        config = _section(extra.get("KubeEtcdEncryptionConfig", {}), "config")
        for resource in config.get("resources") or []:
            for provider in (resource or {}).get("providers") or []:
                keys = _section(provider or {}, "secretbox").get("keys") or []
                secretbox = secretbox or (keys[0].get("secret") if keys else None)
    if secretbox:
        out["secretbox"] = str(secretbox)
    network = {**extra.get("KubeNetworkConfig", {}), **_section(cluster, "network")}
    for field_name, key in (("service_subnet", "serviceSubnets"), ("pod_subnet", "podSubnets")):
        subnets = network.get(key) or []
        if subnets:
            out[field_name] = str(subnets[0])
    return out


def _api_access(
    machine: dict[str, Any], extra: dict[str, dict[str, Any]]
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    feature = _section(_section(machine, "features"), "kubernetesTalosAPIAccess")
    doc = extra.get("KubeTalosAPIAccessConfig")
    source = doc if doc is not None else (feature if feature.get("enabled") else None)
    if source is None:
        return None
    roles = tuple(str(r) for r in source.get("allowedRoles") or ())
    namespaces = tuple(str(n) for n in source.get("allowedKubernetesNamespaces") or ())
    return roles, namespaces


def _kubelet_version(machine: dict[str, Any], extra: dict[str, dict[str, Any]]) -> str | None:
    image = _section(machine, "kubelet").get("image") or extra.get("KubeletConfig", {}).get("image")
    match = re.search(r":v?(\d+\.\d+\.\d+)$", str(image or ""))
    return match.group(1) if match else None


def _node_labels_and_taints(
    machine: dict[str, Any], extra: dict[str, dict[str, Any]], problems: list[str]
) -> tuple[dict[str, str], list[dict[str, str]]]:
    node_doc = extra.get("KubeNodeConfig", {})
    raw_labels = {**_section(node_doc, "labels"), **_section(machine, "nodeLabels")}
    labels = {str(k): "" if v is None else str(v) for k, v in raw_labels.items()}
    bad = [k for k in labels if not _LABEL_KEY.match(k) or len(k) > 316]
    if bad:
        problems.append(f"invalid machine node labels: invalid label key {bad[0]!r}")
    taints: list[dict[str, str]] = []
    raw_taints = {**_section(node_doc, "taints"), **_section(machine, "nodeTaints")}
    for key, spec in raw_taints.items():
        value, _, effect = str(spec).rpartition(":")
        if effect not in _EFFECTS:
            problems.append(f"invalid machine node taints: invalid taint effect {effect!r}")
            continue
        taint = {"key": str(key), "effect": effect}
        if value:
            taint["value"] = value
        taints.append(taint)
    return labels, taints
