"""Addons: the ``hcloud`` Secret, then every enabled chart by an in-cluster Helm Job, all at once.

No chart's install needs another chart first, Cilium included: every Helm Job runs on the host
network with tolerations for not-ready and uninitialized nodes, and reaches the API through
KubePrism on the node (``manifests/addon-job.yaml``), so the Jobs run before there is a pod
network. What does need pod networking is some charts' workloads: the CSI controller and
metrics-server (not host network) start only once Cilium runs on their node and the Hetzner
CCM has initialised it. Their rollouts are waited for concurrently with Cilium's, so they
finish as soon as it does, and nothing waits for the CNI explicitly. Waiting for Cilium first
would only serialise four Helm runs (about 100 s of a 250 s create).

Each step is idempotent: objects are server-side applied, and a Job's name carries a checksum
of its chart, version and values, so an unchanged addon finds its finished Job and does
nothing, while a changed one runs a new Job. A failed Job raises ``JobFailedError`` with the
tail of helm's log, which the CLI shows; the other addons are still waited for, and several
failures are reported together (``OperationsFailedError``). The next run deletes a failed
Job and runs it again (a failure can be transient: a chart download cut short).

The Hetzner token goes into the ``hcloud`` Secret only, as a ``RedactedStr`` (its repr is
``'<redacted>'``), and never into an event, error or file.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hk8s.errors import OperationsFailedError
from hk8s.providers.k8s import render_addon_manifests, render_base_manifests

if TYPE_CHECKING:
    from collections.abc import Awaitable, Sequence

    from hk8s.config import ClusterConfig
    from hk8s.controller._waits import Waiter
    from hk8s.providers.k8s import KubernetesAPI

__all__ = ["enabled_addons", "install_addons"]


def enabled_addons(config: ClusterConfig) -> list[str]:
    """The addons to install (in the catalogue's order; they install concurrently)."""
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
    names = enabled_addons(config)
    for name in names:
        install = render_addon_manifests(config, name)
        waiter.plan(f"addon/{name}", f"install {install.chart} {install.version}")
    await _all([_install_one(kube, config, waiter, name) for name in names])
    return names


async def _install_one(
    kube: KubernetesAPI, config: ClusterConfig, waiter: Waiter, name: str
) -> None:
    """Apply one addon's Job, wait for it, then for its workloads (together)."""
    install = render_addon_manifests(config, name)
    key = f"addon/{name}"
    title = f"install {install.chart} {install.version}"
    waiter.step(key, title)
    if await kube.retry_failed_job(install.job_namespace, install.job_name):
        waiter.step(key, f"{title} (its Job failed in an earlier run: running it again)")
    await kube.apply(install.objects)
    await kube.wait_job(install.job_namespace, install.job_name)
    await _all([kube.wait_rollout(w.kind, w.namespace, w.name) for w in install.workloads])
    waiter.done(key, title, f"job {install.job_name}")


async def _all(steps: Sequence[Awaitable[None]]) -> None:
    """Run ``steps`` concurrently to the end (a failure does not abandon the others, whose
    waits would otherwise outlive the create); then raise the one error, or all of them."""
    outcomes = await asyncio.gather(*steps, return_exceptions=True)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    for error in errors:
        if not isinstance(error, Exception):
            raise error  # cancellation or an interrupt, not an addon's failure
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise OperationsFailedError("addons", errors)
