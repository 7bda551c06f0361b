"""``hk8s etcd restore``: disaster recovery from a snapshot, per Talos' documented procedure.

Talos "Disaster Recovery" guide (siderolabs/talos website, ``advanced/disaster-recovery``):

1. the snapshot must be intact (etcd's SHA-256 trailer: ``hk8s.model.etcd_snapshot``);
2. on every control plane, wipe only EPHEMERAL, where etcd keeps its data, and reboot
   (``talosctl reset --graceful=false --reboot --system-labels-to-wipe=EPHEMERAL``): the
   machine configs stay, and etcd waits in ``Preparing`` for a bootstrap;
3. on one control plane, ``talosctl bootstrap --recover-from=<snapshot>`` (``EtcdRecover``
   then ``Bootstrap(recover_etcd)``); the other control planes join it as new members;
4. the cluster is healthy again (every control plane an etcd member, the health gate).

Restoring rolls the whole cluster back to the snapshot, so it is refused (exit 2, nothing
changed) while etcd still has quorum, unless ``force``. The wipes run on all control planes at
once, so members that still hold data cannot re-seed the ones already wiped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hk8s.controller._etcd_members import wait_etcd_members
from hk8s.controller._health import wait_healthy
from hk8s.errors import Hk8sError, UsageError
from hk8s.model.etcd_snapshot import SnapshotError, inspect_snapshot_file

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from hk8s.controller._nodes import Node
    from hk8s.controller._waits import Waiter
    from hk8s.providers.k8s import KubernetesAPI
    from hk8s.providers.talos import (
        BootstrapOutcome,
        EtcdMemberStatus,
        ServiceStatus,
        TalosNodeAPI,
    )

__all__ = ["EtcdRestorePort", "RestoreResult", "restore_etcd", "verify_snapshot"]


class EtcdRestorePort(Protocol):
    async def etcd_status(self, node: str) -> EtcdMemberStatus: ...

    async def services(self, node: str) -> list[ServiceStatus]: ...

    async def wipe_etcd_data(self, node: str) -> None: ...

    async def recover_etcd(self, node: str, snapshot: Path) -> BootstrapOutcome: ...


@dataclass(frozen=True)
class RestoreResult:
    node: str
    revision: int
    total_keys: int
    members: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "recovered_on": self.node,
            "revision": self.revision,
            "total_keys": self.total_keys,
            "etcd_members": self.members,
        }


def verify_snapshot(path: Path) -> tuple[int, int]:
    """(revision, keys) of an intact snapshot; ``UsageError`` (exit 2) otherwise."""
    if not path.is_file():
        raise UsageError(f"snapshot {path} does not exist", hint="pass --from <snapshot file>")
    try:
        status = inspect_snapshot_file(path)
    except SnapshotError as exc:
        raise UsageError(
            f"{path} is not an intact etcd snapshot: {exc}; nothing was changed",
            hint="use a file written by `hk8s etcd snapshot` (or etcdctl snapshot save)",
        ) from exc
    return status.revision, status.total_keys


async def _leader(talos: EtcdRestorePort, control_planes: Sequence[Node]) -> str | None:
    """A control plane whose etcd is healthy and sees a leader, if any."""
    for node in control_planes:
        try:
            status = await talos.etcd_status(node.address)
        except Hk8sError:
            continue
        if status.leader and not status.errors:
            return node.name
    return None


async def restore_etcd(
    talos: EtcdRestorePort,
    probe: TalosNodeAPI,
    kube: KubernetesAPI,
    waiter: Waiter,
    nodes: Sequence[Node],
    snapshot: Path,
    *,
    force: bool = False,
) -> RestoreResult:
    """Recover the cluster's etcd from ``snapshot``; see the module docstring."""
    revision, keys = verify_snapshot(snapshot)
    cps = sorted((n for n in nodes if n.desired.control_plane), key=lambda n: n.name)
    healthy = await _leader(talos, cps)
    if healthy is not None and not force:
        raise UsageError(
            f"etcd still has quorum ({healthy} sees a leader): a restore would roll the whole "
            "cluster back to the snapshot; nothing was changed",
            hint="take `hk8s etcd snapshot` first; pass --force to restore anyway",
        )
    waiter.step("etcd/wipe", f"wipe etcd data on {', '.join(n.name for n in cps)}")
    await asyncio.gather(*(talos.wipe_etcd_data(n.address) for n in cps))
    waiter.done("etcd/wipe", "etcd data wiped")

    for node in cps:

        async def preparing(node: Node = node) -> tuple[bool, str]:
            try:
                services = {s.id: s for s in await talos.services(node.address)}
            except Hk8sError as exc:
                return False, exc.message
            etcd = services.get("etcd")
            state = etcd.state if etcd else "missing"
            return state == "Preparing", f"etcd {state}"

        await waiter.until(
            f"node/{node.name}", f"etcd on {node.name} waits for bootstrap", preparing
        )

    first = cps[0]
    waiter.step("etcd/recover", f"bootstrap etcd on {first.name} from the snapshot")
    try:
        await talos.recover_etcd(first.address, snapshot)
    except Hk8sError as exc:
        if not exc.retryable:
            raise
        # Not made again here: a second Bootstrap while the first one's etcd is still
        # restoring stops that etcd (services/etcd.go BootstrapEtcd). A re-run decides safely.
        exc.hint = (
            f"the restore may have started on {first.name} without its answer reaching hk8s; "
            "re-run the same `hk8s etcd restore` in a minute: it stops (nothing changed) if "
            "etcd is back from the snapshot, and restores again if it is not"
        )
        raise
    waiter.done("etcd/recover", f"etcd recovered on {first.name}", f"revision {revision}")
    members = await wait_etcd_members(probe, waiter, cps)
    await wait_healthy(probe, kube, waiter, nodes)
    return RestoreResult(first.name, revision, keys, sorted(members))
