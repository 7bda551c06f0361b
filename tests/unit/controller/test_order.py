from __future__ import annotations

import pytest

from hk8s.controller import (
    Operation,
    add_implied_dependencies,
    build_plan,
    execution_waves,
    implied_dependencies,
)


def op(verb: str, kind: str, name: str, *deps: str) -> Operation:
    return Operation(verb, kind, name, "test", depends_on=deps)  # type: ignore[arg-type]


def keys(waves: list[list[Operation]]) -> list[list[str]]:
    return [[o.key for o in wave] for wave in waves]


def test_creates_wait_for_what_they_require() -> None:
    ops = [
        op("create", "load-balancer", "c-api"),
        op("create", "subnet", "10.0.1.0/24"),
        op("create", "network", "c"),
        op("create", "firewall", "c-fw"),
        op("create", "server", "c-cp-1"),
        op("create", "placement-group", "c-cp-pg-1"),
    ]
    lb = implied_dependencies(ops[0], ops)
    assert set(lb) == {"network/c", "subnet/10.0.1.0/24"}
    server = implied_dependencies(ops[4], ops)
    assert set(server) == {
        "network/c",
        "subnet/10.0.1.0/24",
        "firewall/c-fw",
        "placement-group/c-cp-pg-1",
    }
    assert implied_dependencies(ops[2], ops) == ()


def test_deletes_run_dependents_first() -> None:
    ops = [
        op("delete", "network", "c"),
        op("delete", "load-balancer", "c-api"),
        op("delete", "server", "c-cp-1"),
        op("delete", "placement-group", "c-cp-pg-1"),
    ]
    waves = keys(execution_waves(add_implied_dependencies(ops)))
    assert waves == [
        ["load-balancer/c-api", "server/c-cp-1"],
        ["network/c", "placement-group/c-cp-pg-1"],
    ]


def test_creates_do_not_wait_for_unrelated_deletes() -> None:
    delete = op("delete", "placement-group", "c-old-pg-1")
    create = op("create", "placement-group", "c-new-pg-1")
    assert implied_dependencies(create, [delete, create]) == ()
    assert implied_dependencies(delete, [delete, create]) == ()


def test_waves_treat_dependencies_outside_the_plan_as_satisfied() -> None:
    waves = execution_waves([op("create", "subnet", "s", "network/exists-already")])
    assert keys(waves) == [["subnet/s"]]


def test_explicit_dependencies_are_kept() -> None:
    ops = [op("create", "firewall", "fw", "network/n"), op("create", "network", "n")]
    assert keys(execution_waves(ops)) == [["network/n"], ["firewall/fw"]]


def test_cycle_is_reported() -> None:
    with pytest.raises(ValueError, match="cycle"):
        execution_waves(
            [op("create", "network", "a", "firewall/b"), op("create", "firewall", "b", "network/a")]
        )


def test_duplicate_keys_are_a_planner_bug() -> None:
    with pytest.raises(ValueError, match="share the key"):
        execution_waves([op("create", "network", "a"), op("update", "network", "a")])


def test_build_plan_orders_by_wave_then_kind() -> None:
    plan = build_plan(
        [
            op("create", "load-balancer", "c-api"),
            op("create", "placement-group", "c-cp-pg-1"),
            op("create", "firewall", "c-fw"),
            op("create", "network", "c"),
        ]
    )
    assert [o.key for o in plan.operations] == [
        "network/c",
        "firewall/c-fw",
        "placement-group/c-cp-pg-1",
        "load-balancer/c-api",
    ]
    lb = plan.operations[-1]
    assert lb.depends_on == ("network/c",)
    assert plan.counts() == {"create": 4, "update": 0, "delete": 0}
