"""The addon charts themselves, rendered by Helm itself, judge what hk8s and its simulator
assume about them.

hk8s installs an addon by running ``helm upgrade --install`` in a Job with the values
``addon_values`` renders, then ``create`` waits for the workloads ``addon_workloads`` names;
the simulated world renders each chart from ``hk8s.sim.machines._charts``, written from reading
it. Here the charts at the versions hk8s installs by default (``ADDON_CHARTS``) decide:

- Helm accepts hk8s' values (the chart's values.schema.json, its templates), for a one-node
  cluster and a five-node one;
- every value hk8s sets is one the chart's values.yaml has: Helm ignores an unknown key
  silently, so a misspelt or renamed value would do nothing and no install would fail;
- every workload hk8s waits for is one the chart creates (kind, namespace, name): one it does
  not would leave ``create`` waiting until its deadline;
- every object the simulator renders is one the chart renders, with nothing the chart's lacks,
  and the same scheduling: replicas, host network, tolerations, priority, service account;
- a ``null`` in the user's values removes the chart's default, as Helm documents;
- the addon Job's ``helm`` command line uses only flags ``helm upgrade`` has, each as it takes
  them (with a value or without), and the simulator's helm parses flags as Helm's table says.

Helm and the charts are the simulated world's (``make kube``: ``tools/helm_build.py``): Helm at
the release the addon Jobs run, the charts from the Go modules that carry their sources
(``tools/helm/charts/go.mod``, checked against its go.sum by the go command). The Hetzner charts
(hcloud-cloud-controller-manager, csi-driver) are not in a Go module the module proxy serves, so
they are not judged here.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import tempfile
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from hk8s.config import ADDON_CHARTS, ClusterConfig, parse_config
from hk8s.providers.k8s import render_addon_manifests
from hk8s.providers.k8s._addons import addon_values, addon_workloads, default_values
from hk8s.sim.k8s import BinariesMissing
from hk8s.sim.machines._charts import CATALOG
from hk8s.sim.machines._helm import _BOOL_FLAGS, _VALUE_FLAGS
from hk8s.sim.machines._helmbin import RealHelm, find_helm

if TYPE_CHECKING:
    from pathlib import Path

Obj = dict[str, Any]
# The addons whose charts the world has sources for (tools/helm/charts), at hk8s' default versions.
JUDGED = ("cilium", "metrics_server")
ONE_NODE = "name: oracle\nlocation: fsn1\ncontrol_plane: {count: 1}\n"
FIVE_NODES = (
    "name: oracle\nlocation: fsn1\ncontrol_plane: {count: 3}\n"
    "workers: [{name: workers, count: 2}]\n"
)
CLUSTERS = {"1 node": ONE_NODE, "3+2 nodes": FIVE_NODES}
# What the pod's scheduling and identity depend on: the simulator must agree both ways.
POD_FIELDS = ("hostNetwork", "priorityClassName", "serviceAccountName", "tolerations")


@pytest.fixture(scope="module")
def built() -> RealHelm:
    """The world's Helm and chart sources (``make kube``: tools/helm_build.py)."""
    try:
        return find_helm()
    except BinariesMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def helm(built: RealHelm) -> Path:
    return built.binary


@pytest.fixture(scope="module")
def charts(built: RealHelm) -> dict[str, Path]:
    """Each judged addon's chart sources, at the version hk8s installs by default."""
    out = {}
    for addon in JUDGED:
        spec = ADDON_CHARTS[addon]
        if not built.has(spec.chart, spec.version):
            pytest.fail(
                f"the world has no sources of chart {spec.chart} {spec.version}, which hk8s "
                f"installs (it has {sorted(built.charts)}): require the module version that "
                "carries it in tools/helm/charts/go.mod, then run make kube"
            )
        out[addon] = built.charts[(spec.chart, spec.version)]
    return out


