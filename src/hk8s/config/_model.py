"""The sections of the cluster.yaml model (pydantic v2); the whole file is ``_cluster``.

Field-level rules live in ``_fields``; rules that relate several sections (CIDR overlaps,
locations within the network zone, Kubernetes vs Talos version) live in ``_checks`` so the
loader can report them even when another section is broken. Models are frozen: a loaded
config is a value the controller reads, never a place to keep state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hk8s.config._constants import (
    DEFAULT_SERVER_TYPES,
    DEFAULT_SERVER_TYPES_EU,
    LOCATION_ZONES,
    MAX_POOL_COUNT,
)
from hk8s.config._types import (
    KUBERNETES_VERSION_SCHEMA,
    SERVER_TYPE_SCHEMA,
    ChartVersion,
    Cidr,
    ControlPlaneCount,
    Extension,
    KubernetesVersion,
    LabelKey,
    LabelValue,
    LoadBalancerType,
    Location,
    PoolName,
    Schematic,
    ServerType,
    Source,
    TaintText,
    TalosVersion,
    Url,
    derived_default,
)
from hk8s.config._versions import (
    ADDON_CHARTS,
    DEFAULT_IMAGE_FACTORY,
    DEFAULT_KUBERNETES_VERSION,
    DEFAULT_KUBERNETES_VERSIONS,
    DEFAULT_TALOS_VERSION,
    SUPPORTED_TALOS_MINORS,
    VANILLA_SCHEMATIC_ID,
)

if TYPE_CHECKING:
    from hk8s.config._fields import Taint

__all__ = [
    "AddonConfig",
    "AddonsConfig",
    "ControlPlaneConfig",
    "FirewallConfig",
    "KubernetesConfig",
    "LoadBalancerConfig",
    "NetworkConfig",
    "NodePool",
    "TalosConfig",
    "TalosPatches",
    "WorkerPoolConfig",
]

Role = Literal["control-plane", "worker"]
DEFER_CHECKS = "hk8s_defer_cross_checks"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class NetworkConfig(_Model):
    """The private network; pods and services must not overlap it or each other."""

    cidr: Cidr = Field(
        default="10.0.0.0/16", description="Hetzner network range (RFC 1918, /8../24)."
    )
    node_subnet: Cidr = Field(
        default="10.0.1.0/24", description="Subnet for servers, inside `cidr`."
    )
    pod_cidr: Cidr = Field(
        default="10.244.0.0/16", description="Pod network (Cilium cluster pool)."
    )
    service_cidr: Cidr = Field(default="10.96.0.0/12", description="Kubernetes service network.")


class _PoolBase(_Model):
    location: Location | None = Field(
        default=None, description="Defaults to the cluster's location."
    )
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="Node labels.")
    taints: list[TaintText] = Field(
        default_factory=list, description="Node taints, `key=value:Effect` or `key:Effect`."
    )


class ControlPlaneConfig(_PoolBase):
    """The control-plane pool, always named ``cp``."""

    count: ControlPlaneCount = Field(
        default=1, ge=1, le=9, description="Odd number of control-plane nodes (etcd)."
    )
    server_type: ServerType = Field(
        default=DEFAULT_SERVER_TYPES_EU[0],
        json_schema_extra=derived_default(**SERVER_TYPE_SCHEMA),
        description=f"Default: {DEFAULT_SERVER_TYPES['fsn1'][0]} in the EU, "
        f"{DEFAULT_SERVER_TYPES['sin'][0]} in sin, {DEFAULT_SERVER_TYPES['ash'][0]} in the US.",
    )


class WorkerPoolConfig(_PoolBase):
    """One pool of identical workers."""

    name: PoolName = Field(description="Pool name; servers are `<cluster>-<name>-<n>`.")
    count: int = Field(default=1, ge=0, le=MAX_POOL_COUNT)
    server_type: ServerType = Field(
        default=DEFAULT_SERVER_TYPES_EU[1],
        json_schema_extra=derived_default(**SERVER_TYPE_SCHEMA),
        description=f"Default: {DEFAULT_SERVER_TYPES['fsn1'][1]} in the EU, "
        f"{DEFAULT_SERVER_TYPES['sin'][1]} in sin, {DEFAULT_SERVER_TYPES['ash'][1]} in the US.",
    )


class TalosPatches(_Model):
    """Machine config patches (strategic merge, as YAML mappings), applied last."""

    all: list[dict[str, Any]] = Field(default_factory=list)
    control_plane: list[dict[str, Any]] = Field(default_factory=list)
    worker: list[dict[str, Any]] = Field(default_factory=list)


class TalosConfig(_Model):
    version: TalosVersion = Field(
        default=DEFAULT_TALOS_VERSION,
        description=", ".join(f"v{m}.x" for m in SUPPORTED_TALOS_MINORS)
        + " (see `hk8s version --matrix`)",
    )
    schematic: Schematic | None = Field(default=None, description="Image Factory schematic id.")
    extensions: list[Extension] = Field(
        default_factory=list, description="System extensions (instead of `schematic`)."
    )
    image_factory: Url = DEFAULT_IMAGE_FACTORY
    patches: TalosPatches = Field(default_factory=TalosPatches)

    @property
    def minor(self) -> str:
        """``"v1.12.3"`` -> ``"1.12"``: the machine-config contract and support matrix key."""
        return ".".join(self.version.removeprefix("v").split(".")[:2])

    @property
    def effective_schematic(self) -> str | None:
        """The schematic to build from; None when it must be created from ``extensions``."""
        if self.schematic:
            return self.schematic
        return None if self.extensions else VANILLA_SCHEMATIC_ID


class KubernetesConfig(_Model):
    version: KubernetesVersion = Field(
        default=DEFAULT_KUBERNETES_VERSION,
        json_schema_extra=derived_default(**KUBERNETES_VERSION_SCHEMA),
        description="Defaults to the newest Kubernetes the Talos version supports.",
    )

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


class LoadBalancerConfig(_Model):
    enabled: bool = Field(
        default=True,
        json_schema_extra=derived_default(),
        description="API load balancer; default: true when control_plane.count > 1.",
    )
    type: LoadBalancerType = "lb11"
    location: Location | None = Field(
        default=None, description="Defaults to the cluster's location."
    )


class FirewallConfig(_Model):
    """Who may reach 6443 and 50000: ``current`` (your public IP) or CIDRs."""

    kube_api_sources: list[Source] = Field(default_factory=lambda: ["current"], min_length=1)
    talos_api_sources: list[Source] = Field(default_factory=lambda: ["current"], min_length=1)


class AddonConfig(_Model):
    enabled: bool = True
    version: ChartVersion = Field(description="Pinned Helm chart version.")
    values: dict[str, Any] = Field(default_factory=dict, description="Helm values.")


class CiliumAddon(AddonConfig):
    version: ChartVersion = ADDON_CHARTS["cilium"].version


class HcloudCcmAddon(AddonConfig):
    version: ChartVersion = ADDON_CHARTS["hcloud_ccm"].version


class HcloudCsiAddon(AddonConfig):
    version: ChartVersion = ADDON_CHARTS["hcloud_csi"].version


class MetricsServerAddon(AddonConfig):
    version: ChartVersion = ADDON_CHARTS["metrics_server"].version


class AddonsConfig(_Model):
    cilium: CiliumAddon = Field(default_factory=CiliumAddon)
    hcloud_ccm: HcloudCcmAddon = Field(default_factory=HcloudCcmAddon)
    hcloud_csi: HcloudCsiAddon = Field(default_factory=HcloudCsiAddon)
    metrics_server: MetricsServerAddon = Field(default_factory=MetricsServerAddon)

    def configured(self) -> dict[str, AddonConfig]:
        """Every addon by its key (``cilium``, ``hcloud_ccm``, ...), in install order."""
        return {name: getattr(self, name) for name in ADDON_CHARTS}


@dataclass(frozen=True)
class NodePool:
    """A pool in the uniform shape the controller works with (control plane included)."""

    cluster: str
    name: str
    role: Role
    count: int
    server_type: str
    location: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()

    @property
    def arch(self) -> Literal["amd64", "arm64"]:
        # Hetzner's CAX line is Ampere Altra (arm64); every other type is x86-64.
        return "arm64" if self.server_type.startswith("cax") else "amd64"

    def server_name(self, index: int) -> str:
        """``server_name(1)`` -> ``"<cluster>-<pool>-1"`` (indices start at 1)."""
        return f"{self.cluster}-{self.name}-{index}"


def fill_derived_defaults(data: Any) -> Any:
    """Defaults that depend on other fields, filled in before validation.

    - ``load_balancer.enabled``: true when there is more than one control-plane node (a
      single node is its own API endpoint; an LB would only add cost).
    - ``kubernetes.version``: the newest Kubernetes the chosen Talos minor supports.
    - ``network_zone``: the zone of ``location``.
    - ``server_type`` of each pool: what Hetzner sells in the cluster's location
      (``DEFAULT_SERVER_TYPES``: CX in the EU, CPX in Singapore, CCX in the US).
    """
    if not isinstance(data, dict):
        return data
    data = dict(data)
    location = data.get("location")
    if "network_zone" not in data and isinstance(location, str) and location in LOCATION_ZONES:
        data["network_zone"] = LOCATION_ZONES[location]
    if isinstance(location, str) and location in DEFAULT_SERVER_TYPES:
        cp_type, worker_type = DEFAULT_SERVER_TYPES[location]
        cp = data.get("control_plane")
        if cp is None or (isinstance(cp, dict) and "server_type" not in cp):
            data["control_plane"] = {**(cp or {}), "server_type": cp_type}
        workers = data.get("workers")
        if isinstance(workers, list):
            data["workers"] = [
                {**w, "server_type": worker_type}
                if isinstance(w, dict) and "server_type" not in w
                else w
                for w in workers
            ]
    lb = data.get("load_balancer")
    if lb is None or (isinstance(lb, dict) and "enabled" not in lb):
        cp = data.get("control_plane")
        count = cp.get("count", 1) if isinstance(cp, dict) else 1
        if isinstance(count, int) and not isinstance(count, bool):
            data["load_balancer"] = {**(lb or {}), "enabled": count > 1}
    kube = data.get("kubernetes")
    if kube is None or (isinstance(kube, dict) and "version" not in kube):
        talos = data.get("talos")
        version = (
            talos.get("version", DEFAULT_TALOS_VERSION)
            if isinstance(talos, dict)
            else DEFAULT_TALOS_VERSION
        )
        if isinstance(version, str):
            minor = ".".join(version.removeprefix("v").split(".")[:2])
            if minor in DEFAULT_KUBERNETES_VERSIONS:
                data["kubernetes"] = {**(kube or {}), "version": DEFAULT_KUBERNETES_VERSIONS[minor]}
    return data
