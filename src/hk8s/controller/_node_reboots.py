"""Config changes that need a reboot: applied to one node at a time, each back before the next.

Talos decides whether a running node can take a config without a reboot (``AUTO`` mode,
``Runtime.CanApplyImmediate`` in internal/app/machined/pkg/runtime/v1alpha1/
v1alpha1_runtime.go): ``.cluster``, ``.machine.install``, ``.machine.kubelet``, node labels
and taints, the CA, ``.machine.network`` and a few feature flags apply live; anything else
(``.machine.files``, ``.machine.env``, ``.machine.udev``, other ``.machine.features``, the
trustd token, ...) reboots the node. A user patch, or a Talos release whose contract renders
differently, can therefore make a config change reboot every node at once. hk8s asks first
(``dry_run``: Talos answers the mode it would use) and sends the reboot ones one by one,
control planes first, each node back (and a control plane's etcd healthy) before the next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hk8s.errors import AuthError, Hk8sError
from hk8s.providers.k8s import KubeNode

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from hk8s.controller._servers import Node
    from hk8s.controller._waits import Waiter
    from hk8s.providers.k8s import KubernetesAPI
    from hk8s.providers.talos import TalosNodeAPI

__all__ = ["boot_id", "reboot_one_at_a_time", "wait_back_after_reboot"]


async def boot_id(kube: KubernetesAPI, name: str) -> str | None:
    """The ``nodeInfo.bootID`` the kubelet of Node ``name`` posted (None: not registered):
    a new one with every boot, so a reboot is told apart from a node that never went down."""
    obj = await kube.get("v1", "Node", name)
    return KubeNode.from_api(obj).boot_id if obj else None


async def reboot_one_at_a_time(
    probe: TalosNodeAPI,
    waiter: Waiter,
    nodes: Sequence[Node],
    apply: Callable[[Node], Awaitable[str]],
) -> None:
    """``apply`` each node's config (its reboot follows), then wait for it before the next."""
    ordered = sorted(nodes, key=lambda n: (not n.desired.control_plane, n.name))
    for node in ordered:
        key = f"node/{node.name}"
        how = await apply(node)
        waiter.done(key, f"apply machine config to {node.name}", how)
        await wait_back_after_reboot(probe, waiter, node)


async def wait_back_after_reboot(probe: TalosNodeAPI, waiter: Waiter, node: Node) -> None:
    """Until the node went down for its reboot and answers again (etcd healthy on a control
    plane). A node going down refuses the TLS session before it stops answering."""
    down = False

    async def check() -> tuple[bool, str]:
        nonlocal down
        try:
            await probe.version(node.address)
        except Hk8sError as exc:
            if not (exc.retryable or isinstance(exc, AuthError)):
                raise
            down = True
            return False, f"rebooting ({exc.message})"
        if not down:
            return False, "applied, not rebooting yet"
        if node.desired.control_plane:
            services = {s.id: s for s in await probe.services(node.address)}
            etcd = services.get("etcd")
            if etcd is None or not etcd.healthy:
                return False, "etcd not healthy yet"
        return True, ""

    await waiter.until(
        f"node/{node.name}",
        f"{node.name} back after its reboot",
        check,
        timeout=waiter.timing.boot_timeout,
    )
