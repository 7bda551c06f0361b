"""``hk8s upgrade`` end to end against the simulated world, on one 3+1 cluster (creating one
costs most of the time): Kubernetes 1.34 -> 1.35 reaches every kubelet and control-plane pod;
Talos v1.12 -> v1.13 with a node whose new release fails to boot stops at that node, and a
later run resumes and rolls the rest one node at a time; Talos v1.13 -> v1.14 moves every
node to 1.14's multi-document config; ``hk8s create`` refuses the new
version before the upgrade and half-way through it (exit 2, nothing touched); a re-run then
does nothing, and so does ``hk8s create``; a downgrade is refused before anything is touched."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from hk8s.config import DEFAULT_KUBERNETES_VERSIONS

if TYPE_CHECKING:
    import pytest

    from .conftest import UpgradeWorld

CONTROL_PLANES = ["demo-cp-1", "demo-cp-2", "demo-cp-3"]
WORKER = "demo-workers-1"
NODES = [*CONTROL_PLANES, WORKER]


def cluster(talos: str, kubernetes: str) -> str:
    return f"""\
name: demo
location: fsn1
control_plane:
  count: 3
workers:
  - name: workers
    count: 1
kubernetes:
  version: {kubernetes}
talos:
  version: {talos}
"""


def test_kubernetes_then_talos_upgrade_with_a_failed_node_and_resume(
    world: UpgradeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.write_config(cluster("v1.12.0", "1.34.1"))
    world.hk8s("create")
    assert set(world.talos_versions().values()) == {"v1.12.0"}
    assert set(world.kubelet_versions().values()) == {"v1.34.1"}
    seen = world.spy(monkeypatch)

    # -- Kubernetes minor upgrade: configs only, no Talos upgrade, no reboot.
    world.write_config(cluster("v1.12.0", "1.35.0"))
    result = world.hk8s("upgrade", "--yes", "-o", "json")
    assert json.loads(result.stdout)["kubernetes_upgraded"] == NODES
    assert world.kubelet_versions() == dict.fromkeys(NODES, "v1.35.0")
    assert set(world.static_pod_images().values()) == {"v1.35.0"}
    assert seen["apply"] == NODES  # control planes one at a time, then the worker
    assert seen["upgrade"] == []

    # -- Talos minor upgrade; `hk8s create` refuses it (that is an upgrade) before any change.
    world.write_config(cluster("v1.13.0", "1.35.0"))
    seen["apply"].clear()
    world.reset_stats()
    create = world.hk8s("create", check=False)
    assert create.returncode == 2, create.stderr
    assert all(f"{n} runs Talos v1.12.0" in create.stderr for n in NODES), create.stderr
    assert "hk8s upgrade -f" in create.stderr
    assert world.mutating() == 0 and seen["apply"] == []

    # demo-cp-2's new release does not boot (Talos rolls back).
    planned = world.hk8s("upgrade", "--dry-run", "-o", "json", check=False)
    assert planned.returncode == 3, planned.stderr  # upgrades pending, as `hk8s plan`
    dry = json.loads(planned.stdout)
    assert [(s["node"], s["action"]) for s in dry["steps"] if s["phase"] == "talos"] == [
        (n, "upgrade") for n in NODES
    ]
    world.set_failed_upgrades(["demo-cp-2"])
    failed = world.hk8s("upgrade", "--yes", check=False)
    assert failed.returncode == 1, failed.stderr
    assert "demo-cp-2" in failed.stderr and "rolled back" in failed.stderr
    # It waited for the node to serve its old release again: the re-run below starts at once.
    assert "back in service at its old release" in failed.stderr
    assert "re-run `hk8s upgrade`" in failed.stderr
    assert seen["upgrade"] == ["demo-cp-1", "demo-cp-2"]  # stopped at the failed node
    assert world.talos_versions() == {
        "demo-cp-1": "v1.13.0", "demo-cp-2": "v1.12.0", "demo-cp-3": "v1.12.0", WORKER: "v1.12.0"
    }  # fmt: skip

    # Half-finished: `hk8s create` refuses and points at `hk8s upgrade` to finish it.
    seen["apply"].clear()
    world.reset_stats()
    create = world.hk8s("create", check=False)
    assert create.returncode == 2, create.stderr
    assert "half-finished" in create.stderr and "demo-cp-2 runs Talos v1.12.0" in create.stderr
    assert "finish the upgrade with `hk8s upgrade" in create.stderr
    assert world.mutating() == 0 and seen["apply"] == []

    # -- The cause is fixed; the re-run skips demo-cp-1 and finishes the rest in order.
    world.set_failed_upgrades([])
    seen["upgrade"].clear()
    seen["node"].clear()
    seen["evict"].clear()
    result = world.hk8s("upgrade", "--yes", "-o", "json")
    report = json.loads(result.stdout)
    assert seen["upgrade"] == ["demo-cp-2", "demo-cp-3", WORKER]
    assert report["talos_upgraded"] == ["demo-cp-2", "demo-cp-3", WORKER]
    assert all(check["ok"] for check in report["health"])
    assert set(world.talos_versions().values()) == {"v1.13.0"}
    # The Image Factory's hcloud installer: a bare `installer/` would boot them as metal.
    assert set(world.talos_platforms().values()) == {"hcloud"}
    assert world.etcd_members() == CONTROL_PLANES
    # The worker was cordoned, drained (its pods evicted) and uncordoned, in that order.
    worker_events = [e.split()[0] for e in seen["node"] if e.endswith(WORKER)]
    assert worker_events[0] == "cordon" and worker_events[-1] == "uncordon"
    assert "uncordon" not in worker_events[:-1]
    assert seen["evict"], "the worker's pods were evicted"
    nodes = world.kube_nodes()
    assert not any(n["spec"].get("unschedulable") for n in nodes.values())
    assert not any(
        "hk8s/upgrading" in (n["metadata"].get("annotations") or {}) for n in nodes.values()
    )
    assert all(n["status"]["nodeInfo"]["osImage"] == "Talos (v1.13.0)" for n in nodes.values())

    # -- Re-running does nothing; neither does `hk8s create` with the same config.
    seen["upgrade"].clear()
    seen["apply"].clear()
    again = world.hk8s("upgrade", "--yes")
    assert "nothing to do" in again.stdout
    world.reset_stats()
    world.hk8s("create")
    assert seen["upgrade"] == [] and seen["apply"] == [] and world.mutating() == 0

    # -- A downgrade is refused (exit 2) before any node is touched.
    world.write_config(cluster("v1.12.0", "1.35.0"))
    refused = world.hk8s("upgrade", "--yes", check=False)
    assert refused.returncode == 2, refused.stderr
    assert "refusing to downgrade" in refused.stderr
    assert "--allow-downgrade" in refused.stderr
    assert seen["upgrade"] == [] and seen["apply"] == []


def test_both_phases_in_one_run_parallel_workers_and_a_later_scale_up(
    world: UpgradeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One control plane, Talos and Kubernetes together (kubernetes.version unset follows
    the Talos release: 1.35.x on v1.12, 1.36.x on v1.13), workers two at a time; a worker
    added afterwards boots the new release with the new Kubernetes."""
    kube_112, kube_113 = DEFAULT_KUBERNETES_VERSIONS["1.12"], DEFAULT_KUBERNETES_VERSIONS["1.13"]

    def config(talos: str, workers: int) -> str:
        return (
            "name: demo\nlocation: fsn1\ncontrol_plane:\n  count: 1\n"
            f"workers:\n  - name: workers\n    count: {workers}\n"
            f"talos:\n  version: {talos}\n"
        )

    world.write_config(config("v1.12.0", 2))
    world.hk8s("create")
    assert set(world.kubelet_versions().values()) == {f"v{kube_112}"}
    seen = world.spy(monkeypatch)

    world.write_config(config("v1.13.0", 2))
    report = json.loads(world.hk8s("upgrade", "--yes", "--parallel", "2", "-o", "json").stdout)
    assert report["talos"] == "v1.13.0" and report["kubernetes"] == kube_113
    workers = ["demo-workers-1", "demo-workers-2"]
    assert seen["upgrade"][0] == "demo-cp-1" and sorted(seen["upgrade"][1:]) == workers
    # Talos first on every node, then Kubernetes (one config apply per node for Talos' new
    # contract, then one for Kubernetes), control plane first in each phase.
    assert seen["apply"][0] == "demo-cp-1" and seen["apply"][3] == "demo-cp-1"
    # Both workers were cordoned before either was uncordoned: they went together.
    events = [e for e in seen["node"] if e.split()[1] in workers]
    first_uncordon = next(i for i, e in enumerate(events) if e.startswith("uncordon"))
    assert {e.split()[1] for e in events[:first_uncordon]} == set(workers)
    assert set(world.talos_versions().values()) == {"v1.13.0"}
    # The Image Factory's hcloud installer: a bare `installer/` would boot them as metal.
    assert set(world.talos_platforms().values()) == {"hcloud"}
    assert set(world.kubelet_versions().values()) == {f"v{kube_113}"}
    assert set(world.static_pod_images().values()) == {f"v{kube_113}"}

    # A worker added later boots the v1.13.0 snapshot with Kubernetes 1.36.
    world.write_config(config("v1.13.0", 3))
    world.hk8s("create")
    assert world.talos_versions()["demo-workers-3"] == "v1.13.0"
    assert world.kubelet_versions()["demo-workers-3"] == f"v{kube_113}"