def render(helm: Path, chart: Path, addon: str, cluster: ClusterConfig, values: Obj) -> list[Obj]:
    """``helm template`` of ``chart`` as hk8s' Job installs it: release, namespace, values."""
    spec = ADDON_CHARTS[addon]
    argv = [str(helm), "template", spec.release, str(chart), "--namespace", spec.namespace]
    argv += ["--kube-version", cluster.kubernetes.version, "--values", "-"]
    # Helm's own folders in a temporary one, not beside the charts in the world's build.
    with tempfile.TemporaryDirectory(prefix="hk8s-helm-") as home:
        done = subprocess.run(
            argv,
            input=yaml.safe_dump(values),
            capture_output=True,
            text=True,
            check=False,
            env={
                "PATH": os.environ.get("PATH", ""),
                "HELM_CACHE_HOME": f"{home}/cache",
                "HELM_CONFIG_HOME": f"{home}/config",
                "HELM_DATA_HOME": f"{home}/data",
            },
        )
    assert done.returncode == 0, f"helm refused hk8s' {addon} values: {done.stderr}"
    return [doc for doc in yaml.load_all(done.stdout, Loader=yaml.CSafeLoader) if doc]


@functools.cache
def installed(helm: Path, chart: Path, addon: str, shape: str) -> tuple[Obj, list[Obj]]:
    """hk8s' values for ``addon`` in a cluster of ``shape``, and what Helm renders with them."""
    cluster = parse_config(CLUSTERS[shape])
    values = addon_values(cluster, addon)
    return values, render(helm, chart, addon, cluster, values)


def find(objects: list[Obj], kind: str, name: str) -> Obj | None:
    return next((o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name), None)


