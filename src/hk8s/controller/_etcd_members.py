"""etcd bootstrap (exactly once), etcd membership, and the admin kubeconfig from Talos.

Bootstrap goes to the first control plane only, and only when no other control plane already
reports etcd members: bootstrapping a fresh node next to a running etcd would make a second,
split cluster (talos docs, "Bootstrap": run it once, on one node). Talos itself answers
``AlreadyExists`` on a node whose etcd data exists, which ``TalosNodes.bootstrap`` returns as
``BootstrapOutcome.ALREADY_BOOTSTRAPPED``: re-runs are harmless.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from hk8s.errors import Hk8sError, PermanentError
from hk8s.providers.talos import BootstrapOutcome

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hk8s.controller._nodes import ClusterEndpoint, Node
    from hk8s.controller._waits import Waiter
    from hk8s.providers.talos import TalosNodeAPI

__all__ = ["bootstrap_etcd", "fetch_kubeconfig", "wait_etcd_members"]


async def _has_members(probe: TalosNodeAPI, node: Node) -> bool:
    try:
        return bool(await probe.etcd_members(node.address))
    except Hk8sError:
        return False


async def bootstrap_etcd(
    talos: TalosNodeAPI,
    probe: TalosNodeAPI,
    waiter: Waiter,
    control_planes: Sequence[Node],
) -> BootstrapOutcome | None:
    """Bootstrap etcd on the first control plane; None when another one already runs etcd."""
    first = control_planes[0]
    key = f"node/{first.name}"
    waiter = waiter.within("etcd")  # the node's key, but the etcd phase

    async def configured() -> tuple[bool, str]:
        await probe.version(first.address)
        return True, ""

    await waiter.until(
        key,
        f"{first.name} to boot with its machine config",
        configured,
        timeout=waiter.timing.boot_timeout,
    )
    for other in control_planes[1:]:
        if await _has_members(probe, other):
            waiter.info(key, "etcd already runs", f"{other.name} reports etcd members")
            return None
    outcome: dict[str, BootstrapOutcome] = {}

    async def bootstrap() -> tuple[bool, str]:
        outcome["value"] = await probe.bootstrap(first.address)
        return True, ""

    await waiter.until(key, f"etcd bootstrap on {first.name}", bootstrap)
    result = outcome["value"]
    detail = "started" if result is BootstrapOutcome.STARTED else "already bootstrapped"
    waiter.done(key, f"bootstrap etcd on {first.name}", detail)
    return result


async def wait_etcd_members(
    probe: TalosNodeAPI, waiter: Waiter, control_planes: Sequence[Node]
) -> list[str]:
    """Wait until every control plane is a (voting) etcd member; returns the members' names."""
    wanted = {n.name for n in control_planes}
    names: list[str] = []

    async def check() -> tuple[bool, str]:
        nonlocal names
        last: Hk8sError | None = None
        for node in control_planes:
            try:
                members = await probe.etcd_members(node.address)
            except Hk8sError as exc:
                last = exc
                continue
            names = sorted(m.hostname for m in members if not m.is_learner)
            missing = sorted(wanted - set(names))
            return not missing, f"members {', '.join(names) or 'none'}; missing " + ", ".join(
                missing
            )
        return False, str(last) if last else "no control plane answers"

    await waiter.until(
        "etcd", f"etcd members = control planes ({len(wanted)})", check, interval=None
    )
    return names


async def fetch_kubeconfig(
    talos: TalosNodeAPI, waiter: Waiter, node: Node, endpoint: ClusterEndpoint
) -> dict[str, Any]:
    """The admin kubeconfig Talos issues, its server set to the cluster endpoint."""
    text: dict[str, str] = {}

    async def fetch() -> tuple[bool, str]:
        text["value"] = await talos.kubeconfig(node.address)
        return True, ""

    await waiter.until("kubeconfig", f"kubeconfig from {node.name}", fetch)
    try:
        document = yaml.safe_load(text["value"])
    except yaml.YAMLError as exc:
        raise PermanentError(f"the kubeconfig from {node.name} is not YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise PermanentError(f"the kubeconfig from {node.name} is not a kubeconfig")
    for entry in document.get("clusters") or []:
        entry.setdefault("cluster", {})["server"] = endpoint.url
    return document
