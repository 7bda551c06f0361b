"""``hk8s infra`` and ``hk8s plan`` end to end against the simulated Hetzner API."""

from __future__ import annotations

import json

import pytest

from .conftest import OPERATOR_IP, World  # type: ignore[import-not-found]

pytestmark = pytest.mark.e2e

BASE = {"cluster": "demo", "managed-by": "hk8s"}
MUTATING = ("POST", "PUT", "DELETE")


def names(items: list[object]) -> list[str]:
    return sorted(getattr(i, "name") for i in items)  # noqa: B009


def assert_converged(world: World) -> None:
    """Exactly the expected resources, no duplicates, and a re-run that changes nothing."""
    res = world.resources()
    assert names(res["networks"]) == ["demo"]
    assert names(res["firewalls"]) == ["demo-fw"]
    assert names(res["load_balancers"]) == ["demo-api"]
    assert names(res["placement_groups"]) == [
        "demo-cp-pg-1",
        "demo-workers-pg-1",
        "demo-workers-pg-2",
    ]
    world.reset_stats()
    again = world.hk8s("infra")
    assert again.returncode == 0, again.stderr
    stats = world.stats()
    assert stats["mutating"] == 0, stats["by_route"]


def test_infra_creates_exactly_the_expected_resources(world: World) -> None:
    result = world.hk8s("infra")
    assert result.returncode == 0, result.stderr
    assert "not covered by the Hetzner firewall" in result.stderr
    res = world.resources()

    [net] = res["networks"]
    assert (net.name, net.ip_range, net.labels) == (
        "demo",
        "10.0.0.0/16",
        {**BASE, "component": "network"},
    )
    assert [(s.type, s.ip_range, s.network_zone) for s in net.subnets] == [
        ("cloud", "10.0.1.0/24", "eu-central")
    ]

    [fw] = res["firewalls"]
    assert (fw.name, fw.labels) == ("demo-fw", {**BASE, "component": "firewall"})
    rules = {
        (r["direction"], r["protocol"], r["port"], tuple(sorted(r["source_ips"]))) for r in fw.rules
    }
    assert rules == {
        ("in", "tcp", "6443", (f"{OPERATOR_IP}/32",)),
        ("in", "tcp", "50000", ("198.51.100.0/24", f"{OPERATOR_IP}/32")),
    }
    assert fw.applied_to == [("label_selector", "cluster=demo,managed-by=hk8s")]

    groups = sorted(res["placement_groups"], key=lambda g: g.name)
    assert [(g.name, g.type) for g in groups] == [
        ("demo-cp-pg-1", "spread"),
        ("demo-workers-pg-1", "spread"),
        ("demo-workers-pg-2", "spread"),
    ]
    assert groups[0].labels == {**BASE, "component": "placement-group", "pool": "cp"}
    assert groups[2].labels == {**BASE, "component": "placement-group", "pool": "workers"}

    [lb] = res["load_balancers"]
    assert (lb.name, lb.lb_type["name"], lb.location.name) == ("demo-api", "lb11", "fsn1")
    assert lb.labels == {**BASE, "component": "load-balancer"}
    assert list(lb.private_net) == [net.id]
    [service] = lb.services
    assert (service.protocol, service.listen_port, service.destination_port) == ("tcp", 6443, 6443)
    assert (service.health_check["protocol"], service.health_check["port"]) == ("tcp", 6443)
    [target] = lb.targets
    assert (target.type, target.selector, target.use_private_ip) == (
        "label_selector",
        "cluster=demo,role=control-plane",
        True,
    )
    assert res["servers"] == []


def test_second_run_is_read_only_and_cheap(world: World) -> None:
    assert world.hk8s("infra").returncode == 0
    world.reset_stats()
    result = world.hk8s("infra")
    assert result.returncode == 0, result.stderr
    stats = world.stats()
    assert stats["mutating"] == 0
    assert stats["total"] <= 10, stats["by_route"]
    assert "already up to date" in result.stdout


