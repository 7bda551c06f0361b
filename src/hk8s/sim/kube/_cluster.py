"""Shared state of the simulated control plane: objects, node runtime, timers and pod logs.

The controllers (``_nodes``, ``_workloads``, ``_kubelet``) are functions over one ``Cluster``:
each reconcile pass reads the store and writes only what changed, so a quiet cluster does not
bump resourceVersions (watches stay quiet, as on a real idle cluster).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hk8s.sim.kube import _resources as res
from hk8s.sim.kube._helm import HelmFaults
from hk8s.sim.kube._store import clone

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable

    from hk8s.model import Clock
    from hk8s.sim.kube._resources import ResourceType
    from hk8s.sim.kube._store import Store
    from hk8s.sim.kube._verbs import Verbs

__all__ = ["CloudInstance", "Cluster", "NodeRuntime", "PodRun", "TalosAccess", "Timings"]

Obj = dict[str, Any]
_VOLATILE = ("lastTransitionTime", "lastHeartbeatTime", "lastProbeTime", "lastUpdateTime")


@dataclass(frozen=True)
class CloudInstance:
    """What the cloud controller manager learns about a node's server from the Hetzner API."""

    server_id: int
    server_type: str | None = None
    location: str | None = None
    datacenter: str | None = None


@dataclass(frozen=True)
class TalosAccess:
    """What the cluster's control planes grant pods (kubernetesTalosAPIAccess), and the OS CA
    Talos signs the service accounts' client certificates with."""

    roles: tuple[str, ...]
    namespaces: tuple[str, ...]
    os_ca_crt: bytes
    os_ca_key: bytes


@dataclass(frozen=True)
class PodRun:
    """A Job container as a program sees it: its environment (secretKeyRefs resolved) and the
    files of its Secret volumes (``<mountPath>/<key>``)."""

    namespace: str
    pod: str
    node: str
    env: dict[str, str]
    files: dict[str, bytes]


@dataclass
class NodeRuntime:
    """The kubelet side of a node, which only the world (not the API) can change."""

    name: str
    internal_ip: str
    external_ip: str | None
    control_plane: bool
    kubelet_ready: bool = True


@dataclass(frozen=True)
class Timings:
    """Simulated seconds each step takes (scaled by the clock like everything else)."""

    pod_start: float = 3.0
    job_run: float = 8.0
    helm_run: float = 15.0
    crash_backoff: float = 10.0
    tick: float = 1.0


@dataclass
class Cluster:
    store: Store
    verbs: Verbs
    clock: Clock
    timings: Timings
    cloud_instance: Callable[[str], CloudInstance | int | None] | None = None
    kubernetes_version: str = "1.34.1"
    faults: HelmFaults = field(default_factory=HelmFaults)
    nodes: dict[str, NodeRuntime] = field(default_factory=dict)
    # pod uid -> clock time a step began (container creation, job run).
    started: dict[str, float] = field(default_factory=dict)
    # pod uid -> container name -> log text.
    logs: dict[str, dict[str, str]] = field(default_factory=dict)
    # job uid -> clock time before which no replacement pod is created (pod failure backoff).
    backoff_until: dict[str, float] = field(default_factory=dict)
    job_failures: dict[str, int] = field(default_factory=dict)
    # job uid -> clock time the Job was first seen finished (ttlSecondsAfterFinished).
    finished_at: dict[str, float] = field(default_factory=dict)
    # pod uid -> clock time its containers started running.
    running_since: dict[str, float] = field(default_factory=dict)
    ip_counter: int = 0
    # Job containers whose image (repository, without tag/digest) the world plays as a
    # program, e.g. talos-backup; their runs by pod uid.
    programs: dict[str, Callable[[PodRun], Awaitable[tuple[int, str]]]] = field(
        default_factory=dict
    )
    program_runs: dict[str, asyncio.Task[tuple[int, str]]] = field(default_factory=dict)
    # Talos' kubernetesTalosAPIAccess as the control planes configure it (None: off).
    talos_access: Callable[[], TalosAccess | None] | None = None

    def rt(self, api_version: str, kind: str) -> ResourceType:
        return res.by_kind(api_version, kind)

    def now(self) -> float:
        return self.clock.now()

    def pod_ip(self) -> str:
        self.ip_counter += 1
        return f"10.244.{self.ip_counter // 250}.{self.ip_counter % 250 + 2}"

    def save(self, rt: ResourceType, new: Obj, *, manager: str) -> Obj:
        """Write ``new`` (main resource) if it differs from what is stored."""
        meta = new["metadata"]
        old = self.store.get(rt, meta.get("namespace", ""), meta["name"])
        if old is None or old == new:
            return new
        new = clone(new)
        new["metadata"].pop("resourceVersion", None)  # last writer wins, as for a controller
        return self.verbs.replace(rt, meta.get("namespace", ""), meta["name"], new, manager=manager)

    def set_status(self, rt: ResourceType, obj: Obj, status: Obj, *, manager: str) -> Obj:
        """Write ``status`` through the status subresource when it changed, keeping each
        unchanged condition's timestamps (controllers only move them on transitions)."""
        old_status = obj.get("status") or {}
        if _stable(old_status) == _stable(status):
            return obj
        old_conditions = {c.get("type"): c for c in old_status.get("conditions") or []}
        for condition in status.get("conditions") or []:
            previous = old_conditions.get(condition.get("type"))
            if previous is not None and previous.get("status") == condition.get("status"):
                for key in _VOLATILE:
                    if key in previous:
                        condition[key] = previous[key]
        new = clone(obj)
        new["status"] = status
        new["metadata"].pop("resourceVersion", None)
        meta = obj["metadata"]
        return self.verbs.replace(
            rt, meta.get("namespace", ""), meta["name"], new, manager=manager, subresource="status"
        )


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value
