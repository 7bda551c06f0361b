"""Interrupted runs, API faults, a slow node, and scaling: ``create`` always converges."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from .test_create import CLUSTER_3_2, assert_servers, assert_token_absent, kube_nodes

if TYPE_CHECKING:
    from collections.abc import Callable

    from .conftest import CreateWorld

SMALL = """\
name: demo
location: fsn1
control_plane:
  count: 1
workers:
  - name: workers
    count: 2
"""
SMALL_POOLS = {"demo-cp-1": "cp", "demo-workers-1": "workers", "demo-workers-2": "workers"}


def nth(method: str, route: str, n: int) -> Callable[[Any], bool]:
    """True at the ``n``-th request ``method route`` (the image build's are counted too)."""
    seen = [0]

    def hit(record: Any) -> bool:
        if record.method == method and record.route == route:
            seen[0] += 1
        return seen[0] >= n

    return hit


@pytest.mark.parametrize(
    ("point", "kill"),
    [
        ("second cluster server created", nth("POST", "/servers", 3)),
        ("first machine config recorded", nth("PUT", "/servers/{id}", 1)),
    ],
    ids=["servers", "configs"],
)
def test_killed_midway_then_rerun_converges(
    world: CreateWorld, point: str, kill: Callable[[Any], bool]
) -> None:
    world.write_config(SMALL)
    status = world.hk8s_killed_when(kill, "create")
    assert status == -9, f"not interrupted at {point}"
    result = world.hk8s("create", "-o", "json")
    assert all(check["ok"] for check in json.loads(result.stdout)["health"])
    # exactly the desired servers: no duplicates, no orphans (build servers included)
    assert_servers(world, SMALL_POOLS)
    assert kube_nodes(world.dir / "kubeconfig") == dict.fromkeys(SMALL_POOLS, True)
    assert_token_absent(world)


def test_api_faults_and_a_slow_node_still_converge(
    make_world: Callable[..., CreateWorld],
) -> None:
    world = make_world(
        {
            "seed": 8,
            "errors": [
                {"path": "*", "rate": 0.05, "code": 503},
                {"path": "*", "rate": 0.05, "code": 429},
                {"path": "*", "rate": 0.05, "code": "locked"},
            ],
            "talos": {"slow_boots": ["demo-workers-2"], "slow_boot_factor": 4},
        }
    )
    world.write_config(SMALL)
    world.hk8s("create")
    stats = world.threaded.call(lambda: world.world.hcloud.stats.snapshot())
    assert set(stats["by_status"]) - {"200", "201", "204"}, "faults were injected"
    world.faults({})
    assert_servers(world, SMALL_POOLS)
    health = world.hk8s("health")
    assert "FAIL" not in health.stdout
    assert_token_absent(world)


def test_scale_up_then_down_drains_nodes(world: CreateWorld) -> None:
    world.write_config(CLUSTER_3_2)
    world.hk8s("create")
    world.write_config(CLUSTER_3_2.replace("count: 2", "count: 4"))
    world.hk8s("create")
    up = {f"demo-cp-{i}": "cp" for i in (1, 2, 3)}
    up |= {f"demo-workers-{i}": "workers" for i in (1, 2, 3, 4)}
    assert_servers(world, up)
    assert kube_nodes(world.dir / "kubeconfig") == dict.fromkeys(up, True)

    world.write_config(CLUSTER_3_2.replace("count: 2", "count: 1"))
    planned = world.hk8s("plan", "--servers", "-o", "json", check=False)
    assert planned.returncode == 3, planned.stderr
    ops = json.loads(planned.stdout)["operations"]
    assert [(op["type"], op["key"]) for op in ops] == [
        ("delete", "server/demo-workers-4"),
        ("delete", "server/demo-workers-3"),
        ("delete", "server/demo-workers-2"),
    ]
    assert all("scaled down to 1" in op["reason"] and "drain" in op["reason"] for op in ops)
    # the nodes the plan removes are not also reported as unexpected by the health probe
    assert json.loads(planned.stdout)["health"] == {"checked": True, "findings": []}

    # killed right after its first eviction: the re-run drains again and finishes the job
    status, spy = world.hk8s_killed_on_eviction("create")
    assert status == -9
    draining = spy["cordon"][-1]
    assert draining in world.servers(), "killed while draining, before the server was deleted"
    result = world.hk8s("create", "-o", "json")
    assert draining in json.loads(result.stdout)["removed"]
    down = {f"demo-cp-{i}": "cp" for i in (1, 2, 3)} | {"demo-workers-1": "workers"}
    assert_servers(world, down)
    assert kube_nodes(world.dir / "kubeconfig") == dict.fromkeys(down, True)
    # drained through the Kubernetes API, highest number first: cordon, then evictions
    assert list(dict.fromkeys(spy["cordon"])) == [
        "demo-workers-4",
        "demo-workers-3",
        "demo-workers-2",
    ]
    assert spy["evict"], "pods were evicted, not deleted"
    assert_token_absent(world)


def test_a_build_killed_midway_leaves_nothing_after_destroy(world: CreateWorld) -> None:
    """SIGKILL while the image build's server boots into rescue: the build server and its SSH
    key stay behind (nothing can remove them from a dead process). ``destroy`` removes them
    with the cluster, without waiting for the hour after which any build counts as stale."""
    world.write_config(SMALL)
    # The first POST /servers of a fresh project is the build server's (no snapshot exists).
    status = world.hk8s_killed_when(nth("POST", "/servers/{id}/actions/enable_rescue", 1), "create")
    assert status == -9
    state = world.world.hcloud.state

    def build_leftovers() -> list[str]:
        return world.threaded.call(
            lambda: sorted(
                [s.name for s in state.servers.values() if s.name.startswith("hk8s-build")]
                + [k.name for k in state.ssh_keys.values() if k.name.startswith("hk8s-build")]
            )
        )

    assert len(build_leftovers()) == 2, "the kill left the build server and its key"
    plan = world.hk8s("plan", "--destroy", check=False)
    assert plan.returncode == 3
    assert "image build server left by an interrupted build" in plan.stdout
    world.hk8s("destroy", "--yes")
    assert build_leftovers() == []


def test_a_rerun_after_a_kill_mid_build_takes_the_dead_claim_over_and_converges(
    world: CreateWorld,
) -> None:
    """Ctrl-C or a CI timeout during the image build, then the same ``create`` again: the
    dead build's claim (its SSH key) used to hold the re-run for an hour; its heartbeat has
    stopped, so the re-run takes it over after 4 missed beats (120 simulated s), deletes the
    dead build's server, builds one snapshot and converges."""
    from e2e_support import observing

    world.write_config(SMALL)
    status = world.hk8s_killed_when(nth("POST", "/servers/{id}/actions/enable_rescue", 1), "create")
    assert status == -9
    state = world.world.hcloud.state
    [dead] = world.threaded.call(
        lambda: [k.id for k in state.ssh_keys.values() if k.name.startswith("hk8s-build-talos")]
    )
    refused: list[float] = []
    taken: list[float] = []

    def observer(record: Any, request: Any, response: Any) -> None:
        if record.method == "POST" and record.route == "/ssh_keys" and record.status == 409:
            refused.append(record.at)
        if record.method == "DELETE" and record.path.endswith(f"/ssh_keys/{dead}"):
            taken.append(record.at)

    with observing(world.threaded, world.world.hcloud.api, observer):
        world.hk8s("create")
    assert 120 <= taken[0] - refused[0] <= 120 + 3 * 30, (refused, taken)
    assert_servers(world, SMALL_POOLS)  # no build server left, no duplicate
    images = world.threaded.call(lambda: [i for i in state.images.values() if i.type == "snapshot"])
    assert len(images) == 1
    assert world.threaded.call(lambda: [k.name for k in state.ssh_keys.values()]) == []


def test_plan_reports_an_unfinished_cluster_as_pending_work(world: CreateWorld) -> None:
    """Killed after the servers exist but before every machine config: nothing is left to
    create, yet the cluster is not done. ``plan`` said "nothing to do" (exit 0) while
    ``health`` failed; now it names the servers create still has to finish (exit 3)."""
    world.write_config(SMALL)
    assert world.hk8s_killed_when(nth("PUT", "/servers/{id}", 1), "create") == -9
    # Concurrent label updates already in flight may still land after the kill: make sure
    # some node is recorded as unconfigured, as a kill one step earlier leaves it.
    state = world.world.hcloud.state

    def forget_configs() -> None:
        for server in state.servers.values():
            server.labels.pop("hk8s/config-hash", None)

    world.threaded.call(forget_configs)
    plan = world.hk8s("plan", check=False)
    assert plan.returncode == 3, plan.stdout + plan.stderr
    assert "no machine config applied yet (maintenance mode)" in plan.stdout
    world.hk8s("create")
    assert world.hk8s("plan", check=False).returncode == 0


def test_create_destroy_create_from_one_directory(world: CreateWorld) -> None:
    """destroy keeps secrets.yaml, so the second create reuses the bundle (and cluster id);
    the new servers' disks hold no etcd data, so etcd is bootstrapped afresh. The simulator
    kept the deleted cluster's etcd members, and the second create failed: "no leader"."""
    world.write_config(SMALL)
    world.hk8s("create")
    world.hk8s("destroy", "--yes")
    assert world.servers() == {}
    result = world.hk8s("create", "-o", "json")
    assert all(check["ok"] for check in json.loads(result.stdout)["health"])
    assert_servers(world, SMALL_POOLS)


def test_a_server_stuck_in_starting_is_named_and_the_rest_converges(
    make_world: Callable[..., CreateWorld],
) -> None:
    """Hetzner never finishes starting one worker. That failed the servers phase for the
    whole cluster ("waiting for Hetzner action 100012", no etcd, no node named); now etcd is
    bootstrapped on the three control planes, the other nodes are Ready, and the run fails
    naming the stuck server. Once Hetzner lets it start, a re-run finishes the cluster."""
    world = make_world({"never_running": ["demo-workers-2"]})
    world.write_config(CLUSTER_3_2)
    failed = world.hk8s("create", check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    # The others went on once the stuck one fell far behind them (Timing.straggler_after),
    # not after its action wait's 15 minutes (the provider's timeout names no peers).
    assert "going on without it" in failed.stderr
    assert "while the others took at most" in failed.stderr
    assert "demo-workers-2 still in Hetzner's starting state" in failed.stderr
    assert "is up with 4 node(s)" in failed.stderr
    status = json.loads(world.hk8s("status", "-o", "json").stdout)
    assert status["etcd_members"] == ["demo-cp-1", "demo-cp-2", "demo-cp-3"]
    ready = {s["name"]: s["ready"] for s in status["servers"]}
    assert ready.pop("demo-workers-2") is not True
    assert ready == dict.fromkeys(["demo-cp-1", "demo-cp-2", "demo-cp-3", "demo-workers-1"], True)
    stuck = next(s for s in status["servers"] if s["name"] == "demo-workers-2")
    assert stuck["hetzner"] == "starting"

    world.faults({})
    result = world.hk8s("create", "-o", "json")
    assert json.loads(result.stdout)["configured"] == ["demo-workers-2"]
    pools = {f"demo-cp-{i}": "cp" for i in (1, 2, 3)}
    pools |= {f"demo-workers-{i}": "workers" for i in (1, 2)}
    assert_servers(world, pools)
    assert kube_nodes(world.dir / "kubeconfig") == dict.fromkeys(pools, True)
    assert world.hk8s("plan", check=False).returncode == 0
