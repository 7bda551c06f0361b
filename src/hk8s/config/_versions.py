"""The version matrix and every version pin hk8s has: data only, each fact with its source.

Which Kubernetes versions each Talos release runs and which Talos releases it can be upgraded
from; which Kubernetes versions each addon chart release supports, and the minimum a provider
demands; and the versions hk8s installs when ``cluster.yaml`` names none. ``_matrix`` holds
the rules that read this data (``config validate``, ``upgrade``, ``hk8s version --matrix``).

Read on 2026-12-07. Release dates are those of the upstream tag (git) or of the Go module
proxy's ``.info`` for the tag (proxy.golang.org), which records when a tag was first seen.
To move a pin: check the new release exists and what it supports, change it here, and run
``tests/unit/config/test_versions.py``, which ties every default to this matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "ADDON_CHARTS",
    "CHART_LINES",
    "DEFAULT_IMAGE_FACTORY",
    "DEFAULT_KUBERNETES_VERSION",
    "DEFAULT_KUBERNETES_VERSIONS",
    "DEFAULT_TALOS_VERSION",
    "HELM_IMAGE",
    "PROVIDER_MINIMUMS",
    "SUPPORTED_TALOS_MINORS",
    "TALOS_BACKUP_IMAGE",
    "TALOS_KUBERNETES_SUPPORT",
    "TALOS_RELEASES",
    "VANILLA_SCHEMATIC_ID",
    "AddonChart",
    "ChartLine",
    "KubeRange",
    "ProviderMinimum",
    "TalosRelease",
]


@dataclass(frozen=True)
class KubeRange:
    """Kubernetes minors ``1.low`` .. ``1.high`` inclusive; ``high`` None: no upper bound."""

    low: int
    high: int | None

    def contains(self, minor: int) -> bool:
        return self.low <= minor and (self.high is None or minor <= self.high)

    def __str__(self) -> str:
        return f"1.{self.low}+" if self.high is None else f"1.{self.low}-1.{self.high}"


@dataclass(frozen=True)
class TalosRelease:
    """One Talos minor release: what it runs, what it upgrades from, what hk8s installs on it.

    ``upgrade_from`` and ``downgrade_below`` are upstream's ``MinimumHostUpgradeVersion`` and
    ``MaximumHostDowngradeVersion``: a node runs this release only after an upgrade from
    ``upgrade_from`` or later, or a downgrade from a release older than ``downgrade_below``.
    """

    minor: str
    kubernetes: KubeRange
    upgrade_from: str
    downgrade_below: str
    default_kubernetes: str
    source: str


# siderolabs/talos pkg/machinery/compatibility/talos1NN/talos1NN.go (MinimumKubernetesVersion,
# MaximumKubernetesVersion = 1.x.99, MinimumHostUpgradeVersion, MaximumHostDowngradeVersion),
# read at branch release-1.14 (v1.14.0-rc.1, 2026-08-14), which carries all four files.
# (Talos' v1.14 docs list Kubernetes 1.33-1.37 as tested; the code accepts 1.32.)
# default_kubernetes: the newest patch of the newest minor the Talos release supports AND the
# default addon charts support (see CHART_LINES), each seen on proxy.golang.org
# (k8s.io/kubernetes): v1.34.12 2026-09-23, v1.35.8 2026-08-20, v1.36.5 2026-09-23. Kubernetes
# 1.37 (v1.37.2, 2026-10-27) runs on Talos 1.14 but no CCM/CSI/Cilium release hk8s could
# verify supports it yet, so it is not a default.
_COMPAT = "siderolabs/talos pkg/machinery/compatibility/talos{}/talos{}.go (release-1.14)"
TALOS_RELEASES: Final[dict[str, TalosRelease]] = {
    r.minor: r
    for r in (
        TalosRelease("1.11", KubeRange(29, 34), "1.9.0", "1.13.0", "1.34.12",
                     _COMPAT.format(111, 111)),
        TalosRelease("1.12", KubeRange(30, 35), "1.10.0", "1.14.0", "1.35.8",
                     _COMPAT.format(112, 112)),
        TalosRelease("1.13", KubeRange(31, 36), "1.11.0", "1.15.0", "1.36.5",
                     _COMPAT.format(113, 113)),
        TalosRelease("1.14", KubeRange(32, 37), "1.12.0", "1.16.0", "1.36.5",
                     _COMPAT.format(114, 114)),
    )
}  # fmt: skip
SUPPORTED_TALOS_MINORS: Final[tuple[str, ...]] = tuple(TALOS_RELEASES)
# (min minor, max minor) of 1.x per Talos minor, for callers that only need the bounds.
TALOS_KUBERNETES_SUPPORT: Final[dict[str, tuple[int, int]]] = {
    m: (r.kubernetes.low, r.kubernetes.high or r.kubernetes.low) for m, r in TALOS_RELEASES.items()
}
DEFAULT_KUBERNETES_VERSIONS: Final[dict[str, str]] = {
    m: r.default_kubernetes for m, r in TALOS_RELEASES.items()
}

# Talos v1.14.1: siderolabs/talos PR #14383 "release(v1.14.1): prepare release", merged
# 2026-09-15; github.com/siderolabs/talos/pkg/machinery v1.14.1 on proxy.golang.org,
# 2026-09-15. (v1.14.0 was released 2026-09-03, PR #14229. Later 1.14 patches are mentioned
# by third parties but could not be verified from upstream here.)
DEFAULT_TALOS_VERSION: Final = "v1.14.1"
# What a config without talos/kubernetes versions gets.
DEFAULT_KUBERNETES_VERSION: Final = DEFAULT_KUBERNETES_VERSIONS[
    DEFAULT_TALOS_VERSION[1:].rsplit(".", 1)[0]
]
DEFAULT_IMAGE_FACTORY: Final = "https://factory.talos.dev"

# The Image Factory's schematic id of an empty customization (no extensions, no extra kernel
# args): the id of the "vanilla" Talos image, used when the config names neither a schematic
# nor extensions.
VANILLA_SCHEMATIC_ID: Final = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"


@dataclass(frozen=True)
class ChartLine:
    """Chart releases ``first`` .. ``last`` (inclusive, both tagged upstream) of one addon and
    the Kubernetes versions they support; ``last`` is the newest release of the line hk8s
    has checked."""

    addon: str
    first: str
    last: str
    kubernetes: KubeRange
    source: str


_CCM = "hetznercloud/hcloud-cloud-controller-manager"
_CSI = "hetznercloud/csi-driver"
CHART_LINES: Final[tuple[ChartLine, ...]] = (
    # CHANGELOG.md: v1.27.0 "support Kubernetes v1.34 and drop v1.30"; v1.30.0 "support
    # Kubernetes v1.35, drop v1.31"; v1.31.0 "support Kubernetes v1.36, drop v1.32";
    # docs/reference/version-policy.md (main, 2026-08-19): latest supports 1.33-1.36.
    # Newest release v1.35.0, tagged 2026-08-11 (chart/Chart.yaml version 1.35.0).
    ChartLine("hcloud_ccm", "1.27.0", "1.29.2", KubeRange(31, 34), f"{_CCM} CHANGELOG.md"),
    ChartLine("hcloud_ccm", "1.30.0", "1.30.1", KubeRange(32, 35), f"{_CCM} CHANGELOG.md"),
    ChartLine("hcloud_ccm", "1.31.0", "1.35.0", KubeRange(33, 36),
              f"{_CCM} CHANGELOG.md, docs/reference/version-policy.md"),
    # CHANGELOG.md: v2.18.0 "support Kubernetes v1.34 and drop v1.30"; v2.18.2 "drop
    # Kubernetes v1.31"; v2.19.0 "support Kubernetes v1.35"; v2.21.0 "support Kubernetes
    # v1.36, drop v1.32"; docs/kubernetes/reference/version-policy.md (main, 2026-08-21).
    # Newest release v2.22.1, tagged 2026-07-30 (chart/Chart.yaml version 2.22.1).
    ChartLine("hcloud_csi", "2.18.0", "2.18.1", KubeRange(31, 34), f"{_CSI} CHANGELOG.md"),
    ChartLine("hcloud_csi", "2.18.2", "2.18.3", KubeRange(32, 34), f"{_CSI} CHANGELOG.md"),
    ChartLine("hcloud_csi", "2.19.0", "2.20.2", KubeRange(32, 35), f"{_CSI} CHANGELOG.md"),
    ChartLine("hcloud_csi", "2.21.0", "2.22.1", KubeRange(33, 36),
              f"{_CSI} CHANGELOG.md, docs/kubernetes/reference/version-policy.md"),
    # cilium/cilium Documentation/network/kubernetes/compatibility.rst ("e2e tested and
    # guaranteed to be compatible"): v1.18.14 lists 1.30-1.33; v1.20.2 (tagged 2026-09-15 per
    # proxy.golang.org) lists 1.33-1.36 (read from the v1.20.2 module). 1.19 is not checked.
    ChartLine("cilium", "1.18.0", "1.18.14", KubeRange(30, 33),
              "cilium/cilium v1.18.14 Documentation/network/kubernetes/compatibility.rst"),
    ChartLine("cilium", "1.20.0", "1.20.2", KubeRange(33, 36),
              "cilium/cilium v1.20.2 Documentation/network/kubernetes/compatibility.rst"),
    # kubernetes-sigs/metrics-server README "Compatibility Matrix": 0.8.x supports 1.31+;
    # charts/metrics-server/CHANGELOG.md: chart 3.13.0 (2025-07-22) ships 0.8.0, 3.13.1
    # (2026-02-27) ships 0.8.1, still the newest chart at tag v0.9.1 (2026-10-28).
    ChartLine("metrics_server", "3.13.0", "3.13.1", KubeRange(31, None),
              "kubernetes-sigs/metrics-server README.md, charts/metrics-server/CHANGELOG.md"),
)  # fmt: skip


@dataclass(frozen=True)
class ProviderMinimum:
    """The oldest chart release a provider still works with, and why."""

    addon: str
    version: str
    reason: str
    source: str


PROVIDER_MINIMUMS: Final[dict[str, ProviderMinimum]] = {
    "hcloud_ccm": ProviderMinimum(
        "hcloud_ccm",
        "1.30.1",
        "Hetzner removed the `datacenter` field from the API on 2026-07-01; older "
        "hcloud-cloud-controller-manager releases panic without it",
        # README.md (main, 2026-08-19): "please update as soon as possible to at least
        # v1.30.1 ... removed from the API response since 2026-07-01"; Hetzner changelog
        # 2025-12-16 "phasing out datacenters".
        f"{_CCM} README.md; docs.hetzner.cloud/changelog#2025-12-16-phasing-out-datacenters",
    ),
}


@dataclass(frozen=True)
class AddonChart:
    """Where an addon's Helm chart comes from and the version hk8s pins by default."""

    release: str
    chart: str
    repo: str
    namespace: str
    version: str


