"""``take_snapshot``: from a healthy member only, verified before it replaces anything."""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import pytest

from hk8s.controller import Node, take_snapshot
from hk8s.controller._servers import DesiredServer
from hk8s.errors import TransientAPIError, UnavailableError
from hk8s.model.etcd_snapshot import KeyValue, build_snapshot
from hk8s.model.resources import Server
from hk8s.providers.talos import EtcdMemberStatus

if TYPE_CHECKING:
    from pathlib import Path

LEADER = 1


def node(index: int) -> Node:
    role: Literal["control-plane"] = "control-plane"
    name = f"demo-cp-{index}"
    desired = DesiredServer(name, "cp", role, index, "cx23", "fsn1", "amd64", "pg", {})
    return Node(
        desired, Server(index, name, "running", "cx23", "fsn1", public_ipv4=f"10.0.0.{index}")
    )


def status(member: int, *, leader: int = LEADER, errors: tuple[str, ...] = ()) -> EtcdMemberStatus:
    return EtcdMemberStatus(
        member_id=member, leader=leader, db_size=1, db_size_in_use=1, raft_index=100 + member,
        raft_term=2, raft_applied_index=100, protocol_version="3.5.21", storage_version="3.5.0",
        is_learner=False, errors=errors,
    )  # fmt: skip


@dataclass
class FakeTalos:
    statuses: dict[str, EtcdMemberStatus | None]
    blob: bytes = build_snapshot([KeyValue(b"/registry/a", b"{}", 3, 12)])
    broken: set[str] = field(default_factory=set)  # nodes whose stream is corrupted
    failing: set[str] = field(default_factory=set)  # nodes whose stream fails
    taken: list[str] = field(default_factory=list)

    async def etcd_status(self, node: str) -> EtcdMemberStatus:
        found = self.statuses[node]
        if found is None:
            raise UnavailableError(f"{node}: connection refused")
        return found

    async def etcd_snapshot(self, node: str, path: Path) -> int:
        self.taken.append(node)
        if node in self.failing:
            raise TransientAPIError("etcd snapshot failed: stream reset")
        data = self.blob[:-100] + bytes(100) if node in self.broken else self.blob
        path.write_bytes(data)
        return len(data)


NODES = [node(i) for i in (1, 2, 3)]


def healthy() -> FakeTalos:
    return FakeTalos({f"10.0.0.{i}": status(i) for i in (1, 2, 3)})


async def test_a_follower_serves_the_snapshot_written_0600_with_its_figures(tmp_path: Path) -> None:
    talos = healthy()
    dest = tmp_path / "backup.db"
    result = await take_snapshot(talos, NODES, dest)
    assert talos.taken == ["10.0.0.2"]  # demo-cp-1 leads: spared
    assert result.node == "demo-cp-2" and result.revision == 12 and result.raft_index == 102
    assert dest.read_bytes() == talos.blob and result.size == len(talos.blob)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["backup.db"]


async def test_a_corrupt_or_failed_stream_moves_on_to_the_next_member(tmp_path: Path) -> None:
    talos = healthy()
    talos.broken, talos.failing = {"10.0.0.2"}, {"10.0.0.3"}
    result = await take_snapshot(talos, NODES, tmp_path / "b.db")
    assert talos.taken == ["10.0.0.2", "10.0.0.3", "10.0.0.1"]
    assert result.node == "demo-cp-1"


async def test_nothing_replaces_an_old_backup_when_every_member_fails(tmp_path: Path) -> None:
    talos = healthy()
    talos.broken = {"10.0.0.1", "10.0.0.2", "10.0.0.3"}
    dest = tmp_path / "b.db"
    dest.write_bytes(b"yesterday")
    with pytest.raises(UnavailableError, match="no member delivered an intact") as caught:
        await take_snapshot(talos, NODES, dest)
    assert "trailer" in str(caught.value)
    assert dest.read_bytes() == b"yesterday"
    assert [p.name for p in tmp_path.iterdir()] == ["b.db"]


async def test_members_without_a_leader_or_with_alarms_are_never_used(tmp_path: Path) -> None:
    talos = FakeTalos(
        {
            "10.0.0.1": None,
            "10.0.0.2": status(2, leader=0),
            "10.0.0.3": status(3, errors=("etcdserver: mvcc: database space exceeded",)),
        }
    )
    with pytest.raises(UnavailableError, match="no healthy etcd member") as caught:
        await take_snapshot(talos, NODES, tmp_path / "b.db")
    message = str(caught.value)
    assert "demo-cp-1: 10.0.0.1: connection refused" in message
    assert "demo-cp-2: sees no leader" in message
    assert "demo-cp-3: errors: etcdserver: mvcc: database space exceeded" in message
    assert talos.taken == [] and list(tmp_path.iterdir()) == []
