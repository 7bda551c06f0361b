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

# Shared Intel (CX) and Ampere arm64 (CAX) server types are only offered in the EU locations;
# AMD (CPX) and dedicated (CCX) types everywhere (Hetzner "Server types" docs, 2025).
EU_ONLY_SERVER_TYPES: Final = ("cx", "cax")
EU_LOCATIONS: Final[frozenset[str]] = frozenset({"fsn1", "nbg1", "hel1"})

# Server types used when a pool names none: (control plane, workers), by where the cluster is.
DEFAULT_SERVER_TYPES_EU: Final = ("cx22", "cx32")
DEFAULT_SERVER_TYPES_ELSEWHERE: Final = ("cpx21", "cpx31")

# Limits of names built from the cluster name: Hetzner server names and Kubernetes node names
# must be RFC 1123 labels (<= 63 chars); "<cluster>-<pool>-pg-<k>" is the longest we build.
MAX_CLUSTER_NAME: Final = 40
MAX_POOL_NAME: Final = 15
MAX_HOSTNAME: Final = 63
MAX_POOL_COUNT: Final = 100
RESERVED_POOL_NAMES: Final[frozenset[str]] = frozenset({"cp"})
