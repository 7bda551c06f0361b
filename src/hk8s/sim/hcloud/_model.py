"""The simulated resources: plain mutable records the API handlers and other sim parts share.

Other parts of the simulator read and write these directly (see the package docstring):
``server.public_ipv4`` is where a Talos node or a rescue SSH server listens, ``image.metadata``
carries "what was written to the disk" from the server an image was created from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hk8s.sim.hcloud._catalog import Location, ServerType

__all__ = [
    "Action",
    "Firewall",
    "Image",
    "LoadBalancer",
    "Network",
    "PlacementGroup",
    "PrimaryIP",
    "SSHKey",
    "Server",
    "Volume",
]


@dataclass
class Action:
    id: int
    command: str
    resources: list[tuple[int, str]]
    started: float
    duration: float
    status: str = "running"  # running -> success | error
    finished: float | None = None
    error: tuple[str, str] | None = None  # (code, message)


@dataclass
class Server:
    id: int
    name: str
    server_type: ServerType
    location: Location
    image: Image | None
    labels: dict[str, str]
    created: float
    status: str = "initializing"
    public_ipv4: str | None = None
    public_ipv4_id: int | None = None
    public_ipv6: str | None = None
    public_ipv6_id: int | None = None
    # network id -> private IP
    private_net: dict[int, str] = field(default_factory=dict)
    firewall_ids: list[int] = field(default_factory=list)
    placement_group_id: int | None = None
    ssh_key_ids: list[int] = field(default_factory=list)
    user_data: str | None = None
    rescue_enabled: bool = False
    # What enable_rescue asked for: the keys and root password of the rescue system.
    rescue_ssh_key_ids: list[int] = field(default_factory=list)
    rescue_password: str | None = None
    # Booted into the rescue system (rescue is consumed by the boot, see enable_rescue docs).
    in_rescue: bool = False
    root_password: str | None = None
    protection_delete: bool = False
    protection_rebuild: bool = False
    # Actions that hold the server's lock; the API reports ``locked`` while any runs.
    lock_count: int = 0
    # Free-form state for other simulator parts (Talos node, disk contents, ...).
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def locked(self) -> bool:
        return self.lock_count > 0

    @property
    def architecture(self) -> str:
        return self.server_type.architecture


@dataclass
class Image:
    id: int
    type: str  # system | snapshot | backup
    name: str | None
    description: str
    architecture: str
    created: float
    status: str = "available"
    os_flavor: str = "unknown"
    os_version: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    created_from: tuple[int, str] | None = None
    image_size: float | None = None
    disk_size: float = 0
    protection_delete: bool = False
    # What the disk of the source server contained (set by the rescue/disk part on
    # ``image_create_requested``); servers created or rebuilt from this image see it.
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Subnet:
    type: str
    ip_range: str
    network_zone: str
    gateway: str
    vswitch_id: int | None = None


@dataclass
class Network:
    id: int
    name: str
    ip_range: str
    labels: dict[str, str]
    created: float
    subnets: list[Subnet] = field(default_factory=list)
    routes: list[dict[str, str]] = field(default_factory=list)
    expose_routes_to_vswitch: bool = False
    protection_delete: bool = False


@dataclass
class Firewall:
    id: int
    name: str
    labels: dict[str, str]
    created: float
    rules: list[dict[str, Any]] = field(default_factory=list)
    # ("server", id) or ("label_selector", selector)
    applied_to: list[tuple[str, int | str]] = field(default_factory=list)


@dataclass
class LBService:
    protocol: str
    listen_port: int
    destination_port: int
    proxyprotocol: bool
    health_check: dict[str, Any]
    http: dict[str, Any] | None = None


@dataclass
class LBTarget:
    type: str  # server | label_selector | ip
    server_id: int | None = None
    selector: str | None = None
    ip: str | None = None
    use_private_ip: bool = False


@dataclass
class LoadBalancer:
    id: int
    name: str
    lb_type: dict[str, Any]
    location: Location
    labels: dict[str, str]
    created: float
    public_ipv4: str
    public_ipv6: str
    algorithm: str = "round_robin"
    public_interface: bool = True
    services: list[LBService] = field(default_factory=list)
    targets: list[LBTarget] = field(default_factory=list)
    private_net: dict[int, str] = field(default_factory=dict)
    protection_delete: bool = False
    # (server id, listen port) -> "healthy" | "unhealthy" | "unknown"
    health: dict[tuple[int, int], str] = field(default_factory=dict)


@dataclass
class PlacementGroup:
    id: int
    name: str
    labels: dict[str, str]
    created: float
    type: str = "spread"


@dataclass
class SSHKey:
    id: int
    name: str
    public_key: str
    fingerprint: str
    labels: dict[str, str]
    created: float


@dataclass
class PrimaryIP:
    id: int
    name: str
    type: str  # ipv4 | ipv6
    ip: str
    location: Location
    labels: dict[str, str]
    created: float
    assignee_id: int | None = None
    auto_delete: bool = False
    protection_delete: bool = False


@dataclass
class Volume:
    """A block storage volume (what the Hetzner CSI driver makes for a PersistentVolume)."""

    id: int
    name: str
    size: int
    location: Location
    labels: dict[str, str]
    created: float
    server_id: int | None = None
    status: str = "creating"  # creating -> available
    format: str | None = None
    protection_delete: bool = False
