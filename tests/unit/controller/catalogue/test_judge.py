"""The catalogue decisions: which types are refused, which warned about, what is suggested.

The catalogue here is a small copy of today's real one (hk8s/sim/hcloud/_catalog.py has the
sources): cx22 is gone, cpx11 is past its date outside the US, second-generation CPX is not
sold in the US, cx43 is sold out in nbg1.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from hk8s.config import parse_config
from hk8s.controller import (
    Purpose,
    alternatives,
    check_catalogue,
    judge_config,
    judge_lb_type,
    judge_server_type,
    successor,
)
from hk8s.controller._catalogue import parse_type_name
from hk8s.model.catalogue import (
    Catalogue,
    Deprecation,
    LoadBalancerType,
    Location,
    ServerType,
    ServerTypeLocation,
)
from hk8s.providers.hcloud.fake import FakeHcloud

NOW = datetime(2026, 12, 7, tzinfo=UTC)
EU = ("fsn1", "nbg1", "hel1")
US = ("ash", "hil")
GONE = Deprecation(datetime(2025, 10, 16, tzinfo=UTC), datetime(2025, 12, 31, tzinfo=UTC))
SOON = Deprecation(datetime(2026, 11, 1, tzinfo=UTC), datetime(2027, 3, 31, tzinfo=UTC))


def offers(*where: str, **kw: object) -> tuple[ServerTypeLocation, ...]:
    return tuple(ServerTypeLocation(loc, **kw) for loc in where)  # type: ignore[arg-type]


def gen1(name: str, cores: int, memory: float) -> ServerType:
    past = offers(*EU, "sin", available=False, deprecation=GONE)
    return ServerType(name, "x86", cores, memory, 40, past + offers(*US))


TYPES = (
    ServerType("cx23", "x86", 2, 4, 40, offers(*EU)),
    ServerType("cx33", "x86", 4, 8, 80, offers(*EU)),
    ServerType("cx43", "x86", 8, 16, 160, offers("fsn1", "hel1") + offers("nbg1", available=False)),
    gen1("cpx11", 2, 2),
    gen1("cpx21", 3, 4),
    gen1("cpx31", 4, 8),
    ServerType("cpx12", "x86", 1, 2, 40, offers(*EU, "sin")),
    ServerType("cpx22", "x86", 2, 4, 80, offers(*EU, "sin")),
    ServerType("cpx32", "x86", 4, 8, 160, offers(*EU, "sin")),
    ServerType("cax11", "arm", 2, 4, 40, offers(*EU)),
    ServerType("cax21", "arm", 4, 8, 80, offers(*EU)),
    ServerType("ccx13", "x86", 2, 8, 80, offers(*EU, *US, "sin"), cpu_type="dedicated"),
    ServerType("ccx23", "x86", 4, 16, 160, offers(*EU, *US, "sin"), cpu_type="dedicated"),
)
LOCATIONS = tuple(
    Location(n, z)
    for n, z in [
        ("fsn1", "eu-central"),
        ("nbg1", "eu-central"),
        ("hel1", "eu-central"),
        ("ash", "us-east"),
        ("hil", "us-west"),
        ("sin", "ap-southeast"),
    ]
)
ALL = tuple(loc.name for loc in LOCATIONS)
LB_TYPES = (LoadBalancerType("lb11", ALL), LoadBalancerType("lb21", ALL))
CATALOGUE = Catalogue(TYPES, LB_TYPES, LOCATIONS)


def test_type_names_split_into_family_size_and_generation() -> None:
    assert parse_type_name("cpx21") == parse_type_name("cpx21")
    assert (parse_type_name("ccx13").family, parse_type_name("ccx13").size) == ("ccx", 1)
    assert parse_type_name("cx53").generation == 3
    assert parse_type_name("weird").size is None


def test_a_removed_type_names_its_successor() -> None:
    verdict = judge_server_type("cx22", "fsn1", TYPES, NOW)
    assert verdict.level == "refuse"
    assert verdict.message == "server type cx22 no longer exists at Hetzner; cx23 is its successor"
    assert verdict.hint == "set server_type: cx23"
    assert judge_server_type("cx32", "hel1", TYPES, NOW).hint == "set server_type: cx33"


def test_a_type_past_its_date_in_the_location_is_refused_with_its_successor() -> None:
    verdict = judge_server_type("cpx11", "nbg1", TYPES, NOW)
    assert verdict.level == "refuse"
    assert verdict.message == (
        "server type cpx11 can no longer be ordered in nbg1: deprecated 2025-10-16, "
        "unavailable after 2025-12-31; cpx12 is its successor"
    )
    assert judge_server_type("cpx21", "sin", TYPES, NOW).hint == "set server_type: cpx22"


def test_the_same_type_where_it_is_still_sold_is_fine() -> None:
    assert judge_server_type("cpx11", "ash", TYPES, NOW).level == "ok"
    assert judge_server_type("cx23", "fsn1", TYPES, NOW).level == "ok"
    assert judge_server_type("ccx13", "hil", TYPES, NOW).level == "ok"


def test_a_type_not_sold_in_the_location_names_the_nearest_ones_sold_there() -> None:
    verdict = judge_server_type("cpx22", "ash", TYPES, NOW)
    assert verdict.level == "refuse"
    # same family first (cores and memory closest to 2/4), then other x86 families
    assert verdict.message == (
        "server type cpx22 is not offered in ash (only in fsn1, nbg1, hel1, sin); "
        "nearest current alternatives in ash: cpx21, cpx11, cpx31"
    )
    assert [t.name for t in alternatives("cx23", TYPES, "ash", NOW)] == ["cpx21", "ccx13", "cpx11"]
    # an arm type is never suggested for x86, nor the other way round
    assert [t.name for t in alternatives("cax11", TYPES, "ash", NOW)] == []
    assert judge_server_type("cax11", "ash", TYPES, NOW).hint == (
        "no server type of this kind can be ordered in ash right now"
    )


def test_a_type_hetzner_never_had_is_said_not_to_exist() -> None:
    verdict = judge_server_type("zz99", "fsn1", TYPES, NOW)
    assert verdict.level == "refuse"
    assert verdict.message.startswith("server type zz99 does not exist at Hetzner")


def test_deprecated_but_orderable_is_a_warning_with_its_date() -> None:
    soon = [
        dataclasses.replace(t, locations=offers(*US, deprecation=SOON)) if t.name == "cpx21" else t
        for t in TYPES
    ]
    verdict = judge_server_type("cpx21", "ash", soon, NOW)
    assert verdict.level == "warn"
    assert "is deprecated in ash and can be ordered there only until 2027-03-31" in verdict.message
    # past the date, the same entry refuses
    later = datetime(2027, 4, 1, tzinfo=UTC)
    assert judge_server_type("cpx21", "ash", soon, later).level == "refuse"


def test_sold_out_is_a_warning_naming_what_is_available_now() -> None:
    verdict = judge_server_type("cx43", "nbg1", TYPES, NOW)
    assert verdict.level == "warn"
    assert "sold out in nbg1 right now" in verdict.message
    assert "nearest current alternatives in nbg1: cx33, cx23" in verdict.message


def test_successor_is_the_newest_generation_orderable_there() -> None:
    assert successor("cpx11", TYPES, "fsn1", NOW) == TYPES[6]
    assert successor("cpx11", TYPES, "ash", NOW) is None  # cpx12 is not sold in the US
    assert successor("cx23", TYPES, "fsn1", NOW) is None


def test_load_balancer_types_are_judged_too() -> None:
    assert judge_lb_type("lb11", "fsn1", LB_TYPES, NOW).level == "ok"
    missing = judge_lb_type("lb99", "fsn1", LB_TYPES, NOW)
    assert (missing.level, missing.hint) == (
        "refuse",
        "set load_balancer.type to one of: lb11, lb21",
    )
    old = (LoadBalancerType("lb11", ALL, SOON), LB_TYPES[1])
    assert judge_lb_type("lb11", "fsn1", old, NOW).level == "warn"
    assert judge_lb_type("lb11", "fsn1", old, datetime(2027, 4, 1, tzinfo=UTC)).level == "refuse"


CONFIG = """\
name: demo
location: nbg1
control_plane: {count: 3, server_type: cpx11}
workers:
  - {name: a, server_type: cx22}
  - {name: b, server_type: cx43}
  - {name: c, server_type: cx23}
