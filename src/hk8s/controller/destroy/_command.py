"""``hk8s destroy``: observe what the cluster owns, show the plan, delete it, verify.

``Destroyer.plan()`` touches nothing (``hk8s plan --destroy`` stops there); ``run(plan)``
first lets the cluster delete its CCM load balancers and CSI volumes (``destroy._k8s``), then
executes the very plan that was shown through the ``Executor`` (its handlers re-check each
resource, so things the CCM removed meanwhile are simply "already gone"), and finally looks
again: whatever still carries the cluster's labels (a server a concurrent run created, a
delete whose answer was lost) gets one more pass; anything left after that is an error.

A plan that holds a resource with Hetzner's delete protection is refused as a whole before
anything is changed (not even the in-cluster cleanup): half a cluster is worse than all of it.

>>> destroyer = Destroyer(hcloud, "demo", clock=clock, timing=timing)
>>> # plan = await destroyer.plan(); print(plan.plan.counts()); await destroyer.run(plan)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hk8s.controller._executor import Executor
from hk8s.controller._inventory import KubeFacts, ObservedCluster, observe_cluster
from hk8s.controller._report import NullReporter, ProgressEvent, Reporter
from hk8s.controller.destroy._apply import DELETED, DestroyHalt, DestroyHandlers
from hk8s.controller.destroy._k8s import (
    InClusterObjects,
    clean_in_cluster,
    kube_reachable,
    observe_in_cluster,
)
from hk8s.controller.destroy._plan import blocked, plan_destroy
from hk8s.errors import ConflictError, Hk8sError, OperationsFailedError, ProtectionError

if TYPE_CHECKING:
    from hk8s.controller._plan import Plan
    from hk8s.model.clock import Clock
    from hk8s.model.timing import Timing
    from hk8s.providers.hcloud import HcloudPort
    from hk8s.providers.k8s import KubernetesAPI

__all__ = [
    "LOCAL_FILES",
    "DestroyPlan",
    "DestroyReport",
    "Destroyer",
    "local_files",
    "purge_local_files",
]

# What ``create`` writes beside cluster.yaml (design.md section 3); kept unless --purge-local.
LOCAL_FILES: tuple[str, ...] = ("secrets.yaml", "kubeconfig", "talosconfig")


@dataclass(frozen=True)
class DestroyPlan:
    """What destroy will do: the in-cluster cleanup and the Hetzner deletes, as data."""

    cluster: str
    plan: Plan
    observed: ObservedCluster
    in_cluster: InClusterObjects | None = None
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.plan.empty and (self.in_cluster is None or self.in_cluster.empty)

    @property
    def blocked(self) -> tuple[str, ...]:
        """``kind name`` of the resources Hetzner protects against deletion: destroy refuses."""
        return blocked(self.observed)


@dataclass
class DestroyReport:
    """What a run did: keys deleted, keys found already gone, what the cluster left behind."""

    deleted: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    in_cluster_left: list[str] = field(default_factory=list)
    passes: int = 0


class Destroyer:
    """Plans and carries out the deletion of one cluster's resources."""

    def __init__(
        self,
        hcloud: HcloudPort,
        cluster: str,
        *,
        clock: Clock,
        timing: Timing,
        images: bool = False,
        kube: KubernetesAPI | None = None,
        reporter: Reporter | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.hcloud = hcloud
        self.cluster = cluster
        self.images = images
        self.kube = kube
        self.clock = clock
        self.timing = timing
        self.reporter = reporter or NullReporter()
        self.concurrency = concurrency
        # A CCM deletes a load balancer in seconds; minutes of waiting mean it is not running.
        self.cleanup_timeout = timing.cluster_timeout / 4

    async def plan(self) -> DestroyPlan:
        """Observe Hetzner and, while a control plane exists, the cluster's API; touch nothing.

        With no control-plane server left (a re-run after an interrupted destroy) nobody
        answers for the API, so it is not waited for.
        """
        notes: list[str] = []
        observed = await observe_cluster(self.hcloud, self.cluster, images=self.images)
        in_cluster: InClusterObjects | None = None
        control_plane = any(s.labels.get("role") == "control-plane" for s in observed.servers)
        if self.kube is not None and control_plane:
            problem = await kube_reachable(self.kube, self.timing.request_timeout)
            if problem is None:
                try:
                    in_cluster = await observe_in_cluster(self.kube)
                except Hk8sError as exc:
                    problem = str(exc)
            if problem is not None:
                notes.append(
                    f"the Kubernetes API is not usable ({problem}): CCM load balancers and CSI "
                    "volumes are found by their Hetzner labels only"
                )
        if in_cluster is not None and in_cluster.facts != KubeFacts():
            # What the API said decides which CCM load balancers and CSI volumes are ours.
            observed = await observe_cluster(
                self.hcloud, self.cluster, images=self.images, kube=in_cluster.facts
            )
        notes.extend(observed.notes)
        if protected := blocked(observed):
            notes.append(_protected_note(self.cluster, protected))
        return DestroyPlan(self.cluster, plan_destroy(observed), observed, in_cluster, tuple(notes))

    def check(self, plan: DestroyPlan) -> None:
        """Raise ``ProtectionError`` when ``plan`` cannot run: a resource is protected.

        Called by ``run``, and by the CLI before it asks for the cluster name to be typed, so
        nobody confirms a destroy that is then refused.
        """
        if plan.blocked:
            raise _protected_problem(self.cluster, plan.blocked)

    async def run(self, plan: DestroyPlan) -> DestroyReport:
        """Carry out ``plan``; raises ``ProtectionError`` or the failures of the deletes.

        Refuses before any change when a resource of ``plan`` is protected against deletion.
        """
        self.check(plan)
        report = DestroyReport()
        if self.kube is not None and plan.in_cluster is not None and not plan.in_cluster.empty:
            try:
                report.in_cluster_left = await clean_in_cluster(
                    self.kube,
                    clock=self.clock,
                    timeout=self.cleanup_timeout,
                    poll_interval=self.timing.cluster_poll_interval,
                    reporter=self.reporter,
                )
            except Hk8sError as exc:
                report.in_cluster_left = [f"in-cluster cleanup failed: {exc}"]
            for left in report.in_cluster_left:
                self.reporter.emit(ProgressEvent("warning", "kubernetes/cleanup", left))
        facts = plan.in_cluster.facts if plan.in_cluster is not None else None
        current = plan.plan
        for attempt in (1, 2):
            await self._execute(current, report, phase="destroy")
            observed = await observe_cluster(
                self.hcloud, self.cluster, images=self.images, kube=facts
            )
            current = plan_destroy(observed)
            if current.empty:
                return report
            if protected := blocked(observed):  # protected while this run went on
                raise _protected_problem(self.cluster, protected)
            if attempt == 1:
                self.reporter.emit(
                    ProgressEvent(
                        "info", "", f"{len(current)} resource(s) still there: one more pass"
                    )
                )
        left = ", ".join(op.key for op in current.operations)
        raise ConflictError(
            f"cluster {self.cluster}: {len(current)} resource(s) are still there after two "
            f"passes: {left}",
            hint="something is creating them concurrently (a running hk8s create?); stop it "
            "and re-run hk8s destroy",
        )

    async def _execute(self, plan: Plan, report: DestroyReport, *, phase: str) -> None:
        report.passes += 1
        if plan.empty:
            return
        halt = DestroyHalt()
        handlers = DestroyHandlers(self.hcloud, self.cluster, self.reporter, halt).handlers()
        executor = Executor(handlers, self.reporter, concurrency=self.concurrency)
        try:
            results = await executor.run(plan, phase=phase)
        except (ProtectionError, OperationsFailedError) as exc:
            if not halt.halted:
                raise
            raise ProtectionError(
                f"destroy stopped: {', '.join(halt.protected)} "
                f"{'is' if len(halt.protected) == 1 else 'are'} protected against deletion "
                "in Hetzner Cloud; no delete was started after that, and nothing that "
                "depends on it was deleted",
                hint="lift the delete protection (set protection: false and run hk8s create, "
                "or in the Hetzner console), then re-run hk8s destroy",
            ) from exc
        for key, outcome in results.items():
            (report.deleted if outcome == DELETED else report.gone).append(key)


_LIFT = (
    "set protection: false in cluster.yaml and run hk8s create (or lift it in the Hetzner "
    "Cloud console), then run hk8s destroy again"
)


def _protected_text(cluster: str, protected: tuple[str, ...]) -> str:
    count = len(protected)
    return (
        f"cluster {cluster}: destroy is blocked: {count} resource(s) "
        f"{'is' if count == 1 else 'are'} protected against deletion in Hetzner Cloud: "
        f"{', '.join(protected)}"
    )


def _protected_note(cluster: str, protected: tuple[str, ...]) -> str:
    return f"{_protected_text(cluster, protected)}; to lift it, {_LIFT}"


def _protected_problem(cluster: str, protected: tuple[str, ...]) -> ProtectionError:
    return ProtectionError(
        f"{_protected_text(cluster, protected)}; nothing was deleted",
        hint=f"lift the delete protection: {_LIFT}",
    )


def local_files(config_dir: Path) -> list[Path]:
    """The local artefacts of the cluster that exist beside its config."""
    return [config_dir / name for name in LOCAL_FILES if (config_dir / name).exists()]


def purge_local_files(paths: list[Path]) -> list[Path]:
    """Remove ``paths`` (missing ones are fine: a re-run after a purge); returns the removed."""
    removed = []
    for path in paths:
        try:
            Path(path).unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed
