"""Release and version facts that several commands read: ``create`` (its version-skew check),
``upgrade`` (plan and roll-out) and ``doctor``.

- versions as text: ``parse_version`` and the Talos tag form (``talos_tag``);
- what a node runs: its Talos release (``Version`` RPC, ``running_releases``) and, on a control
  plane, the version tag of each component's mirror pod (``static_pod_versions``);
- the annotation a rolling upgrade leaves on the Node it is moving (``UPGRADING_ANNOTATION``),
  which ``create`` treats as an upgrade still in progress.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

from hk8s.controller._health import CONTROL_PLANE_PODS
from hk8s.errors import AuthError, UnavailableError, UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hk8s.controller._nodes import Node
    from hk8s.controller._waits import Waiter
    from hk8s.providers.talos import TalosNodeAPI

__all__ = [
    "UPGRADING_ANNOTATION",
    "parse_version",
    "running_releases",
    "static_pod_versions",
    "talos_tag",
]

# Set on a Node while hk8s upgrades it (with the cordon), removed with the uncordon (one
# merge patch, ``KubernetesAPI.uncordon``, so it never outlives the cordon): a run
# that was interrupted (Ctrl-C, a lost connection) leaves it, and the next run finishes that
# node (config, Ready, uncordon) even though it already runs the new release, and never
# uncordons a node that someone else cordoned.
UPGRADING_ANNOTATION = "hk8s/upgrading"

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> tuple[int, int, int]:
    """``v1.12.3`` or ``1.35.0`` (suffixes like ``-beta.0`` ignored) -> ``(1, 12, 3)``."""
    match = _VERSION.match(text.strip())
    if not match:
        raise UsageError(f"not a version: {text!r}")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch)


def talos_tag(text: str) -> str:
    """Talos versions as tags: ``1.12.0`` -> ``v1.12.0`` (Version RPC and installer tags)."""
    return "v" + text.strip().removeprefix("v")


def static_pod_versions(pods: Sequence[dict[str, Any]], node: str) -> dict[str, str | None]:
    """Control-plane component -> the version tag of its mirror pod's image on ``node``."""
    by_name = {p.get("metadata", {}).get("name"): p for p in pods}
    found: dict[str, str | None] = {}
    for component in CONTROL_PLANE_PODS:
        pod = by_name.get(f"{component}-{node}")
        containers = ((pod or {}).get("spec") or {}).get("containers") or []
        image = str(containers[0].get("image", "")) if containers else ""
        _, _, tag = image.rpartition(":")
        found[component] = tag.removeprefix("v") if pod and tag else None
    return found


async def running_releases(talos: TalosNodeAPI, waiter: Waiter, nodes: Sequence[Node]) -> list[str]:
    """Each node's Talos version tag (``v1.12.0``), in order; also ``create``'s skew check."""
    return list(await asyncio.gather(*(_running_release(talos, waiter, n) for n in nodes)))


async def _running_release(talos: TalosNodeAPI, waiter: Waiter, node: Node) -> str:
    """The node's Talos version; waits while it does not answer (an interrupted run may have
    left it rebooting).

    A refused client certificate is waited out too: a node going down for its reboot closes
    connections right after the TLS handshake, which reads as a refusal (``_transport``),
    and the bundle was already checked against the servers' cluster-id label; a node that
    really belongs to another PKI ends in a timeout that names the refusal."""
    tag: list[str] = []

    async def answers() -> tuple[bool, str]:
        try:
            tag.append((await talos.version(node.address)).tag)
        except AuthError as exc:
            raise UnavailableError(exc.message, hint=exc.hint, node=node.name) from exc
        return True, ""

    await waiter.until(
        f"node/{node.name}", f"Talos API of {node.name} to answer", answers,
        timeout=waiter.timing.boot_timeout,
    )  # fmt: skip
    return tag[-1]
