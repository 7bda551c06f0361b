from __future__ import annotations

import dataclasses

import pytest

from hk8s.controller import (
    InfraComponent,
    ObservedInfra,
    build_plan,
    desired_infra,
    diff_infra,
    observe_infra,
)
from hk8s.errors import ConflictError
from hk8s.model.resources import (
    Firewall,
    LoadBalancer,
    Network,
    PlacementGroup,
    PrivateIP,
)


def converged(intent) -> ObservedInfra:  # type: ignore[no-untyped-def]
    """What exists after a successful ``infra`` run for ``intent``."""
    d = desired_infra(intent)
    net = Network(1, d.network.name, d.network.ip_range, d.network.labels, d.network.subnets)
    fw = Firewall(
        2, d.firewall.name, d.firewall.labels, d.firewall.rules, d.firewall.apply_to_selectors
    )
    groups = [
        PlacementGroup(10 + i, g.name, "spread", g.labels) for i, g in enumerate(d.placement_groups)
    ]
    lbs = []
    if d.load_balancer:
        lb = d.load_balancer
        lbs.append(
            LoadBalancer(
                3,
                lb.name,
                lb.type,
                lb.location,
                lb.labels,
                "127.1.0.1",
                (PrivateIP(1, "10.0.1.2"),),
                lb.services,
                lb.targets,
            )
        )
    return ObservedInfra([net], [fw], lbs, groups)


def test_nothing_exists_plans_every_create_in_dependency_order(intent) -> None:  # type: ignore[no-untyped-def]
    plan = build_plan(diff_infra(desired_infra(intent), ObservedInfra()))
    assert [(o.type, o.key) for o in plan.operations] == [
        ("create", "network/demo"),
        ("create", "firewall/demo-fw"),
        ("create", "placement-group/demo-cp-pg-1"),
        ("create", "placement-group/demo-workers-pg-1"),
        ("create", "placement-group/demo-workers-pg-2"),
        ("create", "load-balancer/demo-api"),
    ]
    assert plan.operations[-1].depends_on == ("network/demo",)
    assert all(o.reason == "does not exist" for o in plan.operations)


def test_converged_infra_plans_nothing(intent) -> None:  # type: ignore[no-untyped-def]
    assert diff_infra(desired_infra(intent), converged(intent)) == []


def test_changed_firewall_sources_update_only_the_rules(intent) -> None:  # type: ignore[no-untyped-def]
    observed = converged(intent)
    changed = dataclasses.replace(intent, kube_api_sources=("198.51.100.0/24",))
    [op] = diff_infra(desired_infra(changed), observed)
    assert (op.type, op.key, op.params["parts"]) == ("update", "firewall/demo-fw", ["rules"])
    assert op.reason == "rules differ"
    assert "198.51.100.0/24" in str(op.changes[0].new)


def test_rule_order_does_not_count_as_a_difference(intent) -> None:  # type: ignore[no-untyped-def]
    observed = converged(intent)
    fw = observed.firewalls[0]
    observed.firewalls[0] = dataclasses.replace(fw, rules=tuple(reversed(fw.rules)))
    assert diff_infra(desired_infra(intent), observed) == []


def test_missing_subnet_and_lb_attachment(intent) -> None:  # type: ignore[no-untyped-def]
    observed = converged(intent)
    observed.networks[0] = dataclasses.replace(observed.networks[0], subnets=())
    lb = observed.load_balancers[0]
    observed.load_balancers[0] = dataclasses.replace(lb, private_ips=(), targets=())
    plan = build_plan(diff_infra(desired_infra(intent), observed))
    assert [(o.type, o.key) for o in plan.operations] == [
        ("create", "subnet/10.0.1.0/24"),
        ("update", "load-balancer/demo-api"),
    ]
    lb_op = plan.operations[1]
    assert lb_op.params["parts"] == ["network", "target cluster=demo,role=control-plane"]
    assert lb_op.depends_on == ("subnet/10.0.1.0/24",)


