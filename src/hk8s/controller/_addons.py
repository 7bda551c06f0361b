"""Addons: the ``hcloud`` Secret, then each enabled chart by an in-cluster Helm Job.

Order is ``AddonsConfig.configured()``'s (Cilium first: nothing else gets a pod network
before it, then the Hetzner CCM, CSI and metrics-server), as ``hk8s.providers.k8s``
documents. Each step is idempotent: objects are server-side applied, and a Job's name carries
a checksum of its chart, version and values, so an unchanged addon finds its finished Job and
does nothing, while a changed one runs a new Job. A failed Job raises ``JobFailedError`` with
the tail of helm's log, which the CLI shows; the next run deletes the failed Job and runs it
again (a failure can be transient: a chart download cut short).

The Hetzner token goes into the ``hcloud`` Secret only, as a ``RedactedStr`` (its repr is
``'<redacted>'``), and never into an event, error or file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hk8s.providers.k8s import render_addon_manifests, render_base_manifests

if TYPE_CHECKING:
    from hk8s.config import ClusterConfig
    from hk8s.controller._create_wait import Waiter
    from hk8s.providers.k8s import KubernetesAPI

__all__ = ["enabled_addons", "install_addons"]


def enabled_addons(config: ClusterConfig) -> list[str]:
    """The addons to install, in install order."""
    return [name for name, addon in config.addons.configured().items() if addon.enabled]


async def install_addons(
    kube: KubernetesAPI,
    config: ClusterConfig,
    waiter: Waiter,
    *,
    token: str,
    network_id: int,
) -> list[str]:
    """Apply the base objects and install every enabled addon; returns the addons' names."""
    waiter.step("addon/hcloud-secret", "apply the hcloud Secret and the installer's RBAC")
    await kube.apply(render_base_manifests(config, token=token, network_id=network_id))
    waiter.done("addon/hcloud-secret", "apply the hcloud Secret and the installer's RBAC")
    installed = []
    for name in enabled_addons(config):
        install = render_addon_manifests(config, name)
        waiter.plan(f"addon/{name}", f"install {install.chart} {install.version}")
    for name in enabled_addons(config):
        install = render_addon_manifests(config, name)
        key = f"addon/{name}"
        title = f"install {install.chart} {install.version}"
        waiter.step(key, title)
        if await kube.retry_failed_job(install.job_namespace, install.job_name):
            waiter.step(key, f"{title} (its Job failed in an earlier run: running it again)")
        await kube.apply(install.objects)
        await kube.wait_job(install.job_namespace, install.job_name)
        for workload in install.workloads:
            await kube.wait_rollout(workload.kind, workload.namespace, workload.name)
        waiter.done(key, title, f"job {install.job_name}")
        installed.append(name)
    return installed
