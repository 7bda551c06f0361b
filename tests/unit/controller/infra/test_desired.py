from __future__ import annotations

import pytest

from hk8s.controller import desired_infra, placement_group_names, resolve_sources
from hk8s.errors import UsageError


def test_current_becomes_the_operators_ip_as_a_host_route() -> None:
    assert resolve_sources(["current"], "203.0.113.7\n") == ("203.0.113.7/32",)
    assert resolve_sources(["current"], "2001:db8::7") == ("2001:db8::7/128",)


def test_cidrs_are_canonical_sorted_and_deduplicated() -> None:
    assert resolve_sources(["10.1.2.3/8", "192.0.2.0/24", "10.0.0.0/8"], None) == (
        "10.0.0.0/8",
        "192.0.2.0/24",
    )


def test_current_without_an_ip_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="public IP"):
        resolve_sources(["current"], None)


def test_bad_cidr_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not a CIDR"):
        resolve_sources(["nonsense"], None)


@pytest.mark.parametrize(
    ("count", "groups"),
    [(0, 0), (1, 1), (10, 1), (11, 2), (20, 2), (21, 3)],
)
def test_one_placement_group_per_ten_servers(count: int, groups: int) -> None:
    names = placement_group_names("demo", "workers", count)
    assert names == [f"demo-workers-pg-{k}" for k in range(1, groups + 1)]


def test_names_and_labels_follow_the_design(intent_factory) -> None:  # type: ignore[no-untyped-def]
    desired = desired_infra(intent_factory())
    base = {"cluster": "demo", "managed-by": "hk8s"}
    assert desired.network.name == "demo"
    assert desired.network.labels == {**base, "component": "network"}
    assert [(s.ip_range, s.network_zone, s.type) for s in desired.network.subnets] == [
        ("10.0.1.0/24", "eu-central", "cloud")
    ]
    assert desired.firewall.name == "demo-fw"
    assert desired.firewall.labels == {**base, "component": "firewall"}
    assert desired.firewall.apply_to_selectors == ("cluster=demo,managed-by=hk8s",)
    rules = {(r.direction, r.protocol, r.port, r.source_ips) for r in desired.firewall.rules}
    assert rules == {
        ("in", "tcp", "6443", ("203.0.113.7/32",)),
        ("in", "tcp", "50000", ("203.0.113.7/32",)),
    }
    assert [g.name for g in desired.placement_groups] == [
        "demo-cp-pg-1",
        "demo-workers-pg-1",
        "demo-workers-pg-2",
    ]
    assert desired.placement_groups[1].labels == {
        **base,
        "component": "placement-group",
        "pool": "workers",
    }
    assert all(g.type == "spread" for g in desired.placement_groups)
    lb = desired.load_balancer
    assert lb is not None
    assert (lb.name, lb.type, lb.location) == ("demo-api", "lb11", "fsn1")
    assert lb.labels == {**base, "component": "load-balancer"}
    [service] = lb.services
    assert (service.protocol, service.listen_port, service.destination_port) == ("tcp", 6443, 6443)
    assert (service.health_check.protocol, service.health_check.port) == ("tcp", 6443)
    [target] = lb.targets
    assert target.type == "label_selector"
    assert target.label_selector == "cluster=demo,role=control-plane"
    assert target.use_private_ip


def test_no_load_balancer_when_disabled(intent_factory) -> None:  # type: ignore[no-untyped-def]
    assert desired_infra(intent_factory(load_balancer=None)).load_balancer is None
