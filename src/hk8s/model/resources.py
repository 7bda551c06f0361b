"""hk8s' own view of Hetzner Cloud resources.

The Hetzner provider converts library objects into these frozen dataclasses at the boundary, so
the controller, its planners and its tests never touch ``hcloud`` types. Only the fields hk8s
reads are kept. ``*Spec`` types are what hk8s asks for; the plain types are what exists.

Labels are plain ``dict[str, str]``; names follow design.md section 3 (``<cluster>-fw``, ...).
``protected`` is the API's ``protection.delete``: Hetzner refuses to delete such a resource
(error ``protected``) until it is lifted; firewalls, placement groups and SSH keys have none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# Catalogue types live in hk8s.model.catalogue; ServerType is re-exported for older imports.
from hk8s.model.catalogue import ServerType

__all__ = [
    "Action",
    "ActionStatus",
    "Firewall",
    "FirewallRule",
    "FirewallSpec",
    "HealthCheck",
    "Image",
    "LBService",
    "LBTarget",
    "LoadBalancer",
    "LoadBalancerSpec",
    "Network",
    "NetworkSpec",
    "PlacementGroup",
    "PlacementGroupSpec",
    "PrivateIP",
    "SSHKey",
    "SSHKeySpec",
    "Server",
    "ServerSpec",
    "ServerType",
    "Subnet",
    "Volume",
]

ActionStatus = Literal["running", "success", "error"]


@dataclass(frozen=True)
class Action:
    """A Hetzner action: the asynchronous tail of a mutating request."""

    id: int
    command: str
    status: ActionStatus
    progress: int = 0
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class Subnet:
    """A network's subnet; hk8s uses ``cloud`` subnets in the cluster's network zone."""

    ip_range: str
    network_zone: str
    type: str = "cloud"
    gateway: str | None = None


@dataclass(frozen=True)
class Network:
    id: int
    name: str
    ip_range: str
    labels: dict[str, str] = field(default_factory=dict)
    subnets: tuple[Subnet, ...] = ()
    server_ids: tuple[int, ...] = ()
    load_balancer_ids: tuple[int, ...] = ()
    protected: bool = False


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    ip_range: str
    labels: dict[str, str]
    subnets: tuple[Subnet, ...] = ()


@dataclass(frozen=True)
class FirewallRule:
    """One rule; ``source_ips`` are CIDRs. Compare with ``key()``, which ignores order."""

    direction: Literal["in", "out"]
    protocol: Literal["tcp", "udp", "icmp", "esp", "gre"]
    port: str | None
    source_ips: tuple[str, ...] = ()
    destination_ips: tuple[str, ...] = ()
    description: str | None = None

    def key(self) -> tuple[object, ...]:
        return (
            self.direction,
            self.protocol,
            self.port,
            tuple(sorted(self.source_ips)),
            tuple(sorted(self.destination_ips)),
            self.description or "",
        )


@dataclass(frozen=True)
class Firewall:
    id: int
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    rules: tuple[FirewallRule, ...] = ()
    # Label selectors the firewall is applied to (``apply_to`` entries of type label_selector).
    applied_selectors: tuple[str, ...] = ()
    # Servers it is applied to directly or through a selector.
    applied_server_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class FirewallSpec:
    name: str
    labels: dict[str, str]
    rules: tuple[FirewallRule, ...]
    apply_to_selectors: tuple[str, ...] = ()


@dataclass(frozen=True)
class HealthCheck:
    protocol: Literal["tcp", "http", "https"] = "tcp"
    port: int = 6443
    interval: int = 15
    timeout: int = 10
    retries: int = 3


@dataclass(frozen=True)
class LBService:
    protocol: Literal["tcp", "http", "https"]
    listen_port: int
    destination_port: int
    health_check: HealthCheck = field(default_factory=HealthCheck)
    proxyprotocol: bool = False


@dataclass(frozen=True)
class LBTarget:
    """A load balancer target: ``label_selector`` (hk8s' choice) or ``server``."""

    type: Literal["label_selector", "server", "ip"]
    label_selector: str | None = None
    server_id: int | None = None
    use_private_ip: bool = False


@dataclass(frozen=True)
class PrivateIP:
    network_id: int
    ip: str


@dataclass(frozen=True)
class LoadBalancer:
    id: int
    name: str
    type: str
    location: str
    labels: dict[str, str] = field(default_factory=dict)
    public_ipv4: str | None = None
    private_ips: tuple[PrivateIP, ...] = ()
    services: tuple[LBService, ...] = ()
    targets: tuple[LBTarget, ...] = ()
    protected: bool = False


@dataclass(frozen=True)
class LoadBalancerSpec:
    name: str
    type: str
    location: str
    labels: dict[str, str]
    network_id: int | None = None
    services: tuple[LBService, ...] = ()
    targets: tuple[LBTarget, ...] = ()


@dataclass(frozen=True)
class PlacementGroup:
    id: int
    name: str
    type: str = "spread"
    labels: dict[str, str] = field(default_factory=dict)
    server_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class PlacementGroupSpec:
    name: str
    labels: dict[str, str]
    type: str = "spread"


@dataclass(frozen=True)
class Image:
    id: int
    name: str | None
    type: str
    status: str
    architecture: str
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    created: str | None = None
    protected: bool = False


@dataclass(frozen=True)
class SSHKey:
    id: int
    name: str
    fingerprint: str
    public_key: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SSHKeySpec:
    name: str
    public_key: str
    labels: dict[str, str]


@dataclass(frozen=True)
class Server:
    id: int
    name: str
    status: str
    server_type: str
    location: str
    labels: dict[str, str] = field(default_factory=dict)
    image_id: int | None = None
    public_ipv4: str | None = None
    private_ips: tuple[PrivateIP, ...] = ()
    placement_group_id: int | None = None
    rescue_enabled: bool = False
    created: str | None = None
    protected: bool = False


@dataclass(frozen=True)
class ServerSpec:
    """Everything a server needs, sent in the one create request (design.md section 4)."""

    name: str
    server_type: str
    image: int | str
    location: str
    labels: dict[str, str]
    network_ids: tuple[int, ...] = ()
    firewall_ids: tuple[int, ...] = ()
    placement_group_id: int | None = None
    ssh_key_ids: tuple[int, ...] = ()
    user_data: str | None = None
    start_after_create: bool = True
    enable_ipv4: bool = True
    enable_ipv6: bool = True


@dataclass(frozen=True)
class Volume:
    id: int
    name: str
    size: int
    location: str
    labels: dict[str, str] = field(default_factory=dict)
    server_id: int | None = None
    protected: bool = False