def test_changed_firewall_sources_only_replace_the_rules(world: World) -> None:
    assert world.hk8s("infra").returncode == 0
    world.write_config(
        world.config.read_text().replace("[current, 198.51.100.0/24]", "[192.0.2.0/24]")
    )
    planned = world.hk8s("plan", "--infra-only", "--output", "json")
    assert planned.returncode == 3, planned.stderr
    [op] = json.loads(planned.stdout)["operations"]
    assert (op["type"], op["key"], op["reason"]) == ("update", "firewall/demo-fw", "rules differ")
    world.reset_stats()
    result = world.hk8s("infra")
    assert result.returncode == 0, result.stderr
    log = world.stats()["log"]
    assert [(r["method"], r["route"]) for r in log if r["method"] in MUTATING] == [
        ("POST", "/firewalls/{id}/actions/set_rules")
    ]
    [fw] = world.resources()["firewalls"]
    talos = next(r for r in fw.rules if r["port"] == "50000")
    assert talos["source_ips"] == ["192.0.2.0/24"]


@pytest.mark.parametrize("mutations", [1, 2, 4, 6])
def test_killed_midway_then_rerun_converges(world: World, mutations: int) -> None:
    status = world.hk8s_killed_after(mutations, "infra")
    assert status == -9  # SIGKILL: it really was interrupted midway
    result = world.hk8s("infra")
    assert result.returncode == 0, result.stderr
    assert_converged(world)


def test_five_percent_faults_still_converge(world: World) -> None:
    world.faults(
        {
            "seed": 11,
            "errors": [
                {"path": "*", "rate": 0.05, "code": 503},
                {"path": "*", "rate": 0.05, "code": 429},
                {"path": "*", "rate": 0.05, "code": "locked"},
            ],
        }
    )
    result = world.hk8s("infra")
    assert result.returncode == 0, result.stderr
    by_status = world.stats()["by_status"]
    assert by_status.keys() - {"200", "201"}, "faults were injected"
    world.faults({})
    assert_converged(world)


def test_plan_matches_what_infra_then_does(world: World) -> None:
    planned = world.hk8s("plan", "--infra-only", "--output", "json")
    assert planned.returncode == 3, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["changes_pending"] is True
    assert all(op["reason"] for op in plan["operations"])
    keys = sorted(op["key"] for op in plan["operations"])
    assert keys == [
        "firewall/demo-fw",
        "load-balancer/demo-api",
        "network/demo",
        "placement-group/demo-cp-pg-1",
        "placement-group/demo-workers-pg-1",
        "placement-group/demo-workers-pg-2",
    ]
    world.reset_stats()
    applied = world.hk8s("infra", "--output", "json")
    assert applied.returncode == 0, applied.stderr
    events = [json.loads(line) for line in applied.stderr.splitlines() if line.startswith("{")]
    done = sorted(e["key"] for e in events if e["event"] == "done")
    assert done == keys
    creates = [r["route"] for r in world.stats()["log"] if r["method"] == "POST"]
    assert sorted(creates) == sorted(
        ["/firewalls", "/load_balancers", "/networks"] + ["/placement_groups"] * 3
    )
    summary = json.loads(applied.stdout)
    assert summary["load_balancer"]["public_ipv4"]

    again = world.hk8s("plan", "--infra-only")
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout

    world.write_config(world.config.read_text().replace("count: 12", "count: 25"))
    changed = world.hk8s("plan", "--infra-only")
    assert changed.returncode == 3
    assert "+ create demo-workers-pg-3" in changed.stdout
    assert "does not exist" in changed.stdout


def test_disabling_the_load_balancer_plans_and_performs_its_delete(world: World) -> None:
    assert world.hk8s("infra").returncode == 0
    world.write_config(world.config.read_text() + "load_balancer:\n  enabled: false\n")
    planned = world.hk8s("plan", "--infra-only", "--output", "json")
    assert planned.returncode == 3, planned.stderr
    [op] = json.loads(planned.stdout)["operations"]
    assert (op["type"], op["key"]) == ("delete", "load-balancer/demo-api")
    assert "not covered by the Hetzner firewall" not in planned.stderr
    world.reset_stats()
    result = world.hk8s("infra")
    assert result.returncode == 0, result.stderr
    log = world.stats()["log"]
    assert [(r["method"], r["route"]) for r in log if r["method"] in MUTATING] == [
        ("DELETE", "/load_balancers/{id}")
    ]
    assert world.resources()["load_balancers"] == []
    assert len(world.resources()["networks"]) == 1
