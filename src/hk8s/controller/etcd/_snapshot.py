"""``hk8s etcd snapshot``: a verified copy of the cluster's etcd, taken through the Talos API.

Talos' ``EtcdSnapshot`` streams the database of the node's own member (etcd's
``Maintenance.Snapshot``: the bbolt file plus a SHA-256 trailer). A member cut off from the
others serves whatever it last had, so the source must be a member that sees a leader and
reports no error (``EtcdStatus``; an alarm such as NOSPACE shows in ``errors``): a snapshot
taken elsewhere could silently miss the latest writes. Learners are skipped (they may lag).

The file appears only complete and verified: it streams into ``<name>.part`` (mode 0600, the
provider's atomic write), its trailer and bbolt structure are checked
(``hk8s.model.etcd_snapshot``), and only then is it renamed over ``dest``. A failure on one
member is retried on the next healthy one; a corrupt download never replaces an older backup.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hk8s.errors import Hk8sError, UnavailableError
from hk8s.model.etcd_snapshot import SnapshotError, inspect_snapshot_file

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from hk8s.controller._nodes import Node
    from hk8s.providers.talos import EtcdMemberStatus

__all__ = ["EtcdSnapshotPort", "SnapshotResult", "pick_snapshot_source", "take_snapshot"]


class EtcdSnapshotPort(Protocol):
    """The Talos calls a snapshot needs (``hk8s.providers.talos.TalosNodes`` has them)."""

    async def etcd_status(self, node: str) -> EtcdMemberStatus: ...

    async def etcd_snapshot(self, node: str, path: Path) -> int: ...


@dataclass(frozen=True)
class SnapshotResult:
    path: Path
    node: str
    size: int
    revision: int
    total_keys: int
    sha256: str
    raft_index: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "node": self.node,
            "size": self.size,
            "revision": self.revision,
            "total_keys": self.total_keys,
            "sha256": self.sha256,
            "raft_index": self.raft_index,
        }


async def _statuses(
    talos: EtcdSnapshotPort, control_planes: Sequence[Node]
) -> list[tuple[Node, EtcdMemberStatus | None, str]]:
    found: list[tuple[Node, EtcdMemberStatus | None, str]] = []
    for node in control_planes:
        try:
            status = await talos.etcd_status(node.address)
        except Hk8sError as exc:
            found.append((node, None, exc.message))
            continue
        found.append((node, status, ""))
    return found


def pick_snapshot_source(
    seen: Sequence[tuple[Node, EtcdMemberStatus | None, str]],
) -> list[tuple[Node, EtcdMemberStatus]]:
    """Healthy members to take the snapshot from, best first; ``UnavailableError`` if none.

    Followers come before the leader (a snapshot is a long read: spare the member that
    serializes every write), then by name so the choice is stable.
    """
    healthy = [
        (node, status)
        for node, status, _ in seen
        if status is not None and status.leader and not status.errors and not status.is_learner
    ]
    if not healthy:
        why = "; ".join(
            f"{node.name}: {error or _unhealthy(status)}" for node, status, error in seen
        )
        raise UnavailableError(
            f"no healthy etcd member to take a consistent snapshot from ({why})",
            hint="`hk8s health -f <config>` shows what is wrong; without quorum, see "
            "Talos' disaster-recovery guide (talosctl cp /var/lib/etcd/member/snap/db)",
        )
    healthy.sort(key=lambda pair: (pair[1].member_id == pair[1].leader, pair[0].name))
    return healthy


def _unhealthy(status: EtcdMemberStatus | None) -> str:
    if status is None:
        return "no answer"
    if status.errors:
        return "errors: " + ", ".join(status.errors)
    if status.is_learner:
        return "a learner"
    return "sees no leader"


async def take_snapshot(
    talos: EtcdSnapshotPort, control_planes: Sequence[Node], dest: Path
) -> SnapshotResult:
    """Snapshot etcd from a healthy member into ``dest`` (0600, verified, atomic)."""
    sources = pick_snapshot_source(await _statuses(talos, control_planes))
    partial = dest.with_name(f".{dest.name}.download")
    failures: list[str] = []
    for node, status in sources:
        try:
            size = await talos.etcd_snapshot(node.address, partial)
            inspected = inspect_snapshot_file(partial)
        except (Hk8sError, SnapshotError) as exc:
            failures.append(f"{node.name}: {exc}")
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            continue
        os.chmod(partial, 0o600)
        os.replace(partial, dest)
        return SnapshotResult(
            path=dest,
            node=node.name,
            size=size,
            revision=inspected.revision,
            total_keys=inspected.total_keys,
            sha256=inspected.sha256,
            raft_index=status.raft_index,
        )
    raise UnavailableError(
        "no member delivered an intact etcd snapshot: " + "; ".join(failures),
        hint=f"nothing was written to {dest}; try again",
    )
