"""The upgrade plan: which version paths are refused (before anything changes), the order
nodes go in, and which nodes are skipped because they are done already."""

from __future__ import annotations

import pytest

from hk8s.controller import (
    NodeVersions,
    check_kubernetes_path,
    check_talos_path,
    check_talos_supports,
    plan_upgrade,
    upgrade_order,
)
from hk8s.errors import UsageError


def node(
    name: str, talos: str = "v1.12.0", kube: str | None = "1.35.0", **kw: object
) -> NodeVersions:
    return NodeVersions(name, "-cp-" in name, talos, kube, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("v1.12.0", "v1.13.0"),
        ("v1.12.0", "v1.12.4"),
        ("v1.11.5", "v1.12.0"),
        ("1.13.0", "v1.13.0"),
        # Upstream's MinimumHostUpgradeVersion: 1.13 over 1.11.0+, 1.14 over 1.12.0+.
        ("v1.11.5", "v1.13.9"),
        ("v1.12.11", "v1.14.1"),
        ("v1.13.9", "v1.14.1"),
    ],
)
def test_talos_moves_along_the_upstream_upgrade_path(current: str, target: str) -> None:
    check_talos_path(current, target, allow_downgrade=False)


def test_talos_14_over_11_is_refused_with_the_intermediate_release() -> None:
    with pytest.raises(UsageError) as caught:
        check_talos_path("v1.11.5", "v1.14.1", allow_downgrade=False)
    assert caught.value.exit_code == 2
    assert "Talos 1.14 can only be installed over Talos 1.12.0 or later" in caught.value.message
    assert caught.value.hint is not None and "v1.12.x" in caught.value.hint


def test_talos_downgrade_needs_the_flag_and_still_one_minor() -> None:
    with pytest.raises(UsageError, match="refusing to downgrade") as caught:
        check_talos_path("v1.13.0", "v1.12.0", allow_downgrade=False)
    assert "--allow-downgrade" in (caught.value.hint or "")
    check_talos_path("v1.13.0", "v1.12.0", allow_downgrade=True)
    check_talos_path("v1.12.3", "v1.12.1", allow_downgrade=True)
    with pytest.raises(UsageError, match=r"only be installed over releases older than 1\.13\.0"):
        check_talos_path("v1.13.0", "v1.11.0", allow_downgrade=True)


def test_kubernetes_moves_at_most_one_minor_up() -> None:
    check_kubernetes_path("1.34.1", "1.35.0", allow_downgrade=False)
    check_kubernetes_path("1.35.0", "1.35.2", allow_downgrade=False)
    with pytest.raises(UsageError, match="one minor release at a time") as caught:
        check_kubernetes_path("1.34.1", "1.36.0", allow_downgrade=False)
    assert "1.35.x" in (caught.value.hint or "")


def test_kubernetes_never_goes_a_minor_down_and_a_patch_down_only_when_allowed() -> None:
    with pytest.raises(UsageError, match="cannot be downgraded"):
        check_kubernetes_path("1.35.0", "1.34.1", allow_downgrade=True)
    with pytest.raises(UsageError, match="cannot be downgraded"):
        check_kubernetes_path("1.35.2", "1.35.0", allow_downgrade=False)
    check_kubernetes_path("1.35.2", "1.35.0", allow_downgrade=True)


def test_kubernetes_must_be_supported_by_the_talos_release_it_runs_on() -> None:
    check_talos_supports("v1.13.0", "1.36.0", when="x")
    with pytest.raises(UsageError, match=r"supports Kubernetes 1\.31 to 1\.36"):
        check_talos_supports("v1.13.0", "1.30.4", when="x")


def test_a_talos_upgrade_that_would_strand_the_running_kubernetes_is_refused() -> None:
    # Talos 1.13 cannot run Kubernetes 1.30: upgrade Kubernetes first.
    nodes = [node("demo-cp-1", kube="1.30.4")]
    with pytest.raises(UsageError, match="demo-cp-1") as caught:
        plan_upgrade("demo", nodes, talos="v1.13.0", kubernetes="1.30.4")
    assert "upgrade Kubernetes first" in (caught.value.hint or "")


def test_a_kubernetes_only_run_checks_against_the_talos_each_node_runs() -> None:
    nodes = [node("demo-cp-1", talos="v1.12.0")]
    # 1.36 needs Talos 1.13; without the Talos phase the node stays on 1.12.
    with pytest.raises(UsageError, match=r"Talos v1\.12\.0"):
        plan_upgrade("demo", nodes, talos="v1.13.0", kubernetes="1.36.0", phases=["kubernetes"])
    plan = plan_upgrade("demo", nodes, talos="v1.13.0", kubernetes="1.36.0")
    assert [s.phase for s in plan.pending()] == ["talos", "kubernetes"]


def test_order_is_control_planes_by_number_then_workers() -> None:
    names = ["demo-workers-2", "demo-cp-10", "demo-cp-2", "demo-workers-1", "demo-cp-1", "demo-a-1"]
    ordered = [n.name for n in upgrade_order(node(n) for n in names)]
    assert ordered == [
        "demo-cp-1", "demo-cp-2", "demo-cp-10", "demo-a-1", "demo-workers-1", "demo-workers-2"
    ]  # fmt: skip


def test_nodes_already_at_the_target_are_skipped() -> None:
    nodes = [
        node("demo-cp-1", talos="v1.13.0"),
        node("demo-cp-2", talos="v1.12.0"),
        node("demo-workers-1", talos="v1.12.0"),
    ]
    plan = plan_upgrade("demo", nodes, talos="v1.13.0", kubernetes="1.35.0")
    assert [(s.node, s.action) for s in plan.phase("talos")] == [
        ("demo-cp-1", "up to date"),
        ("demo-cp-2", "upgrade"),
        ("demo-workers-1", "upgrade"),
    ]
    assert plan.pending("kubernetes") == []
    done = [node(n.name, talos="v1.13.0") for n in nodes]
    assert plan_upgrade("demo", done, talos="v1.13.0", kubernetes="1.35.0").empty


def test_kubernetes_steps_look_at_kubelet_static_pods_and_config() -> None:
    nodes = [
        node("demo-cp-1", static_pods=("1.35.0", "1.35.0", "1.35.0")),
        node("demo-cp-2", static_pods=("1.34.1", "1.35.0", "1.35.0")),  # half-way
        node("demo-workers-1", kube=None),  # kubelet not registered
        node("demo-workers-2", config_current=False),
        node("demo-workers-3", kube="1.34.1"),
    ]
    plan = plan_upgrade("demo", nodes, talos="v1.12.0", kubernetes="1.35.0")
    assert [(s.node, s.action) for s in plan.phase("kubernetes")] == [
        ("demo-cp-1", "up to date"),
        ("demo-cp-2", "apply config"),
        ("demo-workers-1", "upgrade"),
        ("demo-workers-2", "apply config"),
        ("demo-workers-3", "upgrade"),
    ]
    assert plan.to_dict()["steps"][-1] == {
        "node": "demo-workers-3", "role": "worker", "phase": "kubernetes",
        "from": "1.34.1", "to": "1.35.0", "action": "upgrade",
    }  # fmt: skip
