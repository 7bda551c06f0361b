"""What the Talos client returns: plain Python values, never protobuf objects.

Talos' API gateway (apid) answers a call aimed at several nodes with one reply holding one
message per node; a node that failed contributes a message with only ``metadata.error`` set.
``NodeResult`` keeps that shape so no node's answer (or failure) is lost.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from hk8s.errors import OperationsFailedError

if TYPE_CHECKING:
    from hk8s.errors import Hk8sError

__all__ = [
    "ApplyMode",
    "ApplyResult",
    "BootstrapOutcome",
    "Disk",
    "EtcdMember",
    "EtcdMemberStatus",
    "NodeResult",
    "RebootMode",
    "ResetWipeMode",
    "ResourceEvent",
    "ServiceStatus",
    "TalosEvent",
    "TalosResource",
    "VersionInfo",
    "raise_node_errors",
]

T = TypeVar("T")


@dataclass(frozen=True)
class NodeResult(Generic[T]):
    """One node's answer: ``value`` when ``error`` is None, otherwise the node's error."""

    node: str
    value: T | None = None
    error: Hk8sError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> T:
        """The value, or the node's error raised."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


def raise_node_errors(results: list[NodeResult[T]], phase: str) -> list[T]:
    """Every node's value; a single node's error as is, several in ``OperationsFailedError``."""
    errors = [r.error for r in results if r.error is not None]
    if len(errors) == 1 and len(results) == 1:
        raise errors[0]
    if errors:
        raise OperationsFailedError(phase, errors)
    return [r.unwrap() for r in results]


class ApplyMode(enum.Enum):
    """``machine.ApplyConfigurationRequest.Mode``: how a node takes a new config."""

    REBOOT = "reboot"
    AUTO = "auto"
    NO_REBOOT = "no-reboot"
    STAGED = "staged"
    TRY = "try"


class RebootMode(enum.Enum):
    """``machine.RebootRequest.Mode`` (FORCE skips the graceful steps; Talos >= 1.12)."""

    DEFAULT = "default"
    POWERCYCLE = "powercycle"
    FORCE = "force"


class ResetWipeMode(enum.Enum):
    """``machine.ResetRequest.WipeMode``: which disks a reset wipes."""

    ALL = "all"
    SYSTEM_DISK = "system-disk"
    USER_DISKS = "user-disks"


class BootstrapOutcome(enum.Enum):
    """Bootstrap is idempotent from hk8s' point of view: a node whose etcd data directory is
    not empty answers ``AlreadyExists`` (talos v1alpha1_server.go Bootstrap), which is
    ``ALREADY_BOOTSTRAPPED`` here, not an error."""

    STARTED = "started"
    ALREADY_BOOTSTRAPPED = "already-bootstrapped"


@dataclass(frozen=True)
class ApplyResult:
    """The mode the node actually chose (AUTO resolves to REBOOT or NO_REBOOT) and why."""

    mode: ApplyMode
    details: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class VersionInfo:
    tag: str
    sha: str = ""
    built: str = ""
    go_version: str = ""
    os: str = ""
    arch: str = ""
    platform: str = ""
    platform_mode: str = ""
    rbac: bool = False


@dataclass(frozen=True)
class ServiceStatus:
    """A Talos service (etcd, kubelet, apid, ...); ``healthy`` is None when Talos does not
    know (the service has no health check, or it has not run yet)."""

    id: str
    state: str
    healthy: bool | None = None
    message: str = ""


@dataclass(frozen=True)
class EtcdMember:
    id: int
    hostname: str
    peer_urls: tuple[str, ...] = ()
    client_urls: tuple[str, ...] = ()
    is_learner: bool = False


@dataclass(frozen=True)
class EtcdMemberStatus:
    member_id: int
    leader: int
    db_size: int = 0
    db_size_in_use: int = 0
    raft_index: int = 0
    raft_term: int = 0
    raft_applied_index: int = 0
    protocol_version: str = ""
    storage_version: str = ""
    is_learner: bool = False
    errors: tuple[str, ...] = ()

    @property
    def is_leader(self) -> bool:
        return self.member_id != 0 and self.member_id == self.leader


@dataclass(frozen=True)
class Disk:
    device_name: str
    size: int
    model: str = ""
    serial: str = ""
    type: str = "UNKNOWN"
    system_disk: bool = False
    readonly: bool = False


@dataclass(frozen=True)
class TalosResource:
    """A COSI resource as Talos serves it; ``spec`` is its YAML form parsed."""

    namespace: str
    type: str
    id: str
    version: str = ""
    phase: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    spec: Any = None


@dataclass(frozen=True)
class TalosEvent:
    """One ``machine.Event``: ``type`` is the payload's proto name (``machine.PhaseEvent``)
    and ``data`` the payload as a dict (empty for payload types hk8s does not know)."""

    node: str
    id: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    actor_id: str = ""


@dataclass(frozen=True)
class ResourceEvent:
    """One COSI watch event: ``type`` is CREATED, UPDATED, DESTROYED, BOOTSTRAPPED (the
    initial list is complete), ERRORED or NOOP; ``resource`` is None for BOOTSTRAPPED/ERRORED."""

    type: str
    resource: TalosResource | None = None
    old: TalosResource | None = None
    error: str = ""
