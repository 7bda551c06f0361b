"""``restore_etcd`` refuses before any change: a damaged file, or etcd that still has quorum."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.controller import Waiter, restore_etcd, verify_snapshot
from hk8s.errors import TransientAPIError, UnavailableError, UsageError
from hk8s.model import ManualClock, Timing
from hk8s.model.etcd_snapshot import KeyValue, build_snapshot
from hk8s.providers.talos import ServiceStatus

from .test_snapshot import NODES, status  # type: ignore[import-not-found]

if TYPE_CHECKING:
    from pathlib import Path


@dataclass
class FakeTalos:
    leaders: dict[str, int]
    calls: list[str] = field(default_factory=list)

    async def etcd_status(self, node: str) -> Any:
        if node not in self.leaders:
            raise UnavailableError(f"{node}: refused")
        return status(1, leader=self.leaders[node])

    async def wipe_etcd_data(self, node: str) -> None:
        self.calls.append(f"wipe {node}")

    async def services(self, node: str) -> list[Any]:
        raise AssertionError("not reached")

    async def recover_etcd(self, node: str, snapshot: Path) -> Any:
        self.calls.append(f"recover {node}")


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    path.write_bytes(build_snapshot([KeyValue(b"/registry/a", b"{}", 4, 9)]))
    return path


def test_verify_snapshot_reads_revision_and_refuses_damage(snapshot: Path, tmp_path: Path) -> None:
    assert verify_snapshot(snapshot) == (9, 4)
    (tmp_path / "bad.db").write_bytes(snapshot.read_bytes()[:-3])
    with pytest.raises(UsageError, match="not an intact etcd snapshot") as caught:
        verify_snapshot(tmp_path / "bad.db")
    assert caught.value.exit_code == 2
    with pytest.raises(UsageError, match="does not exist"):
        verify_snapshot(tmp_path / "missing.db")


async def test_refused_while_any_member_sees_a_leader(snapshot: Path) -> None:
    talos = FakeTalos({"10.0.0.1": 0, "10.0.0.3": 2})  # cp-2 down, cp-3 healthy
    fakes: Any = (talos, None)
    port, kube = fakes
    waiter = Waiter(ManualClock(), Timing())
    with pytest.raises(UsageError, match=r"demo-cp-3 sees a leader.*nothing was changed"):
        await restore_etcd(port, port, kube, waiter, NODES, snapshot)
    assert talos.calls == []


async def test_a_recover_whose_answer_was_lost_says_to_re_run(snapshot: Path) -> None:
    # Not made again by hk8s: a second Bootstrap would stop an etcd still restoring. A re-run
    # is safe (it refuses if etcd came back, restores again if not), so the error says so.
    class Lost(FakeTalos):
        async def services(self, node: str) -> list[Any]:
            return [ServiceStatus("etcd", "Preparing")]

        async def recover_etcd(self, node: str, snapshot: Path) -> Any:
            self.calls.append(f"recover {node}")
            raise TransientAPIError(f"Talos Bootstrap on {node}: timed out")

    talos = Lost({})  # no member answers: etcd is lost
    fakes: Any = (talos, None)
    port, kube = fakes
    with pytest.raises(TransientAPIError) as caught:
        await restore_etcd(port, port, kube, Waiter(ManualClock(), Timing()), NODES, snapshot)
    assert [c for c in talos.calls if c.startswith("recover")] == ["recover 10.0.0.1"]
    assert "re-run the same `hk8s etcd restore`" in (caught.value.hint or "")