# Upstream Helm charts of the addons, keyed by their name in cluster.yaml's ``addons``, in
# install order. Each default is the newest release of its chart verified above (CHART_LINES).
ADDON_CHARTS: Final[dict[str, AddonChart]] = {
    "cilium": AddonChart(
        release="cilium",
        chart="cilium",
        repo="https://helm.cilium.io/",
        namespace="kube-system",
        version="1.20.2",
    ),
    "hcloud_ccm": AddonChart(
        release="hcloud-cloud-controller-manager",
        chart="hcloud-cloud-controller-manager",
        repo="https://charts.hetzner.cloud",
        namespace="kube-system",
        version="1.35.0",
    ),
    "hcloud_csi": AddonChart(
        release="hcloud-csi",
        chart="hcloud-csi",
        repo="https://charts.hetzner.cloud",
        namespace="kube-system",
        version="2.22.1",
    ),
    "metrics_server": AddonChart(
        release="metrics-server",
        chart="metrics-server",
        repo="https://kubernetes-sigs.github.io/metrics-server/",
        namespace="kube-system",
        version="3.13.1",
    ),
}

# The image the addon Jobs run helm from (its entrypoint is `helm`). Helm v3.22.1: helm.sh/helm/v3
# v3.22.1 on proxy.golang.org, 2026-10-15 (the newest v3 release seen there); alpine/helm
# publishes an image per helm release, tagged with the helm version.
HELM_IMAGE: Final = "alpine/helm:3.22.1"

