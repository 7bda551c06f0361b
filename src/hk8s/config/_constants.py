"""Facts about Hetzner Cloud and Talos that the config is checked against.

Kept free of pydantic so that fast paths (``hk8s version``, the simulator) can read them
without paying for the model's import.
"""

from __future__ import annotations

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

# Limits of names built from the cluster name: Hetzner server names and Kubernetes node names
# must be RFC 1123 labels (<= 63 chars); "<cluster>-<pool>-pg-<k>" is the longest we build.
MAX_CLUSTER_NAME: Final = 40
MAX_POOL_NAME: Final = 15
MAX_HOSTNAME: Final = 63
MAX_POOL_COUNT: Final = 100
RESERVED_POOL_NAMES: Final[frozenset[str]] = frozenset({"cp"})
