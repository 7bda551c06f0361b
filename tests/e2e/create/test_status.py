"""``hk8s status`` against a created cluster, then with one node powered off: everything
still shown, the node that is down named as a problem, nothing changed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from hk8s.config import DEFAULT_TALOS_VERSION

if TYPE_CHECKING:
    from .conftest import CreateWorld

# Hetzner requests of one `hk8s plan` of an existing cluster (measured: 10): the catalogue
# check (4), infra discovery (4), the servers, and the servers and load balancer again for the
# cluster's endpoint (shared by the addons and the health probe: was 11 before the probe).
PLAN_REQUESTS = 10

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


def talos_node(world: CreateWorld, name: str) -> Any:
    """The simulated Talos machine behind server ``name``."""
    fleet = world.world.fleet
    return world.threaded.call(
        lambda: next(n for n in fleet.nodes.values() if n.server_name == name)
    )


def plan(world: CreateWorld) -> tuple[int, str, dict[str, Any]]:
    text = world.hk8s("plan", check=False)
    doc = world.hk8s("plan", "-o", "json", check=False)
    assert text.returncode == doc.returncode, text.stderr + doc.stderr
    return text.returncode, text.stdout, json.loads(doc.stdout)


def findings(doc: dict[str, Any]) -> dict[str, str]:
    return {f["node"]: f["problem"] for f in doc["health"]["findings"]}


def test_plan_reports_an_unhealthy_cluster_as_pending_work(world: CreateWorld) -> None:
    """Infrastructure that matches cluster.yaml is not "nothing to do" while a node is off,
    its Talos API is down or it sits in maintenance mode: ``plan`` said exit 0 while
    ``health`` failed. Now it names each node and what create does about it (exit 3)."""
    world.write_config(CLUSTER_3_1)
    world.hk8s("create")
    world.reset_stats()
    code, text, doc = plan(world)
    assert code == 0, text
    assert "nothing to do" in text
    assert doc["pending"] == [] and doc["health"] == {"checked": True, "findings": []}
    stats = world.threaded.call(lambda: world.world.hcloud.stats.snapshot())
    # two plans (text + JSON): the probe adds no Hetzner request to plan's discovery
    assert stats["mutating"] == 0 and stats["total"] <= 2 * PLAN_REQUESTS, stats["by_route"]

    # Powered off in Hetzner: named, and create powers it on.
    power_off(world, "demo-workers-1")
    code, text, doc = plan(world)
    assert code == 3, text
    assert "demo-workers-1: the server is off — create powers it on" in text
    assert doc["pending"] == ["demo-workers-1: the server is off — create powers it on"]
    world.hk8s("create")
    assert plan(world)[0] == 0

    # Talos down while Hetzner says running (a crashed node): found by the probe.
    node = talos_node(world, "demo-workers-1")
    world.threaded.run(node.power_off())
    code, text, doc = plan(world)
    assert code == 3, text
    assert "demo-workers-1: Talos API unreachable" in text and "health fails" in text
    assert list(findings(doc)) == ["demo-workers-1"]
    assert doc["health"]["checked"] is True

    # Back in maintenance mode although labelled configured: create sends its config again.
    async def into_maintenance() -> None:
        node.disk.config = None
        node.power_on()
        while node.phase != "maintenance":
            await world.world.clock.sleep(0.5)

    world.threaded.run(into_maintenance())
    code, text, doc = plan(world)
    assert code == 3, text
    line = (
        "demo-workers-1: in maintenance mode (no machine config) — create applies its "
        "machine config"
    )
    assert line in text and line in doc["pending"]
    assert findings(doc) == {"demo-workers-1": "in maintenance mode (no machine config)"}
    world.hk8s("create")
    code, text, doc = plan(world)
    assert code == 0, text
    assert world.hk8s("health").returncode == 0
