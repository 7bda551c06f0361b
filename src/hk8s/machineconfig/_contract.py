"""What differs between the Talos machine-config contracts hk8s targets (1.11 to 1.14).

Read off ``talosctl gen config`` output for each release (the reference ``gen-config/``
files) and the v1alpha1 JSON schema of each release:

* 1.11 still writes ``machine.features.{rbac,stableHostname,apidCheckExtKeyUsage}``,
  ``cluster.apiServer.{certSANs,disablePodSecurityPolicy}`` and ``machine.network``
  (where the hostname lives).
* 1.12 moves the hostname into a separate ``HostnameConfig`` document (``machine.network``
  keeps only ``kubespan``), drops those legacy fields and adds
  ``machine.install.grubUseUKICmdline``.
* 1.13 drops ``machine.network`` from the v1alpha1 document altogether.
* 1.14 keeps in v1alpha1 only the machine identity and ``cluster.{token, etcd,
  externalCloudProvider, adminKubeconfig}``; the rest are separate documents (``_multidoc``).
"""

from __future__ import annotations

from dataclasses import dataclass

from hk8s.errors import ConfigError, ConfigProblem

__all__ = ["SUPPORTED_CONTRACTS", "Contract", "contract_for"]

_MACHINE_KEYS_1_11 = frozenset(
    {
        "type", "token", "ca", "acceptedCAs", "certSANs", "controlPlane", "kubelet", "pods",
        "network", "install", "files", "env", "time", "sysctls", "sysfs", "registries",
        "features", "udev", "logging", "kernel", "seccompProfiles", "baseRuntimeSpecOverrides",
        "nodeLabels", "nodeAnnotations", "nodeTaints",
    }
)  # fmt: skip
_CLUSTER_KEYS = frozenset(
    {
        "id", "secret", "controlPlane", "clusterName", "network", "token",
        "aescbcEncryptionSecret", "secretboxEncryptionSecret", "ca", "acceptedCAs",
        "aggregatorCA", "serviceAccount", "apiServer", "controllerManager", "proxy", "scheduler",
        "discovery", "etcd", "coreDNS", "externalCloudProvider", "extraManifests",
        "extraManifestHeaders", "inlineManifests", "adminKubeconfig",
        "allowSchedulingOnControlPlanes",
    }
)  # fmt: skip


# The document kinds (apiVersion v1alpha1) each release registers beside v1alpha1: a patch that
# adds a document of another kind is refused there (machinery: '"X" "v1alpha1": not
# registered'). From each release's config.schema.json (oneOf), checked by
# tests/unit/machineconfig/test_contract.py against ../shared/reference/talos; 1.14's schema
# names UnattendedInstall, the kind Talos 1.14 registers and writes is UnattendedInstallConfig.
_KINDS_1_11 = frozenset(
    {
        "EthernetConfig", "EventSinkConfig", "ExistingVolumeConfig", "ExtensionServiceConfig",
        "KmsgLogConfig", "KubeSpanEndpoints", "NetworkDefaultActionConfig", "NetworkRuleConfig",
        "PCIDriverRebindConfig", "RawVolumeConfig", "SideroLinkConfig", "SwapVolumeConfig",
        "TrustedRootsConfig", "UserVolumeConfig", "VolumeConfig", "WatchdogTimerConfig",
        "ZswapConfig",
    }
)  # fmt: skip
_KINDS_1_12 = _KINDS_1_11 | {
    "BondConfig", "BridgeConfig", "DHCPv4Config", "DHCPv6Config", "DummyLinkConfig",
    "HCloudVIPConfig", "HostnameConfig", "Layer2VIPConfig", "LinkAliasConfig", "LinkConfig",
    "OOMConfig", "RegistryAuthConfig", "RegistryMirrorConfig", "RegistryTLSConfig",
    "ResolverConfig", "StaticHostConfig", "TimeSyncConfig", "VLANConfig", "WireguardConfig",
}  # fmt: skip
_KINDS_1_13 = _KINDS_1_12 | {
    "BlackholeRouteConfig", "EnvironmentConfig", "ExternalVolumeConfig", "KubeSpanConfig",
    "RoutingRuleConfig", "TCPProbeConfig", "VRFConfig",
}  # fmt: skip
_KINDS_1_14 = _KINDS_1_13 | {
    "BGPInstanceConfig", "CRIBaseRuntimeSpecConfig", "CRICustomizationConfig",
    "ContainerConfig", "DiscoveryIdentityConfig", "DiscoveryServiceConfig", "EtcFileConfig",
    "FilesystemScrubConfig", "FilesystemTrimConfig", "HTTPProbeConfig", "ImageCacheConfig",
    "KernelModuleConfig", "KubeAPIServerCAConfig", "KubeAPIServerConfig",
    "KubeAdmissionControlConfig", "KubeAggregatorCAConfig", "KubeAuditPolicyConfig",
    "KubeAuthenticationConfig", "KubeAuthorizerConfig", "KubeClusterConfig",
    "KubeControllerManagerConfig", "KubeCoreDNSConfig", "KubeCredentialProviderConfig",
    "KubeEtcdEncryptionConfig", "KubeExternalManifestConfig", "KubeFlannelCNIConfig",
    "KubeInlineManifestConfig", "KubeNetworkConfig", "KubeNodeConfig", "KubePrismConfig",
    "KubeProxyConfig", "KubeSchedulerConfig", "KubeServiceAccountConfig",
    "KubeStaticPodConfig", "KubeTalosAPIAccessConfig", "KubeletConfig",
    "LVMLogicalVolumeConfig", "LVMVolumeGroupConfig", "RAIDArrayConfig",
    "SecurityProfileConfig", "SysctlConfig", "SysfsConfig", "UdevRulesConfig",
    "UnattendedInstallConfig", "VethConfig",
}  # fmt: skip


