"""``hk8s status`` against a created cluster, then with one node powered off: everything
still shown, the node that is down named as a problem, nothing changed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from hk8s.config import DEFAULT_TALOS_VERSION

if TYPE_CHECKING:
    from .conftest import CreateWorld

CLUSTER_3_1 = """\
name: demo
location: fsn1
control_plane:
  count: 3
workers:
  - name: workers
    count: 1
"""


def power_off(world: CreateWorld, name: str) -> None:
    """Power the server off through the (simulated) Hetzner API, as a user could."""
    from hcloud import Client

    client = Client(token=world.token, api_endpoint=world.env["HCLOUD_ENDPOINT"])
    server = client.servers.get_by_name(name)
    assert server is not None
    server.power_off().wait_until_finished(max_retries=200)


def test_status_shows_the_cluster_and_says_which_part_is_down(world: CreateWorld) -> None:
    world.write_config(CLUSTER_3_1)
    world.hk8s("create")
    result = world.hk8s("status", "-o", "json")
    status = json.loads(result.stdout)
    servers = {s["name"]: s for s in status["servers"]}
    assert sorted(servers) == ["demo-cp-1", "demo-cp-2", "demo-cp-3", "demo-workers-1"]
    for server in servers.values():
        assert server["hetzner"] == "running" and server["talos"] == DEFAULT_TALOS_VERSION
        assert server["ready"] is True and server["kubernetes"]
        assert server["public_ipv4"] and server["private_ipv4"]
        assert server["location"] == "fsn1" and server["server_type"]
    assert servers["demo-cp-1"]["pool"] == "cp" and servers["demo-cp-1"]["etcd_member"] is True
    assert servers["demo-workers-1"]["role"] == "worker"
    assert status["etcd_members"] == ["demo-cp-1", "demo-cp-2", "demo-cp-3"]
    assert status["load_balancer"]["name"] == "demo-api"
    assert status["load_balancer"]["public_ipv4"] in status["endpoint"]
    assert status["addons"]["cilium"]["deployed"] == status["addons"]["cilium"]["wanted"]
    assert status["plan"]["operations"] == [] and status["problems"] == []
    text = world.hk8s("status").stdout
    assert "demo-workers-1" in text and "etcd members: demo-cp-1, demo-cp-2, demo-cp-3" in text
    assert "plan: up to date" in text

    world.reset_stats()
    power_off(world, "demo-workers-1")
    down = json.loads(world.hk8s("status", "-o", "json").stdout)
    worker = next(s for s in down["servers"] if s["name"] == "demo-workers-1")
    assert worker["hetzner"] == "off" and worker["talos"] is None
    assert any(p.startswith("demo-workers-1: Talos API") for p in down["problems"])
    # the rest still answers and is still shown
    assert down["etcd_members"] == ["demo-cp-1", "demo-cp-2", "demo-cp-3"]
    others = [s for s in down["servers"] if s["name"] != worker["name"]]
    assert all(s["talos"] == DEFAULT_TALOS_VERSION for s in others)
    assert down["addons"]["cilium"]["deployed"]
    text = world.hk8s("status").stdout
    assert "problem(s)" in text and "demo-workers-1: Talos API: server is off" in text

    # a config that asks for one more worker: status says what create would do about it
    world.write_config(CLUSTER_3_1.replace("count: 1", "count: 2"))
    text = world.hk8s("status").stdout
    assert "plan: 1 to create" in text and "create server demo-workers-2" in text
    assert world.mutating() == 1  # the power-off above; status changed nothing