def test_talos_113_to_114_moves_every_node_to_the_multidoc_config(
    world: UpgradeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Talos v1.13 -> v1.14 (upstream allows it: 1.14 installs over 1.12+), Kubernetes 1.36
    on both: each node upgrades, then gets its 1.14 multi-document machine config; the
    control-plane taint now comes from KubeNodeConfig (once); `hk8s create` then has nothing
    to change."""

    def config(talos: str) -> str:
        return (
            "name: demo\nlocation: fsn1\ncontrol_plane:\n  count: 1\n"
            "workers:\n  - name: workers\n    count: 1\n"
            f"talos:\n  version: {talos}\n"
        )

    nodes = ["demo-cp-1", "demo-workers-1"]
    world.write_config(config("v1.13.9"))
    world.hk8s("create")
    assert world.talos_versions() == dict.fromkeys(nodes, "v1.13.9")
    seen = world.spy(monkeypatch)

    world.write_config(config("v1.14.1"))
    report = json.loads(world.hk8s("upgrade", "--yes", "-o", "json").stdout)
    assert report["talos"] == "v1.14.1"
    assert report["kubernetes"] == DEFAULT_KUBERNETES_VERSIONS["1.14"]
    assert seen["upgrade"] == nodes  # the control plane first
    assert world.talos_versions() == dict.fromkeys(nodes, "v1.14.1")
    fleet = world.world.fleet
    documents = world.threaded.call(
        lambda: {n.server_name: bool(n.disk.config and n.disk.config.node_document)
                 for n in fleet.nodes.values()}
    )  # fmt: skip
    assert documents == dict.fromkeys(nodes, True)
    taints = {name: [t["key"] for t in node["spec"].get("taints", [])]
              for name, node in world.kube_nodes().items()}  # fmt: skip
    assert taints == {"demo-cp-1": ["node-role.kubernetes.io/control-plane"], "demo-workers-1": []}
    assert all(n["status"]["nodeInfo"]["osImage"] == "Talos (v1.14.1)"
               for n in world.kube_nodes().values())  # fmt: skip

    seen["apply"].clear()
    world.reset_stats()
    world.hk8s("create")
    assert seen["apply"] == [] and world.mutating() == 0
