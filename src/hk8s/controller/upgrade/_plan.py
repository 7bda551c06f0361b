"""What ``hk8s upgrade`` will do, decided before anything changes (pure, no I/O).

Versions come from cluster.yaml (``talos.version``, ``kubernetes.version``); what each node
runs now comes from the node (Talos ``Version``, the Node's ``kubeletVersion``). The plan is
one ``NodeStep`` per node and phase, in the order they run: Talos before Kubernetes (the
Talos upgrade guide: upgrade Talos first, then Kubernetes), control planes one at a time
before workers, each list by name. A node already at the target is a step with nothing to
do, so a re-run after a failure resumes at the first node that is not done.

Paths are checked here so that a bad one is refused (``UsageError``, exit 2) before the first
node is touched:

- Talos moves only along upstream's upgrade path: a release installs over its
  ``MinimumHostUpgradeVersion`` or later (the version matrix, ``hk8s version --matrix``: 1.14
  over 1.12 or 1.13, not 1.11, which goes via 1.12), and never down unless allowed;
- Kubernetes moves at most one minor up (the Kubernetes version skew policy: a control plane
  upgrades one minor at a time), never a minor down, a patch down only when allowed;
- every Kubernetes version a node will run must be supported by the Talos release it runs
  at that moment (``TALOS_KUBERNETES_SUPPORT``), including between the two phases.

>>> check_talos_path("v1.11.5", "v1.14.1", allow_downgrade=False)
Traceback (most recent call last):
...
hk8s.errors.UsageError: cannot upgrade Talos from v1.11.5 to v1.14.1 in one step ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from hk8s.config import TALOS_KUBERNETES_SUPPORT, talos_release, talos_upgrade_problem
from hk8s.controller._releases import parse_version, talos_tag
from hk8s.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "NodeStep",
    "NodeVersions",
    "Phase",
    "UpgradePlan",
    "check_kubernetes_path",
    "check_talos_path",
    "check_talos_supports",
    "plan_upgrade",
    "upgrade_order",
]

Phase = Literal["talos", "kubernetes"]


def _kube(text: str) -> str:
    return text.strip().removeprefix("v")


def _minor(version: tuple[int, int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def check_talos_path(current: str, target: str, *, allow_downgrade: bool) -> None:
    """Refuse Talos moves off upstream's upgrade path, and downgrades unless allowed."""
    now, want = parse_version(current), parse_version(target)
    if want == now:
        return
    if want < now and not allow_downgrade:
        raise UsageError(
            f"talos.version {talos_tag(target)} is older than {talos_tag(current)}, "
            "which the cluster runs: refusing to downgrade",
            hint="set talos.version back, or pass --allow-downgrade to roll back on purpose",
        )
    problem = talos_upgrade_problem(current, target)
    if problem is None:
        return
    release = talos_release(target)
    if want > now and release is not None:
        step = ".".join(release.upgrade_from.split(".")[:2])
        hint = (
            f"set talos.version to the newest v{step}.x release, run `hk8s upgrade`, then set "
            f"{talos_tag(target)} and run it again"
        )
    else:
        hint = "pick a release on the upgrade path (`hk8s version --matrix`)"
    raise UsageError(
        f"cannot {'upgrade' if want > now else 'downgrade'} Talos from {talos_tag(current)} to "
        f"{talos_tag(target)} in one step: {problem}",
        hint=hint,
    )


def check_kubernetes_path(current: str, target: str, *, allow_downgrade: bool) -> None:
    """At most one minor up; never a minor down; a patch down only when allowed."""
    now, want = parse_version(current), parse_version(target)
    if want == now:
        return
    if want < now:
        if _minor(want) != _minor(now) or not allow_downgrade:
            raise UsageError(
                f"kubernetes.version {_kube(target)} is older than {_kube(current)}, which "
                "the cluster runs: Kubernetes cannot be downgraded across minor releases",
                hint="set kubernetes.version back"
                + ("" if _minor(want) != _minor(now) else " or pass --allow-downgrade"),
            )
        return
    if now[0] != want[0] or want[1] - now[1] > 1:
        step = f"{now[0]}.{now[1] + 1}"
        raise UsageError(
            f"cannot upgrade Kubernetes from {_kube(current)} to {_kube(target)} in one step: "
            "the control plane moves one minor release at a time (version skew policy)",
            hint=f"set kubernetes.version to a {step}.x release, run `hk8s upgrade`, then "
            f"set {_kube(target)} and run it again",
        )


def check_talos_supports(talos: str, kubernetes: str, *, when: str) -> None:
    """Refuse a Kubernetes version the Talos release cannot run (the compatibility matrix)."""
    minor = _minor(parse_version(talos))
    support = TALOS_KUBERNETES_SUPPORT.get(minor)
    if support is None:
        raise UsageError(f"Talos {talos_tag(talos)} is not a release hk8s supports")
    kube = parse_version(kubernetes)
    low, high = support
    if kube[0] != 1 or not low <= kube[1] <= high:
        raise UsageError(
            f"{when}: Kubernetes {_kube(kubernetes)} would run on Talos {talos_tag(talos)}, "
            f"which supports Kubernetes 1.{low} to 1.{high}",
            hint="upgrade Kubernetes first (`hk8s upgrade --kubernetes-only` with a version "
            "both releases support), then Talos",
        )


