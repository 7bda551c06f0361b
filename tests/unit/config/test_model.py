"""The cluster.yaml model: defaults, helpers and the problems it reports."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest

from hk8s.config import (
    ADDON_CHARTS,
    VANILLA_SCHEMATIC_ID,
    ClusterConfig,
    Taint,
    load_config,
    parse_config,
)
from hk8s.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from pathlib import Path


def parse(text: str) -> ClusterConfig:
    return parse_config(textwrap.dedent(text), "test.yaml")


def problems(text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value.problems


def test_minimal_config_gets_working_defaults() -> None:
    config = parse("name: demo\nlocation: hel1\n")
    assert config.network_zone == "eu-central"
    assert config.control_plane.count == 1
    assert config.workers == []
    assert config.talos.version == "v1.14.1"
    assert config.talos.minor == "1.14"
    assert config.kubernetes.version == "1.36.5"
    assert config.load_balancer.enabled is False
    assert config.firewall.kube_api_sources == ["current"]
    assert config.talos.effective_schematic == VANILLA_SCHEMATIC_ID
    assert config.addons.cilium.version == ADDON_CHARTS["cilium"].version
    assert list(config.addons.configured()) == [
        "cilium",
        "hcloud_ccm",
        "hcloud_csi",
        "metrics_server",
    ]


def test_derived_defaults_follow_other_fields() -> None:
    config = parse(
        """
        name: ha
        location: ash
        control_plane: {count: 3}
        talos: {version: "1.11.5"}
        """
    )
    assert config.network_zone == "us-east"
    assert config.load_balancer.enabled is True
    assert config.talos.version == "v1.11.5"
    assert config.kubernetes.version.startswith("1.34.")
    explicit = parse(
        "name: a\nlocation: fsn1\ncontrol_plane: {count: 3}\nload_balancer: {enabled: false}\n"
    )
    assert explicit.load_balancer.enabled is False


def test_pools_give_a_uniform_view_with_the_control_plane_first() -> None:
    config = parse(
        """
        name: demo
        location: fsn1
        control_plane: {count: 3, server_type: cpx31}
        workers:
          - name: arm
            count: 2
            server_type: cax21
            location: nbg1
            labels: {tier: batch}
            taints: ["dedicated=batch:NoSchedule", "spot:PreferNoSchedule"]
        """
    )
    cp, arm = config.pools()
    assert (cp.name, cp.role, cp.count, cp.location, cp.arch) == (
        "cp",
        "control-plane",
        3,
        "fsn1",
        "amd64",
    )
    assert (arm.role, arm.location, arm.arch) == ("worker", "nbg1", "arm64")
    assert arm.taints == (
        Taint("dedicated", "batch", "NoSchedule"),
        Taint("spot", "", "PreferNoSchedule"),
    )
    assert [str(t) for t in arm.taints] == ["dedicated=batch:NoSchedule", "spot:PreferNoSchedule"]
    assert arm.server_name(2) == "demo-arm-2"
    assert config.pool("cp").server_name(1) == "demo-cp-1"
    assert config.architectures == ["amd64", "arm64"]


def test_all_problems_are_reported_at_once_with_their_lines() -> None:
    found = problems(
        """\
        name: Bad_Name
        location: fsn1
        control_plane:
          count: 4
        network:
          pod_cidr: 10.0.0.0/17
        talos:
          version: v1.12.1
        kubernetes:
          version: "1.29.0"
        """
    )
    by_path = {p.path: p for p in reversed(found)}  # the first problem at each path
    assert set(by_path) == {"name", "control_plane.count", "network.pod_cidr", "kubernetes.version"}
    assert (by_path["name"].line, by_path["name"].column) == (1, 7)
    assert by_path["control_plane.count"].line == 4
    assert by_path["network.pod_cidr"].line == 6
    assert "Talos 1.12 supports Kubernetes 1.30-1.35" in (by_path["kubernetes.version"].hint or "")
    assert [p.line for p in found] == sorted(p.line or 0 for p in found)


def test_unknown_keys_get_a_did_you_mean_hint() -> None:
    (problem,) = problems("name: a\nlocation: fsn1\nworkers:\n  - name: w\n    servertype: cx33\n")
    assert problem.path == "workers[0].servertype"
    assert (problem.line, problem.column) == (5, 5)
    assert problem.hint == "did you mean 'server_type'?"


def test_a_token_in_the_file_points_to_the_environment() -> None:
    (problem,) = problems("name: a\nlocation: fsn1\nhcloud_token: secret123\n")
    assert "HCLOUD_TOKEN" in (problem.hint or "")
    assert "secret123" not in str(problem)


def test_direct_construction_enforces_cross_checks() -> None:
    with pytest.raises(ValueError, match="overlaps"):
        ClusterConfig.model_validate(
            {"name": "a", "location": "fsn1", "network": {"service_cidr": "10.0.0.0/16"}}
        )


def test_firewall_sources_are_normalised() -> None:
    config = parse(
        "name: a\nlocation: fsn1\n"
        "firewall: {kube_api_sources: [current, 203.0.113.7, 2001:db8::/32]}\n"
    )
    assert config.firewall.kube_api_sources == ["current", "203.0.113.7/32", "2001:db8::/32"]


def test_load_config_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(f"{tmp_path}/nope.yaml")
    assert info.value.problems[0].message == "file not found"
