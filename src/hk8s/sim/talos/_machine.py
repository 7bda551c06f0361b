"""Per-server Talos state that outlives a boot, and the knobs of the simulated fleet.

``MachineDisk`` is what Talos keeps on the system disk: the installed release (from the
snapshot, later from upgrades), the machine config on the STATE partition, and whether
``/var/lib/etcd`` holds data. Reset wipes the config and etcd data; the release stays.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from hk8s.sim.factory import TalosImage
    from hk8s.sim.talos._cluster import TalosCluster
    from hk8s.sim.talos._config import MachineConfig

__all__ = ["FleetHooks", "KubeletInfo", "MachineDisk", "NullHooks", "TalosFaults", "TalosTimings"]


@dataclass
class MachineDisk:
    image: TalosImage
    config: MachineConfig | None = None
    # A config applied with mode STAGED: it becomes the config at the next boot.
    staged: MachineConfig | None = None
    etcd_data: bool = False
    # talos.platform= of the installed boot assets: the hcloud snapshot's, until an upgrade
    # installs another platform's installer (a bare ``installer`` is ``metal``).
    platform: str = "hcloud"

    @property
    def version(self) -> str:
        return self.image.version


@dataclass(frozen=True)
class TalosTimings:
    """Simulated seconds (scaled by the world's clock) each step of a node's life takes."""

    boot: float = 30.0
    install: float = 15.0
    shutdown: float = 3.0
    etcd_join: float = 8.0
    kube_api: float = 20.0
    kubelet: float = 8.0
    upgrade: float = 20.0
    # Inside the Upgrade call: every installer pull, plus the Image Factory's build of an
    # installer nobody asked for before.
    installer_pull: float = 15.0
    installer_build: float = 45.0
    reset: float = 5.0
    # After a configured boot: CRI up (Bootstrap allowed), then the clock in sync (timed).
    # Until then Bootstrap answers FailedPrecondition, as Talos does.
    cri: float = 2.0
    time_sync: float = 5.0
    # How often waiting nodes look again (a worker for a control plane, etcd for bootstrap).
    retry: float = 3.0
    # How long after replying the node acts on Reboot/Apply/Upgrade (the reply goes out first).
    grace: float = 1.0
    try_timeout: float = 60.0


@dataclass
class TalosFaults:
    """Seeded misbehaviour, by server-name pattern (``fnmatch``): boots that take
    ``slow_boot_factor`` times longer, nodes that never leave maintenance mode, upgrades that
    boot back into the old release."""

    stuck_in_maintenance: list[str] = field(default_factory=list)
    failed_upgrades: list[str] = field(default_factory=list)
    slow_boots: list[str] = field(default_factory=list)
    slow_boot_factor: float = 5.0

    def stuck(self, name: str) -> bool:
        return _any_match(name, self.stuck_in_maintenance)

    def fails_upgrade(self, name: str) -> bool:
        return _any_match(name, self.failed_upgrades)

    def boot_factor(self, name: str) -> float:
        return self.slow_boot_factor if _any_match(name, self.slow_boots) else 1.0


def _any_match(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


@dataclass(frozen=True)
class KubeletInfo:
    """What a node's kubelet registers with the Kubernetes API."""

    name: str
    server_id: int
    internal_ip: str
    external_ip: str
    control_plane: bool
    labels: dict[str, str]
    taints: list[dict[str, str]]
    talos_version: str
    arch: str
    kubernetes_version: str | None = None


class FleetHooks(Protocol):
    """How the Talos fleet reaches the rest of the world (Hetzner power state, Kubernetes)."""

    def powered_off(self, server_id: int) -> None:
        """Talos shut the machine down (Shutdown, Reset without reboot): the server is off."""

    async def kube_api(self, cluster: TalosCluster, up: bool) -> None:
        """Start (after bootstrap) or stop (no control plane left) the cluster's API."""

    async def kubelet(self, cluster: TalosCluster, info: KubeletInfo, up: bool) -> None:
        """A node's kubelet registered and runs (``up``), or stopped."""

    async def cluster_gone(self, cluster: TalosCluster) -> None:
        """The last disk holding the cluster's etcd data was deleted: the cluster is gone."""


class NullHooks:
    """No world around the fleet (unit tests of the Talos API alone)."""

    def powered_off(self, server_id: int) -> None:
        return None

    async def kube_api(self, cluster: TalosCluster, up: bool) -> None:
        return None

    async def kubelet(self, cluster: TalosCluster, info: KubeletInfo, up: bool) -> None:
        return None

    async def cluster_gone(self, cluster: TalosCluster) -> None:
        return None