"""


def test_a_config_is_judged_per_pool_with_yaml_paths() -> None:
    problems, warnings = judge_config(parse_config(CONFIG), CATALOGUE, NOW)
    assert [(p.path, p.hint) for p in problems] == [
        ("control_plane.server_type", "set server_type: cpx12"),
        ("workers[0].server_type", "set server_type: cx23"),
    ]
    [warning] = warnings
    assert warning.startswith("workers[1].server_type: server type cx43 is sold out in nbg1")


def test_upgrade_and_image_build_refuse_only_types_that_do_not_exist() -> None:
    # They order no pool servers; a type's architecture still decides the snapshots.
    for purpose in ("upgrade", "image"):
        problems, warnings = judge_config(parse_config(CONFIG), CATALOGUE, NOW, purpose)
        assert [p.path for p in problems] == ["workers[0].server_type"]
        assert [w.split(":")[0] for w in warnings] == [
            "control_plane.server_type",
            "workers[1].server_type",
        ]


def test_the_load_balancer_and_locations_are_checked_against_the_api() -> None:
    config = parse_config("name: d\nlocation: fsn1\ncontrol_plane: {count: 3}\n")
    no_lb = Catalogue(TYPES, (), LOCATIONS)
    [problem] = judge_config(config, no_lb, NOW)[0]
    assert (problem.path, problem.message) == (
        "load_balancer.type",
        "load balancer type lb11 does not exist at Hetzner",
    )
    gone = Catalogue(TYPES, LB_TYPES, tuple(loc for loc in LOCATIONS if loc.name != "fsn1"))
    problems = judge_config(config, gone, NOW)[0]
    assert problems[0].path == "location"
    assert "Hetzner offers no location fsn1" in problems[0].message


@pytest.mark.parametrize("location", ALL)
def test_the_default_types_pass_in_every_location(location: str) -> None:
    config = parse_config(f"name: d\nlocation: {location}\nworkers: [{{name: w}}]\n")
    assert judge_config(config, CATALOGUE, NOW) == ([], [])


@pytest.mark.parametrize(
    ("config", "purpose", "read"),
    [
        ("control_plane: {count: 3}", "servers", True),
        ("control_plane: {count: 1}", "servers", False),  # no load balancer by default
        ("control_plane: {count: 3}\nload_balancer: {enabled: false}", "servers", False),
        ("control_plane: {count: 3}", "upgrade", False),  # orders no load balancer
    ],
)
async def test_the_load_balancer_types_are_read_only_where_one_is_judged(
    config: str, purpose: Purpose, read: bool
) -> None:
    """One request fewer for every run of a single-control-plane cluster (issue 17)."""
    fake = FakeHcloud()
    fake.types, fake.lb_types, fake.catalogue_locations = (
        list(TYPES),
        list(LB_TYPES),
        list(LOCATIONS),
    )
    report = await check_catalogue(parse_config(f"name: d\nlocation: fsn1\n{config}\n"), fake,
                                   purpose=purpose, now=lambda: NOW)  # fmt: skip
    calls = sorted(name for name, _ in fake.calls)
    assert calls == sorted(["server_types", "locations"] + ["load_balancer_types"] * read)
    assert report.catalogue.load_balancer_types == (LB_TYPES if read else ())
