"""``hk8s node reboot|reset|replace`` end to end: the cluster stays healthy, and an action that
would break etcd quorum is refused before anything changes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import hcloud

if TYPE_CHECKING:
    from .conftest import Day2World

CONTROL_PLANES = ["demo-cp-1", "demo-cp-2", "demo-cp-3"]


def client(world: Day2World) -> hcloud.Client:
    return hcloud.Client(
        token=world.env["HCLOUD_TOKEN"], api_endpoint=world.env["HCLOUD_ENDPOINT"],
        poll_interval=0.05,
    )  # fmt: skip


def talos_node(world: Day2World, name: str) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        node = next(n for n in world.world.fleet.nodes.values() if n.server_name == name)
        return {"configured": node.config is not None, "boots": len(node.events)}

    return dict(world.threaded.call(read))


def kube_node_names(world: Day2World) -> list[str]:
    return world.kube_names("/api/v1/nodes")


def test_reboot_keeps_the_cluster_healthy(world: Day2World) -> None:
    result = world.hk8s("node", "reboot", "demo-cp-2", "-o", "json")
    done = json.loads(result.stdout)
    assert {k: done[k] for k in ("node", "action", "healthy")} == {
        "node": "demo-cp-2", "action": "reboot", "healthy": True,
    }  # fmt: skip
    assert done["phases"]  # where the minutes went, as every changing command reports
    assert world.etcd_members() == CONTROL_PLANES
    assert world.hk8s("health", check=False).returncode == 0


def test_actions_that_would_break_quorum_are_refused_before_any_change(world: Day2World) -> None:
    api = client(world)
    down = api.servers.get_by_name("demo-cp-1")
    assert down is not None
    api.servers.power_off(down).wait_until_finished()
    try:
        world.reset_stats()
        for args in (("reboot", "demo-cp-2"), ("reset", "demo-cp-3", "--yes"),
                     ("replace", "demo-cp-2", "--yes")):  # fmt: skip
            refused = world.hk8s("node", *args, check=False)
            assert refused.returncode == 2, refused.stderr
            assert f"refusing to {args[0]} {args[1]}" in refused.stderr
            assert "1 of" in refused.stderr and "nothing was changed" in refused.stderr
        assert world.mutating() == 0
        assert world.etcd_members() == CONTROL_PLANES
        unknown = world.hk8s("node", "reboot", "demo-cp-9", check=False)
        assert unknown.returncode == 2 and "no node 'demo-cp-9'" in unknown.stderr
    finally:
        api.servers.power_on(down).wait_until_finished()
    world.hk8s("create")  # waits until the cluster is healthy again


def test_reset_returns_a_worker_to_maintenance_and_create_takes_it_back(world: Day2World) -> None:
    world.hk8s("node", "reset", "demo-workers-1", "--yes")
    assert talos_node(world, "demo-workers-1")["configured"] is False
    assert "demo-workers-1" not in kube_node_names(world)
    world.hk8s("create")
    assert talos_node(world, "demo-workers-1")["configured"] is True
    assert "demo-workers-1" in kube_node_names(world)


def test_reset_of_a_control_plane_leaves_etcd_first(world: Day2World) -> None:
    world.hk8s("node", "reset", "demo-cp-3", "--yes")
    assert world.etcd_members() == ["demo-cp-1", "demo-cp-2"]
    world.hk8s("create")
    assert world.etcd_members() == CONTROL_PLANES


def test_replace_makes_a_fresh_server_with_etcd_membership_handled(world: Day2World) -> None:
    api = client(world)
    old = api.servers.get_by_name("demo-cp-2")
    assert old is not None
    result = world.hk8s("node", "replace", "demo-cp-2", "--yes", "-o", "json")
    new = api.servers.get_by_name("demo-cp-2")
    assert new is not None and new.id != old.id
    assert world.etcd_members() == CONTROL_PLANES
    assert "demo-cp-2" in json.loads(result.stdout)["nodes"]
    assert world.hk8s("health", check=False).returncode == 0
