"""Facts about Hetzner Cloud and Talos that the config is checked against.

Kept free of pydantic so that fast paths (``hk8s version``, the simulator) can read them
without paying for the model's import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Hetzner's locations and the network zone each belongs to. Source: the Hetzner Cloud API
# reference, "Network Zones" (../shared/reference/hcloud/openapi.json, tag "networks"):
# eu-central = nbg1, fsn1, hel1; us-east = ash; us-west = hil; ap-southeast = sin.
LOCATION_ZONES: Final[dict[str, str]] = {
    "fsn1": "eu-central",
    "nbg1": "eu-central",
    "hel1": "eu-central",
    "ash": "us-east",
    "hil": "us-west",
    "sin": "ap-southeast",
}
NETWORK_ZONES: Final[tuple[str, ...]] = ("eu-central", "us-east", "us-west", "ap-southeast")

# Shared Intel (CX) and Ampere arm64 (CAX) server types are only offered in the EU locations;
# AMD (CPX) and dedicated (CCX) types everywhere (Hetzner "Server types" docs, 2025).
EU_ONLY_SERVER_TYPES: Final = ("cx", "cax")
EU_LOCATIONS: Final[frozenset[str]] = frozenset({"fsn1", "nbg1", "hel1"})

# Server types used when a pool names none: (control plane, workers), by where the cluster is.
DEFAULT_SERVER_TYPES_EU: Final = ("cx22", "cx32")
DEFAULT_SERVER_TYPES_ELSEWHERE: Final = ("cpx21", "cpx31")

# Kubernetes versions each Talos minor supports, inclusive, as (min minor, max minor) of 1.x.
# Source: siderolabs/talos pkg/machinery/compatibility/talos111/talos111.go (1.29.0..1.34.99),
# talos112/talos112.go (1.30.0..1.35.99), talos113/talos113.go (1.31.0..1.36.99).
TALOS_KUBERNETES_SUPPORT: Final[dict[str, tuple[int, int]]] = {
    "1.11": (29, 34),
    "1.12": (30, 35),
    "1.13": (31, 36),
}
SUPPORTED_TALOS_MINORS: Final[tuple[str, ...]] = tuple(TALOS_KUBERNETES_SUPPORT)

# The Kubernetes version hk8s installs when the config names none: the newest minor the
# Talos release supports (what that Talos release ships as its own default).
DEFAULT_KUBERNETES_VERSIONS: Final[dict[str, str]] = {
    "1.11": "1.34.1",
    "1.12": "1.35.0",
    "1.13": "1.36.0",
}
DEFAULT_TALOS_VERSION: Final = "v1.12.0"
DEFAULT_IMAGE_FACTORY: Final = "https://factory.talos.dev"

# The Image Factory's schematic id of an empty customization (no extensions, no extra kernel
# args): the id of the "vanilla" Talos image, used when the config names neither a schematic
# nor extensions.
VANILLA_SCHEMATIC_ID: Final = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"


@dataclass(frozen=True)
class AddonChart:
    """Where an addon's Helm chart comes from and the version hk8s pins by default."""

    release: str
    chart: str
    repo: str
    namespace: str
    version: str


# Upstream Helm charts of the addons, keyed by their name in cluster.yaml's ``addons``.
ADDON_CHARTS: Final[dict[str, AddonChart]] = {
    "cilium": AddonChart(
        release="cilium",
        chart="cilium",
        repo="https://helm.cilium.io/",
        namespace="kube-system",
        version="1.18.4",
    ),
    "hcloud_ccm": AddonChart(
        release="hcloud-cloud-controller-manager",
        chart="hcloud-cloud-controller-manager",
        repo="https://charts.hetzner.cloud",
        namespace="kube-system",
        version="1.27.0",
    ),
    "hcloud_csi": AddonChart(
        release="hcloud-csi",
        chart="hcloud-csi",
        repo="https://charts.hetzner.cloud",
        namespace="kube-system",
        version="2.18.0",
    ),
    "metrics_server": AddonChart(
        release="metrics-server",
        chart="metrics-server",
        repo="https://kubernetes-sigs.github.io/metrics-server/",
        namespace="kube-system",
        version="3.13.0",
    ),
}

# Limits of names built from the cluster name: Hetzner server names and Kubernetes node names
# must be RFC 1123 labels (<= 63 chars); "<cluster>-<pool>-pg-<k>" is the longest we build.
MAX_CLUSTER_NAME: Final = 40
MAX_POOL_NAME: Final = 15
MAX_HOSTNAME: Final = 63
MAX_POOL_COUNT: Final = 100
RESERVED_POOL_NAMES: Final[frozenset[str]] = frozenset({"cp"})
