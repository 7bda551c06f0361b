"""The Talos snapshots ``create`` boots servers from.

Decision: ``create`` builds a missing snapshot automatically (one per architecture the pools
need), because a create that stops to ask for ``hk8s image build`` first only adds a step; the
build is the same ``ImageBuilds.ensure`` that ``hk8s image build`` runs, so both find each
other's snapshots by label. ``--no-build-images`` turns that off for pipelines that must not
start build servers: a missing snapshot is then an error naming the command to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hk8s.controller.image._ensure import ImageBuilds
from hk8s.errors import NotFoundError

if TYPE_CHECKING:
    from hk8s.config import ClusterConfig
    from hk8s.controller._report import Reporter
    from hk8s.model import Clock, Timing
    from hk8s.providers.hcloud import HcloudPort

__all__ = ["ClusterImages", "cluster_images"]


@dataclass(frozen=True)
class ClusterImages:
    """Snapshot id per architecture, and the schematic they were built from."""

    by_arch: dict[str, int]
    schematic: str


async def cluster_images(
    config: ClusterConfig,
    hcloud: HcloudPort,
    *,
    build: bool,
    clock: Clock,
    timing: Timing,
    reporter: Reporter,
    builds: ImageBuilds | None = None,
) -> ClusterImages:
    """Find (and with ``build``, make) the snapshot of every architecture ``config`` needs."""
    images = builds or ImageBuilds(hcloud, clock=clock, timing=timing, reporter=reporter)
    # Every run that could start a build removes what killed builds left, needed or not.
    await images.sweep_leftovers()
    targets = await images.targets(config)
    schematic = targets[0].schematic
    observed = await images.observe(targets)
    if not observed.plan.empty:
        if not build:
            missing = ", ".join(op.name for op in observed.plan.operations)
            raise NotFoundError(
                f"no Talos snapshot for {missing}",
                hint=f"run `hk8s image build` for this config, or drop --no-build-images "
                f"(talos {config.talos.version})",
            )
        found = await images.ensure(config, sweep=False)
    else:
        found = observed.available
    return ClusterImages({arch: image.id for arch, image in found.items()}, schematic)
