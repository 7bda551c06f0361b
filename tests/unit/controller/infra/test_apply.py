from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest

from hk8s.controller import InfraComponent, Reconciler, RecordingReporter, build_plan
from hk8s.errors import ConflictError, TransientAPIError
from hk8s.model.resources import Network

if TYPE_CHECKING:
    from hk8s.providers.hcloud.fake import FakeHcloud


async def run(fake: FakeHcloud, intent, reporter=None):  # type: ignore[no-untyped-def]
    reconciler = Reconciler([InfraComponent(fake, intent)], reporter)
    return await reconciler.reconcile()


async def test_first_run_creates_everything_and_second_run_nothing(fake, intent) -> None:  # type: ignore[no-untyped-def]
    await run(fake, intent)
    assert sorted(n.name for n in fake.networks.values()) == ["demo"]
    assert [s.ip_range for s in next(iter(fake.networks.values())).subnets] == ["10.0.1.0/24"]
    assert sorted(f.name for f in fake.firewalls.values()) == ["demo-fw"]
    assert sorted(g.name for g in fake.placement_groups.values()) == [
        "demo-cp-pg-1",
        "demo-workers-pg-1",
        "demo-workers-pg-2",
    ]
    [lb] = fake.load_balancers.values()
    assert lb.private_ips[0].network_id == next(iter(fake.networks))
    assert sorted(fake.mutations()) == sorted(
        ["create_network", "create_firewall", "create_load_balancer"]
        + ["create_placement_group"] * 3
    )
    fake.calls.clear()
    plan, _ = await run(fake, intent)
    assert plan.empty
    assert fake.mutations() == []


async def test_changed_sources_only_replace_rules(fake, intent) -> None:  # type: ignore[no-untyped-def]
    await run(fake, intent)
    fake.calls.clear()
    await run(fake, dataclasses.replace(intent, talos_api_sources=("198.51.100.0/24",)))
    assert fake.mutations() == ["set_firewall_rules"]
    [fw] = fake.firewalls.values()
    assert {r.port: r.source_ips for r in fw.rules}["50000"] == ("198.51.100.0/24",)


async def test_lost_create_response_then_rerun_finds_it_by_label(fake, intent) -> None:  # type: ignore[no-untyped-def]
    # The create went through but its answer was lost: the run fails, the re-run finds the
    # network by label and does not create a second one.
    fake.fail("create_network", TransientAPIError("connection reset"), after=True)
    with pytest.raises(TransientAPIError):
        await run(fake, intent)
    assert len(fake.networks) == 1
    await run(fake, intent)
    assert len(fake.networks) == 1
    assert fake.mutations().count("create_network") == 1


async def test_uniqueness_error_adopts_own_resource(fake, intent) -> None:  # type: ignore[no-untyped-def]
    await run(fake, intent)
    # An observation that missed the firewall (a list that raced the create) must not
    # duplicate it: create -> uniqueness_error -> found by name, labels checked, adopted.
    component = InfraComponent(fake, intent)
    await component.observe()
    component.observed.firewalls.clear()
    ops = component.diff()
    assert [o.key for o in ops] == ["firewall/demo-fw"]
    reporter = RecordingReporter()
    await Reconciler([component], reporter).apply(build_plan(ops))
    assert len(fake.firewalls) == 1
    assert any(e.kind == "info" and "adopted" in e.title for e in reporter.events)


async def test_unlabelled_resource_with_our_name_is_refused(fake, intent) -> None:  # type: ignore[no-untyped-def]
    fake.networks[99] = Network(99, "demo", "10.0.0.0/16", {})
    with pytest.raises(ConflictError, match="belongs to something other than hk8s"):
        await run(fake, intent)
    assert fake.networks[99].labels == {}


async def test_resource_of_another_cluster_is_never_adopted(fake, intent) -> None:  # type: ignore[no-untyped-def]
    other = {"cluster": "other", "managed-by": "hk8s", "component": "network"}
    fake.networks[99] = Network(99, "demo", "10.0.0.0/16", other)
    with pytest.raises(ConflictError, match="cluster 'other'"):
        await run(fake, intent)
    assert fake.networks[99].labels == other


async def test_interrupted_run_converges_on_rerun(fake, intent) -> None:  # type: ignore[no-untyped-def]
    fake.fail("create_load_balancer", TransientAPIError("server error"))
    fake.fail("create_placement_group", TransientAPIError("server error"))
    with pytest.raises(Exception):  # noqa: B017 - two failures aggregate
        await run(fake, intent)
    await run(fake, intent)
    fake.calls.clear()
    plan, _ = await run(fake, intent)
    assert plan.empty
    assert len(fake.load_balancers) == 1
    assert len(fake.placement_groups) == 3


async def test_delete_of_vanished_resource_is_success(fake, intent) -> None:  # type: ignore[no-untyped-def]
    await run(fake, intent)
    no_lb = dataclasses.replace(intent, load_balancer=None)
    component = InfraComponent(fake, no_lb)
    reconciler = Reconciler([component])
    plan = await reconciler.plan()
    assert [o.key for o in plan.operations] == ["load-balancer/demo-api"]
    fake.load_balancers.clear()  # someone else deleted it meanwhile
    await reconciler.apply(plan)
    assert fake.mutations()[-1] == "delete_load_balancer"


async def test_lb_attach_already_done_counts_as_success(fake, intent) -> None:  # type: ignore[no-untyped-def]
    await run(fake, intent)
    lb_id = next(iter(fake.load_balancers))
    lb = fake.load_balancers[lb_id]
    # Observed without the attachment (stale), but the API says it is attached already.
    component = InfraComponent(fake, intent)
    await component.observe()
    component.observed.load_balancers[0] = dataclasses.replace(lb, private_ips=())
    reconciler = Reconciler([component])
    await reconciler.apply(build_plan(component.diff()))
    assert fake.load_balancers[lb_id].private_ips == lb.private_ips


async def test_the_network_and_load_balancer_after_apply_are_as_they_now_are(fake, intent) -> None:  # type: ignore[no-untyped-def]
    # ``create`` takes these for the endpoint and delete protection instead of listing them
    # again: a label fixed by this run must show (protection skips what is not labelled ours).
    await run(fake, intent)
    [lb] = fake.load_balancers.values()
    unlabelled = {k: v for k, v in lb.labels.items() if k != "component"}
    fake.load_balancers[lb.id] = dataclasses.replace(lb, labels=unlabelled)
    component = InfraComponent(fake, intent)
    plan = await Reconciler([component]).plan()
    assert [op.key for op in plan.operations] == ["load-balancer/demo-api"]
    results = await Reconciler([component]).apply(plan)
    now = component.load_balancer_now(results)
    assert now is not None and now.labels == fake.load_balancers[lb.id].labels == lb.labels
    network = component.network_now(results)
    assert network is not None and network == next(iter(fake.networks.values()))
    # Nothing applied: as observed, and no request to say so.
    fake.calls.clear()
    observed = component.load_balancer_now({})
    assert observed is not None and observed.labels == unlabelled
    assert fake.calls == []
