"""Destroying a cluster in a fake project next to another cluster and unlabelled strangers."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.controller import local_files, purge_local_files
from hk8s.errors import ConflictError, ProtectionError, TransientAPIError
from hk8s.model.resources import Server

from .conftest import (  # type: ignore[import-not-found]
    FakeKube,
    add_ccm_lb,
    add_snapshot,
    add_volume,
    claim,
    destroyer,
    persistent_volume,
    service,
)

if TYPE_CHECKING:
    from pathlib import Path

    from hk8s.providers.hcloud.fake import FakeHcloud


def names(fake: FakeHcloud) -> dict[str, list[str]]:
    stores = {
        "servers": fake.servers,
        "networks": fake.networks,
        "firewalls": fake.firewalls,
        "load_balancers": fake.load_balancers,
        "placement_groups": fake.placement_groups,
        "ssh_keys": fake.ssh_keys,
        "volumes": fake.volumes,
    }
    return {kind: sorted(r.name for r in store.values()) for kind, store in stores.items()}


async def test_destroy_removes_demo_and_nothing_else(fake: FakeHcloud, world: Any) -> None:
    before = names(fake)
    d = destroyer(fake)
    plan = await d.plan()
    assert plan.plan.counts()["delete"] == 8
    report = await d.run(plan)
    assert len(report.deleted) == 8
    after = names(fake)
    assert after == {
        "servers": ["demo-cp-9", "prod-cp-1", "prod-cp-2"],
        "networks": ["demo-legacy", "prod"],
        "firewalls": ["prod-fw"],
        "load_balancers": ["prod-api"],
        "placement_groups": ["prod-cp-pg-1"],
        "ssh_keys": ["prod-admin"],
        "volumes": [],
    }
    assert before != after
    # The firewall was removed from its selector before it was deleted.
    calls = [name for name, _ in fake.calls]
    assert calls.index("remove_firewall_from_selectors") < calls.index("delete_firewall")


async def test_rerun_after_success_changes_nothing(fake: FakeHcloud, world: Any) -> None:
    d = destroyer(fake)
    await d.run(await d.plan())
    fake.calls.clear()
    again = await d.plan()
    assert again.empty
    await d.run(again)
    assert fake.mutations() == []


async def test_lost_delete_answer_then_rerun_finishes(fake: FakeHcloud, world: Any) -> None:
    # The network delete went through but its answer was lost; retries ran out.
    fake.fail("delete_network", TransientAPIError("connection reset"), after=True)
    d = destroyer(fake)
    with pytest.raises(TransientAPIError):
        await d.run(await d.plan())
    await d.run(await d.plan())
    assert not any(r.labels.get("cluster") == "demo" and r.labels.get("managed-by") == "hk8s"
                   for r in (*fake.servers.values(), *fake.networks.values()))  # fmt: skip


async def test_resource_gone_since_the_plan_counts_as_deleted(fake: FakeHcloud, world: Any) -> None:
    d = destroyer(fake)
    plan = await d.plan()
    await fake.delete_server(world["demo"]["servers"][0])  # deleted by someone else meanwhile
    report = await d.run(plan)
    assert "server/demo-cp-1" in report.gone
    assert "server/demo-cp-1" not in report.deleted


async def test_relabelled_resource_is_refused_and_kept(fake: FakeHcloud, world: Any) -> None:
    d = destroyer(fake)
    plan = await d.plan()
    sid = world["demo"]["servers"][1]
    fake.servers[sid] = dataclasses.replace(
        fake.servers[sid], labels={"cluster": "prod", "managed-by": "hk8s"}
    )
    with pytest.raises(ConflictError, match="refusing to delete server demo-cp-2: it is labelled "
                       "cluster=prod, not cluster=demo"):  # fmt: skip
        await d.run(plan)
    assert sid in fake.servers
    # Its dependants were skipped, so the network it is attached to still exists.
    assert world["demo"]["network"] in fake.networks


async def test_same_name_new_resource_is_not_touched(fake: FakeHcloud, world: Any) -> None:
    d = destroyer(fake)
    plan = await d.plan()
    old = world["demo"]["servers"][2]
    replacement = dataclasses.replace(fake.servers[old], id=9999, labels={})
    await fake.delete_server(old)
    fake.servers[9999] = dataclasses.replace(replacement, placement_group_id=None)
    await d.run(plan)
    assert 9999 in fake.servers


async def test_delete_protection_stops_before_anything_else(fake: FakeHcloud, world: Any) -> None:
    protected = ConflictError("server is protected against deletion", code="protected")
    fake.fail("delete_server", protected, times=3)
    d = destroyer(fake, concurrency=1)
    with pytest.raises(ProtectionError, match=r"server demo-cp-1 is protected") as info:
        await d.run(await d.plan())
    assert "lift the delete protection" in (info.value.hint or "")
    # Nothing but the refused attempt was tried: no half-deleted cluster.
    assert [m for m in fake.mutations() if m.startswith("delete_")] == ["delete_server"]
    assert len([s for s in fake.servers.values() if s.name.startswith("demo-cp")]) == 4


async def test_second_pass_deletes_a_server_created_meanwhile(fake: FakeHcloud, world: Any) -> None:
    d = destroyer(fake)
    plan = await d.plan()
    late = Server(777, "demo-cp-4", "running", "cx23", "fsn1",
                  {"cluster": "demo", "managed-by": "hk8s"})  # fmt: skip
    fake.servers[late.id] = late
    report = await d.run(plan)
    assert report.passes == 2
    assert 777 not in fake.servers


async def test_ccm_load_balancers_and_csi_volumes_of_this_cluster_only(
    fake: FakeHcloud, world: Any
) -> None:
    demo, prod = world["demo"], world["prod"]
    mine = add_ccm_lb(fake, "u-demo", network=demo["network"])
    targeting = add_ccm_lb(fake, "u-demo2", server=demo["servers"][0])
    theirs = add_ccm_lb(fake, "u-prod", network=prod["network"])
    vol_mine = add_volume(fake, "pvc-1", server=str(demo["servers"][0]))
    vol_theirs = add_volume(fake, "pvc-2", server=str(prod["servers"][0]))
    vol_hand = add_volume(fake, "data")
    fake.volumes[vol_hand] = dataclasses.replace(fake.volumes[vol_hand], labels={})
    d = destroyer(fake)
    await d.run(await d.plan())
    assert mine not in fake.load_balancers and targeting not in fake.load_balancers
    assert theirs in fake.load_balancers
    assert vol_mine not in fake.volumes
    assert {vol_theirs, vol_hand} <= set(fake.volumes)
    calls = [(n, a) for n, a in fake.calls if n.startswith("delete_")]
    first_server = next(i for i, (n, _) in enumerate(calls) if n == "delete_server")
    ccm_deletes = [i for i, (n, a) in enumerate(calls) if a == (mine,) or a == (targeting,)]
    assert max(ccm_deletes) < first_server


async def test_images_only_with_the_flag_and_never_one_in_use(fake: FakeHcloud, world: Any) -> None:
    add_snapshot(fake, 7, os="talos", **{"managed-by": "hk8s"})  # used by demo and prod
    add_snapshot(fake, 8, os="talos", **{"managed-by": "hk8s"})  # unused
    add_snapshot(fake, 9, os="talos")  # not hk8s'
    await destroyer(fake).run(await destroyer(fake).plan())
    assert sorted(fake.images) == [7, 8, 9]
    d = destroyer(fake, "prod", images=True)
    plan = await d.plan()
    assert [k.image.id for k in plan.observed.kept_images] == []
    await d.run(plan)
    assert sorted(fake.images) == [9]


async def test_images_in_use_by_another_cluster_are_kept(fake: FakeHcloud, world: Any) -> None:
    add_snapshot(fake, 7, os="talos", **{"managed-by": "hk8s"})
    d = destroyer(fake, images=True)
    plan = await d.plan()
    assert [k.image.id for k in plan.observed.kept_images] == [7]
    await d.run(plan)
    assert 7 in fake.images


async def test_in_cluster_cleanup_first_then_hetzner(fake: FakeHcloud, world: Any) -> None:
    lb = add_ccm_lb(fake, "uid-1")  # not attached: known only through the Service's UID

    def ccm_and_csi(kube: FakeKube) -> None:
        kube.services = [s for s in kube.services if "deletionTimestamp" not in s["metadata"]]
        kube.volumes = []
        fake.load_balancers.pop(lb, None)

    kube = FakeKube(
        services=[service("web", "uid-1"), service("db", "uid-2", "ClusterIP")],
        claims=[claim("data")],
        volumes=[persistent_volume("pvc-9", "data")],
        on_poll=ccm_and_csi,
    )
    d = destroyer(fake, kube=kube)
    plan = await d.plan()
    assert plan.in_cluster is not None
    assert [str(s) for s in plan.in_cluster.services] == ["Service default/web"]
    assert "load-balancer/auid-1" in {op.key for op in plan.plan.operations}
    report = await d.run(plan)
    assert kube.deleted == ["Service default/web", "PersistentVolumeClaim default/data"]
    assert report.in_cluster_left == []
    assert "load-balancer/auid-1" in report.gone  # the CCM removed it first


async def test_in_cluster_leftovers_are_reported_after_the_timeout(
    fake: FakeHcloud, world: Any
) -> None:
    kube = FakeKube(claims=[claim("data")], volumes=[persistent_volume("pvc-9", "data")])
    d = destroyer(fake, kube=kube)
    report = await d.run(await d.plan())
    assert report.in_cluster_left == ["PersistentVolume pvc-9 (its volume is not deleted yet)"]
    assert d.clock.now() >= d.cleanup_timeout
    assert world["demo"]["network"] not in fake.networks  # the Hetzner part still ran


async def test_a_rerun_waits_for_volumes_of_claims_an_earlier_run_deleted(
    fake: FakeHcloud, world: Any
) -> None:
    # An interrupted destroy deleted the claim; the CSI driver has not deleted its volume yet.
    kube = FakeKube(volumes=[persistent_volume("pvc-9", "data"), persistent_volume(
        "pvc-kept", "logs", policy="Retain")])  # fmt: skip
    d = destroyer(fake, kube=kube)
    plan = await d.plan()
    assert plan.in_cluster is not None and plan.in_cluster.releasing == ("pvc-9",)
    report = await d.run(plan)
    assert report.in_cluster_left == ["PersistentVolume pvc-9 (its volume is not deleted yet)"]
    assert d.clock.now() >= d.cleanup_timeout


async def test_unreachable_api_is_a_note_not_a_failure(fake: FakeHcloud, world: Any) -> None:
    d = destroyer(fake, kube=FakeKube(reachable=False))
    plan = await d.plan()
    assert plan.in_cluster is None
    assert any("Kubernetes API is not usable" in n for n in plan.notes)
    await d.run(plan)
    assert world["demo"]["network"] not in fake.networks


async def test_no_control_plane_left_means_no_api_to_wait_for(fake: FakeHcloud, world: Any) -> None:
    for sid in world["demo"]["servers"]:
        await fake.delete_server(sid)  # what an interrupted destroy leaves
    kube = FakeKube(services=[service("web", "uid-1")])
    plan = await destroyer(fake, kube=kube).plan()
    assert kube.probed == 0
    assert plan.in_cluster is None
    assert plan.notes == ()


async def test_failing_volumes_list_is_a_note_not_a_failure(fake: FakeHcloud, world: Any) -> None:
    # A real API error after the provider's retries: the rest of the cluster still goes.
    fake.fail("list_volumes", TransientAPIError("list volumes: unavailable (503)"), times=2)
    plan = await destroyer(fake).plan()
    assert any("CSI volumes were not checked: listing volumes failed" in n for n in plan.notes)
    assert plan.plan.by_kind()


async def test_volumes_listed_means_no_note(fake: FakeHcloud, world: Any) -> None:
    add_volume(fake, "pvc-data", cluster="demo")
    plan = await destroyer(fake).plan()
    assert plan.notes == ()
    assert [op.name for op in plan.plan.operations if op.kind == "volume"] == ["pvc-data"]


async def test_protected_resource_blocks_before_any_change(fake: FakeHcloud, world: Any) -> None:
    sid = world["demo"]["servers"][1]
    fake.servers[sid] = dataclasses.replace(fake.servers[sid], protected=True)
    net = world["demo"]["network"]
    fake.networks[net] = dataclasses.replace(fake.networks[net], protected=True)
    kube = FakeKube(services=[service("web", "uid-1")], claims=[claim("data")])
    d = destroyer(fake, kube=kube)
    plan = await d.plan()
    assert plan.blocked == ("server demo-cp-2", "network demo")
    assert any("destroy is blocked" in n and "server demo-cp-2" in n for n in plan.notes)
    reasons = {op.key: op.reason for op in plan.plan.operations}
    assert "BLOCKED: protected against deletion" in reasons["server/demo-cp-2"]
    assert "BLOCKED" not in reasons["server/demo-cp-1"]
    with pytest.raises(ProtectionError) as info:
        await d.run(plan)
    assert "server demo-cp-2, network demo" in info.value.message
    assert "nothing was deleted" in info.value.message
    assert "protection: false" in (info.value.hint or "")
    assert fake.mutations() == []
    assert kube.deleted == []  # not even the in-cluster cleanup ran


async def test_protected_after_the_plan_is_not_sent_a_delete(fake: FakeHcloud, world: Any) -> None:
    d = destroyer(fake, concurrency=1)
    plan = await d.plan()
    sid = world["demo"]["servers"][0]
    fake.servers[sid] = dataclasses.replace(fake.servers[sid], protected=True)
    with pytest.raises(ProtectionError, match="server demo-cp-1 is protected"):
        await d.run(plan)
    assert ("delete_server", (sid,)) not in fake.calls
    assert sid in fake.servers and world["demo"]["network"] in fake.networks


def test_local_files_kept_unless_purged(tmp_path: Path) -> None:
    for name in ("secrets.yaml", "kubeconfig", "cluster.yaml"):
        (tmp_path / name).write_text("x")
    found = local_files(tmp_path)
    assert [p.name for p in found] == ["secrets.yaml", "kubeconfig"]
    assert purge_local_files(found) == found
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.yaml"]
    assert purge_local_files(found) == []
