"""Individual rules of cluster.yaml, at their boundaries."""

from __future__ import annotations

import pytest

from hk8s.config import TALOS_KUBERNETES_SUPPORT, parse_config, parse_taint
from hk8s.errors import ConfigError, ConfigProblem

HEAD = "name: demo\nlocation: fsn1\n"
# Without addons only Talos constrains the Kubernetes version.
NO_ADDONS = (
    "addons: {"
    + ", ".join(
        f"{name}: {{enabled: false}}"
        for name in ("cilium", "hcloud_ccm", "hcloud_csi", "metrics_server")
    )
    + "}\n"
)


def problems(text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "t.yaml")
    return info.value.problems


@pytest.mark.parametrize(("talos", "kube", "ok"), [
    ("v1.11.0", "1.29.0", True),
    ("v1.11.0", "1.34.9", True),
    ("v1.11.0", "1.28.3", False),
    ("v1.11.0", "1.35.0", False),
    ("v1.12.0", "1.30.0", True),
    ("v1.12.0", "1.35.2", True),
    ("v1.12.0", "1.36.0", False),
    ("v1.13.1", "1.31.0", True),
    ("v1.13.1", "1.36.0", True),
    ("v1.13.1", "1.30.9", False),
    ("v1.14.0", "1.32.0", True),
    ("v1.14.1", "1.37.2", True),
    ("v1.14.1", "1.31.9", False),
    ("v1.14.1", "1.38.0", False),
])  # fmt: skip
def test_kubernetes_must_be_supported_by_talos(talos: str, kube: str, ok: bool) -> None:
    text = HEAD + NO_ADDONS + f"talos: {{version: {talos}}}\nkubernetes: {{version: '{kube}'}}\n"
    if ok:
        assert parse_config(text).kubernetes.version == kube
    else:
        (problem,) = problems(text)
        assert problem.path == "kubernetes.version"


def test_every_supported_talos_minor_has_a_working_default() -> None:
    for minor in TALOS_KUBERNETES_SUPPORT:
        config = parse_config(HEAD + f"talos: {{version: '{minor}.0'}}\n")
        assert config.talos.version == f"v{minor}.0"
        assert config.talos.minor == minor


def test_kubernetes_version_is_normalised_without_v() -> None:
    assert parse_config(HEAD + "kubernetes: {version: v1.35.1}\n").kubernetes.version == "1.35.1"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("fsn1", ["cx23", "cx33"]),
        ("nbg1", ["cx23", "cx33"]),
        ("hel1", ["cx23", "cx33"]),
        ("sin", ["cpx22", "cpx32"]),
        ("ash", ["ccx13", "ccx23"]),
        ("hil", ["ccx13", "ccx23"]),
    ],
)
def test_default_types_are_ones_sold_in_the_location(location: str, expected: list[str]) -> None:
    config = parse_config(f"name: c\nlocation: {location}\nworkers: [{{name: w}}]\n")
    assert [p.server_type for p in config.pools()] == expected


@pytest.mark.parametrize(
    ("location", "server_type", "family"),
    [
        ("ash", "cx23", "CX (shared cost-optimized)"),
        ("sin", "cax11", "CAX (Ampere arm64)"),
        ("hil", "cpx22", "second-generation CPX"),
    ],
)
def test_families_are_refused_where_hetzner_does_not_sell_them(
    location: str, server_type: str, family: str
) -> None:
    text = f"name: c\nlocation: {location}\ncontrol_plane: {{server_type: {server_type}}}\n"
    [problem] = problems(text)
    assert problem.path == "control_plane.server_type"
    assert problem.message == f"server type {server_type} is not offered in {location}"
    assert family in (problem.hint or "")


@pytest.mark.parametrize("server_type", ["cpx22", "cpx62", "ccx13", "cpx21"])
def test_types_sold_in_singapore_or_the_us_pass_offline(server_type: str) -> None:
    for location in ("sin", "ash"):
        if location == "ash" and server_type.startswith("cpx") and server_type.endswith("2"):
            continue
        parse_config(
            f"name: c\nlocation: {location}\ncontrol_plane: {{server_type: {server_type}}}\n"
        )


def test_pool_location_must_share_the_network_zone() -> None:
    found = {p.path: p for p in problems(HEAD + "control_plane: {location: sin}\n")}
    assert "fsn1, nbg1, hel1" in (found["control_plane.location"].hint or "")


def test_field_and_cross_section_problems_are_reported_together() -> None:
    text = HEAD + "talos: {version: v1.9.0}\nnetwork: {pod_cidr: 10.0.0.0/20}\n"
    assert {p.path for p in problems(text)} == {"talos.version", "network.pod_cidr"}


def test_yaml_merge_keys_and_anchors_work() -> None:
    text = HEAD + (
        "x-pool: &pool {count: 2, server_type: cpx31}\n"
        "workers:\n"
        "  - {<<: *pool, name: a}\n"
        "  - {<<: *pool, name: b}\n"
    )
    # Top-level x- keys are not allowed: anchors must live inside a known key.
    assert problems(text)[0].path == "x-pool"
    text = HEAD + "workers:\n  - &w {name: a, count: 2}\n  - {<<: *w, name: b}\n"
    assert [p.count for p in parse_config(text).pools()] == [1, 2, 2]


def test_duplicate_yaml_keys_are_errors() -> None:
    (problem,) = problems(HEAD + "control_plane:\n  count: 3\n  count: 5\n")
    assert (problem.path, problem.line) == ("control_plane.count", 5)


def test_yes_as_a_key_stays_a_string() -> None:
    config = parse_config(HEAD + "control_plane: {labels: {yes: 'true'}}\n")
    assert config.control_plane.labels == {"yes": "true"}


@pytest.mark.parametrize(("text", "key", "value", "effect"), [
    ("a=b:NoSchedule", "a", "b", "NoSchedule"),
    ("example.com/gpu:NoExecute", "example.com/gpu", "", "NoExecute"),
    ("k=:PreferNoSchedule", "k", "", "PreferNoSchedule"),
])  # fmt: skip
def test_taints_parse(text: str, key: str, value: str, effect: str) -> None:
    assert tuple(parse_taint(text)) == (key, value, effect)


@pytest.mark.parametrize("taint", ["a=b", "=b:NoSchedule", "a=b:noschedule", "a b:NoSchedule"])
def test_bad_taints_are_rejected(taint: str) -> None:
    with pytest.raises(ValueError):
        parse_taint(taint)


@pytest.mark.parametrize("name", ["a", "demo-1", "x" * 40])
def test_good_cluster_names(name: str) -> None:
    assert parse_config(f"name: {name}\nlocation: fsn1\n").name == name


@pytest.mark.parametrize("name", ["1demo", "demo-", "de_mo", "Demo", "x" * 41, "'demo.x'"])
def test_bad_cluster_names(name: str) -> None:
    (problem,) = problems(f"name: {name}\nlocation: fsn1\n")
    assert problem.path == "name"


def test_the_gateway_address_may_not_be_in_the_node_subnet() -> None:
    text = HEAD + "network: {cidr: 172.16.0.0/12, node_subnet: 172.31.1.0/24}\n"
    (problem,) = problems(text)
    assert "172.31.1.1" in problem.message
