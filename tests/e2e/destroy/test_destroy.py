"""``hk8s destroy`` and ``hk8s plan --destroy`` end to end against the simulated Hetzner API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType

if TYPE_CHECKING:
    from .conftest import Project  # type: ignore[import-not-found]

pytestmark = pytest.mark.e2e

# What make_cluster gives each cluster: 5 servers, the API and a CCM load balancer, firewall,
# two placement groups, the network and an SSH key.
DEMO = sorted(
    [f"servers/demo-cp-{n}" for n in (1, 2, 3)]
    + ["servers/demo-workers-1", "servers/demo-workers-2"]
    + ["load_balancers/demo-api", "load_balancers/ademosvc1", "firewalls/demo-fw"]
    + ["placement_groups/demo-cp-pg-1", "placement_groups/demo-workers-pg-1"]
    + ["networks/demo", "ssh_keys/demo-admin"]
)


def destroy(project: Project, cluster: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return project.hk8s("destroy", "--yes", "-f", str(project.configs[cluster]), *extra)


def assert_prod_untouched(project: Project, before: dict[str, object]) -> None:
    after = project.inventory()
    for kind, items in before.items():
        prod = {n: v for n, v in items.items() if n.startswith(("prod", "aprod"))}  # type: ignore[attr-defined]
        assert {n: v for n, v in after[kind].items() if n in prod} == prod, kind
    assert "demo-cp-9" in after["servers"]  # not managed-by=hk8s


def test_destroy_one_cluster_leaves_the_other_intact(project: Project) -> None:
    assert project.owned_by("demo") == DEMO
    before = project.inventory()
    for name in ("secrets.yaml", "talosconfig"):
        (project.configs["demo"].parent / name).write_text("local\n")
    # A kubeconfig of another cluster beside the config is never used to delete Services.
    (project.configs["demo"].parent / "kubeconfig").write_text(
        "current-context: admin@other\n"
        "contexts: [{name: admin@other, context: {cluster: other, user: admin@other}}]\n"
    )

    result = destroy(project, "demo")

    assert result.returncode == 0, result.stderr
    assert project.owned_by("demo") == []
    assert_prod_untouched(project, before)
    assert "cluster demo destroyed: 12 resource(s) deleted" in result.stdout
    assert "Talos snapshots are kept" in result.stdout
    assert "is for cluster 'other', not 'demo'" in result.stderr
    assert (project.configs["demo"].parent / "secrets.yaml").exists()
    assert "kubeconfig, " in result.stdout and "(--purge-local removes them)" in result.stdout
    again = project.hk8s("plan", "--destroy", "-f", str(project.configs["demo"]))
    assert again.returncode == 0, again.stderr
    assert "nothing to destroy" in again.stdout
    assert project.hk8s("plan", "--destroy", "-f", str(project.configs["prod"])).returncode == 3


def test_plan_destroy_matches_what_destroy_deletes(project: Project) -> None:
    # Two Talos snapshots: one no server uses, one prod has a server of.
    unused = project.talos_snapshot("demo-cp-1")
    used = project.talos_snapshot("demo-cp-2")
    project.client().servers.create(
        "prod-workers-3",
        server_type=ServerType(name="cx23"),
        image=Image(id=used),
        location=Location(name="fsn1"),
        labels={"cluster": "prod", "managed-by": "hk8s", "role": "worker", "pool": "workers"},
    )
    config = str(project.configs["demo"])
    plan = project.hk8s("plan", "--destroy", "--images", "-o", "json", "-f", config)
    assert plan.returncode == 3, plan.stderr
    planned = json.loads(plan.stdout)
    assert planned["summary"] == {"create": 0, "update": 0, "delete": 13}
    keys = sorted(op["key"] for op in planned["operations"])
    assert f"image/talos from demo-cp-1 (#{unused})" in keys

    project.reset_stats()
    result = destroy(project, "demo", "--images", "-o", "json")
    assert result.returncode == 0, result.stderr
    done = json.loads(result.stdout)
    assert sorted(done["deleted"]) == keys
    assert done["already_gone"] == []
    assert done["kept_snapshots"] == [used]
    images = project.threaded.call(lambda: set(project.sim.state.images))
    assert used in images and unused not in images
    # One DELETE per planned resource, and nothing else deleted.
    stats = project.stats()
    deletes = [r for r in stats["log"] if r["method"] == "DELETE" and r["status"] < 300]
    assert len(deletes) == len(keys)
    # Dependency order: every server is gone before the network is deleted.
    order = [r["route"] for r in deletes]
    assert max(i for i, r in enumerate(order) if r == "/servers/{id}") < order.index(
        "/networks/{id}"
    )


def test_sigkill_midway_then_rerun_completes(project: Project) -> None:
    before = project.inventory()
    config = str(project.configs["demo"])
    # Mutating requests come in order: the CCM load balancer, five servers, removing the
    # firewall from its selector, then the rest. Killed among the servers first ...
    assert project.hk8s_killed_after(3, "destroy", "--yes", "-f", config) == -9
    left = project.owned_by("demo")
    assert left and left != DEMO and "networks/demo" in left
    # ... then again, in the re-run, once it is past the servers.
    assert project.hk8s_killed_after(4, "destroy", "--yes", "-f", config) == -9
    later = project.owned_by("demo")
    assert later and set(later) < set(left)

    # CI cleanup without the config finishes the job.
    result = project.hk8s("destroy", "--yes", "--name", "demo")
    assert result.returncode == 0, result.stderr
    assert project.owned_by("demo") == []
    assert_prod_untouched(project, before)


def test_injected_faults_still_complete(project: Project) -> None:
    before = project.inventory()
    project.faults(
        {
            "seed": 5,
            "errors": [
                {"path": "*", "rate": 0.05, "code": 503},
                {"method": "DELETE", "path": "*", "rate": 0.05, "code": "locked"},
                {"method": "POST", "path": "*", "rate": 0.05, "code": "conflict"},
            ],
        }
    )
    result = destroy(project, "demo")
    assert result.returncode == 0, result.stderr
    project.faults({})
    assert project.owned_by("demo") == []
    assert_prod_untouched(project, before)
    assert project.stats()["by_status"].get("503", 0) > 0  # the faults did fire


def run_with_tty(project: Project, answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    """hk8s with a terminal as stdin, on which ``answer`` is typed."""
    primary, secondary = os.openpty()
    try:
        os.write(primary, answer.encode() + b"\n")
        return subprocess.run(
            [sys.executable, "-m", "hk8s", *args],
            env=project.env,
            stdin=secondary,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(primary)
        os.close(secondary)


def test_confirmation_protection_and_purge(project: Project) -> None:
    config = project.configs["demo"]
    no_tty = project.hk8s("destroy", "-f", str(config))
    assert no_tty.returncode == 2
    assert "--yes" in no_tty.stderr

    wrong = run_with_tty(project, "prod", "destroy", "-f", str(config))
    assert wrong.returncode == 1
    assert "server (5):" in wrong.stderr  # the plan was shown, grouped by kind with counts
    assert "Type the cluster name (demo)" in wrong.stderr
    assert project.owned_by("demo") == DEMO

    protected = config.parent / "protected.yaml"
    protected.write_text(config.read_text() + "protection: true\n")
    refused = project.hk8s("destroy", "--yes", "-f", str(protected))
    assert refused.returncode == 1
    assert "protected" in refused.stderr and "protection: false" in refused.stderr
    assert project.owned_by("demo") == DEMO

    # Hetzner's delete protection on one server: plan --destroy shows it blocked, destroy
    # refuses before its first change and names it, with how to lift it.
    client = project.client()
    server = client.servers.get_by_name("demo-cp-1")
    assert server is not None
    client.servers.change_protection(server, delete=True, rebuild=True).wait_until_finished()
    preview = project.hk8s("plan", "--destroy", "-f", str(config))
    assert preview.returncode == 3, preview.stderr
    shown = preview.stdout + preview.stderr
    assert "BLOCKED: protected" in shown and "destroy is blocked" in preview.stderr
    project.reset_stats()
    stopped = project.hk8s("destroy", "--yes", "-f", str(config))
    assert stopped.returncode == 1, stopped.stderr
    assert "1 resource(s) is protected against deletion in Hetzner Cloud: server demo-cp-1" in (
        stopped.stderr
    )
    assert "nothing was deleted" in stopped.stderr and "protection: false" in stopped.stderr
    assert project.stats()["mutating"] == 0
    assert project.owned_by("demo") == DEMO
    # On a terminal it refuses the same way, without first asking for the name to be typed.
    asked = run_with_tty(project, "demo", "destroy", "-f", str(config))
    assert asked.returncode == 1, asked.stderr
    assert "Type the cluster name" not in asked.stderr
    assert "nothing was deleted" in asked.stderr
    assert project.owned_by("demo") == DEMO
    client.servers.change_protection(server, delete=False, rebuild=False).wait_until_finished()

    # The name typed on a terminal confirms; --purge-local removes the local files.
    (config.parent / "secrets.yaml").write_text("local\n")
    right = run_with_tty(project, "demo", "destroy", "--purge-local", "-f", str(config))
    assert right.returncode == 0, right.stderr
    assert f"removed {config.parent / 'secrets.yaml'}" in right.stdout
    assert not (config.parent / "secrets.yaml").exists()
    assert project.owned_by("demo") == []


def test_csi_volumes_of_the_cluster_go_and_no_others(project: Project) -> None:
    client = project.client()
    csi = {"managed-by": "csi-driver"}

    def volume(name: str, server: str | None, **labels: str) -> int:
        kwargs: dict[str, object] = {"location": Location(name="fsn1")}
        if server is not None:
            kwargs = {"server": client.servers.get_by_name(server)}
        created = client.volumes.create(10, name, labels={**csi, **labels}, **kwargs)  # type: ignore[arg-type]
        for action in (created.action, *(created.next_actions or [])):
            action.wait_until_finished()
        return int(created.volume.id or 0)

    attached = volume("pvc-demo-db", "demo-workers-1", **{"pv-name": "pvc-demo-db"})
    labelled = volume("pvc-demo-logs", None, cluster="demo")  # the chart's volumeExtraLabels
    theirs = volume("pvc-prod-db", "prod-workers-1", cluster="prod")
    stray = volume("pvc-stray", None)  # no cluster can be told from it: kept
    before = project.inventory()

    result = destroy(project, "demo", "-o", "json")

    assert result.returncode == 0, result.stderr
    assert "volumes were not checked" not in result.stderr
    deleted = json.loads(result.stdout)["deleted"]
    assert sorted(k for k in deleted if k.startswith("volume/")) == [
        "volume/pvc-demo-db",
        "volume/pvc-demo-logs",
    ]
    volumes = project.threaded.call(lambda: set(project.sim.state.volumes))
    assert attached not in volumes and labelled not in volumes
    assert {theirs, stray} <= volumes
    assert project.owned_by("demo") == []
    assert_prod_untouched(project, before)