# The CronJob of `backup:` runs siderolabs/talos-backup: Sidero's own tool for exactly this
# (etcd snapshot through the Talos API with a Talos ServiceAccount's os:etcd:backup role, age
# encryption, upload to S3), the one terraform-hcloud-kubernetes and Talos' docs use, so hk8s
# writes no backup agent of its own. v0.1.0-beta.3 (tag 2025-02-10, commit 11ca8c5 in
# github.com/siderolabs/talos-backup, read 2026-12-07) is its newest release; main has moved
# to minio-go since (2025-08-28) but is untagged. The digest is the one a renovate-managed
# Terraform module pins for this tag (a stored public source, 2026-12-07), not re-read from
# ghcr.io here. Its environment contract at this tag (pkg/config/service.go):
# CUSTOM_S3_ENDPOINT, BUCKET, AWS_REGION, S3_PREFIX, CLUSTER_NAME, AGE_X25519_PUBLIC_KEY,
# DISABLE_ENCRYPTION and USE_PATH_STYLE, whose value "false" (sic) turns path-style on.
TALOS_BACKUP_IMAGE: Final = (
    "ghcr.io/siderolabs/talos-backup:v0.1.0-beta.3"
    "@sha256:05c86663b251a407551dc948097e32e163a345818117eb52c573b0447bd0c7a7"
)
