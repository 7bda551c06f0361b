"""Rolling a plan over fake nodes: control planes one at a time before workers, workers
``parallel`` at a time, each drained before and uncordoned after; done nodes untouched; the
first failure (a node that boots back into its old release) stops the run and names it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from hk8s.controller import NodeVersions, plan_upgrade, roll_out
from hk8s.errors import PermanentError, WaitTimeoutError

if TYPE_CHECKING:
    from hk8s.controller import Node, UpgradePlan

    from .conftest import Rollout

IMAGE = "factory.example/hcloud-installer/abc:v1.13.0"


def talos_plan(rollout: Rollout) -> UpgradePlan:
    observed = [
        NodeVersions(n.name, n.control_plane, n.version, n.kubelet)
        for n in rollout.cluster.nodes.values()
    ]
    return plan_upgrade("demo", observed, talos="v1.13.0", kubernetes="1.35.0", phases=["talos"])


async def upgrade_talos(rollout: Rollout, parallel: int = 1) -> list[str]:
    upgrader = rollout.upgrader

    async def one(node: Node) -> None:
        await upgrader.upgrade_talos(node, IMAGE, "v1.13.0", "1.35.0")

    return await roll_out(upgrader, talos_plan(rollout).phase("talos"), parallel, one)


async def test_control_planes_go_one_at_a_time_before_the_workers(rollout: Rollout) -> None:
    done = await upgrade_talos(rollout)
    assert done == [
        "demo-cp-1", "demo-cp-2", "demo-cp-3", "demo-workers-1", "demo-workers-2", "demo-workers-3"
    ]  # fmt: skip
    upgrades = [e.split()[1] for e in rollout.cluster.log if e.startswith("upgrade")]
    assert upgrades == done
    assert rollout.cluster.max_down == 1
    # Each node: drained, upgraded, given its new config, uncordoned, before the next starts.
    assert rollout.cluster.log[:5] == [
        "cordon demo-cp-1", "drain demo-cp-1", "upgrade demo-cp-1", "apply demo-cp-1 auto",
        "uncordon demo-cp-1",
    ]  # fmt: skip
    assert not rollout.kube.marked  # the upgrading annotation went with the uncordon
    assert {n.version for n in rollout.cluster.nodes.values()} == {"v1.13.0"}
    assert not rollout.kube.cordoned


async def test_a_node_counts_as_ready_once_the_kubelet_of_its_new_boot_says_so(
    rollout: Rollout,
) -> None:
    # Before the upgrade every kubelet posted bootID b1; the Ready condition it left may
    # outlive the reboot (a single control plane's API server goes down with it).
    await upgrade_talos(rollout)
    assert rollout.kube.ready_waits == [{n: "b1"} for n in rollout.cluster.nodes]
    assert {n.boots for n in rollout.cluster.nodes.values()} == {2}


async def test_workers_go_parallel_at_a_time_control_planes_still_one(rollout: Rollout) -> None:
    await upgrade_talos(rollout, parallel=3)
    log = [e for e in rollout.cluster.log if e.startswith(("upgrade", "uncordon"))]
    cps = log[:6]
    assert cps == [f"{verb} demo-cp-{i}" for i in (1, 2, 3) for verb in ("upgrade", "uncordon")]
    workers = log[6:]
    # All three workers were upgraded before the first of them was back.
    assert [e.split()[0] for e in workers[:3]] == ["upgrade"] * 3
    assert rollout.cluster.max_down == 3


async def test_nodes_already_at_the_target_get_no_call(rollout: Rollout) -> None:
    for name in ("demo-cp-1", "demo-workers-2"):
        rollout.cluster.nodes[name].version = "v1.13.0"
    done = await upgrade_talos(rollout)
    assert "demo-cp-1" not in done and "demo-workers-2" not in done
    touched = {e.split()[1] for e in rollout.cluster.log}
    assert touched.isdisjoint({"demo-cp-1", "demo-workers-2"})


async def test_a_rolled_back_node_stops_the_run_and_is_named(rollout: Rollout) -> None:
    rollout.cluster.nodes["demo-cp-2"].fails = True
    with pytest.raises(PermanentError) as caught:
        await upgrade_talos(rollout)
    error = caught.value
    assert error.context["node"] == "demo-cp-2"
    assert "demo-cp-2" in error.message and "rolled back" in error.message
    assert "demo-cp-1 finished first" in error.message
    assert "re-run `hk8s upgrade`" in (error.hint or "")
    upgrades = [e for e in rollout.cluster.log if e.startswith("upgrade")]
    assert upgrades == ["upgrade demo-cp-1", "upgrade demo-cp-2"]  # nothing after it
    assert not rollout.kube.cordoned  # the rolled-back node is schedulable again
    # ... once the kubelet of its rollback boot says it is in service, so that a re-run's
    # health check does not meet it still coming up.
    assert rollout.kube.ready_waits[-1] == {"demo-cp-2": "b1"}
    assert "back in service at its old release" in error.message

    # The cause is fixed: a new run skips demo-cp-1 and finishes the rest.
    rollout.cluster.nodes["demo-cp-2"].fails = False
    rollout.cluster.log.clear()
    done = await upgrade_talos(rollout)
    assert done[0] == "demo-cp-2" and len(done) == 5


async def test_kubernetes_rolls_configs_without_draining(rollout: Rollout) -> None:
    for fake in rollout.cluster.nodes.values():
        fake.kubelet = "1.34.1"
    upgrader = rollout.upgrader
    observed = [
        NodeVersions(n.name, n.control_plane, n.version, n.kubelet)
        for n in rollout.cluster.nodes.values()
    ]
    plan = plan_upgrade("demo", observed, talos="v1.12.0", kubernetes="1.35.0")

    async def one(node: Node) -> bool:
        return await upgrader.upgrade_kubernetes(node, "v1.12.0", "1.35.0")

    done = await roll_out(upgrader, plan.phase("kubernetes"), 1, one)
    assert len(done) == 6
    assert rollout.cluster.log == [f"apply {name} no-reboot" for name in done]
    assert {n.kubelet for n in rollout.cluster.nodes.values()} == {"1.35.0"}
    # Running it again finds every node done (versions and config hash) and calls nothing.
    rollout.cluster.log.clear()
    assert await roll_out(upgrader, plan.phase("kubernetes"), 1, one) == []
    assert rollout.cluster.log == []


async def test_a_node_an_interrupted_run_left_cordoned_is_finished(rollout: Rollout) -> None:
    # The last run was stopped after demo-cp-1 rebooted into v1.13.0, before its uncordon.
    fake = rollout.cluster.nodes["demo-cp-1"]
    fake.version = "v1.13.0"
    rollout.kube.cordoned.add("demo-cp-1")
    rollout.kube.marked.add("demo-cp-1")
    observed = [
        NodeVersions(n.name, n.control_plane, n.version, n.kubelet,
                     upgrading=n.name in rollout.kube.marked)
        for n in rollout.cluster.nodes.values()
    ]  # fmt: skip
    plan = plan_upgrade("demo", observed, talos="v1.13.0", kubernetes="1.35.0", phases=["talos"])
    assert plan.phase("talos")[0].action == "finish"
    upgrader = rollout.upgrader

    async def one(node: Node) -> None:
        await upgrader.upgrade_talos(node, IMAGE, "v1.13.0", "1.35.0")

    await roll_out(upgrader, plan.phase("talos"), 1, one)
    first = [e for e in rollout.cluster.log if e.endswith("demo-cp-1") or "demo-cp-1 " in e]
    assert first == ["apply demo-cp-1 auto", "uncordon demo-cp-1"]  # no drain, no upgrade
    assert not rollout.kube.cordoned and not rollout.kube.marked


async def test_a_node_someone_else_cordoned_is_left_alone(rollout: Rollout) -> None:
    for fake in rollout.cluster.nodes.values():
        fake.version = "v1.13.0"
    rollout.kube.cordoned.add("demo-workers-2")  # by the operator: no hk8s annotation
    assert talos_plan(rollout).empty


async def test_a_drain_blocked_by_a_budget_stops_before_the_upgrade(rollout: Rollout) -> None:
    async def blocked(node: str, *, timeout: float | None = None) -> list[object]:
        raise WaitTimeoutError(
            f"draining node {node}",
            1200,
            last_error="pod default/db-0 blocked by PodDisruptionBudget default/db",
        )

    rollout.kube.drain = blocked  # type: ignore[method-assign,assignment]
    with pytest.raises(PermanentError) as caught:
        await upgrade_talos(rollout)
    assert caught.value.context["node"] == "demo-cp-1"
    assert "PodDisruptionBudget default/db" in caught.value.message
    assert not [e for e in rollout.cluster.log if e.startswith("upgrade")]
    assert not rollout.kube.cordoned and not rollout.kube.marked  # as it was before


async def test_a_rollback_is_seen_by_the_boot_id_when_no_poll_caught_the_reboot(
    rollout: Rollout,
) -> None:
    rollout.cluster.down_polls = 0
    rollout.cluster.nodes["demo-cp-1"].fails = True
    with pytest.raises(PermanentError, match="rolled back") as caught:
        await upgrade_talos(rollout)
    assert caught.value.context["node"] == "demo-cp-1"


async def test_a_poll_that_times_out_while_installing_is_not_a_rollback(rollout: Rollout) -> None:
    rollout.cluster.flaky_polls = 1  # then the node still answers at v1.12.0 (installing)
    done = await upgrade_talos(rollout)
    assert len(done) == 6


async def test_a_node_that_boots_as_another_platform_stops_the_run(rollout: Rollout) -> None:
    # The factory's bare `installer/` image is the metal profile: the node would boot the new
    # release without the hcloud platform (metadata networking, hostname).
    upgrader = rollout.upgrader
    node = next(n for n in upgrader.nodes if n.name == "demo-cp-1")
    with pytest.raises(PermanentError, match="platform 'metal'") as caught:
        await upgrader.upgrade_talos(
            node, "factory.example/installer/abc:v1.13.0", "v1.13.0", "1.35.0"
        )
    assert caught.value.context["node"] == "demo-cp-1"
    assert "hcloud-installer" in (caught.value.hint or "")


async def test_upgrade_is_asked_without_preserve_so_talos_keeps_its_etcd_checks(
    rollout: Rollout,
) -> None:
    # Talos 1.12.9+/1.13.4+ skip the etcd upgrade lock and health check with preserve=true.
    await upgrade_talos(rollout)
    assert rollout.cluster.preserve and not any(rollout.cluster.preserve)


async def test_an_upgrade_call_that_times_out_before_talos_started_is_made_again(
    rollout: Rollout,
) -> None:
    rollout.cluster.upgrade_timeouts = 1  # the installer pull outlasted the call
    done = await upgrade_talos(rollout)
    assert len(done) == 6
    upgrades = [e for e in rollout.cluster.log if e.startswith("upgrade")]
    assert upgrades[:2] == ["upgrade demo-cp-1", "upgrade demo-cp-1"]
    assert len(upgrades) == 7


async def test_an_upgrade_whose_reply_was_lost_is_not_started_twice(rollout: Rollout) -> None:
    rollout.cluster.lost_replies = 1  # Talos took it; the client saw a timeout
    done = await upgrade_talos(rollout)
    assert len(done) == 6
    upgrades = [e for e in rollout.cluster.log if e.startswith("upgrade")]
    assert len(upgrades) == 6  # one call per node
    assert rollout.cluster.max_down == 1


async def test_a_control_plane_waits_for_every_etcd_member_to_be_started(
    rollout: Rollout,
) -> None:
    # Talos' ValidateForUpgrade refuses then (and 1.12.9+ skips it with preserve): hk8s
    # waits until etcd can lose a member before it upgrades a control plane.
    rollout.cluster.unstarted_polls = 3
    await upgrade_talos(rollout)
    log = rollout.cluster.log
    assert log.count("etcd member not started") == 3
    last_seen = max(i for i, e in enumerate(log) if e == "etcd member not started")
    assert log.index("upgrade demo-cp-1") > last_seen
