"""``hk8s upgrade``: a rolling Talos and/or Kubernetes upgrade to the versions in cluster.yaml.

1. observe: the nodes (by label), what each runs (Talos ``Version``, the Node's kubelet
   version, the control-plane pods' images) and whether its machine config is current;
2. plan (``upgrade._plan``): refuse bad paths before touching anything; ``--dry-run`` stops
   here and prints the plan;
3. preflight: the cluster is healthy (etcd, services, nodes Ready, control-plane pods);
4. Talos: the snapshot of the new release exists (so nodes created later boot it), then
   control planes one at a time, then workers (``parallel`` at a time), each gated on health
   (``upgrade._node``);
5. Kubernetes: machine configs with the new version, control planes one at a time, then
   workers, each gated on health;
6. the health gate again (a node the operator cordoned is shown, not waited for).

The first failure stops the run with an error naming the node; nothing after it is touched.
Every step skips a node that is already done, so re-running resumes where it stopped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from hk8s.controller._access import observe_access
from hk8s.controller._health import check_health
from hk8s.controller._nodes import render_node_configs
from hk8s.controller._report import NullReporter, ProgressEvent
from hk8s.controller._waits import Waiter
from hk8s.controller.image._cluster import cluster_images
from hk8s.controller.image._ensure import ImageBuilds
from hk8s.controller.upgrade._node import NodeUpgrader
from hk8s.controller.upgrade._observe import config_for_versions, observe_versions
from hk8s.controller.upgrade._plan import NodeVersions, Phase, plan_upgrade
from hk8s.errors import Hk8sError, PermanentError
from hk8s.machineconfig import installer_image

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence
    from pathlib import Path

    from hk8s.config import ClusterConfig
    from hk8s.controller._access import ClusterAccess
    from hk8s.controller._health import HealthCheck
    from hk8s.controller._nodes import Node
    from hk8s.controller._report import Reporter
    from hk8s.controller.image._cluster import ClusterImages
    from hk8s.controller.upgrade._plan import NodeStep, UpgradePlan
    from hk8s.model import Clock, Timing
    from hk8s.pki import SecretsBundle
    from hk8s.providers.hcloud import HcloudPort
    from hk8s.providers.k8s import KubernetesAPI
    from hk8s.providers.talos import TalosNodeAPI

__all__ = ["UpgradeOptions", "UpgradePorts", "UpgradeResult", "roll_out", "upgrade_cluster"]


@dataclass(frozen=True)
class UpgradeOptions:
    secrets_path: Path
    talos: bool = True
    kubernetes: bool = True
    dry_run: bool = False
    allow_downgrade: bool = False
    parallel: int = 1  # workers upgraded at the same time (control planes: always one)
    build_images: bool = True


@dataclass
class UpgradePorts:
    """As ``CreatePorts``: ``talos(bundle)`` -> (calls, probes); ``kube(kubeconfig)``."""

    hcloud: HcloudPort
    talos: Callable[[SecretsBundle], tuple[TalosNodeAPI, TalosNodeAPI]]
    kube: Callable[[Mapping[str, Any]], KubernetesAPI]
    clock: Clock
    timing: Timing
    builds: ImageBuilds | None = None
    images: ClusterImages | None = None  # known snapshots: skip the image step (tests)


@dataclass(frozen=True)
class UpgradeResult:
    plan: UpgradePlan
    dry_run: bool
    talos_upgraded: list[str] = field(default_factory=list)
    kubernetes_upgraded: list[str] = field(default_factory=list)
    health: list[HealthCheck] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.plan.to_dict(),
            "dry_run": self.dry_run,
            "talos_upgraded": self.talos_upgraded,
            "kubernetes_upgraded": self.kubernetes_upgraded,
            "health": [c.to_dict() for c in self.health],
        }


async def roll_out(
    upgrader: NodeUpgrader,
    steps: Sequence[NodeStep],
    parallel: int,
    run: Callable[[Node], Awaitable[Any]],
) -> list[str]:
    """Control planes one at a time, workers ``parallel`` at a time; a health gate after
    each; stop at the first failure with an error that names the node."""
    by_name = {n.name: n for n in upgrader.nodes}
    for step in steps:
        if not step.pending:
            what = "Talos" if step.phase == "talos" else "Kubernetes"
            title = f"{step.node} already runs {what} {step.target}"
            upgrader.waiter.info(f"node/{step.node}", title, "skipped")
    pending = [s for s in steps if s.pending]
    batches: list[list[NodeStep]] = [[s] for s in pending if s.control_plane]
    workers = [s for s in pending if not s.control_plane]
    batches += [workers[i : i + max(1, parallel)] for i in range(0, len(workers), max(1, parallel))]
    done: list[str] = []
    for batch in batches:
        outcomes = await asyncio.gather(
            *(run(by_name[s.node]) for s in batch), return_exceptions=True
        )
        changed = False
        for step, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome
                upgrader.waiter.reporter.emit(_failed(step, outcome))
                raise _node_error(step, outcome, done) from outcome
            if outcome is not False:  # False: the node turned out to be done already
                done.append(step.node)
                changed = True
        if changed:
            await upgrader.gate()
    return done


def _failed(step: NodeStep, error: Exception) -> ProgressEvent:
    message = error.message if isinstance(error, Hk8sError) else str(error)
    return ProgressEvent("failed", f"node/{step.node}", f"upgrade {step.node}", message)


def _node_error(step: NodeStep, error: Exception, done: Sequence[str]) -> PermanentError:
    what = "Talos" if step.phase == "talos" else "Kubernetes"
    message = error.message if isinstance(error, Hk8sError) else str(error)
    hint = error.hint if isinstance(error, Hk8sError) and error.hint else None
    finished = f" ({', '.join(done)} finished first)" if done else ""
    return PermanentError(
        f"{what} upgrade of {step.node} to {step.target} failed{finished}: {message}",
        hint=hint or "fix the cause and re-run `hk8s upgrade`: nodes already upgraded are skipped",
        node=step.node,
    )


async def upgrade_cluster(
    config: ClusterConfig,
    ports: UpgradePorts,
    options: UpgradeOptions,
    reporter: Reporter | None = None,
) -> UpgradeResult:
    """Bring the cluster to the versions of ``config``; see the module docstring."""
    reporter = reporter or NullReporter()
    waiter = Waiter(ports.clock, ports.timing, reporter, phase="upgrade")
    access = await observe_access(ports.hcloud, config, options.secrets_path)
    builds = ports.builds or ImageBuilds(
        ports.hcloud, clock=ports.clock, timing=ports.timing, reporter=reporter
    )
    schematic = (
        ports.images.schematic if ports.images else (await builds.targets(config))[0].schematic
    )

    def render(node: Node, talos: str, kubernetes: str) -> bytes:
        variant = config_for_versions(config, talos, kubernetes)
        return render_node_configs(
            variant, access.bundle, [node], access.endpoint, schematic=schematic
        )[node.name]

    desired = render_node_configs(
        config, access.bundle, access.nodes, access.endpoint, schematic=schematic
    )
    talos, probe = ports.talos(access.bundle)
    kube = ports.kube(yaml.safe_load(access.kubeconfig()))
    try:
        observed = await observe_versions(access, probe, kube, waiter, desired)
        phases: list[Phase] = []
        if options.talos:
            phases.append("talos")
        if options.kubernetes:
            phases.append("kubernetes")
        plan = plan_upgrade(
            config.name,
            observed,
            talos=config.talos.version,
            kubernetes=config.kubernetes.version,
            phases=phases,
            allow_downgrade=options.allow_downgrade,
        )
        if options.dry_run:
            return UpgradeResult(plan, dry_run=True)
        return await _execute(config, ports, options, plan, observed, access, waiter,
                              NodeUpgrader(ports.hcloud, talos, probe, kube, waiter,
                                           access.nodes, render))  # fmt: skip
    finally:
        await kube.close()


async def _execute(
    config: ClusterConfig,
    ports: UpgradePorts,
    options: UpgradeOptions,
    plan: UpgradePlan,
    observed: Sequence[NodeVersions],
    access: ClusterAccess,
    waiter: Waiter,
    upgrader: NodeUpgrader,
) -> UpgradeResult:
    if plan.empty:
        waiter.info("upgrade", "every node is up to date")
        return UpgradeResult(plan, dry_run=False)
    await _preflight(upgrader)
    kubelets = {n.name: n.kubernetes or config.kubernetes.version for n in observed}
    talos_done: list[str] = []
    if plan.pending("talos"):
        images = ports.images or await cluster_images(
            config, ports.hcloud, build=options.build_images, clock=ports.clock,
            timing=ports.timing, reporter=waiter.reporter, builds=ports.builds,
        )  # fmt: skip
        image = installer_image(config, images.schematic)
        target = plan.talos
        waiter.info("upgrade", f"Talos {target}", f"installer {image}")
        talos_done = await roll_out(
            upgrader,
            plan.phase("talos"),
            options.parallel,
            lambda node: upgrader.upgrade_talos(node, image, target, kubelets[node.name]),
        )
    kube_done: list[str] = []
    if plan.pending("kubernetes"):
        # Talos versions as they are now: a --kubernetes-only run keeps each node's release.
        runs = {n.name: plan.talos if options.talos else n.talos for n in observed}
        kube_done = await roll_out(
            upgrader,
            plan.phase("kubernetes"),
            options.parallel,
            lambda node: upgrader.upgrade_kubernetes(node, runs[node.name], plan.kubernetes),
        )
    # Schedulability aside: a node the operator cordoned stays cordoned (the checks show it).
    health = await upgrader.gate()
    return UpgradeResult(plan, False, talos_done, kube_done, health)


async def _preflight(upgrader: NodeUpgrader) -> None:
    """Refuse to start on a cluster that is not healthy: an upgrade takes nodes away."""
    checks = await check_health(upgrader.probe, upgrader.kube, upgrader.nodes)
    failing = [f"{c.name}: {c.detail}" for c in checks
               if not c.ok and c.name != "nodes schedulable"]  # fmt: skip
    if failing:
        raise PermanentError(
            "the cluster is not healthy, refusing to start an upgrade: " + "; ".join(failing),
            hint="see `hk8s health`; fix the cluster (or re-run `hk8s create`) first",
        )
