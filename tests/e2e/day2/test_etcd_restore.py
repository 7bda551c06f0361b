"""``hk8s etcd restore`` end to end: objects written, snapshot, etcd destroyed on every control
plane, restore, and the objects of the snapshot are back (later ones are not); a restore is
refused while etcd has quorum, and a damaged file is refused, both before any change."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .conftest import Day2World

CONTROL_PLANES = ["demo-cp-1", "demo-cp-2", "demo-cp-3"]


def configmaps(world: Day2World) -> dict[str, Any]:
    items = world.kube_items("/api/v1/namespaces/default/configmaps")
    # kube-root-ca.crt: published into every namespace by kube-controller-manager.
    return {
        o["metadata"]["name"]: o.get("data")
        for o in items
        if o["metadata"]["name"] != "kube-root-ca.crt"
    }


def stored_configmaps(world: Day2World) -> list[bytes]:
    """The default namespace's ConfigMaps as etcd itself holds them: while its keyspace is
    lost the API server cannot answer."""
    keys = world.threaded.call(world.kube().machines.etcd.keys)
    return [kv.key for kv in keys if kv.key.startswith(b"/registry/configmaps/default/")]


def destroy_etcd(world: Day2World) -> None:
    [cluster] = world.world.fleet.clusters.values()
    world.threaded.run(world.world.fleet.destroy_etcd(cluster))


def test_restore_brings_back_the_snapshot_after_etcd_is_lost(world: Day2World) -> None:
    assert world.hk8s("health", check=False).returncode == 0
    world.put_configmap("kept", {"v": "1"})
    snapshot = world.dir / "before.db"
    world.hk8s("etcd", "snapshot", "--to", str(snapshot))
    world.put_configmap("later", {"v": "2"})

    world.reset_stats()
    refused = world.hk8s("etcd", "restore", "--from", str(snapshot), "--yes", check=False)
    assert refused.returncode == 2, refused.stderr
    assert "etcd still has quorum" in refused.stderr and "--force" in refused.stderr
    broken = world.dir / "broken.db"
    broken.write_bytes(snapshot.read_bytes()[:-1])
    damaged = world.hk8s("etcd", "restore", "--from", str(broken), "--yes", check=False)
    assert damaged.returncode == 2 and "not an intact etcd snapshot" in damaged.stderr
    assert world.mutating() == 0
    assert {"kept", "later"} <= set(configmaps(world))

    destroy_etcd(world)
    assert world.etcd_members() == []
    assert stored_configmaps(world) == []  # the keyspace went with etcd
    result = world.hk8s("etcd", "restore", "--from", str(snapshot), "--yes", "-o", "json")
    report = json.loads(result.stdout)
    assert report["etcd_members"] == CONTROL_PLANES
    assert report["recovered_on"] == "demo-cp-1"
    restored = configmaps(world)
    assert restored["kept"] == {"v": "1"} and "later" not in restored
    assert world.etcd_members() == CONTROL_PLANES
    health = world.hk8s("health", check=False)
    assert health.returncode == 0, health.stdout