def leaf_paths(values: Obj, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for key, value in values.items():
        if isinstance(value, dict) and value:
            paths += leaf_paths(value, (*prefix, key))
        else:
            paths.append((*prefix, key))
    return paths


def contained(ours: Any, theirs: Any, where: str) -> list[str]:
    """What ``ours`` has that ``theirs`` lacks: maps key by key, list items each matching one
    of theirs, scalars equal; an image without its digest matches the image with one."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        missing = []
        for key, value in ours.items():
            if key not in theirs:
                missing.append(f"{where}.{key}: {value!r} (the chart has no such field)")
            else:
                missing += contained(value, theirs[key], f"{where}.{key}")
        return missing
    if isinstance(ours, list) and isinstance(theirs, list):
        return [
            f"{where}[{i}]: {item!r} (not among the chart's: {theirs!r})"
            for i, item in enumerate(ours)
            if not any(not contained(item, other, where) for other in theirs)
        ]
    if isinstance(ours, str) and isinstance(theirs, str) and "@sha256:" in theirs:
        theirs = theirs.split("@", 1)[0]
    return [] if ours == theirs else [f"{where}: {ours!r}, the chart: {theirs!r}"]


def differences(ours: Obj, theirs: Obj, fields: tuple[str, ...], where: str) -> list[str]:
    """``fields`` whose values differ, a field the one sets and the other not included."""
    return [
        f"{where}: {field} {ours.get(field)!r}, the chart: {theirs.get(field)!r}"
        for field in fields
        if ours.get(field) != theirs.get(field)
    ]


def _cases() -> list[tuple[str, str]]:
    return [(addon, shape) for addon in JUDGED for shape in CLUSTERS]


@pytest.mark.parametrize(("addon", "shape"), _cases())
def test_helm_accepts_hk8s_values_and_creates_the_workloads_hk8s_waits_for(
    helm: Path, charts: dict[str, Path], addon: str, shape: str
) -> None:
    values, objects = installed(helm, charts[addon], addon, shape)
    namespace = ADDON_CHARTS[addon].namespace
    for workload in addon_workloads(addon, values):
        found = find(objects, workload.kind, workload.name)
        assert found is not None, f"the {addon} chart creates no {workload.kind} {workload.name}"
        assert found["metadata"].get("namespace", namespace) == workload.namespace


@pytest.mark.parametrize("addon", JUDGED)
def test_every_value_hk8s_sets_is_one_the_chart_has(charts: dict[str, Path], addon: str) -> None:
    chart_values = yaml.safe_load((charts[addon] / "values.yaml").read_text())
    for shape in CLUSTERS:
        ours = default_values(parse_config(CLUSTERS[shape]), addon)
        for path in leaf_paths(ours):
            node: Any = chart_values
            for depth, key in enumerate(path):
                if node == {} and depth:
                    break  # a map the chart leaves empty for the user's keys (labels, ...)
                assert isinstance(node, dict) and key in node, (
                    f"{addon}: the chart's values.yaml has no {'.'.join(path[: depth + 1])}"
                    f" (hk8s sets {'.'.join(path)}): Helm would ignore it"
                )
                node = node[key]


@pytest.mark.parametrize(("addon", "shape"), _cases())
def test_the_simulator_renders_what_the_chart_renders(
    helm: Path, charts: dict[str, Path], addon: str, shape: str
) -> None:
    values, real = installed(helm, charts[addon], addon, shape)
    spec = ADDON_CHARTS[addon]
    simulated = CATALOG[spec.chart].render(spec.version, values)
    problems: list[str] = []
    for obj in simulated:
        kind, name = obj["kind"], obj["metadata"]["name"]
        theirs = find(real, kind, name)
        if theirs is None:
            problems.append(f"{kind} {name}: the chart renders no such object")
            continue
        problems += contained(obj, theirs, f"{kind} {name}")
        if kind in ("Deployment", "DaemonSet"):
            problems += differences(obj["spec"], theirs["spec"], ("replicas",), f"{kind} {name}")
            problems += differences(
                obj["spec"]["template"]["spec"],
                theirs["spec"]["template"]["spec"],
                POD_FIELDS,
                f"{kind} {name} pods",
            )
    assert not problems, "\n".join(problems)


def test_a_null_in_the_users_values_removes_the_charts_default(
    helm: Path, charts: dict[str, Path]
) -> None:
    # Helm's documented way to drop a default: metrics-server's chart passes defaultArgs
    # (--metric-resolution=15s among them) unless the user's values set it to null.
    cluster = parse_config(
        ONE_NODE + "addons:\n  metrics_server:\n    values: {defaultArgs: null}\n"
    )
    values = addon_values(cluster, "metrics_server")
    [deployment] = [
        o
        for o in render(helm, charts["metrics_server"], "metrics_server", cluster, values)
        if o["kind"] == "Deployment"
    ]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert "--kubelet-insecure-tls" in container["args"]  # hk8s' own value stays
    assert not any(arg.startswith("--metric-resolution") for arg in container["args"])


def helm_flags(helm: Path) -> dict[str, bool]:
    """``helm upgrade``'s flags (and their one-letter forms) -> whether each takes a value, from
    its own help: ``--name type`` takes one, a bare ``--name`` or ``--name type[=default]``
    (an optional value, given only as ``--name=value``) does not."""
    text = subprocess.run(
        [str(helm), "upgrade", "--help"], capture_output=True, text=True, check=True
    ).stdout
    flags: dict[str, bool] = {}
    for short, name, kind in re.findall(r"^\s+(?:-(\w), )?--([\w-]+)(?: (\S+))?", text, re.M):
        takes = bool(kind) and "[=" not in kind
        flags[f"--{name}"] = takes
        if short:
            flags[f"-{short}"] = takes
    return flags


def test_the_addon_jobs_helm_command_is_one_helm_takes(helm: Path) -> None:
    flags = helm_flags(helm)
    assert flags["--values"] and not flags["--install"]  # the help was read
    install = render_addon_manifests(parse_config(ONE_NODE), "cilium")
    [container] = install.objects[1]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["helm"]
    args, positional, options = list(container["args"]), [], {}
    while args:
        arg = args.pop(0)
        if not arg.startswith("-"):
            positional.append(arg)
            continue
        assert arg in flags, f"helm upgrade has no flag {arg}"
        options[arg] = args.pop(0) if flags[arg] else True
    assert positional == ["upgrade", install.release, install.chart]
    assert options == {
        "--install": True,
        "--repo": install.repo,
        "--version": install.version,
        "--namespace": install.namespace,
        "--create-namespace": True,
        "--values": "/values/values.yaml",
    }


def test_the_simulators_helm_parses_flags_as_helm_does(helm: Path) -> None:
    flags = helm_flags(helm)
    wrong = sorted(
        [f"{f}: takes no value in helm" for f in _VALUE_FLAGS if flags.get(f) is not True]
        + [f"{f}: takes a value in helm" for f in _BOOL_FLAGS if flags.get(f) is not False]
    )
    assert not wrong, wrong