def test_disabled_load_balancer_is_deleted(intent) -> None:  # type: ignore[no-untyped-def]
    observed = converged(intent)
    [op] = diff_infra(desired_infra(dataclasses.replace(intent, load_balancer=None)), observed)
    assert (op.type, op.key) == ("delete", "load-balancer/demo-api")


def test_surplus_placement_group_deleted_only_when_empty(intent_factory) -> None:  # type: ignore[no-untyped-def]
    big = intent_factory()
    observed = converged(big)
    small = dataclasses.replace(
        big, pools=(*big.pools[:1], dataclasses.replace(big.pools[1], count=5))
    )
    ops = diff_infra(desired_infra(small), observed)
    assert [(o.type, o.key) for o in ops] == [("delete", "placement-group/demo-workers-pg-2")]
    pg2 = next(g for g in observed.placement_groups if g.name == "demo-workers-pg-2")
    observed.placement_groups[observed.placement_groups.index(pg2)] = dataclasses.replace(
        pg2, server_ids=(42,)
    )
    assert diff_infra(desired_infra(small), observed) == []


def test_network_range_change_is_refused(intent) -> None:  # type: ignore[no-untyped-def]
    observed = converged(intent)
    with pytest.raises(ConflictError, match="ip range"):
        diff_infra(desired_infra(dataclasses.replace(intent, network_cidr="10.8.0.0/16")), observed)


def test_plan_is_json_serialisable_with_reasons(intent) -> None:  # type: ignore[no-untyped-def]
    import json

    plan = build_plan(diff_infra(desired_infra(intent), ObservedInfra()))
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["changes_pending"] is True
    assert data["summary"] == {"create": 6, "update": 0, "delete": 0}
    assert data["operations"][0]["desired"]["name"] == "demo"
    assert all(o["reason"] for o in data["operations"])


async def test_observe_is_four_list_calls_whatever_the_size(fake, intent) -> None:  # type: ignore[no-untyped-def]
    component = InfraComponent(fake, intent)
    await component.observe()
    assert sorted(name for name, _ in fake.calls) == [
        "list_firewalls",
        "list_load_balancers",
        "list_networks",
        "list_placement_groups",
    ]
    assert all(args[0] == "cluster=demo,managed-by=hk8s" for _, args in fake.calls)


async def test_two_labelled_networks_are_a_conflict(fake, intent) -> None:  # type: ignore[no-untyped-def]
    labels = {"cluster": "demo", "managed-by": "hk8s", "component": "network"}
    fake.networks[1] = Network(1, "demo", "10.0.0.0/16", labels)
    fake.networks[2] = Network(2, "demo-old", "10.0.0.0/16", labels)
    with pytest.raises(ConflictError, match="2 networks"):
        await observe_infra(fake, "demo")


def test_pending_servers_names_unconfigured_and_stopped_servers() -> None:
    from hk8s.config import parse_config
    from hk8s.controller import desired_servers, pending_servers
    from hk8s.model.resources import Server

    config = parse_config("name: demo\nlocation: fsn1\nworkers: [{name: w, count: 2}]\n")
    desired = desired_servers(config, cluster_id="x")
    labels = {"cluster": "demo", "managed-by": "hk8s", "hk8s/config-hash": "h"}
    observed = [
        Server(1, "demo-cp-1", "running", "cx22", "fsn1", labels),
        Server(2, "demo-w-1", "running", "cx22", "fsn1", {"cluster": "demo"}),
        Server(3, "demo-w-2", "starting", "cx22", "fsn1", labels),
        Server(4, "demo-w-9", "off", "cx22", "fsn1", {}),  # a removal: planned elsewhere
    ]
    assert pending_servers(desired, observed) == [
        "demo-w-1: no machine config applied yet (maintenance mode) — create applies its "
        "machine config",
        "demo-w-2: the server is starting, not running — create waits for Hetzner to start it "
        "and names it if it never does",
    ]
    observed[2] = Server(3, "demo-w-2", "off", "cx22", "fsn1", labels)
    assert (
        pending_servers(desired, observed)[1] == "demo-w-2: the server is off — create powers it on"
    )
