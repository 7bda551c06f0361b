"""The simulated node's EtcdSnapshot: a real etcd snapshot (bbolt + SHA-256 trailer) of the
cluster's keyspace; EtcdRecover takes only an intact one."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from hk8s.errors import Hk8sError
from hk8s.model.etcd_snapshot import KeyValue, inspect_snapshot_file, snapshot_keys

from .test_configured import configure  # type: ignore[import-not-found]

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from .conftest import Env  # type: ignore[import-not-found]


async def test_snapshot_holds_the_keyspace_and_recover_checks_it(env: Env, tmp_path: Path) -> None:
    _, ip = await configure(env)
    [cluster] = env.fleet.clusters.values()
    stored = [KeyValue(b"/registry/configmaps/default/a", b"{}", 7, 9)]
    async with env.client(ip) as talos:
        await talos.bootstrap()
        cluster.keyspace = lambda: stored
        target = tmp_path / "etcd.db"
        size = await talos.etcd_snapshot(target)
        status = inspect_snapshot_file(target)
        assert status.size == size and status.revision == 9
        assert snapshot_keys(target.read_bytes()) == stored

        await talos.etcd_recover(target)  # intact: accepted
        broken = tmp_path / "broken.db"
        data = bytearray(target.read_bytes())
        data[5000] ^= 1
        broken.write_bytes(bytes(data))
        with pytest.raises(Hk8sError, match="trailer does not match"):
            await talos.etcd_recover(broken)


def test_etcd_is_lost_only_when_no_member_keeps_its_data() -> None:
    from hk8s.sim.talos import TalosCluster

    cluster = TalosCluster("id", "https://127.9.0.2:6443", "demo")
    wiped: list[bool] = []
    cluster.wipe_keyspace = lambda: wiped.append(True)
    cluster.bootstrap("cp-1", "127.9.0.3")
    cluster.join("cp-2", "127.9.0.4")
    cluster.data_wiped("127.9.0.3")
    assert cluster.bootstrapped and len(cluster.members) == 2 and wiped == []
    cluster.join("cp-1", "127.9.0.3")  # back, synced from cp-2
    cluster.data_wiped("127.9.0.4")
    assert cluster.bootstrapped and wiped == []
    cluster.data_wiped("127.9.0.3")  # the last member with data
    assert not cluster.bootstrapped and cluster.members == {} and cluster.leader == 0
    assert wiped == [True]


async def test_bootstrap_from_a_snapshot_answers_before_the_keyspace_is_back(
    env: Env, tmp_path: Path
) -> None:
    # Talos runs its bootstrap sequence after replying: the keyspace restore (a request per
    # key against the world's etcd) must not hold up the reply, or a client's call times out.
    _, ip = await configure(env)
    [cluster] = env.fleet.clusters.values()
    stored = [KeyValue(b"/registry/configmaps/default/a", b"{}", 7, 9)]
    restored: list[KeyValue] = []
    release = asyncio.Event()

    async def restore(keys: Sequence[KeyValue]) -> None:
        await release.wait()
        restored.extend(keys)

    async with env.client(ip) as talos:
        await talos.bootstrap()
        cluster.keyspace = lambda: stored
        snapshot = tmp_path / "etcd.db"
        await talos.etcd_snapshot(snapshot)
        await env.fleet.destroy_etcd(cluster)
        cluster.restore_keyspace = restore
        await talos.etcd_recover(snapshot)
        await asyncio.wait_for(talos.bootstrap(recover_etcd=True), timeout=5)
        assert restored == []  # answered while the restore still waits
        # etcd does not serve before its data is back: no member another control plane could
        # join, none a client could count as recovered.
        assert not cluster.bootstrapped and cluster.members == {}
        release.set()
        for _ in range(1000):
            if cluster.bootstrapped:
                break
            await asyncio.sleep(0)  # a turn of the loop for the restore task
        assert restored == stored
        assert [m.ip for m in cluster.members.values()] == [ip]
