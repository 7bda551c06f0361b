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

EU_LOCATIONS: Final[frozenset[str]] = frozenset({"fsn1", "nbg1", "hel1"})

# Which server type families Hetzner sells where, as of 2026-12-07. This is the one place
# these facts live in the product; the simulator's catalogue (hk8s/sim/hcloud/_catalog.py)
# carries the same facts with a source for each. The live API stays the authority: `plan`,
# `create`, `infra`, `upgrade` and `image build` check every type against it (deprecation,
# availability right now); these rules only catch what can never work, offline.
# - CX (shared, cost-optimized: cx23..cx53) and CAX (Ampere arm64: cax11..cax41): Germany
#   and Finland only (never sold in the US: Hetzner support quoted in trailofbits/algo#14562,
#   2022; hetzner.com plan pages read 2026-09-03 list EU prices only, per
#   robhunter/agentdeals#1286).
# - Second-generation CPX (cpx12..cpx62, since 2025-10-16): Germany, Finland and Singapore,
#   not the US (same plan pages: EU and SIN prices, none for the US).
# - First-generation CPX (cpx11..cpx51): deprecated 2025-10-16 and unorderable since
#   2025-12-31 where the second generation is sold (docs.hetzner.cloud
#   changelog#2025-10-16-server-types-deprecated; seen for nbg1 with
#   terraform-provider-hcloud, 2026-08: 'Server Type "cpx11" is unavailable in "nbg1" and
#   can no longer be ordered'); sold in ash and hil. Left to the live check.
# - CCX (dedicated): every location.
SERVER_FAMILY_LOCATIONS: Final[tuple[tuple[str, str, frozenset[str]], ...]] = (
    (r"^cx\d", "CX (shared cost-optimized)", EU_LOCATIONS),
    (r"^cax\d", "CAX (Ampere arm64)", EU_LOCATIONS),
    (r"^cpx\d2$", "second-generation CPX (cpx12..cpx62)", EU_LOCATIONS | {"sin"}),
)

# Server types used when a pool names none, per location: (control plane, workers). Chosen
# 2026-12-07 from the catalogue above: the smallest current shared x86 types that run
# Kubernetes well (2 vCPU/4 GB control plane, 4 vCPU/8 GB workers), not deprecated anywhere.
# The US sells no current shared x86 line (CX is EU-only, second-generation CPX is not sold
# there, first-generation CPX is deprecated everywhere else), so its defaults are dedicated
# CCX, which is current in every location.
DEFAULT_SERVER_TYPES: Final[dict[str, tuple[str, str]]] = {
    "fsn1": ("cx23", "cx33"),
    "nbg1": ("cx23", "cx33"),
    "hel1": ("cx23", "cx33"),
    "sin": ("cpx22", "cpx32"),
    "ash": ("ccx13", "ccx23"),
    "hil": ("ccx13", "ccx23"),
}
DEFAULT_SERVER_TYPES_EU: Final = DEFAULT_SERVER_TYPES["fsn1"]

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
