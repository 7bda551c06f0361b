"""What a Job running ``helm upgrade --install`` does in the simulated cluster.

hk8s installs addons with an in-cluster Job whose container runs ``helm upgrade --install
<release> <chart> --repo <url> --version <v> --namespace <ns> --create-namespace --values
/values/values.yaml`` (team brief, addon contract). The simulator parses those arguments the way
helm 3 does, reads the values file from the volume mounted into the pod, renders the chart from
``_charts.CATALOG`` and applies the objects like helm (labels, release annotations, a release
Secret per revision). Failures exit 1 with helm's own error wording, so the Job fails and its
log says why.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from hk8s.sim.kube import _resources as res
from hk8s.sim.kube._charts import CATALOG
from hk8s.sim.kube._status import KubeError

if TYPE_CHECKING:
    from hk8s.sim.kube._verbs import Verbs

__all__ = ["HelmError", "HelmFaults", "helm_argv", "release_name", "run_helm"]

Obj = dict[str, Any]
_SEMVER = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
_VALUE_FLAGS = {
    "--repo",
    "--version",
    "--namespace",
    "-n",
    "--values",
    "-f",
    "--set",
    "--set-string",
    "--timeout",
    "--kube-context",
    "--username",
    "--password",
    "--post-renderer",
    "--description",
}
_BOOL_FLAGS = {
    "--install",
    "-i",
    "--create-namespace",
    "--wait",
    "--wait-for-jobs",
    "--atomic",
    "--reuse-values",
    "--reset-values",
    "--reset-then-reuse-values",
    "--force",
    "--debug",
    "--skip-crds",
    "--cleanup-on-fail",
    "--devel",
    "--dry-run",
    "--insecure-skip-tls-verify",
    "--no-hooks",
}


@dataclass
class HelmFaults:
    """Failures on demand: by release name, slow releases, chart versions that do not exist."""

    failing_releases: dict[str, str] = field(default_factory=dict)
    slow_releases: dict[str, float] = field(default_factory=dict)
    unknown_versions: set[tuple[str, str]] = field(default_factory=set)


class HelmError(Exception):
    """A helm failure: the message is what helm prints after ``Error: ``."""


def helm_argv(pod: Obj) -> list[str] | None:
    """The helm arguments a pod's first container runs, or None if it does not run helm."""
    containers = (pod.get("spec") or {}).get("containers") or []
    if not containers:
        return None
    argv = [
        str(a) for a in [*(containers[0].get("command") or []), *(containers[0].get("args") or [])]
    ]
    if len(argv) >= 3 and posixpath.basename(argv[0]) in ("sh", "bash", "ash") and argv[1] == "-c":
        argv = shlex.split(argv[2])
    if argv and posixpath.basename(argv[0]) == "helm":
        return argv[1:]
    return None


def _parse(args: list[str]) -> tuple[list[str], dict[str, list[str]], set[str]]:
    positional: list[str] = []
    options: dict[str, list[str]] = {}
    flags: set[str] = set()
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=")
        if arg.startswith("-") and name in _VALUE_FLAGS:
            if eq:
                value = inline
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                raise HelmError(f"flag needs an argument: {name}")
            options.setdefault({"-n": "--namespace", "-f": "--values"}.get(name, name), []).append(
                value
            )
        elif arg.startswith("-") and name in _BOOL_FLAGS:
            flags.add({"-i": "--install"}.get(name, name))
        elif arg.startswith("-"):
            raise HelmError(f"unknown flag: {name}")
        else:
            positional.append(arg)
        i += 1
    return positional, options, flags


def _read_file(verbs: Verbs, pod: Obj, path: str) -> str:
    container = pod["spec"]["containers"][0]
    ns = pod["metadata"]["namespace"]
    volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        root = mount["mountPath"].rstrip("/")
        if not path.startswith(root + "/"):
            continue
        relative = path[len(root) + 1 :]
        volume = volumes.get(mount["name"], {})
        source = volume.get("configMap") or volume.get("secret")
        if source is None:
            break
        kind = "ConfigMap" if "configMap" in volume else "Secret"
        name = source.get("name") or source.get("secretName")
        items = {i["path"]: i["key"] for i in source.get("items") or []}
        key = items.get(relative, relative if not items else None)
        try:
            obj = verbs.get(res.by_kind("v1", kind), ns, str(name))
        except KubeError:
            break
        if kind == "ConfigMap" and key in (obj.get("data") or {}):
            return str(obj["data"][key])
        if kind == "Secret" and key in (obj.get("data") or {}):
            return base64.b64decode(obj["data"][key]).decode()
        break
    raise HelmError(f"open {path}: no such file or directory")


