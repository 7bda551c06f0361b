"""The world's real Helm: pinned once, found where ``make kube`` puts it, and handed the addon
Job's own command line with only the chart's location changed; and the simulated charts, which
install the rest, read a user's null as Helm's coalescing leaves it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from hk8s.config import HELM_IMAGE
from hk8s.sim.k8s import BinariesMissing
from hk8s.sim.machines._charts import CATALOG
from hk8s.sim.machines._helm import HelmError, HelmFaults, run_helm
from hk8s.sim.machines._helmbin import HELM_DIR_ENV, HELM_RELEASE, HelmRun, RealHelm, find_helm

ROOT = Path(__file__).resolve().parents[4]


def pinned(gomod: Path) -> str:
    pin = re.search(r"^\s*(?:tool\s+)?helm\.sh/helm/v3 (v\S+)", gomod.read_text(), re.M)
    assert pin is not None, f"{gomod} pins no helm.sh/helm/v3"
    return pin[1]


def test_the_helm_release_is_pinned_once() -> None:
    # The world runs the Helm the addon Jobs run on real clusters; the oracles judge with it.
    assert "v" + HELM_IMAGE.rpartition(":")[2] == HELM_RELEASE
    assert pinned(ROOT / "tools" / "helm" / "go.mod") == HELM_RELEASE
    assert pinned(ROOT / "tests" / "oracles" / "charts" / "go.mod") == HELM_RELEASE


def test_a_missing_build_says_how_to_make_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HELM_DIR_ENV, str(tmp_path))
    with pytest.raises(BinariesMissing, match="run `make kube`"):
        find_helm()
    (tmp_path / "helm").write_text("#!/bin/sh\n")
    (tmp_path / "helm").chmod(0o755)
    (tmp_path / "charts" / "cilium-1.20.2").mkdir(parents=True)
    (tmp_path / "charts" / "cilium-1.20.2" / "Chart.yaml").write_text(
        "apiVersion: v2\nname: cilium\nversion: 1.20.2\n"
    )
    found = find_helm()
    assert found.charts == {("cilium", "1.20.2"): tmp_path / "charts" / "cilium-1.20.2"}


@dataclass(frozen=True)
class RecordingHelm(RealHelm):
    answer: HelmRun = field(default_factory=lambda: HelmRun(0, "STATUS: deployed\n"))
    runs: list[tuple[list[str], list[str]]] = field(default_factory=list)

    async def run(self, api: Any, pod: Any, argv: list[str], values: list[str]) -> HelmRun:
        self.runs.append((argv, values))
        return self.answer


class _Api:
    async def get_or_none(self, path: str) -> dict[str, Any] | None:
        assert path == "/api/v1/namespaces/kube-system/configmaps/cilium-values"
        return {"data": {"values.yaml": "ipam: {mode: kubernetes}\n"}}


class _Resources:
    api = _Api()


POD = {
    "metadata": {"name": "hk8s-cilium-x", "namespace": "kube-system", "uid": "u1"},
    "spec": {
        "containers": [{"name": "helm", "volumeMounts": [{"name": "v", "mountPath": "/values"}]}],
        "volumes": [{"name": "v", "configMap": {"name": "cilium-values"}}],
    },
}
ARGS = [
    "upgrade", "--install", "cilium", "cilium", "--repo", "https://helm.cilium.io/",
    "--version", "1.20.2", "--namespace", "kube-system", "--create-namespace",
    "--values", "/values/values.yaml",
]  # fmt: skip


async def test_helm_gets_the_jobs_command_with_the_charts_sources_in_place_of_the_repo(
    tmp_path: Path,
) -> None:
    helm = RecordingHelm(Path("helm"), {("cilium", "1.20.2"): tmp_path / "cilium"})
    out = await run_helm(cast("Any", _Resources()), POD, ARGS, HelmFaults(), "", helm)
    assert out == "STATUS: deployed\n"
    [(argv, values)] = helm.runs
    assert argv == [
        "upgrade", "cilium", str(tmp_path / "cilium"), "--create-namespace", "--install",
        "--namespace", "kube-system",
    ]  # fmt: skip
    assert values == ["ipam: {mode: kubernetes}\n"]  # the file's text, as helm reads it


async def test_helms_failure_is_the_pods_whole_log(tmp_path: Path) -> None:
    log = 'Release "cilium" does not exist. Installing it now.\nError: boom: invalid\n'
    helm = RecordingHelm(
        Path("helm"), {("cilium", "1.20.2"): tmp_path / "cilium"}, answer=HelmRun(1, log)
    )
    with pytest.raises(HelmError, match=r"^boom: invalid$") as caught:
        await run_helm(cast("Any", _Resources()), POD, ARGS, HelmFaults(), "", helm)
    assert caught.value.log == log


async def test_charts_it_has_no_sources_for_and_injected_faults_stay_simulated(
    tmp_path: Path,
) -> None:
    helm = RecordingHelm(Path("helm"), {("cilium", "1.20.1"): tmp_path / "cilium"})
    faults = HelmFaults(failing_releases={"cilium": "INSTALLATION FAILED: boom"})
    with pytest.raises(HelmError, match="INSTALLATION FAILED: boom"):
        await run_helm(cast("Any", _Resources()), POD, ARGS, faults, "", helm)
    assert helm.runs == []


def test_a_users_null_for_a_simulated_charts_value_gives_what_kubernetes_defaults() -> None:
    # addons.hcloud_ccm.values: {replicaCount: null} reaches helm (merge_values keeps nulls):
    # the chart's default is deleted and the Deployment gets Kubernetes' default, one replica.
    chart = CATALOG["hcloud-cloud-controller-manager"]
    [deployment] = [
        o for o in chart.render("1.35.0", {"replicaCount": None}) if o["kind"] == "Deployment"
    ]
    assert deployment["spec"]["replicas"] == 1