@dataclass(frozen=True)
class Contract:
    """One Talos minor's machine-config shape."""

    minor: str
    legacy_fields: bool
    hostname_document: bool
    machine_network: bool
    grub_uki_cmdline: bool
    machine_keys: frozenset[str]
    cluster_keys: frozenset[str] = _CLUSTER_KEYS
    top_level_keys: frozenset[str] = frozenset({"version", "debug", "machine", "cluster"})
    multidoc: bool = False  # Kubernetes, install and discovery settings in their own documents
    document_kinds: frozenset[str] = _KINDS_1_11


SUPPORTED_CONTRACTS: dict[str, Contract] = {
    "1.11": Contract(
        minor="1.11",
        legacy_fields=True,
        hostname_document=False,
        machine_network=True,
        grub_uki_cmdline=False,
        machine_keys=_MACHINE_KEYS_1_11,
    ),
    "1.12": Contract(
        minor="1.12",
        document_kinds=_KINDS_1_12,
        legacy_fields=False,
        hostname_document=True,
        machine_network=True,
        grub_uki_cmdline=True,
        # 1.12 moved time and registries into their own documents, but its machinery still
        # loads and validates the deprecated fields (tests/oracles/talos): patches may set them.
        machine_keys=_MACHINE_KEYS_1_11,
    ),
    "1.13": Contract(
        minor="1.13",
        document_kinds=_KINDS_1_13,
        legacy_fields=False,
        hostname_document=True,
        machine_network=False,
        grub_uki_cmdline=True,
        # Deprecated, out of the JSON schema, still accepted by machinery 1.13 (the oracle).
        machine_keys=_MACHINE_KEYS_1_11,
    ),
    # v1.14 config.schema.json, v1alpha1.MachineConfig and v1alpha1.ClusterConfig.
    "1.14": Contract(
        minor="1.14",
        legacy_fields=False,
        hostname_document=True,
        machine_network=False,
        grub_uki_cmdline=False,
        machine_keys=frozenset(
            {
                "type",
                "token",
                "ca",
                "acceptedCAs",
                "certSANs",
                "features",
                "logging",
                "seccompProfiles",
            }
        ),
        cluster_keys=frozenset({"token", "etcd", "externalCloudProvider", "adminKubeconfig"}),
        multidoc=True,
        document_kinds=_KINDS_1_14,
    ),
}


def contract_for(talos_version: str) -> Contract:
    """``"v1.12.3"`` -> the 1.12 contract; ``ConfigError`` for releases hk8s cannot render."""
    minor = ".".join(talos_version.removeprefix("v").split(".")[:2])
    contract = SUPPORTED_CONTRACTS.get(minor)
    if contract is None:
        raise ConfigError(
            "talos.version",
            [
                ConfigProblem(
                    path="talos.version",
                    message=f"no machine-config contract for Talos {talos_version}",
                    hint="supported: " + ", ".join(f"v{m}.x" for m in SUPPORTED_CONTRACTS),
                )
            ],
        )
    return contract