def run_helm(verbs: Verbs, pod: Obj, args: list[str], faults: HelmFaults, now: str) -> str:
    """Run one helm invocation; returns its stdout, raises HelmError with its error line."""
    positional, options, flags = _parse(args)
    if not positional or positional[0] not in ("upgrade", "install"):
        raise HelmError(f'unknown command "{positional[0] if positional else ""}" for "helm"')
    if positional[0] == "upgrade" and "--install" not in flags:
        flags.add("--no-install")
    if len(positional) != 3:
        raise HelmError(f'"helm {positional[0]}" requires 2 arguments')
    _, release, chart_name = positional
    repo = (options.get("--repo") or [""])[-1]
    version = (options.get("--version") or [""])[-1]
    namespace = (options.get("--namespace") or ["default"])[-1]
    values: Obj = {}
    for path in options.get("--values", []):
        text = _read_file(verbs, pod, path)
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise HelmError(
                f"failed to parse {path}: error converting YAML to JSON: {exc}"
            ) from exc
        values = _deep_merge(values, loaded)
    chart = CATALOG.get(chart_name)
    if not repo:
        raise HelmError(f"repo {chart_name.split('/')[0]} not found")
    if not any(c.serves(repo) for c in CATALOG.values()):
        raise HelmError(
            f'looks like "{repo}" is not a valid chart repository or cannot be reached: failed '
            f"to fetch {repo.rstrip('/')}/index.yaml : 404 Not Found"
        )
    if chart is None or not chart.serves(repo):
        raise HelmError(f'chart "{chart_name}" not found in {repo} repository')
    if version and not _SEMVER.match(version):
        raise HelmError(f"improper constraint: {version}")
    if not version or (chart_name, version.lstrip("v")) in faults.unknown_versions:
        if version:
            raise HelmError(
                f'chart "{chart_name}" version "{version}" not found in {repo} repository'
            )
        version = chart.latest
    version = version.lstrip("v")
    if release in faults.failing_releases:
        raise HelmError(faults.failing_releases[release])
    ns_rt = res.by_kind("v1", "Namespace")
    if verbs.store.get(ns_rt, "", namespace) is None:
        if "--create-namespace" not in flags:
            raise HelmError(f'create: failed to create: namespaces "{namespace}" not found')
        verbs.create(ns_rt, "", {"metadata": {"name": namespace}}, manager="helm")
    revision = _previous_revision(verbs, namespace, release)
    if revision == 0 and "--no-install" in flags:
        raise HelmError(f'"{release}" has no deployed releases')
    for obj in chart.render(version, values):
        _install(verbs, obj, release, namespace, f"{chart_name}-{version}")
    _record_release(verbs, release, namespace, chart_name, version, revision + 1, values, now)
    head = (
        f'Release "{release}" has been upgraded. Happy Helming!'
        if revision
        else f'Release "{release}" does not exist. Installing it now.'
    )
    # helm prints time.ANSIC: "Mon Jan  2 15:04:05 2006".
    deployed = dt.datetime.strptime(now, "%Y-%m-%dT%H:%M:%SZ").strftime("%a %b %e %H:%M:%S %Y")
    return (
        f"{head}\nNAME: {release}\nLAST DEPLOYED: {deployed}\nNAMESPACE: {namespace}\n"
        f"STATUS: deployed\nREVISION: {revision + 1}\nTEST SUITE: None\n"
    )


def _deep_merge(base: Obj, extra: Obj) -> Obj:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _install(verbs: Verbs, obj: Obj, release: str, namespace: str, chart: str) -> None:
    rt = res.by_kind(obj["apiVersion"], obj["kind"])
    meta = obj["metadata"]
    meta.setdefault("labels", {}).update(
        {"app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": chart}
    )
    meta.setdefault("annotations", {}).update(
        {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace}
    )
    ns = namespace if rt.namespaced else ""
    existing = verbs.store.get(rt, ns, meta["name"])
    if existing is None:
        verbs.create(rt, ns, obj, manager="helm")
    else:
        merged = {**existing, **{k: v for k, v in obj.items() if k != "metadata"}}
        merged["metadata"] = {
            **existing["metadata"],
            "labels": meta["labels"],
            "annotations": meta["annotations"],
        }
        verbs.replace(rt, ns, meta["name"], merged, manager="helm")


def _previous_revision(verbs: Verbs, namespace: str, release: str) -> int:
    secrets = verbs.list(
        res.by_kind("v1", "Secret"), namespace, label_selector=f"owner=helm,name={release}"
    )
    return max((int(s["metadata"]["labels"].get("version", 0)) for s in secrets), default=0)


def _record_release(
    verbs: Verbs,
    release: str,
    namespace: str,
    chart: str,
    version: str,
    revision: int,
    values: Obj,
    now: str,
) -> None:
    """Helm 3's storage driver: one Secret per revision, older ones marked superseded."""
    rt = res.by_kind("v1", "Secret")
    for old in verbs.list(rt, namespace, label_selector=f"owner=helm,name={release}"):
        if old["metadata"]["labels"].get("status") == "deployed":
            old["metadata"]["labels"]["status"] = "superseded"
            verbs.replace(rt, namespace, old["metadata"]["name"], old, manager="helm")
    payload = {
        "name": release,
        "namespace": namespace,
        "version": revision,
        "info": {"status": "deployed", "last_deployed": now},
        "chart": {"metadata": {"name": chart, "version": version}},
        "config": values,
    }
    blob = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()
    verbs.create(
        rt,
        namespace,
        {
            "metadata": {
                "name": f"sh.helm.release.v1.{release}.v{revision}",
                "labels": {
                    "name": release,
                    "owner": "helm",
                    "status": "deployed",
                    "version": str(revision),
                },
            },
            "type": "helm.sh/release.v1",
            "data": {"release": base64.b64encode(blob.encode()).decode()},
        },
        manager="helm",
    )


def release_name(args: list[str]) -> str | None:
    """The release a helm invocation acts on, for per-release faults."""
    try:
        positional, _, _ = _parse(args)
    except HelmError:
        return None
    return positional[1] if len(positional) >= 2 else None