@dataclass(frozen=True)
class NodeVersions:
    """What one node runs now. ``kubernetes`` is None while its kubelet is not registered;
    ``static_pods`` holds the control-plane pods' image versions (control planes only)."""

    name: str
    control_plane: bool
    talos: str
    kubernetes: str | None
    static_pods: tuple[str, ...] = ()
    config_current: bool = True  # the server's config-hash label matches the desired config
    upgrading: bool = False  # an earlier run cordoned it for its upgrade and did not finish


@dataclass(frozen=True)
class NodeStep:
    node: str
    control_plane: bool
    phase: Phase
    current: str
    target: str
    pending: bool  # False: already there, the step is skipped

    @property
    def role(self) -> str:
        return "control-plane" if self.control_plane else "worker"

    @property
    def action(self) -> str:
        """``upgrade``; ``finish`` (Talos: at the target, an interrupted run left it
        cordoned); ``apply config`` (Kubernetes: versions match, the machine config does
        not); ``up to date``."""
        if not self.pending:
            return "up to date"
        if self.current != self.target:
            return "upgrade"
        return "finish" if self.phase == "talos" else "apply config"

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "role": self.role,
            "phase": self.phase,
            "from": self.current,
            "to": self.target,
            "action": self.action,
        }


@dataclass(frozen=True)
class UpgradePlan:
    cluster: str
    talos: str
    kubernetes: str
    steps: tuple[NodeStep, ...]

    def pending(self, phase: Phase | None = None) -> list[NodeStep]:
        return [s for s in self.steps if s.pending and (phase is None or s.phase == phase)]

    def phase(self, phase: Phase) -> list[NodeStep]:
        return [s for s in self.steps if s.phase == phase]

    @property
    def empty(self) -> bool:
        return not self.pending()

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "talos": self.talos,
            "kubernetes": self.kubernetes,
            "steps": [s.to_dict() for s in self.steps],
        }


def upgrade_order(nodes: Iterable[NodeVersions]) -> list[NodeVersions]:
    """Control planes first, then workers; each by name with numeric suffixes in order."""

    def key(node: NodeVersions) -> tuple[bool, str, int]:
        stem, _, index = node.name.rpartition("-")
        return (not node.control_plane, stem, int(index) if index.isdigit() else 0)

    return sorted(nodes, key=key)


def plan_upgrade(
    cluster: str,
    nodes: Sequence[NodeVersions],
    *,
    talos: str,
    kubernetes: str,
    phases: Sequence[Phase] = ("talos", "kubernetes"),
    allow_downgrade: bool = False,
) -> UpgradePlan:
    """The steps to bring every node to ``talos`` and ``kubernetes``; raises ``UsageError``
    for a path hk8s refuses (see the module docstring)."""
    ordered = upgrade_order(nodes)
    for node in ordered:
        runs_talos = talos if "talos" in phases else node.talos
        check_talos_path(node.talos, runs_talos, allow_downgrade=allow_downgrade)
        if node.kubernetes is None:
            continue
        # Between the phases the node runs its current Kubernetes on its new Talos.
        check_talos_supports(runs_talos, node.kubernetes, when=f"{node.name} after Talos")
        if "kubernetes" in phases:
            check_kubernetes_path(node.kubernetes, kubernetes, allow_downgrade=allow_downgrade)
            check_talos_supports(runs_talos, kubernetes, when=f"{node.name} after the upgrade")
    steps: list[NodeStep] = []
    talos_pending: set[str] = set()
    if "talos" in phases:
        for node in ordered:
            pending = parse_version(node.talos) != parse_version(talos) or node.upgrading
            if pending:
                talos_pending.add(node.name)
            steps.append(
                NodeStep(node.name, node.control_plane, "talos", talos_tag(node.talos),
                         talos_tag(talos), pending)
            )  # fmt: skip
    if "kubernetes" in phases:
        want = parse_version(kubernetes)
        for node in ordered:
            behind = node.kubernetes is None or parse_version(node.kubernetes) != want
            stale_pods = any(parse_version(v) != want for v in node.static_pods)
            # A node whose Talos is upgraded gets the desired config in that phase already.
            stale_config = not node.config_current and node.name not in talos_pending
            steps.append(
                NodeStep(node.name, node.control_plane, "kubernetes",
                         _kube(node.kubernetes or "unknown"), _kube(kubernetes),
                         behind or stale_pods or stale_config)
            )  # fmt: skip
    return UpgradePlan(cluster, talos_tag(talos), _kube(kubernetes), tuple(steps))
