"""The version matrix pinned to its sources, and every default inside it.

The literal values below are the upstream facts recorded in ``hk8s.config._versions`` (with
their sources there); a change to the matrix must change them here too, on purpose.
"""

from __future__ import annotations

import itertools

import pytest

from hk8s.config import (
    ADDON_CHARTS,
    CHART_LINES,
    DEFAULT_KUBERNETES_VERSIONS,
    DEFAULT_TALOS_VERSION,
    HELM_IMAGE,
    PROVIDER_MINIMUMS,
    TALOS_RELEASES,
    chart_line,
    parse_config,
    parse_semver,
    talos_release,
    talos_upgrade_problem,
    version_problems,
)
from hk8s.errors import ConfigError

HEAD = "name: demo\nlocation: fsn1\n"


def test_talos_minors_match_upstream_compatibility_package() -> None:
    # siderolabs/talos pkg/machinery/compatibility/talos11{1,2,3,4}/*.go at release-1.14.
    facts = {
        m: (str(r.kubernetes), r.upgrade_from, r.downgrade_below) for m, r in TALOS_RELEASES.items()
    }
    assert facts == {
        "1.11": ("1.29-1.34", "1.9.0", "1.13.0"),
        "1.12": ("1.30-1.35", "1.10.0", "1.14.0"),
        "1.13": ("1.31-1.36", "1.11.0", "1.15.0"),
        "1.14": ("1.32-1.37", "1.12.0", "1.16.0"),
    }


def test_defaults_are_the_verified_newest_releases() -> None:
    assert DEFAULT_TALOS_VERSION == "v1.14.1"
    assert DEFAULT_KUBERNETES_VERSIONS == {
        "1.11": "1.34.12",
        "1.12": "1.35.8",
        "1.13": "1.36.5",
        "1.14": "1.36.5",
    }
    assert {k: c.version for k, c in ADDON_CHARTS.items()} == {
        "cilium": "1.20.2",
        "hcloud_ccm": "1.35.0",
        "hcloud_csi": "2.22.1",
        "metrics_server": "3.13.1",
    }
    assert HELM_IMAGE == "alpine/helm:3.22.1"


def test_default_talos_is_the_newest_supported_minor() -> None:
    release = talos_release(DEFAULT_TALOS_VERSION)
    newest = max(TALOS_RELEASES.values(), key=lambda r: parse_semver(r.minor + ".0"))
    assert release is newest


@pytest.mark.parametrize("minor", list(TALOS_RELEASES))
def test_each_default_kubernetes_runs_on_its_talos_and_every_default_chart(minor: str) -> None:
    kube = DEFAULT_KUBERNETES_VERSIONS[minor]
    kube_minor = parse_semver(kube)[1]
    assert TALOS_RELEASES[minor].kubernetes.contains(kube_minor)
    for addon, chart in ADDON_CHARTS.items():
        line = chart_line(addon, chart.version)
        assert line is not None, f"default {addon} chart {chart.version} is not in the matrix"
        assert line.kubernetes.contains(kube_minor), (addon, chart.version, kube)
    assert (
        version_problems(f"v{minor}.0", kube, {a: c.version for a, c in ADDON_CHARTS.items()}) == []
    )


def test_default_charts_are_the_newest_checked_releases() -> None:
    for addon, chart in ADDON_CHARTS.items():
        newest = max((line.last for line in CHART_LINES if line.addon == addon), key=parse_semver)
        assert chart.version == newest, addon


def test_chart_lines_are_ordered_and_do_not_overlap() -> None:
    for addon in ADDON_CHARTS:
        lines = [line for line in CHART_LINES if line.addon == addon]
        for line in lines:
            assert parse_semver(line.first) <= parse_semver(line.last)
            assert line.source
        for older, newer in itertools.pairwise(lines):
            assert parse_semver(older.last) < parse_semver(newer.first)


def test_ccm_default_handles_the_removed_datacenter_field() -> None:
    minimum = PROVIDER_MINIMUMS["hcloud_ccm"]
    assert minimum.version == "1.30.1" and "datacenter" in minimum.reason
    assert parse_semver(ADDON_CHARTS["hcloud_ccm"].version) >= parse_semver(minimum.version)


def test_a_pinned_ccm_older_than_the_minimum_is_refused_where_it_is_written() -> None:
    text = HEAD + "addons:\n  hcloud_ccm:\n    version: 1.30.0\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "c.yaml")
    (problem,) = info.value.problems
    assert (problem.path, problem.line) == ("addons.hcloud_ccm.version", 5)
    assert "older than 1.30.1" in problem.message and "datacenter" in problem.message
    assert "1.35.0" in (problem.hint or "")
    # A disabled CCM is not checked.
    parse_config(HEAD + "addons:\n  hcloud_ccm: {enabled: false, version: 1.27.0}\n")


def test_kubernetes_outside_a_default_charts_range_blames_kubernetes_version() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(HEAD + "talos: {version: v1.14.1}\nkubernetes: {version: 1.37.2}\n")
    found = info.value.problems
    assert {p.path for p in found} == {"kubernetes.version"}
    assert {p.message.split()[0] for p in found} == {"cilium", "hcloud_ccm", "hcloud_csi"}
    assert all("(hk8s' default) supports Kubernetes 1.33-1.36, not 1.37.2" in p.message
               for p in found)  # fmt: skip


def test_a_pinned_chart_outside_its_range_names_a_release_that_fits() -> None:
    text = HEAD + "kubernetes: {version: 1.36.5}\naddons:\n  cilium: {version: 1.18.4}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    (problem,) = info.value.problems
    assert problem.path == "addons.cilium.version"
    assert problem.message == "cilium chart 1.18.4 supports Kubernetes 1.30-1.33, not 1.36.5"
    assert "use chart 1.20.2" in (problem.hint or "")


def test_a_chart_newer_than_the_matrix_knows_is_not_refused() -> None:
    text = HEAD + "talos: {version: v1.14.1}\nkubernetes: {version: 1.37.2}\naddons:\n"
    text += "".join(f"  {a}: {{version: 9.0.0}}\n" for a in ("cilium", "hcloud_ccm", "hcloud_csi"))
    assert parse_config(text).kubernetes.version == "1.37.2"


@pytest.mark.parametrize(("current", "target", "refused"), [
    ("v1.11.5", "v1.14.1", "only be installed over Talos 1.12.0 or later"),
    ("v1.12.0", "v1.14.1", None),
    ("v1.13.9", "v1.14.1", None),
    ("v1.14.0", "v1.14.1", None),
    ("v1.13.9", "v1.12.11", None),
    ("v1.14.1", "v1.12.11", "older than 1.14.0"),
    ("v1.14.1", "v1.15.0", "not a release hk8s supports"),
])  # fmt: skip
def test_talos_upgrade_paths_follow_upstream(
    current: str, target: str, refused: str | None
) -> None:
    problem = talos_upgrade_problem(current, target)
    if refused is None:
        assert problem is None
    else:
        assert problem is not None and refused in problem
