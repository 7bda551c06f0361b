"""The catalogue check against the simulated API, whose catalogue is today's real one:
a type Hetzner no longer sells is refused (exit 2) with its successor named, before a single
mutating request; the default types and the shipped configs plan cleanly everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hk8s.config import LOCATION_ZONES

if TYPE_CHECKING:
    from .conftest import World  # type: ignore[import-not-found]

pytestmark = pytest.mark.e2e

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
CATALOGUE_ROUTES = {"/server_types", "/load_balancer_types", "/locations"}


def type_warnings(planned: dict[str, list[str]]) -> list[str]:
    """The plan's warnings about server or load balancer types (not e.g. firewall coverage)."""
    return [w for w in planned["warnings"] if "server type" in w or "balancer type" in w]


def refused(world: World, command: str, *needles: str, load_balancer: bool = False) -> None:
    """``hk8s <command>`` exits 2 naming every needle, after zero mutating requests and one
    read of each catalogue list it judges: the load balancer types only for a cluster with a
    load balancer (``load_balancer``), in a command that orders servers."""
    world.reset_stats()
    result = world.hk8s(*command.split())
    assert result.returncode == 2, result.stdout + result.stderr
    for needle in needles:
        assert needle in result.stderr
    stats = world.stats()
    assert stats["mutating"] == 0, stats["by_route"]
    catalogue = [r["route"] for r in stats["log"] if r["route"] in CATALOGUE_ROUTES]
    lb_types = load_balancer and command.split()[0] in ("plan", "create", "infra")
    judged = CATALOGUE_ROUTES if lb_types else CATALOGUE_ROUTES - {"/load_balancer_types"}
    assert sorted(catalogue) == sorted(judged)
    assert world.resources()["networks"] == []


@pytest.mark.parametrize("command", ["plan", "create", "infra", "upgrade --yes", "image build"])
def test_a_removed_type_is_refused_with_its_successor_before_any_change(
    world: World, command: str
) -> None:
    world.write_config(
        """\
        name: demo
        location: fsn1
        control_plane: {count: 3, server_type: cx22}
        """
    )
    refused(
        world,
        command,
        "control_plane.server_type: server type cx22 no longer exists at Hetzner; "
        "cx23 is its successor",
        "hint: set server_type: cx23",
        load_balancer=True,
    )


@pytest.mark.parametrize("command", ["plan", "create"])
def test_first_generation_cpx_is_refused_where_it_is_no_longer_sold(
    world: World, command: str
) -> None:
    world.write_config(
        """\
        name: demo
        location: nbg1
        workers:
          - {name: w, count: 2, server_type: cpx21}
        """
    )
    refused(
        world,
        command,
        "workers[0].server_type: server type cpx21 can no longer be ordered in nbg1",
        "unavailable after 2025-12-31; cpx22 is its successor",
    )


def test_upgrade_only_warns_about_a_pool_type_no_longer_sold(world: World) -> None:
    """An upgrade orders no pool servers: a cluster on a type since retired still upgrades
    (the warning names the successor); the run goes on to its own checks."""
    world.write_config("name: demo\nlocation: nbg1\nworkers: [{name: w, server_type: cpx21}]\n")
    world.reset_stats()
    result = world.hk8s("upgrade", "--yes")
    assert "warning: workers[0].server_type: server type cpx21 can no longer be ordered" in (
        result.stderr
    )
    assert "cpx22 is its successor" in result.stderr
    assert "checked against the Hetzner API" not in result.stderr  # not refused
    assert world.stats()["mutating"] == 0  # there is no cluster: nothing to upgrade


def test_the_same_type_where_hetzner_still_sells_it_plans_cleanly(world: World) -> None:
    world.write_config("name: demo\nlocation: ash\nworkers: [{name: w, server_type: cpx21}]\n")
    result = world.hk8s("plan", "--output", "json")
    assert result.returncode == 3, result.stderr
    assert type_warnings(json.loads(result.stdout)) == []


def test_a_sold_out_type_is_a_warning_not_a_refusal(world: World) -> None:
    world.write_config("name: demo\nlocation: nbg1\nworkers: [{name: w, server_type: cx43}]\n")
    result = world.hk8s("plan", "--output", "json")
    assert result.returncode == 3, result.stderr
    [warning] = type_warnings(json.loads(result.stdout))
    assert warning.startswith("workers[0].server_type: server type cx43 is sold out in nbg1")


@pytest.mark.parametrize("location", sorted(LOCATION_ZONES))
def test_the_default_types_plan_cleanly_in_every_location(world: World, location: str) -> None:
    world.write_config(
        f"""\
        name: demo
        location: {location}
        control_plane: {{count: 3}}
        workers: [{{name: w, count: 2}}]
        """
    )
    world.reset_stats()
    result = world.hk8s("plan", "--output", "json")
    assert result.returncode == 3, result.stderr
    planned = json.loads(result.stdout)
    assert type_warnings(planned) == []
    assert {op["kind"] for op in planned["operations"]} >= {"server", "load-balancer"}
    assert world.stats()["mutating"] == 0


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_the_shipped_configs_plan_cleanly(world: World, name: str) -> None:
    result = world.hk8s("plan", "--output", "json", config=CONFIGS / name)
    assert result.returncode == 3, result.stderr
    assert type_warnings(json.loads(result.stdout)) == []
